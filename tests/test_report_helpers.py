"""Builders of fake-but-well-formed evaluation files (docs/file_contract.md) for reporting tests.

Numbers are random but seeded, so every test sees the same inputs; pass@k means are computed
from the pass counts with the unbiased estimator, as the evaluation step does.
"""

from __future__ import annotations

import json
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.config import Experiment
from polychromic.settings import section
from polychromic.systems import System

HOSTILE = "a_b & c%"
SYSTEMS = ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora", HOSTILE]
SEEDS = [42, 123, 456]
KS = [1, 3, 5, 10]
N_SAMPLES = 10
N_PROMPTS = 6
REFERENCE = "polychromic_lora"
TEMPLATES = str(Path(__file__).resolve().parents[1] / "resources" / "latex")

DIVERSITY = ["self_bleu", "distinct_1", "distinct_2", "distinct_3", "semantic_diversity"]
QUALITY = ["rouge1", "rouge2", "rougeL", "bertscore_f1", "perplexity"]


def exact_pass_at_k(n: int, c: int, k: int) -> float:
    return 1.0 - comb(n - c, k) / comb(n, k)


def _entry(values: np.ndarray) -> dict[str, Any]:
    return {"mean": float(values.mean()), "per_prompt": [float(v) for v in values]}


def _diversity(rng: np.random.Generator) -> dict[str, Any]:
    block = {name: _entry(rng.uniform(0.1, 0.9, N_PROMPTS)) for name in DIVERSITY}
    block["pooled_distinct_1"] = {"mean": float(rng.uniform(0.2, 0.5)), "per_prompt": None}
    return block


def _quality(rng: np.random.Generator) -> dict[str, Any]:
    block = {name: _entry(rng.uniform(0.05, 0.6, N_PROMPTS)) for name in QUALITY[:-1]}
    block["perplexity"] = _entry(rng.uniform(20, 80, N_PROMPTS))
    return block


def _passk(rng: np.random.Generator) -> dict[str, Any]:
    counts = [int(c) for c in rng.integers(0, N_SAMPLES + 1, N_PROMPTS)]
    block: dict[str, Any] = {
        f"pass@{k}": {"mean": float(np.mean([exact_pass_at_k(N_SAMPLES, c, k) for c in counts])),
                      "per_prompt": [exact_pass_at_k(N_SAMPLES, c, k) for c in counts]}
        for k in KS
    }
    block["pass_counts"] = counts
    block["n"] = N_SAMPLES
    return block


def _tests(rng: np.random.Generator, systems: list[str]) -> list[dict[str, Any]]:
    tests = []
    for metric in ["pass@10", "rougeL", "self_bleu"]:
        for other in systems:
            if other == REFERENCE:
                continue
            p = float(rng.uniform(0.0001, 0.2))
            tests.append({"metric": metric, "system": REFERENCE, "other": other,
                          "higher_is_better": metric != "self_bleu", "n_prompts": N_PROMPTS,
                          "mean_reference": 0.5, "mean_other": 0.4, "mean_diff": 0.1,
                          "ci_low": 0.01, "ci_high": 0.2, "p": p / 2, "cohens_d_z": 0.5,
                          "p_holm": p, "better": "polychromic_lora"})
    return tests


def _document(seed: int, settings: dict, systems: dict[str, Any]) -> dict[str, Any]:
    return {"seed": seed, "settings": settings,
            "prompt_ids": [f"t{i:04d}" for i in range(N_PROMPTS)], "systems": systems}


def write_seed(folder: Path, seed: int, systems: list[str]) -> dict[str, dict]:
    """Write the four evaluation files of one seed into `folder`; return them."""
    rng = np.random.default_rng(seed)
    docs = {
        "diversity_metrics.json": _document(seed, {"tokenizer": "whitespace"},
                                            {s: _diversity(rng) for s in systems}),
        "quality_metrics.json": _document(seed, {"rouge": "stemmed"},
                                          {s: _quality(rng) for s in systems}),
        "passk_results.json": _document(seed, {"criterion": "semantic", "threshold": 0.7,
                                               "k": KS}, {s: _passk(rng) for s in systems}),
        "statistical_tests.json": {
            "seed": seed,
            "settings": {"reference_system": REFERENCE, "bootstrap_samples": 100,
                         "stats_seed": 0, "correction": "holm", "ci": 0.95},
            "tests": _tests(rng, systems)},
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return docs


def edit_metric(folder: Path, file: str, system: str, metric: str, mean: float | None) -> None:
    """Overwrite one system's mean of one metric in one per-seed file."""
    path = folder / file
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["systems"][system][metric]["mean"] = mean
    path.write_text(json.dumps(doc), encoding="utf-8")


def build_evaluation(root: Path, seeds: list[int] | None = None,
                     systems: list[str] | None = None) -> dict[int, str]:
    """Per-seed evaluation folders under `root`; returns {seed: folder}."""
    seeds = SEEDS if seeds is None else seeds
    systems = SYSTEMS if systems is None else systems
    dirs = {}
    for seed in seeds:
        folder = root / f"seed_{seed}"
        write_seed(folder, seed, systems)
        dirs[seed] = str(folder)
    return dirs


# Every system main (no ablation): the plain systems take the zero-shot prompt.
SYSTEMS_CONFIG = {"zero_shot": {"prompt": "zero_shot"}, "few_shot": {"prompt": "few_shot"},
                  "baseline_lora": {"prompt": "lora", "experiment": "baseline"},
                  REFERENCE: {"prompt": "lora", "experiment": "polychromic"},
                  HOSTILE: {"prompt": "zero_shot"}}
EXPERIMENTS = {"baseline": {"objective": "sft"}, "polychromic": {"objective": "polychromic"}}
EVALUATION = section("evaluation", {"reference_system": REFERENCE,
                                    "baseline_system": "baseline_lora"})


def typed_systems(config: dict[str, dict]) -> dict[str, System]:
    return {name: System.from_config(name, values) for name, values in config.items()}


def typed_experiments(config: dict[str, dict]) -> dict[str, Experiment]:
    return {name: Experiment.from_config(name, values) for name, values in config.items()}


def run_aggregate(dirs: dict[int, str], out: Path, seeds: list[int] | None = None,
                  systems: list[str] | None = None, systems_config: dict | None = None,
                  experiments: dict | None = None, runs: dict | None = None,
                  ablation_table: bool = False) -> dict:
    """`aggregate` into `out` (aggregated_results.json, results_table.tex, ablation_table.tex)
    with the typed settings of `systems_config` and `experiments` (defaults: every system
    main)."""
    from polychromic.reporting.aggregate import aggregate

    config = systems_config or SYSTEMS_CONFIG
    names = SYSTEMS if systems is None else systems
    outputs = {"aggregated": str(out / "aggregated_results.json"),
               "table": str(out / "results_table.tex")}
    if ablation_table:
        outputs["ablation_table"] = str(out / "ablation_table.tex")
    return aggregate(dirs, outputs, SEEDS if seeds is None else seeds,
                     typed_systems({name: config[name] for name in names}),
                     typed_experiments(experiments or EXPERIMENTS), EVALUATION, TEMPLATES, runs)
