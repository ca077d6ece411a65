from polychromic.contract import EVALUATE_INPUTS
from polychromic.evaluation.evaluate import evaluate_seed
from polychromic.settings import section
from polychromic.steps import run_step

inputs = dict(snakemake.input.items())
run_step(
    snakemake,
    evaluate_seed,
    generations={name: path for name, path in inputs.items() if name not in EVALUATE_INPUTS},
    outputs=dict(snakemake.output.items()),
    settings=section("evaluation", snakemake.params.settings),
    seed=int(snakemake.wildcards.seed),
    calibration=snakemake.input.calibration,
    reward=snakemake.params.reward,
    reward_run=inputs.get("reward_run"),
)
