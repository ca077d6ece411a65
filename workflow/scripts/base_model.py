from polychromic.models.base import build_base_model
from polychromic.settings import section
from polychromic.steps import run_step

run_step(
    snakemake,
    build_base_model,
    train=snakemake.input.train,
    val=snakemake.input.val,
    pointer=snakemake.output.pointer,
    model=section("model", snakemake.params.model),
)
