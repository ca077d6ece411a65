from polychromic.data.collection import sample_for_review
from polychromic.settings import section
from polychromic.steps import run_step

review = section("data", snakemake.params.data).review
run_step(
    snakemake,
    sample_for_review,
    validated=snakemake.input.validated,
    output=snakemake.output.samples,
    n=review.n,
    seed=review.seed,
)
