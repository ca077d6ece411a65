# The select_sampling rule: selection.json from the search's last round.
from polychromic.config import load_settings
from polychromic.evaluation.selection import select_sampling
from polychromic.steps import run_step

settings = load_settings(snakemake.config)
run_step(
    snakemake,
    select_sampling,
    state=snakemake.input.state,
    output=snakemake.output.selection,
    systems=settings.systems,
    generation=settings.generation,
    settings=settings.evaluation,
)
