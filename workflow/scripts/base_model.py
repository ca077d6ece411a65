from polychromic.models.base import build_base_model
from polychromic.steps import run_step

run_step(
    snakemake,
    build_base_model,
    train=snakemake.input.train,
    val=snakemake.input.val,
    pointer=snakemake.output.pointer,
    model=dict(snakemake.params.model),
)
