from polychromic.config import load_settings
from polychromic.reporting.figures import make_figures
from polychromic.steps import run_step

settings = load_settings(snakemake.config)
run_step(
    snakemake,
    make_figures,
    aggregated=snakemake.input.aggregated,
    passk_files=list(snakemake.input.passk),
    out_dir=snakemake.params.out_dir,
    training_logs=dict(snakemake.params.training_logs),
    systems=settings.systems,
    sampling_temperature=settings.generation.temperature,
)
