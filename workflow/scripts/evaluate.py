from polychromic.evaluation.evaluate import evaluate_seed
from polychromic.settings import section
from polychromic.steps import run_step

run_step(
    snakemake,
    evaluate_seed,
    generations={name: path for name, path in snakemake.input.items()
                 if name not in ("code", "calibration")},
    outputs=dict(snakemake.output.items()),
    settings=section("evaluation", snakemake.params.settings),
    seed=int(snakemake.wildcards.seed),
    calibration=snakemake.input.calibration,
    reward=snakemake.params.reward,
)
