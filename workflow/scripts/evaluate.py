from polychromic.evaluation.evaluate import evaluate_seed
from polychromic.steps import run_step

run_step(
    snakemake,
    evaluate_seed,
    generations={name: path for name, path in snakemake.input.items() if name != "code"},
    diversity=snakemake.output.diversity,
    quality=snakemake.output.quality,
    passk=snakemake.output.passk,
    statistics=snakemake.output.statistics,
    settings=dict(snakemake.params.settings),
    seed=int(snakemake.wildcards.seed),
)
