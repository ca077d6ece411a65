from polychromic.data.release import build_release
from polychromic.steps import run_step

run_step(
    snakemake,
    build_release,
    splits={name: snakemake.input[name] for name in ("train", "val", "test")},
    manifest=snakemake.input.manifest,
    split_report=snakemake.input.split_report,
    curation_report=snakemake.input.curation_report,
    out_dir=snakemake.output.dataset,
    include_texts=bool(snakemake.params.release_texts),
    synthetic=snakemake.params.synthetic,
)
