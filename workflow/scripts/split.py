from polychromic.data.split import split_dataset
from polychromic.steps import run_step

settings = dict(snakemake.params.settings)
run_step(
    snakemake,
    split_dataset,
    curated=snakemake.input.curated,
    train=snakemake.output.train,
    val=snakemake.output.val,
    test=snakemake.output.test,
    report=snakemake.output.report,
    manifest=snakemake.output.manifest,
    ratios={name: settings[name] for name in ("train", "val", "test")},
    seed=settings["seed"],
    group_by=settings["group_by"],
    stratify=settings["stratify"],
)
