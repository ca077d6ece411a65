from polychromic.data.validate import validate_raw
from polychromic.steps import run_step

run_step(
    snakemake,
    validate_raw,
    raw_files=list(snakemake.input.raw),
    validated=snakemake.output.validated,
    rejected=snakemake.output.rejected,
    report=snakemake.output.report,
    max_rejected_fraction=snakemake.params.max_rejected_fraction,
    input_format=snakemake.params.input_format,
)
