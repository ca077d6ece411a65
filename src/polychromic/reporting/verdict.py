"""The study's answer, from the numbers: the reference system against the baseline at matched
pass@1.

Why: "isn't that just a higher sampling temperature?" The baseline sampled at other
temperatures, or with other sampling settings (min-p, top-p, top-k), is a system of its own
(`baseline_lora@t1.3`, `baseline_lora@t1.6m0.1`, polychromic.systems); the fair opponent of the
reference system (`evaluation.reference_system`) is the variant of the baseline system
(`evaluation.baseline_system`) whose pass@1 (mean over seeds) is closest to the reference's, the
plain baseline on ties or without variants. The block names the matched variant's sampling
(`matched_sampling`: the keys it sets; `matched_temperature`: its temperature, None when it
samples at generation.temperature).

Against it, on pass@1, pass@k (pass@10, else the largest k) and coverage, this module reports
the means ± std over seeds and the study's primary, pre-registered test (the `primary` rule of
`significance.py`): the mean paired difference over seeds and test tweets with its 95 % CI and
two-sided p with seeds and tweets as crossed random factors (`uncertainty` names it), the p
Holm-adjusted over these comparisons, and each seed's mean difference (the tweets-only reading,
seeds fixed, is kept as `ci_low_tweets`, `ci_high_tweets`, `p_tweets`). A difference is
**detectable** when the adjusted p < alpha and every seed's difference has the sign of the
pooled one. The per-seed Holm-adjusted tests of `statistical_tests.json` (descriptive only)
are kept in each row as `seeds`.

The comparison is at matched pass@1 only when an equivalence test says so
(`evaluation.equivalence`: the 90 % interval of the pass@1 difference, seeds and tweets
crossed, inside +-`evaluation.match_tolerance`; the block's `equivalence`). Then the verdict
word comes from pass@1 and pass@k (the claim: higher pass@k without losing pass@1); a pass@1
difference can be detectable and still inside the margin, so every word can occur:

- **better**: one of them detectably better and neither detectably worse;
- **worse**: one of them detectably worse and neither detectably better;
- **mixed**: one detectably better and the other detectably worse;
- **no detectable difference**: neither differs detectably;
- **inconclusive (unmatched)**: equivalence in pass@1 is not shown, so no word about pass@k is
  earned at matched pass@1: the sentence gives the interval and points at the frontier figure;
- **inconclusive (degenerate)**: pass@1 or pass@k sits at 0 (or 1) for both systems on nearly
  every test tweet, or has no variance (`reporting.validity`): the sentence gives the reason
  and no test is read;
- **void**: one of the two is the untouched base model in every seed, or both are one model at
  one sampling (`reporting.validity`).

No sentence is written ahead of the numbers: every word of `sentence` is chosen from them.
`python -m polychromic.reporting.verdict AGGREGATE` prints the paragraph as Markdown (the docs
writer, `polychromic.reporting.docs`, uses it) from the block the aggregate step stored.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from polychromic.evaluation.equivalence import describe as describe_equivalence
from polychromic.evaluation.equivalence import tost
from polychromic.evaluation.registry import get_metric, main_passk, parse_passk, shown_in
from polychromic.evaluation.stats import crossed_t_test, holm
from polychromic.reporting.significance import (
    UNCERTAINTY,
    Evidence,
    detect,
    pooled_table,
    seed_tests,
    signs_agree,
)
from polychromic.reporting.validity import (
    DEGENERATE,
    VOID,
    degenerate_reason,
    identical_reason,
    void_reason,
)
from polychromic.systems import is_variant, parse_system
from polychromic.training.gate import ZERO_TERM_WARNING, zero_term_sentence


def _mean(aggregated: dict[str, Any], system: str, metric: str) -> float | None:
    value = (aggregated.get("systems", {}).get(system, {}).get(metric) or {}).get("mean")
    return None if value is None or not math.isfinite(value) else float(value)


def matched_baseline(aggregated: dict[str, Any], reference: str, baseline: str,
                     metric: str = "pass@1") -> str | None:
    """The opponent at matched pass@1. With a sampling choice on validation (the aggregate's
    `selection`), the baseline system itself: the systems were matched on validation and no
    choice is made on the test tweets. Without one, the baseline system or sampling variant
    whose mean `metric` on the test tweets is closest to the reference's (the plain baseline
    first on ties). None when nothing can be matched."""
    if aggregated.get("selection"):
        return baseline if _mean(aggregated, baseline, metric) is not None else None
    target = _mean(aggregated, reference, metric)
    candidates = [s for s in aggregated.get("system_order", [])
                  if parse_system(s).base == baseline and _mean(aggregated, s, metric) is not None]
    candidates.sort(key=is_variant)  # plain baseline first
    if target is None or not candidates:
        return None
    return min(candidates, key=lambda s: abs(_mean(aggregated, s, metric) - target))


def seed_evidence(statistics: Sequence[dict[str, Any]], metric: str, ref: str,
                  other: str) -> list[dict[str, Any]]:
    """Per seed: {seed, ci_low, ci_high, p_holm} of ref - other (bootstrap CI of the mean
    per-tweet difference, Holm-adjusted permutation p), from `significance.seed_tests`."""
    return [{key: test[key] for key in ("seed", "ci_low", "ci_high", "p_holm")}
            for test in seed_tests(statistics, metric, ref, other)]


UNMATCHED = "inconclusive (unmatched)"
# how a verdict word reads between the reference system and its opponent
PHRASES = {"better": "is better than", "worse": "is worse than",
           "mixed": "is better on one and worse on the other than",
           "no detectable difference": "shows no detectable difference from"}


def verdict_word(directions: Sequence[str], matched: bool = True) -> str:
    """better / worse / mixed / no detectable difference from the pass@1 and pass@k rows;
    `UNMATCHED` when the comparison is not at matched pass@1 (the equivalence test)."""
    if not matched:
        return UNMATCHED
    better, worse = "better" in directions, "worse" in directions
    if better and worse:
        return "mixed"
    if better:
        return "better"
    if worse:
        return "worse"
    return "no detectable difference"


def fmt(value: float | None, signed: bool = False) -> str:
    """Three decimals (with its sign when `signed`); `n/a` for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def initial_adapter_warnings(aggregated: dict[str, Any], systems: Sequence[str]) -> list[str]:
    """One sentence per experiment behind `systems` whose saved adapter is the initial, zero
    LoRA in some seed (`experiments.*.initial_adapter_seeds` of the aggregate): there the
    system is the base model, whatever its objective."""
    found = []
    for name, entry in (aggregated.get("experiments") or {}).items():
        seeds = entry.get("initial_adapter_seeds") or []
        served = [s for s in systems if s in (entry.get("systems") or [])]
        if seeds and served:
            found.append(f"the saved adapter of experiment {name} ({', '.join(served)}) is the "
                         f"initial, zero LoRA in seed(s) {', '.join(str(s) for s in seeds)}, so "
                         "there the system is the base model (run.json: adapter_is_initial; "
                         "with training.checkpoint_selection best_val_loss no checkpoint beat "
                         "the base model's validation loss, and last keeps the trained adapter)")
    return found


def zero_term_warnings(aggregated: dict[str, Any], systems: Sequence[str]) -> list[str]:
    """One sentence per experiment behind `systems` whose policy-gradient term was zero in
    more than `ZERO_TERM_WARNING` of its sampling steps (`experiments.*.zero_term`)."""
    found = []
    for name, entry in (aggregated.get("experiments") or {}).items():
        zero = entry.get("zero_term") or {}
        if not any(s in (entry.get("systems") or []) for s in systems) or \
                (zero.get("share") or 0.0) <= ZERO_TERM_WARNING:
            continue
        gates = [g for g in (entry.get("quality_gate") or {}).get("thresholds") or []
                 if g is not None]
        found.append(zero_term_sentence(name, zero["zero_term_steps"], zero["sampling_steps"],
                                        gates[0] if gates else None))
    return found


def unmatched_warning(aggregated: dict[str, Any], reference: str, baseline: str, matched: str,
                      equivalence: dict[str, Any]) -> list[str]:
    """A sentence when the equivalence test does not show the two pass@1 within the margin:
    the comparison is then not at matched pass@1, and the rows measure the sampling rather
    than the method. It says where to look: more sampling candidates on validation, or, for a
    choice made on test, the variants whose pass@1 bracket the reference's."""
    if equivalence["holds"]:
        return []
    target = _mean(aggregated, reference, "pass@1")
    shown = describe_equivalence(equivalence)
    chosen = ((aggregated.get("selection") or {}).get("systems") or {}).get(reference)
    if chosen is not None:
        return [f"equivalence in pass@1 of {reference} and {matched} is not shown on the test "
                f"tweets: {shown} (on validation the gap was "
                f"{chosen.get('val_gap', float('nan')):+.3f}), so the rows compare the systems "
                "at single-answer qualities that may differ: a wider search "
                "(evaluation.selection.search), more test tweets or more seeds narrow it"]
    variants = sorted((_mean(aggregated, s, "pass@1"), s) for s in aggregated["system_order"]
                       if parse_system(s).base == baseline
                       and _mean(aggregated, s, "pass@1") is not None)
    below = [(v, s) for v, s in variants if v < target]
    above = [(v, s) for v, s in variants if v >= target]
    if below and above:
        where = (f"it lies between {below[-1][1]} ({below[-1][0]:.3f}) and {above[0][1]} "
                 f"({above[0][0]:.3f}): sample the baseline at temperatures between theirs")
    elif above:
        where = (f"it lies below every baseline variant, the lowest being {above[0][1]} "
                 f"({above[0][0]:.3f}): sample the baseline at a higher temperature")
    else:
        where = (f"it lies above every baseline variant, the highest being {below[-1][1]} "
                 f"({below[-1][0]:.3f}): sample the baseline at a lower temperature")
    return [f"no baseline variant is shown equivalent in pass@1 to {reference} ({target:.3f}); "
            f"for the closest, {matched}, {shown}, so the rows compare points of the sampling "
            f"grid, not methods at matched pass@1; {where}"]


def unavailable(reference: str, baseline: str, reason: str) -> dict[str, Any]:
    return {"available": False, "reference": reference, "baseline": baseline, "reason": reason}


def verdict_row(aggregated: dict[str, Any], statistics: Sequence[dict[str, Any]],
                test: dict[str, Any], reference: str, matched: str) -> dict[str, Any]:
    """One row of the verdict table: means ± std, the primary test, the per-seed tests."""
    metric = test["metric"]
    ref_entry = aggregated["systems"][reference].get(metric) or {}
    other_entry = aggregated["systems"][matched].get(metric) or {}
    return {
        "metric": metric, "label": get_metric(metric).label,
        "reference_mean": ref_entry.get("mean"), "reference_std": ref_entry.get("std"),
        "other_mean": other_entry.get("mean"), "other_std": other_entry.get("std"),
        "diff": test.get("mean_diff"), "ci_low": test.get("ci_low"),
        "ci_high": test.get("ci_high"), "p": test.get("p"),
        "ci_low_tweets": test.get("ci_low_tweets"), "ci_high_tweets": test.get("ci_high_tweets"),
        "p_tweets": test.get("p_tweets"),
        "p_holm": test.get("p_holm"), "cohens_d_z": test.get("cohens_d_z"),
        "n_prompts": test.get("n_prompts"), "n_left_out": test.get("n_left_out"),
        "seed_diffs": test.get("seed_diffs"), "seeds_agree": test.get("seeds_agree"),
        "detectable": bool(test["detectable"]), "direction": test["direction"],
        "seeds": seed_evidence(statistics, metric, reference, matched),
    }


def build_verdict(evidence: Evidence, reference: str, baseline: str,
                  passk_metric: str | None = None) -> dict[str, Any]:
    """The comparison block (module docstring) from the aggregate, every seed's tests and
    every seed's metric documents (`evidence`); `available: false` with a reason when the
    reference, the baseline, pass@k or the per-tweet values are missing."""
    aggregated = evidence.aggregated
    present = aggregated.get("metric_order") or []
    if passk_metric is None or passk_metric not in present:
        passk_metric = main_passk(present)
    matched = matched_baseline(aggregated, reference, baseline)
    if (passk_metric is None or matched is None
            or _mean(aggregated, reference, "pass@1") is None):
        return unavailable(reference, baseline, f"no pass@1 of both {reference} and {baseline} "
                           "(or its sampling variants) in the aggregate")
    if not evidence.seed_documents:
        return unavailable(reference, baseline, "no per-tweet pass@k results to test")
    metrics = ["pass@1", passk_metric, *[m for m in shown_in("verdict", present)
                                         if parse_passk(m) is None]]
    rows = [verdict_row(aggregated, evidence.statistics, test, reference, matched)
            for test in detect(evidence, metrics, reference, matched)]
    tolerance = evidence.evaluation.match_tolerance if evidence.evaluation else 0.0
    equivalence = tost(pooled_table(evidence.seed_documents, "pass@1", reference, matched),
                       tolerance)
    word, reason = judged_word(evidence, rows, reference, matched, equivalence["holds"])
    warnings = initial_adapter_warnings(aggregated, [reference, matched])
    warnings += zero_term_warnings(aggregated, [reference, matched])
    warnings += unmatched_warning(aggregated, reference, baseline, matched, equivalence)
    seeds = [documents["passk"].get("seed") for documents in evidence.seed_documents]
    block = {
        "available": True, "reference": reference, "baseline": baseline, "matched": matched,
        "matched_on": "val" if aggregated.get("selection") else "test",
        "matched_temperature": parse_system(matched).overrides.temperature,
        "matched_sampling": parse_system(matched).overrides.items(),
        "candidates": [baseline] if aggregated.get("selection") else [
            s for s in aggregated.get("system_order", []) if parse_system(s).base == baseline],
        "passk_metric": passk_metric, "alpha": evidence.alpha, "n_seeds": len(seeds),
        "seed_order": ", ".join(str(seed) for seed in seeds),
        "n_prompts": rows[0]["n_prompts"],
        "family": sum(row["p_holm"] is not None for row in rows),
        "match_tolerance": tolerance, "equivalence": equivalence,
        "rows": rows, "verdict": word, "reason": reason,
        "sentence": sentence(reference, matched, word, rows, equivalence,
                             bool(aggregated.get("selection")), reason),
        "warnings": warnings,
        "uncertainty": UNCERTAINTY,
        "rule": ("matched = the baseline system, each system at the sampling chosen on "
                 "validation to match pass@1" if aggregated.get("selection") else
                 "matched = the baseline system or sampling variant with the closest mean "
                 "pass@1 on the test tweets")
                + "; matched only when the 90 % interval of the pass@1 difference lies inside "
                "+-match_tolerance (two one-sided tests); the mean difference over seeds and "
                "test tweets; its CI and two-sided p with seeds and tweets as crossed random "
                "factors (Behrens-Fisher reference), Holm-adjusted over the tested "
                "comparisons; detectable when the adjusted p < alpha and every seed's mean "
                "difference has the pooled sign; verdict from pass@1 and pass@k",
    }
    block["tweets"] = tweets(block)
    return block


def judged_word(evidence: Evidence, rows: list[dict[str, Any]], reference: str, matched: str,
                equivalent: bool) -> tuple[str, str | None]:
    """(verdict word, the reason when it is void or degenerate): `VOID` when one system is the
    base model or both are one model (`validity.void_reason`); `DEGENERATE` when the pass@1 or
    pass@k row cannot separate them (`validity.degenerate_reason`, each row's `degenerate`) or
    both rows are identical (`validity.identical_reason`);
    else `verdict_word` of the rows, `UNMATCHED` unless pass@1 is shown `equivalent`."""
    share = evidence.evaluation.degenerate_share if evidence.evaluation else 1.0
    for row in rows:
        row["degenerate"] = degenerate_reason(evidence, row["metric"], reference, matched,
                                              share)
    void = void_reason(evidence.aggregated, reference, matched)
    if void is not None:
        return VOID, void
    decisive = [row for row in rows if parse_passk(row["metric"]) is not None]
    degenerate = next((row["degenerate"] for row in decisive if row["degenerate"]), None)
    if degenerate is not None:
        return DEGENERATE, degenerate
    same = identical_reason(evidence, [row["metric"] for row in decisive], reference, matched)
    if same is not None:
        for row in decisive:
            row["degenerate"] = same
        return DEGENERATE, same
    return verdict_word([row["direction"] for row in decisive], equivalent), None


def objective_comparisons(evidence: Evidence, systems: Sequence[str], reference: str,
                          baseline: str, passk_metric: str | None = None
                          ) -> dict[str, dict[str, Any]]:
    """One matched comparison per LoRA system: `build_verdict` of each of `systems` (every
    configured LoRA system, so each objective and each of its settings, the pure set-RL one
    included) other than the baseline, against its matched baseline (`matched_baseline`). Each
    has its own Holm family (its rows); the reference system's is the study's pre-registered
    verdict, the others are secondary readings, not corrected across systems."""
    return {system: build_verdict(evidence, system, baseline, passk_metric)
            for system in systems if system != baseline}


def room_check(evidence: Evidence, baseline: str, systems: Sequence[str]) -> dict[str, Any]:
    """Does fine-tuning have room? The baseline LoRA system against every system without an
    adapter (zero-shot, few-shot) on pass@1, by the primary rule (seeds and tweets crossed, Holm
    over these comparisons): a testbed whose untuned base model already answers as well as the
    fine-tuned one cannot show what an objective adds. `room` is true when the baseline is
    detectably better than every one of them."""
    aggregated = evidence.aggregated
    if not evidence.seed_documents or _mean(aggregated, baseline, "pass@1") is None:
        return {"available": False, "reason": f"no pass@1 of {baseline}"}
    rows = []
    for other in systems:
        if _mean(aggregated, other, "pass@1") is None:
            continue
        (test,) = detect(evidence, ["pass@1"], baseline, other)
        rows.append({"system": other, "baseline_pass@1": _mean(aggregated, baseline, "pass@1"),
                     "other_pass@1": _mean(aggregated, other, "pass@1"),
                     **{key: test.get(key) for key in ("diff", "ci_low", "ci_high", "p",
                                                       "seeds_agree", "seed_diffs")}})
    return room_block(rows, baseline, evidence.alpha, "test",
                      "pass@1 of the baseline minus each system without an adapter, over "
                      "seeds and test tweets; seeds and tweets as crossed random factors, Holm "
                      "over the rows; room when the baseline is detectably better than each")


def room_check_on_validation(selection: dict[str, Any], baseline: str, systems: Sequence[str],
                             alpha: float) -> dict[str, Any]:
    """`room_check` where the sampling was chosen on validation: every system is then tuned
    towards the baseline's pass@1 on the test tweets, so the check runs on the validation split
    at generation's own settings (selection.json's `default_per_prompt`: per seed, per tweet, the
    share of passing replies), with the same crossed t and Holm."""
    rates = selection.get("default_per_prompt") or {}
    if baseline not in rates:
        return {"available": False, "reason": f"no validation pass rates of {baseline}"}
    base = np.array(rates[baseline], dtype=np.float64)
    rows = []
    for other in (name for name in systems if name in rates):
        matrix = base - np.array(rates[other], dtype=np.float64)
        low, high, p = crossed_t_test(matrix)
        seed_diffs = [float(d) for d in matrix.mean(axis=1)]
        rows.append({"system": other, "baseline_pass@1": float(base.mean()),
                     "other_pass@1": float(np.mean(rates[other])),
                     "diff": float(matrix.mean()), "ci_low": low, "ci_high": high, "p": p,
                     "seed_diffs": seed_diffs,
                     "seeds_agree": signs_agree(seed_diffs, float(matrix.mean()))})
    return room_block(rows, baseline, alpha, "val",
                      "pass@1 on the validation split at generation's own settings (the "
                      "systems are tuned towards the baseline on the test split); seeds and "
                      "tweets as crossed random factors, Holm over the rows; room when the "
                      "baseline is detectably better than each")


def room_block(rows: list[dict[str, Any]], baseline: str, alpha: float, split: str,
               rule: str) -> dict[str, Any]:
    """The testbed block of both checks: Holm over the rows, each row detectable when its
    adjusted p < alpha, its seeds agree and the baseline is ahead; room when every row is."""
    for row, p in zip(rows, holm([row["p"] for row in rows]), strict=True):
        row["p_holm"] = p
        row["detectable"] = bool(p is not None and p < alpha and row["seeds_agree"]
                                 and row["diff"] > 0)
    return {"available": bool(rows), "baseline": baseline, "rows": rows, "split": split,
            "room": bool(rows) and all(row["detectable"] for row in rows), "rule": rule}


def room_markdown(block: dict[str, Any]) -> str:
    """The testbed check as a sentence and a table."""
    if not block.get("available"):
        return f"No testbed check: {block.get('reason', 'no system without an adapter')}."
    lines = [f"| {block['baseline']} minus | pass@1 difference | 95 % CI | Holm p | room |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['system']} | {fmt(row['diff'], True)} | [{fmt(row['ci_low'], True)}, "
              f"{fmt(row['ci_high'], True)}] | {_p(row['p_holm'])} | "
              f"{'yes' if row['detectable'] else 'no'} |" for row in block["rows"]]
    verdict = ("Fine-tuning has room: the baseline LoRA system's pass@1 is detectably above "
               "every system without an adapter." if block["room"] else
               "**Fine-tuning has no detectable room** over at least one system without an "
               "adapter: the testbed cannot show what an objective adds there.")
    return "\n".join(lines) + "\n\n" + verdict


def comparisons_markdown(blocks: dict[str, dict[str, Any]], reference: str) -> str:
    """A table: each objective's system, its matched baseline, its verdict and the differences
    with their 95 % CIs (seeds and tweets crossed)."""
    lines = ["| system | matched baseline | verdict | pass@1 | pass@k | coverage |",
             "|---|---|---|---|---|---|"]
    for system, block in blocks.items():
        if not block.get("available"):
            lines.append(f"| {system} | n/a | {block.get('reason')} | | | |")
            continue
        cells = [f"{fmt(r['diff'], True)} [{fmt(r['ci_low'], True)}, "
                 f"{fmt(r['ci_high'], True)}]{' †' if r['detectable'] else ''}"
                 f"{' ‡' if r.get('degenerate') else ''}" for r in block["rows"]]
        name = f"**{system}**" if system == reference else system
        lines.append(f"| {name} | {block['matched']} | {block['verdict']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _phrase(row: dict[str, Any]) -> str:
    state = {"better": "detectably better", "worse": "detectably worse",
             "none": "no detectable difference", "untested": "not tested"}[row["direction"]]
    if row.get("p_holm") is None:
        return f"{row['label']} {fmt(row['diff'], signed=True)} ({state})"
    return (f"{row['label']} {fmt(row['diff'], signed=True)} (95 % CI "
            f"[{fmt(row['ci_low'], True)}, {fmt(row['ci_high'], True)}], Holm p "
            f"{_p(row['p_holm'])}: {state})")


def sentence(reference: str, matched: str, word: str, rows: list[dict[str, Any]],
             equivalence: dict[str, Any] | None = None, on_validation: bool = False,
             reason: str | None = None) -> str:
    """One sentence of verdict, every word chosen from the numbers."""
    if word == VOID:
        return f"The comparison of {reference} with {matched} is void: {reason}."
    if word == DEGENERATE:
        return (f"The comparison of {reference} with {matched} is inconclusive, and no test "
                f"was read: {reason}.")
    overrides = parse_system(matched).overrides
    if on_validation:
        opponent = (f"the baseline ({matched}), each at the sampling chosen on the validation "
                    "split to match pass@1")
    elif overrides.items():
        opponent = (f"the baseline sampled at {overrides.describe()} ({matched}), the baseline "
                    "closest to its pass@1")
    else:
        opponent = (f"the baseline ({matched}) at its own sampling temperature, the closest to "
                    "its pass@1")
    details = "; ".join(_phrase(row) for row in rows)
    if word == UNMATCHED:
        shown = (describe_equivalence(equivalence) if equivalence
                 else "equivalence was not tested")
        figure = "validation frontier figure" if on_validation else "frontier figure"
        return (f"The comparison is inconclusive: equivalence in pass@1 is not shown on the "
                f"test tweets ({shown}), so the pass@k and coverage of {reference} are not "
                f"compared at matched pass@1 (read the {figure} instead); against "
                f"{opponent}: {details}.")
    head = PHRASES[word]
    qualifier = {"better": " (detectably better on at least one, worse on neither)",
                 "worse": " (detectably worse on at least one, better on neither)"}.get(word, "")
    judged = " and ".join(row["label"] for row in rows if row["metric"] != "coverage")
    return f"Judged on {judged}, {reference} {head} {opponent}{qualifier}: {details}."


def tweets(block: dict[str, Any]) -> str:
    """How many test tweets each row tested: one number when the rows agree, else per row."""
    counts = [(row["label"], row.get("n_prompts")) for row in block["rows"]]
    if len({n for _, n in counts}) == 1:
        return str(counts[0][1])
    return ", ".join(f"{n} ({label})" for label, n in counts)


def _detectable_cell(row: dict[str, Any]) -> str:
    if row.get("degenerate"):
        return "degenerate ‡"
    return row["direction"] if row["detectable"] else "no"


def markdown(block: dict[str, Any]) -> str:
    """The paragraph and table for the README, from `build_verdict`'s block."""
    if not block.get("available"):
        return f"No verdict: {block.get('reason')}."
    lines = [f"| metric | {block['reference']} | {block['matched']} | difference | 95 % CI | "
             f"Holm p | difference per seed ({block['seed_order']}) | detectable |",
             "|---|---|---|---|---|---|---|---|"]
    for row in block["rows"]:
        per_seed = ", ".join(fmt(d, True) for d in row["seed_diffs"] or []) or "n/a"
        lines.append(
            f"| {row['label']} | {fmt(row['reference_mean'])} ± {fmt(row['reference_std'])} "
            f"| {fmt(row['other_mean'])} ± {fmt(row['other_std'])} "
            f"| {fmt(row['diff'], True)} | [{fmt(row['ci_low'], True)}, "
            f"{fmt(row['ci_high'], True)}] | {_p(row['p_holm'])} | {per_seed} | "
            f"{_detectable_cell(row)} |")
    if any(row.get("degenerate") for row in block["rows"]):
        lines += ["", "‡ degenerate: " + "; ".join(row["degenerate"] for row in block["rows"]
                                                   if row.get("degenerate")) + "."]
    warnings = "".join(f"\n**Warning:** {text}.\n" for text in block.get("warnings") or [])
    return ("\n".join(lines) + f"\n\n{tweets(block)} test tweets x {block['n_seeds']} "
            f"seeds; CI and p: {block.get('uncertainty', 'n/a')}; Holm over {block['family']} "
            "comparisons.\n\n"
            f"**Verdict: {block['verdict']}.** {block['sentence']}\n" + warnings)


def main(argv: list[str] | None = None) -> int:
    from polychromic.io import read_json

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m polychromic.reporting.verdict aggregated_results.json",
              file=sys.stderr)
        return 2
    block = read_json(args[0]).get("verdict")
    if block is None:
        print(f"{args[0]}: no verdict block (written by the aggregate step)", file=sys.stderr)
        return 1
    print(markdown(block))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
