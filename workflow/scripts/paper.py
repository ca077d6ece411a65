from polychromic.config import load_settings
from polychromic.reporting.paper import build_paper
from polychromic.steps import run_step

run_step(
    snakemake,
    build_paper,
    aggregated=snakemake.input.aggregated,
    table=snakemake.input.table,
    ablation_table=snakemake.input.ablation_table,
    figures_dir=snakemake.params.figures_dir,
    split_report=snakemake.input.split_report,
    statistics=list(snakemake.input.statistics),
    release_dir=snakemake.input.release,
    passk=list(snakemake.input.passk),
    provenance={
        "config": snakemake.config,
        "manifest": snakemake.input.manifest,
        "runs": list(snakemake.input.runs),
        "benchmarks": snakemake.params.benchmarks,
        "configfiles": snakemake.params.configfiles,
        "workdir": snakemake.params.workdir,
    },
    checklist=snakemake.output.checklist,
    evidence_dir=snakemake.params.evidence,
    paper_dir=snakemake.output.paper,
    tarball=snakemake.output.tarball,
    templates_dir=snakemake.params.templates_dir,
    settings=load_settings(snakemake.config),
)
