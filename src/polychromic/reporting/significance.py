"""When is a difference between two systems "detectable"? One rule for the table and the paper.

The per-seed files `statistical_tests.json` hold, per metric, a paired Wilcoxon test of the
reference system (polychromic LoRA) against every other system over the test tweets, with
Holm-adjusted p-values over the seed's family of tests. Over seeds we call a difference
**detectable** when

- every seed of the study has a Holm-adjusted Wilcoxon p < alpha for the pair, and
- the per-seed mean differences all have one sign, the sign of the difference over seeds.

Only when no seed has a per-tweet test for the pair (a corpus-level metric, say) does the paired
t-test over the per-seed means (`across_seeds` of the aggregate) decide instead, at the same alpha.
The results table marks a cell with this rule and the paper words its sentences with it, so both
always say the same thing. alpha is the one the evaluation used (`settings.alpha` of the tests),
0.05 when the files do not say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

ALPHA = 0.05


def alpha_of(statistics: Sequence[dict[str, Any]]) -> float:
    """The tests' alpha: `settings.alpha` when every seed gives the same one, else ALPHA."""
    values = {doc.get("settings", {}).get("alpha") for doc in statistics}
    values.discard(None)
    if len(values) == 1:
        value = float(values.pop())
        if 0.0 < value < 1.0:
            return value
    return ALPHA


def seed_tests(statistics: Sequence[dict[str, Any]], metric: str, ref: str,
               other: str) -> list[dict[str, Any]]:
    """Each seed's test of `ref` vs `other` on `metric`, oriented as ref - other:
    [{seed, p_holm, diff, ci_low, ci_high}], in the order of `statistics` (a test stored as
    other vs ref has its difference negated and its CI mirrored)."""
    found = []
    for doc in statistics:
        for test in doc.get("tests", []):
            if test.get("metric") != metric:
                continue
            pair = (test.get("system"), test.get("other"))
            if pair not in ((ref, other), (other, ref)):
                continue
            diff, low, high = test.get("mean_diff"), test.get("ci_low"), test.get("ci_high")
            if pair == (other, ref):
                diff = None if diff is None else -diff
                if low is not None and high is not None:
                    low, high = -high, -low
            found.append({"seed": doc.get("seed"), "p_holm": test.get("wilcoxon_p_holm"),
                          "diff": diff, "ci_low": low, "ci_high": high})
    return found


def verdict(diff: float | None, tests: Sequence[dict[str, Any]], ttest_p: float | None,
            n_seeds: int | None = None, alpha: float = ALPHA) -> str:
    """'higher' / 'lower' (ref vs other, detectable), 'none' or 'untested' (module docstring).

    `diff` is ref - other over seeds; `tests` the per-seed tests of `seed_tests`; `ttest_p` the
    across-seeds t-test's p; `n_seeds` the seeds of the study (a seed without a test counts
    as not significant).
    """
    if diff is None or not math.isfinite(diff):
        return "untested"
    p_values = [t["p_holm"] for t in tests if t["p_holm"] is not None]
    if p_values and len(p_values) < (n_seeds or len(tests)):
        return "none"
    if p_values:
        signs = {math.copysign(1.0, t["diff"]) for t in tests if t["diff"]} or {0.0}
        detectable = max(p_values) < alpha and signs == {math.copysign(1.0, diff)} and diff != 0
    elif ttest_p is not None:
        detectable = ttest_p < alpha and diff != 0
    else:
        return "untested"
    if not detectable:
        return "none"
    return "higher" if diff > 0 else "lower"


def across_seeds_test(aggregated: dict[str, Any], metric: str, ref: str,
                      other: str) -> dict[str, Any]:
    """The aggregate's across-seeds comparison of ref vs other on `metric` ({} if none)."""
    for item in aggregated.get("across_seeds", {}).get("comparisons", []):
        if (item.get("metric"), item.get("system"), item.get("other")) == (metric, ref, other):
            return item
    return {}


def compare(aggregated: dict[str, Any], statistics: Sequence[dict[str, Any]], metric: str,
            ref: str, other: str) -> dict[str, Any]:
    """Everything the table and the paper need about ref vs other on one metric.

    {diff, verdict, basis ('wilcoxon' | 'ttest' | None), tests, across, alpha, n_seeds}; diff is
    the across-seeds mean difference, or the difference of the aggregate means without one.
    """
    across = across_seeds_test(aggregated, metric, ref, other)
    diff = across.get("mean_diff")
    if diff is None:
        means = [aggregated["systems"].get(name, {}).get(metric, {}).get("mean")
                 for name in (ref, other)]
        diff = None if None in means else means[0] - means[1]
    tests = seed_tests(statistics, metric, ref, other)
    n_seeds = len(aggregated.get("seeds") or []) or None
    alpha = alpha_of(statistics)
    result = verdict(diff, tests, across.get("p_value"), n_seeds, alpha)
    has_wilcoxon = any(t["p_holm"] is not None for t in tests)
    basis = None
    if result != "untested":
        basis = "wilcoxon" if has_wilcoxon else "ttest"
    return {"diff": diff, "verdict": result, "basis": basis, "tests": tests,
            "across": across, "alpha": alpha, "n_seeds": n_seeds}
