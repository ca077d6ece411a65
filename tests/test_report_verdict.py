"""The verdict: polychromic against the baseline (or its temperature system) at matched pass@1."""

from __future__ import annotations

import pytest

from polychromic.reporting.verdict import (
    build_verdict,
    markdown,
    matched_baseline,
    seed_evidence,
    verdict_word,
)

SEEDS = [1, 2, 3]
SYSTEMS = ["baseline_lora", "polychromic_lora", "baseline_lora@t0.7", "baseline_lora@t1.3"]
MEANS = {  # pass@1, pass@10, coverage
    "baseline_lora": (0.60, 0.90, 0.50),
    "polychromic_lora": (0.45, 0.95, 0.70),
    "baseline_lora@t0.7": (0.70, 0.85, 0.40),
    "baseline_lora@t1.3": (0.47, 0.91, 0.55),
}
METRICS = ["pass@1", "pass@10", "coverage"]


def aggregate(means: dict = MEANS) -> dict:
    systems = {
        system: {metric: {"mean": value, "std": 0.01, "values": [value] * 3, "n_seeds": 3}
                 for metric, value in zip(METRICS, values, strict=True)}
        for system, values in means.items()
    }
    return {"systems": systems, "system_order": list(means), "seeds": SEEDS,
            "metric_order": METRICS,
            "across_seeds": {"reference_system": "polychromic_lora", "comparisons": []}}


def statistics(p_holm: dict[str, float], means: dict = MEANS) -> list[dict]:
    """Per seed, polychromic vs every other system with the given Holm p per metric."""
    docs = []
    for seed in SEEDS:
        tests = []
        for other in means:
            if other == "polychromic_lora":
                continue
            for index, metric in enumerate(METRICS):
                diff = means["polychromic_lora"][index] - means[other][index]
                tests.append({"metric": metric, "system": "polychromic_lora", "other": other,
                              "mean_diff": diff, "ci_low": diff - 0.02, "ci_high": diff + 0.02,
                              "wilcoxon_p_holm": p_holm.get(metric, 0.5)})
        docs.append({"seed": seed, "settings": {"alpha": 0.05}, "tests": tests})
    return docs


def test_matched_baseline_is_the_closest_pass_at_1() -> None:
    assert matched_baseline(aggregate()) == "baseline_lora@t1.3"
    only_plain = {k: v for k, v in MEANS.items() if "@" not in k}
    assert matched_baseline(aggregate(only_plain)) == "baseline_lora"
    tie = {**MEANS, "baseline_lora": (0.47, 0.9, 0.5)}
    assert matched_baseline(aggregate(tie)) == "baseline_lora"  # plain first on ties
    assert matched_baseline(aggregate(), baseline="nope") is None


@pytest.mark.parametrize(
    ("directions", "word"),
    [
        (["none", "better"], "better"),
        (["worse", "none"], "worse"),
        (["worse", "better"], "mixed"),
        (["none", "none"], "no detectable difference"),
        (["untested", "none"], "no detectable difference"),
    ],
)
def test_verdict_word(directions: list[str], word: str) -> None:
    assert verdict_word(directions) == word


def test_better_when_pass_at_10_is_detectably_higher_at_matched_pass_at_1() -> None:
    block = build_verdict(aggregate(), statistics({"pass@10": 0.01, "coverage": 0.001}))
    assert block["available"] and block["matched"] == "baseline_lora@t1.3"
    assert block["matched_temperature"] == 1.3
    rows = {row["metric"]: row for row in block["rows"]}
    assert list(rows) == ["pass@1", "pass@10", "coverage"]
    assert rows["pass@10"]["direction"] == "better" and rows["pass@1"]["direction"] == "none"
    assert rows["pass@10"]["diff"] == pytest.approx(0.04)
    assert rows["coverage"]["seeds"][0]["ci_low"] == pytest.approx(0.13)
    assert block["verdict"] == "better"
    assert "temperature 1.3" in block["sentence"] and "+0.040" in block["sentence"]
    assert "**Verdict: better.**" in markdown(block)


def test_no_detectable_difference_and_worse() -> None:
    assert build_verdict(aggregate(), statistics({}))["verdict"] == "no detectable difference"
    # one seed above alpha: not detectable (the study's one rule)
    docs = statistics({"pass@10": 0.01})
    docs[0]["tests"] = [dict(t, wilcoxon_p_holm=0.2) for t in docs[0]["tests"]]
    assert build_verdict(aggregate(), docs)["verdict"] == "no detectable difference"
    worse = {**MEANS, "polychromic_lora": (0.45, 0.80, 0.3)}
    block = build_verdict(aggregate(worse), statistics({"pass@10": 0.01}, worse))
    assert block["verdict"] == "worse" and "is worse than" in block["sentence"]


def test_seed_evidence_is_oriented_reference_minus_other() -> None:
    docs = [{"seed": 1, "tests": [{"metric": "pass@1", "system": "baseline_lora",
                                   "other": "polychromic_lora", "ci_low": 0.1, "ci_high": 0.3,
                                   "wilcoxon_p_holm": 0.02}]}]
    found = seed_evidence(docs, "pass@1", "polychromic_lora", "baseline_lora")
    assert found == [{"seed": 1, "ci_low": -0.3, "ci_high": -0.1, "p_holm": 0.02}]


def test_unavailable_without_the_systems() -> None:
    block = build_verdict(aggregate({"polychromic_lora": (0.4, 0.9, 0.5)}), [])
    assert not block["available"] and "baseline_lora" in block["reason"]
    assert markdown(block).startswith("No verdict")
