"""Coverage: distinct reference modes hit by passing samples (stances, else embedding clusters)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from polychromic.evaluation.coverage import (
    CLUSTERS,
    STANCE,
    closest_references,
    cluster_references,
    coverage,
    passing,
    reference_modes,
)
from polychromic.evaluation.evaluate import evaluate_seed
from polychromic.evaluation.registry import get_metric
from polychromic.io import write_jsonl
from polychromic.settings import section

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def unit(*rows: list[float]) -> np.ndarray:
    matrix = np.array(rows, dtype=float)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_coverage_counts_distinct_modes_of_passing_samples() -> None:
    modes = ["agree", "question", "question", "anecdote"]  # 3 modes
    # samples 0, 1 pass (closest refs 1 and 2: one mode), sample 2 fails on an 'agree' ref
    assert coverage([True, True, False], [1, 2, 0], modes) == (pytest.approx(1 / 3), 1, 3)
    assert coverage([True, True, True], [1, 0, 3], modes) == (1.0, 3, 3)
    assert coverage([False, False], [0, 3], modes) == (0.0, 0, 3)
    with pytest.raises(ValueError):
        coverage([True], [0, 1], modes)


def test_passing_is_the_pass_at_k_rule() -> None:
    sims = np.array([0.9, 0.7, 0.69, 0.95])
    assert passing(sims, ["a", "b", "c", "   "], 0.7) == [True, True, False, False]


def test_closest_reference_by_cosine() -> None:
    refs = unit([1, 0, 0], [0, 1, 0])
    samples = unit([0.9, 0.1, 0], [0.2, 0.8, 0.1], [0, 0, 1])
    assert closest_references(samples, refs).tolist() == [0, 1, 0]


def test_clusters_join_at_the_threshold_deterministically() -> None:
    # refs 0 and 2 nearly identical, ref 1 orthogonal, ref 3 at cos 0.8 to ref 0
    refs = unit([1, 0, 0], [0, 1, 0], [0.99, 0.01, 0], [0.8, 0, 0.6])
    assert cluster_references(refs, 0.7) == [0, 1, 0, 0]
    assert cluster_references(refs, 0.9) == [0, 1, 0, 2]
    assert cluster_references(refs[::-1].copy(), 0.9) == [0, 1, 2, 1]  # order of appearance
    assert cluster_references(refs[:1], 0.7) == [0]
    assert cluster_references(refs, 0.7) == cluster_references(refs, 0.7)


def test_modes_come_from_stances_when_every_reference_has_one() -> None:
    refs = unit([1, 0], [0.99, 0.1], [0, 1])
    assert reference_modes(["agree", "question", "agree"], refs, 0.7) == (
        ["agree", "question", "agree"], STANCE)
    assert reference_modes(["agree", None, "agree"], refs, 0.7) == ([0, 0, 1], CLUSTERS)
    assert reference_modes(None, refs, 0.7) == ([0, 0, 1], CLUSTERS)


def test_coverage_is_registered_higher_is_better() -> None:
    metric = get_metric("coverage")
    assert metric.higher_is_better and metric.group == "passk" and metric.per_prompt


REFS = ["Totally agree, cycling to work is the best part of my day.",
        "Quick question: which bike would you recommend for a beginner?",
        "Quick question: how do you choose a bike for a total beginner?"]
STANCES = ["agree", "question", "question"]


def _records(system: str, samples: list[str]) -> list[dict]:
    return [{"prompt_id": "p1", "tweet": "I cycle to work now.", "references": REFS,
             "reference_stances": STANCES, "greedy": REFS[0], "samples": samples,
             "reference_nll": [10.0] * 3, "reference_tokens": [5] * 3, "system": system,
             "seed": 1, "settings": {"num_samples": 3, "temperature": 1.0, "top_p": 0.95}},
            {"prompt_id": "p2", "tweet": "Rain all week.", "references": ["Stay in and read."],
             "reference_stances": ["agree"], "greedy": "ok", "samples": samples,
             "reference_nll": [10.0], "reference_tokens": [5], "system": system, "seed": 1,
             "settings": {"num_samples": 3, "temperature": 1.0, "top_p": 0.95}}]


def test_evaluate_writes_coverage_from_stances(tmp_path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generations = {
            # one sample per stance: both modes of p1 hit
            "polychromic_lora": _records("polychromic_lora", [REFS[0], REFS[1], "zzz qqq"]),
            # three copies of one agree reply: one mode of two
            "baseline_lora": _records("baseline_lora", [REFS[0]] * 3),
        }
        paths = {}
        for system, records in generations.items():
            paths[system] = str(tmp_path / f"{system}.jsonl")
            write_jsonl(paths[system], records)
        out = {name: str(tmp_path / f"{name}.json")
               for name in ("diversity", "quality", "passk", "statistics")}
        settings = section("evaluation", {
            "reference_system": "polychromic_lora", "bootstrap_samples": 100,
            "judge": "all-MiniLM-L6-v2",
            "passk": {"k": [1], "criterion": "semantic", "threshold": 0.7,
                      "lexical_threshold": 0.5}})
        evaluate_seed(paths, out, settings=settings, seed=1)
    finally:
        torch.set_num_threads(threads)
    passk = json.loads(open(out["passk"]).read())
    assert passk["settings"]["coverage"]["mode_source"] == STANCE
    assert passk["settings"]["coverage"]["prompts_by_source"] == {STANCE: 2, CLUSTERS: 0}
    poly, base = passk["systems"]["polychromic_lora"], passk["systems"]["baseline_lora"]
    assert poly["modes"] == base["modes"] == [2, 1]
    assert poly["modes_hit"][0] == 2 and base["modes_hit"][0] == 1
    assert poly["coverage"]["per_prompt"][0] == 1.0
    assert base["coverage"]["per_prompt"][0] == 0.5
    tests = json.loads(open(out["statistics"]).read())["tests"]
    assert any(test["metric"] == "coverage" for test in tests)
