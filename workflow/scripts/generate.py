# The generate and generate_val rules: one system's replies to the tweets of a split (the test
# split, or the validation split for the sampling choice of evaluation.selection).
from polychromic.evaluation.generate import generate_system
from polychromic.settings import section
from polychromic.steps import run_step
from polychromic.systems import System

run_step(
    snakemake,
    generate_system,
    test=snakemake.input.split,
    train=snakemake.input.train,
    base=snakemake.input.base,
    adapter=snakemake.input.adapter or None,
    output=snakemake.output.generations,
    system=System(**snakemake.params.system),
    generation=section("generation", snakemake.params.generation),
    prompts_dir=snakemake.params.prompts_dir,
    seed=int(snakemake.wildcards.seed),
    max_prompts=snakemake.params.max_prompts,
    selection=snakemake.params.selection,
)
