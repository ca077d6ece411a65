# Reporting: mean +- std over seeds, the LaTeX tables, figures and the paper package.
# Every table and figure is registered with report() and its own caption in workflow/report/,
# so `snakemake --report results/report.html` gathers them with the workflow graph.
#
# ablation_table.tex is always written (a LaTeX comment when the study has no ablation), so the
# rule's outputs never depend on the config; it is registered in the report only when
# ABLATION_SYSTEMS is not empty. An ablation is a LoRA system beyond the reference system and
# the first system of each training objective (polychromic.reporting.groups.split_systems).
from polychromic.reporting.groups import split_systems
from polychromic.reporting.tex import tex_engine


localrules:
    aggregate,
    figures,
    paper,


SYSTEM_GROUPS = split_systems(
    SETTINGS.systems, SETTINGS.experiments, SETTINGS.evaluation.reference_system
)
ABLATION_SYSTEMS = SYSTEM_GROUPS["ablation"]
# results/evaluation/{aggregated_results.json, results_table.tex, ablation_table.tex}
AGGREGATE = {key: f"results/evaluation/{name}" for key, name in AGGREGATE_FILES.items()}
ABLATION_TABLE = AGGREGATE["ablation_table"]


rule aggregate:
    input:
        evaluation=expand(
            "results/evaluation/seed_{seed}/{file}", seed=SEEDS, file=SEED_FILES.values()
        ),
        runs=expand(
            "results/models/{experiment}/seed_{seed}/run.json", experiment=EXPERIMENTS, seed=SEEDS
        ),
        templates=latex_templates(),
        selection=get_selection,
        calibration=f"results/evaluation/{CALIBRATION_FILE}",
        code=library("aggregate"),
    output:
        aggregated=report(
            AGGREGATE["aggregated"],
            caption="../report/aggregated_results.rst",
            category="Tables",
            labels={"name": AGGREGATE_FILES["aggregated"]},
        ),
        table=report(
            AGGREGATE["table"],
            caption="../report/results_table.rst",
            category="Tables",
            labels={"name": AGGREGATE_FILES["table"]},
        ),
        ablation_table=(
            report(
                ABLATION_TABLE,
                caption="../report/ablation_table.rst",
                category="Tables",
                labels={"name": AGGREGATE_FILES["ablation_table"]},
            )
            if ABLATION_SYSTEMS
            else ABLATION_TABLE
        ),
        judge_validity=report(
            AGGREGATE["judge_validity"],
            caption="../report/judge_validity.rst",
            category="Tables",
            labels={"name": AGGREGATE_FILES["judge_validity"]},
        ),
    params:
        # what the script reads from the typed settings: a change re-runs the aggregate
        systems=config["systems"],
        experiments=config["experiments"],
        evaluation=config["evaluation"],
        selection=SELECTION_FILE if SEARCH else None,
        runs={
            experiment: {seed: f"results/models/{experiment}/seed_{seed}/run.json" for seed in SEEDS}
            for experiment in EXPERIMENTS
        },
        templates_dir=lambda wildcards, input: os.path.dirname(input.templates[0]),
    log:
        "results/logs/aggregate.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/aggregate.py"


rule figures:
    input:
        aggregated=AGGREGATE["aggregated"],
        passk=expand(
            "results/evaluation/seed_{seed}/{file}", seed=SEEDS, file=EVALUATION_FILES["passk"]
        ),
        training_logs=expand(
            "results/models/{experiment}/seed_{seed}/training_log.csv",
            experiment=EXPERIMENTS,
            seed=SEEDS,
        ),
        code=library("figures"),
    output:
        # one report entry per figure (the PNG), each with its own caption; PDFs for the paper
        **{
            figure: report(
                f"results/figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category="Figures",
                labels={"figure": figure},
            )
            for figure in FIGURES
        },
        pdf=expand("results/figures/{figure}.pdf", figure=FIGURES),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
        training_logs={
            experiment: {
                seed: f"results/models/{experiment}/seed_{seed}/training_log.csv" for seed in SEEDS
            }
            for experiment in EXPERIMENTS
        },
        # what the script reads from the typed settings: a change re-runs the figures
        systems=config["systems"],
        sampling_temperature=config["generation"]["temperature"],
    log:
        "results/logs/figures.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figures.py"


rule paper:
    input:
        aggregated=AGGREGATE["aggregated"],
        table=AGGREGATE["table"],
        ablation_table=ABLATION_TABLE,
        figures=expand("results/figures/{figure}.pdf", figure=FIGURES),
        split_report="results/data/split_report.json",
        statistics=expand(
            "results/evaluation/seed_{seed}/{file}", seed=SEEDS, file=SEED_FILES["statistics"]
        ),
        release="results/release/dataset",
        # the reproducibility appendix (the evaluation's package versions)
        passk=expand(
            "results/evaluation/seed_{seed}/{file}", seed=SEEDS, file=EVALUATION_FILES["passk"]
        ),
        manifest="results/data/splits/manifest.json",
        runs=expand(
            "results/models/{experiment}/seed_{seed}/run.json", experiment=EXPERIMENTS, seed=SEEDS
        ),
        templates=latex_templates(),
        code=library("paper"),
    output:
        paper=report(
            directory("results/paper"),
            patterns=["{name,main}.pdf"],
            caption="../report/paper.rst",
            category="Paper",
        ),
        tarball="results/submission/submission.tar.gz",
        checklist="results/submission/checklist.md",
    params:
        figures_dir=lambda wildcards, input: os.path.dirname(input.figures[0]),
        templates_dir=lambda wildcards, input: os.path.dirname(input.templates[0]),
        config=config,
        # the rules' benchmark: files (read, not inputs: every heavy rule ran before this one)
        benchmarks="results/benchmarks",
        # the config files, relative to the repository: the Snakefile's `configfile:`, then those
        # given with --configfile (which replace whole sections); and the working folder
        configfiles=list(
            dict.fromkeys(
                ["config.yaml"]
                + [os.path.relpath(path, workflow.basedir) for path in workflow.configfiles]
            )
        ),
        workdir=(
            None
            if os.path.samefile(os.getcwd(), workflow.basedir)
            else os.path.relpath(os.getcwd(), workflow.basedir)
        ),
        # where a failed paper step leaves main.tex, main.log and the checklist
        evidence="results/logs/paper",
        # the TeX engine found (latexmk, pdflatex or None): installing TeX after a run changes
        # it, so the next run re-runs the paper and builds main.pdf
        tex=tex_engine(),
    log:
        "results/logs/paper.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/paper.py"
