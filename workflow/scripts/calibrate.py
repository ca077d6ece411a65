from polychromic.evaluation.calibration import calibrate_judge
from polychromic.settings import section
from polychromic.steps import run_step

run_step(
    snakemake,
    calibrate_judge,
    val=snakemake.input.val,
    output=snakemake.output.calibration,
    settings=section("evaluation", snakemake.params.evaluation),
)
