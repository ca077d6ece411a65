from polychromic.data.split import split_dataset
from polychromic.settings import section
from polychromic.steps import run_step

split = section("split", snakemake.params.split)
run_step(
    snakemake,
    split_dataset,
    curated=snakemake.input.curated,
    train=snakemake.output.train,
    val=snakemake.output.val,
    test=snakemake.output.test,
    report=snakemake.output.report,
    manifest=snakemake.output.manifest,
    ratios={"train": split.train, "val": split.val, "test": split.test},
    seed=split.seed,
    group_by=split.group_by,
    stratify=split.stratify,
    min_tweets=split.min_tweets,
)
