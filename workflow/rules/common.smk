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

from polychromic.contract import (  # noqa: E402
    AGGREGATE_FILES,
    CALIBRATION_FILE,
    EVALUATION_FILES,
    FIGURES,
    SEED_FILES,
)
from snakemake.utils import validate  # noqa: E402

from polychromic.dependencies import script_dependencies  # noqa: E402
from polychromic.config import command_line_seeds, load_settings, reference_reward  # noqa: E402
from polychromic.settings import as_dict  # noqa: E402
from polychromic.io import read_json  # noqa: E402
from polychromic.systems import candidate_pattern, candidate_system  # noqa: E402

# `--config seeds=[42]` may bring strings: integer literals become integers, nothing else is
# cast, so the schema refuses 42.9, true or "forty-two" naming `seeds`.
if "seeds" in config:
    config["seeds"] = command_line_seeds(config["seeds"])
# The config against the schema, its defaults filled in (the rules read `config`), then the
# typed settings (polychromic.config); a ConfigError names the key.
validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
SETTINGS = load_settings(config)

# The conda environment of the generate rules (`--sdm conda`): vLLM pins its own torch and
# transformers, so generation.engine vllm has an environment of its own.
GENERATE_ENV = str(ROOT / "envs" / ("vllm.yaml" if SETTINGS.generation.engine == "vllm"
                                     else "model.yaml"))
PROMPTS = str(ROOT / "resources" / "prompts")
LATEX = str(ROOT / "resources" / "latex")
SCRIPTS = ROOT / "workflow" / "scripts"
SEEDS = list(SETTINGS.seeds)
EXPERIMENTS = list(SETTINGS.experiments)
# Every system, each followed by its sampling variants (`baseline_lora@t1.3`, `@t1.6m0.1`): the typed
# settings of each (polychromic.systems.System), used by generate and the reporting rules.
SYSTEMS = list(SETTINGS.systems)
# The sampling choice on validation (polychromic.evaluation.search and .selection): with a
# search, every configured system is sampled on the validation split at generation's settings,
# then at the temperatures the search proposes, one checkpoint (`search`) per round.
SELECTION = SETTINGS.evaluation.selection
SEARCH = SELECTION.active_search
SEARCH_ROUNDS = SEARCH.max_candidates if SEARCH else 0  # the last round only scores
SELECTION_FILE = "results/selection/selection.json"


wildcard_constraints:
    seed=r"\d+",
    experiment="|".join(EXPERIMENTS),
    system="|".join(re.escape(system) for system in SYSTEMS),
    candidate=candidate_pattern(SETTINGS.systems),
    round=r"\d+",


def library(script, extra=()):
    """The library files the rule's script runs (its transitive imports within polychromic,
    and the `extra` modules it runs by name with the implementations their registries name,
    computed by polychromic.dependencies): editing any of them re-runs the rule and what
    follows. After a cosmetic edit (a comment, say), `snakemake --touch` marks the outputs as
    current instead."""
    return list(script_dependencies(str(SCRIPTS / f"{script}.py"), SRC, tuple(extra)))


def system_params(wildcards):
    """The settings of one system (with its sampling overrides) as plain data, for `params:`."""
    return as_dict(SETTINGS.systems[wildcards.system])


def latex_templates():
    return sorted(str(path) for path in Path(LATEX).glob("*.j2"))


def get_final_outputs():
    return [
        "results/data/collection_report.json",
        "results/data/quality_check_samples.txt",
        *[f"results/evaluation/{name}" for name in AGGREGATE_FILES.values()],
        *expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["png", "pdf"]),
        "results/paper",
        "results/submission/submission.tar.gz",
        "results/submission/checklist.md",
    ]


def get_decisions(wildcards):
    """The human decisions file is an input only when it exists (a new decision re-runs curate)."""
    path = config["curation"]["decisions"]
    return [path] if os.path.exists(path) else []


def get_adapter(wildcards):
    """LoRA systems need their experiment's adapter for this seed; prompt systems need none."""
    experiment = SETTINGS.systems[wildcards.system].experiment
    if experiment is None:
        return []
    return f"results/models/{experiment}/seed_{wildcards.seed}/adapter"


def get_prompt_template(wildcards):
    """The jinja2 template of a system: editing it re-runs that system's generations."""
    return f"{PROMPTS}/{SETTINGS.systems[wildcards.system].prompt}.j2"


def get_generations(wildcards):
    return {
        system: f"results/generations/seed_{wildcards.seed}/{system}.jsonl" for system in SYSTEMS
    }


def get_reward_run(wildcards):
    """The reference experiment's run.json of this seed, where its training reward's quality
    gate is recorded (calibrated or fixed), for the judges' agreement with the reward."""
    reward = reference_reward(SETTINGS)
    if reward is None:
        return {}
    return {"reward_run": f"results/models/{reward['experiment']}/seed_{wildcards.seed}/run.json"}


def get_selection(wildcards):
    """selection.json, an input of generate and aggregate when the search is on."""
    return [SELECTION_FILE] if SEARCH else []


def candidate_params(wildcards):
    """The settings of one candidate of the sampling search, for `params:`."""
    return as_dict(candidate_system(SETTINGS.systems, wildcards.candidate))


def get_candidate_adapter(wildcards):
    experiment = candidate_system(SETTINGS.systems, wildcards.candidate).experiment
    if experiment is None:
        return []
    return f"results/models/{experiment}/seed_{wildcards.seed}/adapter"


def get_candidate_template(wildcards):
    return f"{PROMPTS}/{candidate_system(SETTINGS.systems, wildcards.candidate).prompt}.j2"


def search_inputs(wildcards):
    """Round r of the search reads round r - 1's state (a checkpoint: its proposals are known
    once it has run) and the validation generations of the candidates it proposed; round 0
    reads nothing."""
    round_ = int(wildcards.round)
    if round_ == 0:
        return {}
    state = checkpoints.search.get(round=str(round_ - 1)).output.state
    proposals = sorted(set(read_json(state)["proposals"].values()))
    return {
        "state": state,
        "calibration": f"results/evaluation/{CALIBRATION_FILE}",
        "generations": expand(
            "results/selection/seed_{seed}/{candidate}.jsonl", seed=SEEDS, candidate=proposals
        ),
    }
