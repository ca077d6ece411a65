# The search rule: one round of the sampling search on validation (polychromic.evaluation.search).
from pathlib import Path

from polychromic.config import load_settings
from polychromic.evaluation.selection import search_step
from polychromic.steps import run_step

settings = load_settings(snakemake.config)
generations = {}  # {seed: {candidate: path}} from results/selection/seed_{seed}/{candidate}.jsonl
for path in snakemake.input.get("generations", []):
    seed = int(Path(path).parent.name.removeprefix("seed_"))
    generations.setdefault(seed, {})[Path(path).name.removesuffix(".jsonl")] = path
run_step(
    snakemake,
    search_step,
    round_=int(snakemake.wildcards.round),
    state=snakemake.input.get("state"),
    generations=generations,
    calibration=snakemake.input.get("calibration"),
    output=snakemake.output.state,
    systems=settings.systems,
    generation=settings.generation,
    settings=settings.evaluation,
    seeds=settings.seeds,
)
