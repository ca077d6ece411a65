# Reporting: mean +- std over seeds, the LaTeX table, figures and the paper package.


localrules:
    aggregate,
    figures,
    paper,


rule aggregate:
    input:
        evaluation=expand(
            "results/evaluation/seed_{seed}/{name}.json", seed=SEEDS, name=EVALUATION_FILES
        ),
        templates=latex_templates(),
        code=library("reporting/aggregate.py", "reporting/latex.py", "evaluation/registry.py"),
    output:
        aggregated="results/evaluation/aggregated_results.json",
        table=report(
            "results/evaluation/results_table.tex",
            caption="../report/results_table.rst",
            category="Tables",
        ),
    params:
        seeds=SEEDS,
        systems=SYSTEMS,
        templates_dir=lambda wildcards, input: os.path.dirname(input.templates[0]),
    log:
        "results/logs/aggregate.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/aggregate.py"


rule figures:
    input:
        aggregated="results/evaluation/aggregated_results.json",
        passk=expand("results/evaluation/seed_{seed}/passk_results.json", seed=SEEDS),
        code=library("reporting/figures.py"),
    output:
        report(
            expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["png", "pdf"]),
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        "results/logs/figures.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figures.py"


rule paper:
    input:
        aggregated="results/evaluation/aggregated_results.json",
        table="results/evaluation/results_table.tex",
        figures=expand("results/figures/{figure}.pdf", figure=FIGURES),
        split_report="results/data/split_report.json",
        statistics=expand("results/evaluation/seed_{seed}/statistical_tests.json", seed=SEEDS),
        templates=latex_templates(),
        code=library("reporting/paper.py", "reporting/latex.py"),
    output:
        paper=directory("results/paper"),
        tarball="results/submission/submission.tar.gz",
    params:
        figures_dir=lambda wildcards, input: os.path.dirname(input.figures[0]),
        templates_dir=lambda wildcards, input: os.path.dirname(input.templates[0]),
        config=config,
    log:
        "results/logs/paper.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/paper.py"
