"""Degenerate measurements and void comparisons are named by the verdict, never tested.

A real corpus with a weak criterion gave pass@k = 0 for every system on every tweet, and the
verdict said "no detectable difference" with a CI of [+0.000, +0.000]; a polychromic adapter
that was the base model in every seed was compared as if trained.
"""

from __future__ import annotations

from polychromic.reporting.significance import Evidence
from polychromic.reporting.validity import DEGENERATE, VOID, degenerate_reason, void_reason
from polychromic.reporting.verdict import build_verdict, comparisons_markdown, markdown
from polychromic.settings import section
from test_report_verdict import MEANS, SEEDS, aggregate, passk

EVALUATION = section("evaluation", {"bootstrap_samples": 500, "permutation_samples": 2000})


def evidence(aggregated: dict, docs: list[dict]) -> Evidence:
    return Evidence(aggregated, [], [{"passk": doc} for doc in docs], EVALUATION)


def at(docs: list[dict], metric: str, values: dict[str, list[float]]) -> list[dict]:
    """The docs with `metric`'s per-tweet values of each named system replaced (every seed)."""
    for doc in docs:
        for system, row in values.items():
            doc["systems"][system][metric]["per_prompt"] = list(row)
    return docs


def test_pass_at_k_at_its_floor_makes_the_verdict_inconclusive_with_the_reason():
    equal = {**MEANS, "polychromic_lora": (0.60, 0.95, 0.70)}
    aggregated = {**aggregate(equal), "selection": {"systems": {}}}  # matched: baseline_lora
    zeros = [0.0] * 40
    docs = at(passk(equal), "pass@10", {"polychromic_lora": zeros, "baseline_lora": zeros})
    block = build_verdict(evidence(aggregated, docs), "polychromic_lora", "baseline_lora")
    assert block["verdict"] == DEGENERATE
    assert block["reason"].startswith("pass@10 is 0 for 100% of test tweets in both systems")
    assert "calibrate the pass threshold" in block["reason"]
    assert block["sentence"].startswith("The comparison of polychromic_lora with baseline_lora "
                                        "is inconclusive, and no test was read")
    rows = {row["metric"]: row for row in block["rows"]}
    assert rows["pass@10"]["degenerate"] and not rows["pass@1"]["degenerate"]
    table = markdown(block)
    assert "degenerate ‡" in table and "‡ degenerate: pass@10 is 0" in table
    assert "‡" in comparisons_markdown({"polychromic_lora": block}, "polychromic_lora")


def test_nearly_every_tweet_tied_at_a_bound_is_degenerate_and_fewer_is_not():
    equal = {**MEANS, "polychromic_lora": (0.60, 0.95, 0.70)}
    ones, mixed = [1.0] * 40, [1.0] * 38 + [0.4, 0.2]
    docs = at(passk(equal), "pass@10", {"polychromic_lora": mixed, "baseline_lora": ones})
    found = evidence(aggregate(equal), docs)
    reason = degenerate_reason(found, "pass@10", "polychromic_lora", "baseline_lora", 0.95)
    assert reason.startswith("pass@10 is 1 for 95% of test tweets in both systems")
    assert degenerate_reason(found, "pass@10", "polychromic_lora", "baseline_lora", 0.96) is None
    split = [1.0] * 20 + [0.0] * 20  # ties at both bounds add up
    docs = at(passk(equal), "pass@10", {"polychromic_lora": split, "baseline_lora": split})
    reason = degenerate_reason(evidence(aggregate(equal), docs), "pass@10", "polychromic_lora",
                               "baseline_lora", 0.95)
    assert "is 0 or 1 in both systems for 100% of test tweets" in reason


def test_identical_pass_at_1_and_pass_at_k_leave_nothing_to_test():
    equal = {**MEANS, "polychromic_lora": (0.60, 0.90, 0.70)}
    aggregated = {**aggregate(equal), "selection": {"systems": {}}}
    block = build_verdict(evidence(aggregated, passk(equal)), "polychromic_lora",
                          "baseline_lora")
    assert block["verdict"] == DEGENERATE and "no difference, and no variance" in block["reason"]
    # one identical row (a perfectly matched pass@1) is no obstacle
    better = {**MEANS, "polychromic_lora": (0.60, 0.95, 0.70)}
    aggregated = {**aggregate(better), "selection": {"systems": {}}}
    block = build_verdict(evidence(aggregated, passk(better)), "polychromic_lora",
                          "baseline_lora")
    assert block["verdict"] == "better" and not any(row["degenerate"] for row in block["rows"])


def test_a_base_model_in_every_seed_makes_the_comparison_void():
    equal = {**MEANS, "polychromic_lora": (0.47, 0.95, 0.70)}
    aggregated = aggregate(equal)
    aggregated["experiments"] = {
        "baseline": {"systems": ["baseline_lora"], "initial_adapter_seeds": []},
        "polychromic": {"systems": ["polychromic_lora"], "initial_adapter_seeds": SEEDS}}
    block = build_verdict(evidence(aggregated, passk(equal)), "polychromic_lora",
                          "baseline_lora")
    assert block["verdict"] == VOID
    assert block["reason"].startswith("polychromic_lora is the untouched base model in every "
                                      "seed")
    assert block["sentence"] == (f"The comparison of polychromic_lora with {block['matched']} "
                                 f"is void: {block['reason']}.")
    aggregated["experiments"]["polychromic"]["initial_adapter_seeds"] = SEEDS[:1]
    assert void_reason(aggregated, "polychromic_lora", "baseline_lora") is None  # one seed: a
    # warning (initial_adapter_warnings), not a void comparison


def test_one_model_at_one_sampling_twice_is_void():
    aggregated = aggregate()
    aggregated["experiments"] = {"baseline": {"systems": ["baseline_lora", "baseline_copy"],
                                              "initial_adapter_seeds": []}}
    assert "the same model (experiment baseline)" in void_reason(aggregated, "baseline_copy",
                                                                 "baseline_lora")
    aggregated["experiments"]["baseline"]["systems"].append("baseline_lora@t1.3")
    assert void_reason(aggregated, "baseline_lora@t1.3", "baseline_lora") is None
    aggregated["selection"] = {"systems": {
        "baseline_copy": {"sampling": {"temperature": 1.3}},
        "baseline_lora": {"sampling": {"temperature": 1.0}}}}
    assert void_reason(aggregated, "baseline_copy", "baseline_lora") is None
