from polychromic.evaluation.generate import generate_system
from polychromic.settings import section
from polychromic.steps import run_step
from polychromic.systems import System

run_step(
    snakemake,
    generate_system,
    test=snakemake.input.test,
    train=snakemake.input.train,
    base=snakemake.input.base,
    adapter=snakemake.input.adapter or None,
    output=snakemake.output.generations,
    system=System(**snakemake.params.system),
    generation=section("generation", snakemake.params.generation),
    prompts_dir=snakemake.params.prompts_dir,
    seed=int(snakemake.wildcards.seed),
    selection=snakemake.params.selection,
)
