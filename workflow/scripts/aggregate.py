from pathlib import Path

from polychromic.reporting.aggregate import aggregate
from polychromic.steps import run_step

seeds = [int(seed) for seed in snakemake.params.seeds]
run_step(
    snakemake,
    aggregate,
    evaluation_dirs={
        seed: str(Path(snakemake.output.aggregated).parent / f"seed_{seed}") for seed in seeds
    },
    aggregated=snakemake.output.aggregated,
    table=snakemake.output.table,
    seeds=seeds,
    systems=list(snakemake.params.systems),
    templates_dir=snakemake.params.templates_dir,
    ablation_table=snakemake.output.ablation_table,
    systems_config=dict(snakemake.params.systems_config),
    experiments_config=dict(snakemake.params.experiments_config),
    runs=dict(snakemake.params.runs),
)
