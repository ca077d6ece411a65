from polychromic.data.collection import verify_collection
from polychromic.steps import run_step

run_step(
    snakemake,
    verify_collection,
    validated=snakemake.input.validated,
    report_json=snakemake.output.json,
    report_md=snakemake.output.md,
    thresholds=dict(snakemake.params.thresholds),
    strict=snakemake.params.strict,
    validation_report=snakemake.input.validation,
)
