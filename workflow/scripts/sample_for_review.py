from polychromic.data.collection import sample_for_review
from polychromic.steps import run_step

run_step(
    snakemake,
    sample_for_review,
    validated=snakemake.input.validated,
    output=snakemake.output.samples,
    n=snakemake.params.n,
    seed=snakemake.params.seed,
)
