# Helpers shared by the workflow modules: paths, config checks, target and input functions.
import os
import re
import sys
from pathlib import Path

ROOT = Path(workflow.basedir)
SRC = str(ROOT / "src")
# Job scripts import the library; make it importable without installation (conda envs, SLURM).
# This sets PYTHONPATH for the jobs; the workflow does not depend on it being set beforehand.
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in [SRC, os.environ.get("PYTHONPATH", "")] if p)
)

from polychromic.config import check_config  # noqa: E402
from polychromic.systems import expand_systems  # noqa: E402

check_config(config)

PROMPTS = str(ROOT / "resources" / "prompts")
LATEX = str(ROOT / "resources" / "latex")
SEEDS = [int(seed) for seed in config["seeds"]]
EXPERIMENTS = list(config["experiments"])
# Every system, each followed by its temperature variants (`baseline_lora@t1.3`, issue 8):
# one settings dict per system name, used by generate, evaluate and the reporting rules.
SYSTEMS_CONFIG = expand_systems(config["systems"])
SYSTEMS = list(SYSTEMS_CONFIG)
FIGURES = [
    "diversity_comparison",
    "passk_curves",
    "quality_comparison",
    "pareto",
    "training_curves",
    "frontier",
]
EVALUATION_FILES = ["diversity_metrics", "quality_metrics", "passk_results", "statistical_tests"]


wildcard_constraints:
    seed=r"\d+",
    experiment="|".join(EXPERIMENTS),
    system="|".join(re.escape(system) for system in SYSTEMS),


def library(*modules):
    """Library files a cheap rule depends on, so that editing a metric, the table or the paper
    re-runs it. The expensive rules (base_model, train, generate) deliberately do not track
    library code: after changing the objective or generation, re-run them on purpose
    (`--forcerun train`), instead of by accident on a cluster."""
    return [f"{SRC}/polychromic/{module}" for module in modules]


def latex_templates():
    return sorted(str(path) for path in Path(LATEX).glob("*.j2"))


def get_final_outputs():
    return [
        "results/data/collection_report.json",
        "results/data/quality_check_samples.txt",
        "results/evaluation/aggregated_results.json",
        "results/evaluation/results_table.tex",
        "results/evaluation/ablation_table.tex",
        *expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["png", "pdf"]),
        "results/paper",
        "results/submission/submission.tar.gz",
    ]


def get_decisions(wildcards):
    """The human decisions file is an input only when it exists (a new decision re-runs curate)."""
    path = config["curation"]["decisions"]
    return [path] if os.path.exists(path) else []


def get_adapter(wildcards):
    """LoRA systems need their experiment's adapter for this seed; prompt systems need none."""
    experiment = SYSTEMS_CONFIG[wildcards.system].get("experiment")
    if experiment is None:
        return []
    return f"results/models/{experiment}/seed_{wildcards.seed}/adapter"


def get_prompt_template(wildcards):
    """The jinja2 template of a system: editing it re-runs that system's generations."""
    return f"{PROMPTS}/{SYSTEMS_CONFIG[wildcards.system]['prompt']}.j2"


def get_generations(wildcards):
    return {
        system: f"results/generations/seed_{wildcards.seed}/{system}.jsonl" for system in SYSTEMS
    }
