from pathlib import Path

from polychromic.config import load_settings
from polychromic.evaluation.selection import select_sampling
from polychromic.steps import run_step

settings = load_settings(snakemake.config)
generations = {}  # {seed: {candidate: path}} from results/selection/seed_{seed}/{candidate}.jsonl
for path in snakemake.input.generations:
    seed = int(Path(path).parent.name.removeprefix("seed_"))
    generations.setdefault(seed, {})[Path(path).name.removesuffix(".jsonl")] = path
run_step(
    snakemake,
    select_sampling,
    generations=generations,
    output=snakemake.output.selection,
    systems=settings.systems,
    generation=settings.generation,
    settings=settings.evaluation,
    calibration=snakemake.input.calibration,
)
