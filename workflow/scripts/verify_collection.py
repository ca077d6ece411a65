from polychromic.data.collection import verify_collection
from polychromic.settings import section
from polychromic.steps import run_step

data = section("data", snakemake.params.data)
run_step(
    snakemake,
    verify_collection,
    validated=snakemake.input.validated,
    report_json=snakemake.output.json,
    report_md=snakemake.output.md,
    thresholds=data.thresholds,
    strict=data.strict,
    validation_report=snakemake.input.validation,
)
