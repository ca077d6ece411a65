"""Matched in pass@1: an equivalence test, not the absence of a detected difference.

Why: "the two pass@1 do not differ detectably and differ by at most the tolerance" lets a wide
interval count as a match: a study too small to see any difference would match everything.
Equivalence is shown, not assumed, by two one-sided tests (TOST; Schuirmann 1987, "A comparison
of the two one-sided tests procedure and the power approach for assessing the equivalence of
average bioavailability", J. Pharmacokinetics and Biopharmaceutics 15: 657-680): the pass@1
difference is within +-m (m = `evaluation.match_tolerance`) at level alpha when both

    H0-: diff <= -m   and   H0+: diff >= +m

are rejected at alpha, which is the same as the (1 - 2 alpha) interval, 90 % at alpha 0.05,
lying inside (-m, +m). The interval is the primary rule's (`stats.crossed_t_test`: seeds and
tweets crossed), so the seeds' spread counts against a match as it counts against a finding.

It is run on the validation split for the sampling choice (`on_validation`: each system's
chosen candidate against the baseline at generation's settings, in the aggregate's copy of
`selection.json`) and on the test split for the verdict, where it decides whether the
comparison is at matched pass@1 at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polychromic.evaluation.stats import crossed_t_test

LEVEL = 0.90  # the TOST interval at alpha 0.05


def tost(diff: np.ndarray, margin: float, level: float = LEVEL) -> dict[str, Any]:
    """The equivalence test of a seeds x tweets table of paired pass@1 differences (no NaN):
    {bounds, interval, level, holds, diff, method}."""
    diff = np.asarray(diff, dtype=np.float64)
    if diff.size < 2:  # one seed and one tweet (or none): no interval, no equivalence shown
        return {"bounds": [-margin, margin], "interval": None, "level": level,
                "diff": float(diff.mean()) if diff.size else None, "holds": False,
                "n_seeds": int(diff.shape[0]), "n_prompts": int(diff.shape[1]),
                "method": "fewer than two seed x tweet cells: equivalence cannot be shown"}
    low, high, _ = crossed_t_test(diff, ci=level)
    return {"bounds": [-margin, margin], "interval": [low, high], "level": level,
            "diff": float(diff.mean()), "holds": bool(-margin < low and high < margin),
            "n_seeds": int(diff.shape[0]), "n_prompts": int(diff.shape[1]),
            "method": f"two one-sided tests: the {level:.0%} interval of the mean pass@1 "
                      "difference (seeds and tweets crossed) inside +-match_tolerance"}


def describe(block: dict[str, Any]) -> str:
    """'the 90 % interval of the pass@1 difference, [-0.012, +0.031], lies inside +-0.02'."""
    if block["interval"] is None:
        return "the pass@1 difference has fewer than two seed x tweet cells, so no interval"
    low, high = block["interval"]
    where = "lies inside" if block["holds"] else "does not lie inside"
    return (f"the {block['level']:.0%} interval of the pass@1 difference, [{low:+.3f}, "
            f"{high:+.3f}], {where} +-{block['bounds'][1]:g}").replace("%", " %")


def on_validation(selection: dict[str, Any], margin: float) -> dict[str, Any]:
    """`selection` (selection.json) with each system's `equivalence` (its chosen candidate's
    per seed and tweet validation pass rates against the target system's at generation's
    settings) and `matched` (whether it holds)."""
    target = np.array(selection["default_per_prompt"][selection["target_system"]])
    systems = {}
    for name, entry in selection["systems"].items():
        block = tost(np.array(entry["per_prompt"]) - target, margin)
        systems[name] = {**entry, "equivalence": block, "matched": block["holds"]}
    return {**selection, "systems": systems}
