"""Names of the files the workflow writes, defined once (docs/file_contract.md describes them).

The workflow's rules, the library functions that write these files and those that read them
all take the names from here. Standard library only: the workflow imports it at DAG time.
"""

from __future__ import annotations

# evaluation/seed_{seed}/: the metric files, keyed by the registry's metric groups
EVALUATION_FILES = {
    "diversity": "diversity_metrics.json",
    "quality": "quality_metrics.json",
    "passk": "passk_results.json",
}
STATISTICS_FILE = "statistical_tests.json"  # evaluation/seed_{seed}/
SEED_FILES = {**EVALUATION_FILES, "statistics": STATISTICS_FILE}
CALIBRATION_FILE = "judge_calibration.json"  # evaluation/: the pass thresholds, from val
# the evaluate rule's inputs are the systems' generation files by system name, next to these
EVALUATE_INPUTS = ("calibration", "code", "reward_run")

# evaluation/: the aggregate over seeds and the two tables (the paper \input{}s the tables by
# these names without their extension)
AGGREGATE_FILES = {
    "aggregated": "aggregated_results.json",
    "table": "results_table.tex",
    "ablation_table": "ablation_table.tex",
    "judge_validity": "judge_validity.json",  # every judge against the oracle, over seeds
}

# figures/{name}.png and .pdf, in the order the paper shows them
FIGURES = (
    "passk_curves",
    "diversity_comparison",
    "quality_comparison",
    "pareto",
    "training_curves",
    "frontier",
    "validation_frontier",
)
