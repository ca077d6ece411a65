"""The verdict: polychromic against the baseline (or a sampling variant) at matched pass@1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polychromic.reporting.significance import Evidence
from polychromic.reporting.verdict import (
    build_verdict,
    comparisons_markdown,
    main,
    markdown,
    matched_baseline,
    objective_comparisons,
    room_check,
    room_check_on_validation,
    room_markdown,
    seed_evidence,
    verdict_word,
)
from polychromic.settings import section

SEEDS = [1, 2, 3]
SYSTEMS = ["baseline_lora", "polychromic_lora", "baseline_lora@t0.7", "baseline_lora@t1.3"]
MEANS = {  # pass@1, pass@10, coverage
    "baseline_lora": (0.60, 0.90, 0.50),
    "polychromic_lora": (0.44, 0.95, 0.70),
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
            "metric_order": METRICS, "reference_system": "polychromic_lora",
            "baseline_system": "baseline_lora"}


def verdict(aggregated: dict, statistics: list[dict], passk_docs: list[dict]) -> dict:
    """build_verdict of polychromic_lora against baseline_lora (2000 resamples each)."""
    evidence = Evidence(aggregated, statistics, [{"passk": doc} for doc in passk_docs],
                        section("evaluation", {"bootstrap_samples": 2000,
                                               "permutation_samples": 10000}))
    return build_verdict(evidence, "polychromic_lora", "baseline_lora")


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
                              "p_holm": p_holm.get(metric, 0.5)})
        docs.append({"seed": seed, "settings": {"alpha": 0.05}, "tests": tests})
    return docs


def test_matched_baseline_is_the_closest_pass_at_1() -> None:
    ref, base = "polychromic_lora", "baseline_lora"
    assert matched_baseline(aggregate(), ref, base) == "baseline_lora@t1.3"
    only_plain = {k: v for k, v in MEANS.items() if "@" not in k}
    assert matched_baseline(aggregate(only_plain), ref, base) == "baseline_lora"
    tie = {**MEANS, "baseline_lora": (0.47, 0.9, 0.5)}
    assert matched_baseline(aggregate(tie), ref, base) == "baseline_lora"  # plain first on ties
    assert matched_baseline(aggregate(), ref, "nope") is None


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
    assert verdict_word(directions, matched=False) == "inconclusive (unmatched)"


def test_a_pass_at_1_match_needs_equivalence_not_only_no_detected_gap() -> None:
    """pass@1 0.40 vs 0.47 with so much per-tweet noise that the gap is not detectable: the
    90 % interval is wide, so equivalence within 0.02 is not shown and the comparison is
    unmatched (the former rule, "not detectable and within the tolerance", could call a wide
    interval a match); with a margin wider than the interval it is one."""
    means = {**MEANS, "polychromic_lora": (0.40, 0.95, 0.70)}
    docs = passk(means, jitter=0.6)
    block = verdict(aggregate(means), [], docs)
    low, high = block["equivalence"]["interval"]
    assert not block["rows"][0]["detectable"] and high - low > 0.04
    assert block["equivalence"]["bounds"] == [-0.02, 0.02] and not block["equivalence"]["holds"]
    assert block["equivalence"]["level"] == 0.9
    assert block["verdict"] == "inconclusive (unmatched)"
    assert "no baseline variant is shown equivalent in pass@1" in block["warnings"][0]
    assert f"[{low:+.3f}, {high:+.3f}], does not lie inside +-0.02" in block["sentence"]
    margin = max(abs(low), abs(high)) + 0.01
    evidence = Evidence(aggregate(means), [], [{"passk": doc} for doc in docs],
                        section("evaluation", {"bootstrap_samples": 2000,
                                               "match_tolerance": margin}))
    matched = build_verdict(evidence, "polychromic_lora", "baseline_lora")
    assert matched["equivalence"]["holds"] and not matched["warnings"]
    assert matched["verdict"] != "inconclusive (unmatched)"


def test_a_detectable_pass_at_1_difference_inside_the_margin_is_matched_and_can_be_mixed() -> None:
    """pass@1 lower by exactly 0.01 on every tweet: detectably worse, yet inside +-0.02, so the
    comparison is matched; with pass@10 detectably higher the word is mixed (unreachable
    under the former rule, which required an undetectable pass@1 for a match)."""
    means = {**MEANS, "polychromic_lora": (0.46, 0.95, 0.70)}
    block = verdict(aggregate(means), [], passk(means))
    assert block["matched"] == "baseline_lora@t1.3" and block["equivalence"]["holds"]
    assert [row["direction"] for row in block["rows"][:2]] == ["worse", "better"]
    assert block["verdict"] == "mixed"


def passk(means: dict = MEANS, offsets: dict | None = None, n: int = 40,
          jitter: float | dict = 0.0) -> list[dict]:
    """Per seed, a passk_results document: per tweet, a value shared by every system (so the
    paired differences are the systems' mean differences exactly) plus `offsets[(system,
    metric)][seed index]` and, with `jitter` (one sd, or {metric: sd}), independent noise per
    system."""
    rng = np.random.default_rng(0)
    docs = []
    for index, seed in enumerate(SEEDS):
        shared = rng.normal(0.0, 0.1, n)
        systems = {}
        for system, values in means.items():
            systems[system] = {}
            for metric, value in zip(METRICS, values, strict=True):
                shift = (offsets or {}).get((system, metric), [0.0] * len(SEEDS))[index]
                sd = jitter.get(metric, 0.0) if isinstance(jitter, dict) else jitter
                noise = rng.normal(0.0, sd, n) if sd else 0.0
                systems[system][metric] = {"per_prompt": (value + shift + shared + noise).tolist()}
        docs.append({"seed": seed, "prompt_ids": [f"t{i}" for i in range(n)], "systems": systems})
    return docs


def test_better_when_pass_at_10_is_detectably_higher_at_matched_pass_at_1() -> None:
    block = verdict(aggregate(), statistics({}), passk())
    assert block["available"] and block["matched"] == "baseline_lora@t1.3"
    assert block["matched_temperature"] == 1.3
    assert block["matched_sampling"] == {"temperature": 1.3}
    assert block["n_prompts"] == 40 and block["n_seeds"] == 3 and block["family"] == 3
    rows = {row["metric"]: row for row in block["rows"]}
    assert list(rows) == ["pass@1", "pass@10", "coverage"]
    # pass@1 0.44 vs 0.47 exactly on every tweet: detectably lower, i.e. worse
    assert rows["pass@1"]["direction"] == "worse"
    assert rows["pass@10"]["direction"] == "better"
    assert rows["pass@10"]["diff"] == pytest.approx(0.04)
    assert rows["pass@10"]["ci_low"] == pytest.approx(0.04)
    assert rows["pass@10"]["seed_diffs"] == pytest.approx([0.04] * 3)
    assert rows["pass@10"]["p_holm"] < 0.05 and rows["pass@10"]["seeds_agree"]
    # pass@1 detectably apart: not a matched comparison, so no word about pass@k is earned
    assert block["verdict"] == "inconclusive (unmatched)"
    assert block["equivalence"]["interval"] == pytest.approx([-0.03, -0.03])
    assert block["sentence"].startswith("The comparison is inconclusive: equivalence in pass@1 "
                                        "is not shown on the test tweets (the 90 % interval")
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}
    block = verdict(aggregate(equal), statistics({}), passk(equal))
    assert block["matched"] == "baseline_lora@t1.3"
    assert [row["direction"] for row in block["rows"]] == ["none", "better", "better"]
    assert block["verdict"] == "better"
    assert "temperature 1.3" in block["sentence"] and "+0.040" in block["sentence"]
    assert block["rows"][1]["p_holm"] < 0.001 and "Holm p <0.001" in block["sentence"]
    text = markdown(block)
    assert "**Verdict: better.**" in text and "| +0.040, +0.040, +0.040 |" in text
    assert "40 test tweets x 3 seeds; CI and p: seeds and test tweets as crossed" in text
    assert "Holm over 3 comparisons" in text
    assert block["uncertainty"].startswith("seeds and test tweets as crossed random factors")


def test_the_per_seed_tests_do_not_decide_the_verdict() -> None:
    """The per-seed tests stay in `seeds`, descriptive only; the pooled test decides."""
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}
    block = verdict(aggregate(equal), statistics({"pass@10": 0.5}, equal), passk(equal))
    row = block["rows"][1]
    assert [e["p_holm"] for e in row["seeds"]] == [0.5, 0.5, 0.5]
    assert row["detectable"] and block["verdict"] == "better"


def test_a_difference_carried_by_some_seeds_only_is_not_detectable() -> None:
    equal = {**MEANS, "polychromic_lora": (0.47, 0.91, 0.55)}  # equal to @t1.3 on average
    offsets = {("polychromic_lora", "pass@10"): [0.08, 0.08, -0.01]}
    row = verdict(aggregate(equal), [], passk(equal, offsets))["rows"][1]
    # with the seeds held fixed the tweets would call it; the seeds' spread and the sign rule
    # do not
    assert row["diff"] == pytest.approx(0.05) and row["p_tweets"] < 0.05
    assert row["ci_high"] - row["ci_low"] > row["ci_high_tweets"] - row["ci_low_tweets"]
    assert not row["seeds_agree"] and not row["detectable"] and row["direction"] == "none"


def test_no_detectable_difference_and_worse() -> None:
    equal = {**MEANS, "polychromic_lora": (0.47, 0.91, 0.55)}
    block = verdict(aggregate(equal), [], passk(equal, jitter={"pass@10": 0.2,
                                                              "coverage": 0.2}))
    assert all(row["p_holm"] > 0.05 for row in block["rows"])
    assert block["equivalence"]["holds"]
    assert block["verdict"] == "no detectable difference"
    worse = {**MEANS, "polychromic_lora": (0.47, 0.80, 0.3)}
    block = verdict(aggregate(worse), [], passk(worse))
    assert block["verdict"] == "worse" and "is worse than" in block["sentence"]
    assert "(detectably worse on at least one, better on neither)" in block["sentence"]


def test_seed_evidence_is_oriented_reference_minus_other() -> None:
    docs = [{"seed": 1, "tests": [{"metric": "pass@1", "system": "baseline_lora",
                                   "other": "polychromic_lora", "ci_low": 0.1, "ci_high": 0.3,
                                   "p_holm": 0.02}]}]
    found = seed_evidence(docs, "pass@1", "polychromic_lora", "baseline_lora")
    assert found == [{"seed": 1, "ci_low": -0.3, "ci_high": -0.1, "p_holm": 0.02}]


def test_unavailable_without_the_systems_or_the_per_tweet_values() -> None:
    alone = {"polychromic_lora": (0.4, 0.9, 0.5)}
    block = verdict(aggregate(alone), [], passk(alone))
    assert not block["available"] and "baseline_lora" in block["reason"]
    assert markdown(block).startswith("No verdict")
    block = verdict(aggregate(), [], [])
    assert not block["available"] and "per-tweet" in block["reason"]


def test_markdown_from_the_stored_block(tmp_path, capsys) -> None:
    block = verdict(aggregate(), [], passk())
    path = tmp_path / "aggregated_results.json"
    path.write_text(json.dumps({"verdict": block}))
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.strip() == markdown(block).strip()
    path.write_text("{}")
    assert main([str(path)]) == 1


def test_an_initial_adapter_is_called_out() -> None:
    """A system whose saved adapter is the zero LoRA is the base model: the verdict says so."""
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}  # matched: no other warning
    agg = aggregate(equal)
    agg["experiments"] = {
        "polychromic": {"systems": ["polychromic_lora"], "initial_adapter_seeds": [1, 3]},
        "baseline": {"systems": ["baseline_lora", "baseline_lora@t1.3"],
                     "initial_adapter_seeds": []},
        "other": {"systems": ["polychromic_l3_lora"], "initial_adapter_seeds": [2]},
    }
    block = verdict(agg, [], passk(equal))
    assert len(block["warnings"]) == 1
    assert "experiment polychromic (polychromic_lora)" in block["warnings"][0]
    assert "seed(s) 1, 3" in block["warnings"][0]
    assert "**Warning:** the saved adapter of experiment polychromic" in markdown(block)
    assert verdict(aggregate(equal), [], passk(equal))["warnings"] == []


def test_an_untestable_metric_is_untested_and_left_out_of_the_family() -> None:
    docs = passk()
    for doc in docs:  # pass@10 could not be computed (k > n): per_prompt null in every seed
        for system in doc["systems"].values():
            system["pass@10"] = {"mean": None, "per_prompt": None, "reason": "k > n"}
        doc["systems"]["polychromic_lora"]["coverage"]["per_prompt"][:5] = [None] * 5
    block = verdict(aggregate(), [], docs)
    assert block["verdict"] == "inconclusive (unmatched)"  # pass@1 0.44 vs 0.47
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}
    docs = passk(equal)
    for doc in docs:
        for system in doc["systems"].values():
            system["pass@10"] = {"mean": None, "per_prompt": None, "reason": "k > n"}
        doc["systems"]["polychromic_lora"]["coverage"]["per_prompt"][:5] = [None] * 5
    block = verdict(aggregate(equal), [], docs)
    rows = {row["metric"]: row for row in block["rows"]}
    assert rows["pass@10"]["direction"] == "untested" and rows["pass@10"]["p_holm"] is None
    assert block["family"] == 2
    assert "pass@10 n/a (not tested)" in block["sentence"]
    assert block["sentence"].startswith("Judged on pass@1 and pass@10, polychromic_lora")
    assert block["tweets"] == "40 (pass@1), 0 (pass@10), 35 (Coverage)"
    assert rows["coverage"]["n_left_out"] == 5
    assert "40 (pass@1), 0 (pass@10), 35 (Coverage) test tweets" in markdown(block)


def test_an_unmatched_pass_at_1_is_called_out_with_where_to_add_temperatures() -> None:
    # polychromic's pass@1 0.44 lies between @t1.3 (0.47, the closest) and nothing below: add one
    block = verdict(aggregate(), [], passk())
    assert block["rows"][0]["direction"] == "worse"
    assert block["verdict"] == "inconclusive (unmatched)"
    (warning,) = block["warnings"]
    assert ("no baseline variant is shown equivalent in pass@1 to polychromic_lora (0.440)"
            in warning)
    assert "for the closest, baseline_lora@t1.3, the 90 % interval" in warning
    assert "below every baseline variant, the lowest being baseline_lora@t1.3 (0.470)" in warning
    low = {**MEANS, "baseline_lora@t1.6": (0.20, 0.7, 0.3)}
    (warning,) = verdict(aggregate(low), [], passk(low))["warnings"]
    assert ("between baseline_lora@t1.6 (0.200) and baseline_lora@t1.3 (0.470): sample the "
            "baseline at temperatures between theirs") in warning
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}
    assert verdict(aggregate(equal), [], passk(equal))["warnings"] == []


def test_a_min_p_variant_is_matched_and_described() -> None:
    """Every `baseline_lora@...` variant is a candidate; the sentence names the matched
    variant's sampling, and the block keeps its overrides (`matched_sampling`)."""
    means = {**MEANS, "baseline_lora@t1.6m0.1": (0.455, 0.90, 0.55),
             "baseline_lora@m0.05": (0.58, 0.90, 0.5)}
    equal = {**means, "polychromic_lora": (0.455, 0.95, 0.70)}
    assert matched_baseline(aggregate(means), "polychromic_lora",
                            "baseline_lora") == "baseline_lora@t1.6m0.1"
    block = verdict(aggregate(equal), statistics({}, equal), passk(equal))
    assert block["matched"] == "baseline_lora@t1.6m0.1"
    assert block["matched_temperature"] == 1.6
    assert block["matched_sampling"] == {"temperature": 1.6, "min_p": 0.1}
    assert "baseline_lora@m0.05" in block["candidates"]
    assert ("than the baseline sampled at temperature 1.6, min_p 0.1 "
            "(baseline_lora@t1.6m0.1), the baseline closest to its pass@1") in block["sentence"]
    json.dumps(block)  # stored in the aggregate as it is
    only_min_p = {**equal, "polychromic_lora": (0.58, 0.95, 0.70)}
    block = verdict(aggregate(only_min_p), [], passk(only_min_p))
    assert block["matched"] == "baseline_lora@m0.05" and block["matched_temperature"] is None
    assert block["matched_sampling"] == {"min_p": 0.05}
    assert "the baseline sampled at min_p 0.05 (baseline_lora@m0.05)" in block["sentence"]
    plain = {**equal, "polychromic_lora": (0.60, 0.95, 0.70)}
    block = verdict(aggregate(plain), [], passk(plain))
    assert block["matched"] == "baseline_lora" and block["matched_sampling"] == {}
    assert "the baseline (baseline_lora) at its own sampling temperature" in block["sentence"]


def test_one_matched_comparison_per_objective() -> None:
    """Each objective's first system gets its own matched baseline and verdict; the baseline
    and sampling variants get none."""
    means = {**MEANS, "bonus_lora": (0.60, 0.97, 0.80)}  # matched by the plain baseline (0.60)
    evidence = Evidence(aggregate(means), [], [{"passk": doc} for doc in passk(means)],
                        section("evaluation", {"bootstrap_samples": 2000}))
    blocks = objective_comparisons(evidence, ["baseline_lora", "polychromic_lora",
                                              "bonus_lora"], "polychromic_lora", "baseline_lora")
    assert list(blocks) == ["polychromic_lora", "bonus_lora"]
    assert blocks["polychromic_lora"]["matched"] == "baseline_lora@t1.3"
    assert blocks["bonus_lora"]["matched"] == "baseline_lora"
    assert blocks["bonus_lora"]["verdict"] == "better"  # pass@1 equal, pass@10 +0.07
    table = comparisons_markdown(blocks, "polychromic_lora")
    assert "| **polychromic_lora** | baseline_lora@t1.3 | inconclusive (unmatched) |" in table
    assert "| bonus_lora | baseline_lora | better | +0.000" in table and "+0.070 [" in table


def test_with_a_choice_on_validation_the_test_tweets_choose_nothing() -> None:
    """With the aggregate's `selection` the opponent is the baseline system itself (both were
    matched on validation), even where a variant is closer in pass@1 on the test tweets."""
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}  # @t1.3 matches it exactly
    aggregated = {**aggregate(equal), "selection": {"selected_on": "val"}}
    assert matched_baseline(aggregated, "polychromic_lora", "baseline_lora") == "baseline_lora"
    block = verdict(aggregated, [], passk(equal))
    assert block["matched"] == "baseline_lora" and block["matched_on"] == "val"
    assert block["candidates"] == ["baseline_lora"]
    assert "each at the sampling chosen on the validation split" in block["sentence"]
    assert block["verdict"] == "inconclusive (unmatched)"  # 0.47 vs 0.60 on the test tweets
    assert verdict(aggregate(equal), [], passk(equal))["matched_on"] == "test"


def test_the_room_check_asks_whether_fine_tuning_has_room() -> None:
    means = {**MEANS, "zero_shot": (0.30, 0.80, 0.40), "few_shot": (0.60, 0.85, 0.45)}
    evidence = Evidence(aggregate(means), [], [{"passk": doc} for doc in passk(means)],
                        section("evaluation", {"bootstrap_samples": 2000}))
    block = room_check(evidence, "baseline_lora", ["zero_shot", "few_shot"])
    rows = {row["system"]: row for row in block["rows"]}
    assert rows["zero_shot"]["diff"] == pytest.approx(0.30) and rows["zero_shot"]["detectable"]
    assert rows["few_shot"]["diff"] == pytest.approx(0.0) and not rows["few_shot"]["detectable"]
    assert not block["room"]  # no room over few-shot
    assert "no detectable room" in room_markdown(block)
    block = room_check(evidence, "baseline_lora", ["zero_shot"])
    assert block["room"] and "Fine-tuning has room" in room_markdown(block)
    assert "| zero_shot | +0.300 |" in room_markdown(block)


def test_with_a_choice_on_validation_the_testbed_check_runs_on_validation_untuned() -> None:
    selection = {"default_per_prompt": {
        "baseline_lora": [[0.6, 0.7, 0.8, 0.6], [0.7, 0.6, 0.8, 0.7], [0.7, 0.7, 0.7, 0.6]],
        "zero_shot": [[0.1, 0.2, 0.1, 0.3], [0.2, 0.1, 0.2, 0.1], [0.2, 0.2, 0.1, 0.1]],
        "few_shot": [[0.6, 0.7, 0.8, 0.6], [0.7, 0.6, 0.8, 0.7], [0.7, 0.7, 0.7, 0.6]]}}
    block = room_check_on_validation(selection, "baseline_lora", ["zero_shot", "few_shot"], 0.05)
    rows = {row["system"]: row for row in block["rows"]}
    assert block["split"] == "val" and not block["room"]
    assert rows["zero_shot"]["diff"] == pytest.approx(0.68333 - 0.15833, abs=1e-4)  # the means
    assert rows["zero_shot"]["detectable"]
    assert rows["few_shot"]["diff"] == 0.0 and not rows["few_shot"]["detectable"]
    assert room_check_on_validation({}, "baseline_lora", ["zero_shot"], 0.05)["available"] is False
