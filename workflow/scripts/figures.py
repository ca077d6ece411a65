from polychromic.reporting.figures import make_figures
from polychromic.steps import run_step

run_step(
    snakemake,
    make_figures,
    aggregated=snakemake.input.aggregated,
    passk_files=list(snakemake.input.passk),
    out_dir=snakemake.params.out_dir,
    training_logs=dict(snakemake.params.training_logs),
    systems_config=dict(snakemake.params.systems_config),
    sampling_temperature=float(snakemake.params.sampling_temperature),
)
