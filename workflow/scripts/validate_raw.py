from polychromic.data.validate import validate_raw
from polychromic.settings import section
from polychromic.steps import run_step

data = section("data", snakemake.params.data)
run_step(
    snakemake,
    validate_raw,
    raw_files=list(snakemake.input.raw),
    validated=snakemake.output.validated,
    rejected=snakemake.output.rejected,
    report=snakemake.output.report,
    max_rejected_fraction=data.max_rejected_fraction,
    input_format=data.format,
    evidence=snakemake.params.evidence,
)
