from pathlib import Path

from polychromic.config import load_settings
from polychromic.reporting.aggregate import aggregate
from polychromic.steps import run_step

settings = load_settings(snakemake.config)
run_step(
    snakemake,
    aggregate,
    evaluation_dirs={
        seed: str(Path(snakemake.output.aggregated).parent / f"seed_{seed}")
        for seed in settings.seeds
    },
    outputs=dict(snakemake.output.items()),
    seeds=list(settings.seeds),
    systems=settings.systems,
    experiments=settings.experiments,
    evaluation=settings.evaluation,
    templates_dir=snakemake.params.templates_dir,
    runs=dict(snakemake.params.runs),
    selection=snakemake.params.selection,
    calibration=snakemake.input.calibration,
)
