from polychromic.data.curate import curate
from polychromic.settings import section
from polychromic.steps import run_step

run_step(
    snakemake,
    curate,
    validated=snakemake.input.validated,
    curated=snakemake.output.curated,
    report=snakemake.output.report,
    settings=section("curation", snakemake.params.curation),
    decisions=snakemake.input.decisions[0] if snakemake.input.decisions else None,
)
