"""aggregate(): mean/std(ddof=1)/values in seed order, nulls, one seed, the named systems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polychromic.reporting.aggregate import aggregate
from polychromic.settings import section
from test_report_helpers import (
    EVALUATION,
    EXPERIMENTS,
    HOSTILE,
    REFERENCE,
    SEEDS,
    SYSTEMS,
    SYSTEMS_CONFIG,
    TEMPLATES,
    build_evaluation,
    edit_metric,
    run_aggregate,
    typed_experiments,
    typed_systems,
)


def _run(tmp_path: Path, seeds: list[int], dirs: dict[int, str],
         systems: list[str] | None = None) -> tuple[dict, dict, str]:
    out = tmp_path / "out"
    result = run_aggregate(dirs, out, seeds, systems)
    written = json.loads((out / "aggregated_results.json").read_text(encoding="utf-8"))
    return result, written, (out / "results_table.tex").read_text(encoding="utf-8")


def _seed_mean(folder: str, file: str, system: str, metric: str) -> float:
    doc = json.loads((Path(folder) / file).read_text(encoding="utf-8"))
    return doc["systems"][system][metric]["mean"]


def test_mean_std_values_in_config_seed_order(tmp_path: Path) -> None:
    order = [456, 42, 123]  # config order, not sorted
    dirs = build_evaluation(tmp_path, order)
    result, written, table = _run(tmp_path, order, dirs)
    assert written == result
    assert written["seeds"] == order and written["system_order"] == SYSTEMS
    for system in SYSTEMS:
        for metric, file in [("rougeL", "quality_metrics.json"),
                             ("self_bleu", "diversity_metrics.json"),
                             ("pass@10", "passk_results.json")]:
            expected = [_seed_mean(dirs[s], file, system, metric) for s in order]
            entry = written["systems"][system][metric]
            assert entry["values"] == expected
            assert entry["mean"] == pytest.approx(np.mean(expected))
            assert entry["std"] == pytest.approx(np.std(expected, ddof=1))
            assert entry["n_seeds"] == 3
    assert written["systems"][REFERENCE]["self_bleu"]["higher_is_better"] is False
    assert written["systems"][REFERENCE]["pass@3"]["higher_is_better"] is True
    assert written["metric_order"][:4] == ["pass@1", "pass@3", "pass@5", "pass@10"]
    assert "pass_counts" not in written["metric_order"] and "n" not in written["metric_order"]
    assert written["settings"]["passk"]["threshold"] == 0.7
    assert written["settings"]["statistics"]["reference_system"] == REFERENCE
    assert r"a\_b \& c\%" in table


def test_null_values_stay_null_and_are_not_counted(tmp_path: Path) -> None:
    dirs = build_evaluation(tmp_path)
    edit_metric(Path(dirs[123]), "quality_metrics.json", HOSTILE, "rougeL", None)
    for seed in SEEDS:
        edit_metric(Path(dirs[seed]), "quality_metrics.json", "zero_shot", "perplexity", None)
    _, written, table = _run(tmp_path, SEEDS, dirs)
    entry = written["systems"][HOSTILE]["rougeL"]
    assert entry["values"][1] is None and entry["n_seeds"] == 2
    kept = [entry["values"][0], entry["values"][2]]
    assert entry["mean"] == pytest.approx(np.mean(kept))
    assert entry["std"] == pytest.approx(np.std(kept, ddof=1))
    empty = written["systems"]["zero_shot"]["perplexity"]
    assert empty == {"mean": None, "std": None, "values": [None] * 3, "n_seeds": 0,
                     "higher_is_better": False, "reason": "no seed has a value"}
    assert "reason" not in written["systems"]["zero_shot"]["rougeL"]
    assert "NaN" not in (tmp_path / "out" / "aggregated_results.json").read_text()
    assert "n/a" in table


def test_reference_and_baseline_are_named(tmp_path: Path) -> None:
    dirs = build_evaluation(tmp_path)
    _, written, _ = _run(tmp_path, SEEDS, dirs)
    assert written["reference_system"] == REFERENCE
    assert written["baseline_system"] == "baseline_lora"
    assert written["verdict"]["available"] and written["verdict"]["baseline"] == "baseline_lora"
    assert "across_seeds" not in written  # one rule decides detectability: significance.py


def test_one_seed(tmp_path: Path) -> None:
    dirs = build_evaluation(tmp_path, [42])
    _, written, table = _run(tmp_path, [42], dirs)
    entry = written["systems"]["baseline_lora"]["rougeL"]
    assert entry["std"] is None and entry["n_seeds"] == 1 and len(entry["values"]) == 1
    assert entry["reason"] == "one seed: no std"
    assert r"$\pm$--" in table


def test_missing_system_or_seed_is_an_error(tmp_path: Path) -> None:
    dirs = build_evaluation(tmp_path, [42], SYSTEMS[:-1])
    with pytest.raises(ValueError, match="missing"):
        _run(tmp_path, [42], dirs, SYSTEMS)
    with pytest.raises(ValueError, match="seeds"):
        _run(tmp_path, [42, 7], build_evaluation(tmp_path / "b", [42]))


def test_settings_common_once_and_seed_specific_by_seed(tmp_path: Path) -> None:
    dirs = build_evaluation(tmp_path)
    for seed, folder in dirs.items():
        path = Path(folder) / "diversity_metrics.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["settings"] = {"seed": seed, "tokenizer": "whitespace",
                           "adapter": f"models/polychromic/seed_{seed}"}
        path.write_text(json.dumps(doc), encoding="utf-8")
    _, written, _ = _run(tmp_path, SEEDS, dirs)
    assert written["settings"]["diversity"] == {
        "tokenizer": "whitespace",
        "by_seed": {str(s): {"adapter": f"models/polychromic/seed_{s}"} for s in SEEDS}}
    assert "by_seed" not in written["settings"]["quality"]


def calibration_file(path: Path, positives: int) -> str:
    record = {"threshold": 0.55, "threshold_ci": [0.4, 0.7], "positives": positives,
              "negatives": positives, "few_pairs": positives < 100,
              "pairing": "held-out best match", "bootstrap": {"ci": 0.95}}
    path.write_text(json.dumps({"criterion": "semantic", "semantic": record,
                                "rougeL": record}), encoding="utf-8")
    return str(path)


def test_a_threshold_on_few_pairs_is_a_warning_of_the_verdict(tmp_path: Path) -> None:
    """The aggregate records the pass threshold's calibration (interval, pairs) and, below
    100 positive pairs, the verdict warns (so the paper's limitations say it)."""

    dirs = build_evaluation(tmp_path / "evaluation")
    outputs = {"aggregated": str(tmp_path / "a.json"), "table": str(tmp_path / "t.tex")}
    args = (dirs, outputs, SEEDS, typed_systems(SYSTEMS_CONFIG),
            typed_experiments(EXPERIMENTS), EVALUATION, TEMPLATES)
    few = aggregate(*args, calibration=calibration_file(tmp_path / "few.json", 37))
    assert few["calibration"]["few_pairs"] and few["calibration"]["threshold_ci"] == [0.4, 0.7]
    assert few["calibration"]["source"] == "validation"
    assert any("rests on only 37 positive validation pairs" in text
               for text in few["verdict"]["warnings"])
    enough = aggregate(*args, calibration=calibration_file(tmp_path / "enough.json", 140))
    assert not any("positive validation pairs" in text
                   for text in enough["verdict"]["warnings"])


def test_the_verdicts_k_has_headroom_and_the_diversity_term_gets_its_comparison(
        tmp_path: Path) -> None:
    """With a search on validation the verdict takes the largest k whose baseline validation
    pass@k leaves room (here pass@5: pass@10 is 0.95 > 0.85); with evaluation.diversity_ablation
    the reference is compared with that system by the same rule (`diversity_effect`)."""

    dirs = build_evaluation(tmp_path / "evaluation")
    rates = [[0.5] * 6 for _ in SEEDS]
    selection = {"target_system": "baseline_lora", "default_per_prompt": {
        name: rates for name in SYSTEMS_CONFIG}, "systems": {
        name: {"per_prompt": rates, "candidates": {name: {
            "pass@1": 0.5, "pass@3": 0.7, "pass@5": 0.8, "pass@10": 0.95}}}
        for name in SYSTEMS_CONFIG}}
    path = tmp_path / "selection.json"
    path.write_text(json.dumps(selection), encoding="utf-8")
    evaluation = section("evaluation", {"reference_system": REFERENCE,
                                        "baseline_system": "baseline_lora",
                                        "diversity_ablation": "few_shot"})
    outputs = {"aggregated": str(tmp_path / "a.json"), "table": str(tmp_path / "t.tex")}
    result = aggregate(dirs, outputs, SEEDS, typed_systems(SYSTEMS_CONFIG),
                       typed_experiments(EXPERIMENTS), evaluation, TEMPLATES,
                       selection=str(path))
    assert result["headroom"]["k"] == 5 and result["headroom"]["room"]
    assert result["verdict"]["passk_metric"] == "pass@5"
    assert [row["metric"] for row in result["verdict"]["rows"]][:2] == ["pass@1", "pass@5"]
    effect = result["diversity_effect"]
    assert effect["reference"] == REFERENCE and effect["matched"] == "few_shot"
    assert effect["passk_metric"] == "pass@5"
