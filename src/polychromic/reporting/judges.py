"""The judges' credentials over seeds: validity against the oracle, independence from the
reward, and whether the baseline leaves room for pass@k.

Why: the study's numbers are pass decisions; a reviewer asks whether the judge that made them
tells the truth, and whether it is just the training reward under another name. Each seed's
pass@k file holds counts per system (`evaluation.agreement`); here they are added up over seeds:

- `judge_validity` (written as evaluation/judge_validity.json): per judge other than the
  oracle, per system and over all systems, the confusion with the oracle turned into
  accuracy = (tp + tn) / n, Cohen's kappa = (p_o - p_e) / (1 - p_e) with p_e the agreement
  expected from the two pass rates, precision = tp / (tp + fp) and recall = tp / (tp + fn) of
  "pass", and the share of samples the oracle could not tell;
- `judge_reward`: per judge, the pooled Pearson correlation of its score (its 0/1 decision for
  the oracle: point-biserial) with the training reward over every test sample, and the share of
  samples where their pass decisions agree; above `INDEPENDENCE` the limitations say that the
  judge is not independent of the reward;
- `headroom`: the baseline system's validation pass@k at generation's settings for each k
  (selection.json), and the verdict's k: `evaluation.verdict_k`, else the largest k above 1
  whose baseline validation pass@k is at most `evaluation.headroom`; none such: no room, and
  the verdict keeps pass@10 (or the largest k) with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polychromic.evaluation.agreement import pearson
from polychromic.evaluation.registry import main_passk
from polychromic.settings import EvaluationSettings

INDEPENDENCE = 0.9  # a judge correlating above this with the reward is not independent of it
COUNTS = ("tp", "fp", "fn", "tn", "n", "oracle_unknown")
SUMS = ("n", "sx", "sy", "sxx", "syy", "sxy", "both", "neither", "judge_only", "reward_only")


def _added(blocks: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    return {key: sum(block[key] for block in blocks) for key in keys}


def validity_stats(counts: dict[str, float]) -> dict[str, Any]:
    """Accuracy, kappa, precision and recall of a confusion (module docstring)."""
    n = counts["n"]
    tp, fp, fn, tn = (counts[key] for key in ("tp", "fp", "fn", "tn"))
    observed = (tp + tn) / n if n else None
    judged, true = (tp + fp) / n if n else 0.0, (tp + fn) / n if n else 0.0
    expected = judged * true + (1 - judged) * (1 - true)
    kappa = None if observed is None or expected >= 1.0 else (observed - expected) / (
        1.0 - expected)
    return {"accuracy": observed, "kappa": kappa,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "n": int(n), "oracle_unknown_share": counts["oracle_unknown"] / n if n else None,
            "counts": {key: int(counts[key]) for key in COUNTS}}


def judge_validity(passk_docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every judge's agreement with the oracle over seeds (module docstring)."""
    blocks: dict[str, dict[str, list]] = {}
    for doc in passk_docs:
        for system, entry in doc["systems"].items():
            for kind, counts in (entry.get("judge_validity") or {}).items():
                blocks.setdefault(kind, {}).setdefault(system, []).append(counts)
    if not blocks:
        return {"available": False,
                "reason": "the oracle judge could not decide on these data (it needs the demo "
                          "corpus's stance and topic labels)"}
    judges = {}
    for kind, systems in blocks.items():
        every = [counts for parts in systems.values() for counts in parts]
        judges[kind] = {"overall": validity_stats(_added(every, COUNTS)),
                        "systems": {system: validity_stats(_added(parts, COUNTS))
                                    for system, parts in systems.items()}}
    return {"available": True, "truth": "oracle", "seeds": [doc.get("seed") for doc in passk_docs],
            "judges": judges}


def judge_reward(passk_docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every judge's agreement with the training reward over seeds and systems."""
    blocks: dict[str, list] = {}
    for doc in passk_docs:
        for entry in doc["systems"].values():
            for kind, sums in (entry.get("judge_reward") or {}).items():
                blocks.setdefault(kind, []).append(sums)
    reward = ((passk_docs[0].get("settings") or {}).get("agreement") or {}).get(
        "reward") if passk_docs else None
    if not blocks:
        return {"available": False, "reason": "the reference system's objective samples no "
                                              "reward (SFT, or no adapter)"}
    judges = {}
    for kind, parts in blocks.items():
        total = _added(parts, SUMS)
        agree = (total["both"] + total["neither"]) / total["n"] if total["n"] else None
        judges[kind] = {"pearson": pearson(total), "agreement": agree, "n": int(total["n"]),
                        "scored": all(part.get("scored") for part in parts)}
    dependent = [kind for kind, entry in judges.items()
                 if entry["pearson"] is not None and entry["pearson"] > INDEPENDENCE]
    return {"available": True, "reward": reward, "judges": judges,
            "independence_threshold": INDEPENDENCE, "not_independent": dependent}


def headroom(selection: dict[str, Any] | None, evaluation: EvaluationSettings,
             metric_order: Sequence[str]) -> dict[str, Any]:
    """The baseline's room for pass@k on validation and the verdict's k (module docstring)."""
    default = main_passk(metric_order)
    fixed = evaluation.verdict_k
    if not selection:
        return {"available": False, "k": fixed or (int(default.split("@")[1]) if default
                                                   else None),
                "reason": "no sampling search on validation: the verdict takes "
                          + (f"evaluation.verdict_k = {fixed}" if fixed else
                             "pass@10 (or the largest k)")}
    baseline = selection["systems"][selection["target_system"]]
    values = {int(name.split("@")[1]): value for name, value in
              baseline["candidates"][selection["target_system"]].items()
              if name.startswith("pass@") and name != "pass@1"}
    roomy = [k for k in sorted(values) if values[k] <= evaluation.headroom]
    chosen = fixed or (max(roomy) if roomy else int(default.split("@")[1]) if default else None)
    return {"available": True, "split": "val", "system": selection["target_system"],
            "headroom": evaluation.headroom, "val_passk": {str(k): v for k, v in values.items()},
            "k": chosen, "chosen_by": "config" if fixed else "validation",
            "room": bool(roomy) and (chosen in roomy),
            "rule": f"the largest k whose baseline validation pass@k is at most "
                    f"{evaluation.headroom:g}"}


def warnings(reward_block: dict[str, Any], room: dict[str, Any]) -> list[str]:
    """The verdict's warnings about the judges and the room for pass@k (lower-case sentences
    without a final period, as the verdict's)."""
    found = []
    for kind in reward_block.get("not_independent") or []:
        r = reward_block["judges"][kind]["pearson"]
        found.append(f"the {kind} judge's scores correlate with the training reward at r = "
                     f"{r:.2f} on the test samples (above {INDEPENDENCE:g}): it is not "
                     "independent of the reward, so pass@k under it partly measures what "
                     "training optimised")
    if room.get("available") and not room.get("room"):
        values = ", ".join(f"pass@{k} {v:.3f}" for k, v in room["val_passk"].items())
        found.append(f"the baseline leaves no room for pass@k on validation ({values}; room "
                     f"means at most {room['headroom']:g}): at pass@{room['k']} a diversity "
                     "objective has little to win, whatever it does")
    return found


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def validity_markdown(block: dict[str, Any]) -> str:
    """judge_validity.json as a table: per judge, over all systems and per system."""
    if not block.get("available"):
        return f"No judge validity: {block.get('reason')}."
    lines = ["| judge | system | accuracy | Cohen's kappa | precision | recall | samples | "
             "oracle unknown |", "|---|---|---|---|---|---|---|---|"]
    for kind, entry in block["judges"].items():
        for system, stats in [("all", entry["overall"]), *entry["systems"].items()]:
            lines.append(f"| {kind} | {system} | {_num(stats['accuracy'])} | "
                         f"{_num(stats['kappa'])} | {_num(stats['precision'])} | "
                         f"{_num(stats['recall'])} | {stats['n']} | "
                         f"{_num(stats['oracle_unknown_share'])} |")
    return "\n".join(lines)


def reward_markdown(block: dict[str, Any]) -> str:
    """judge_reward as a table: per judge, its correlation and decision agreement with the
    training reward."""
    if not block.get("available"):
        return f"No agreement with the reward: {block.get('reason')}."
    reward = block.get("reward") or {}
    gate = reward.get("quality_threshold")
    source = " calibrated on validation" if reward.get("gate_source") == "validation" else ""
    head = (f"The training reward: {reward.get('reward')} ({reward.get('reward_model')}, pass "
            f"at {_num(gate)}{source}), of experiment "
            f"{reward.get('experiment')}.\n\n")
    lines = ["| judge | Pearson r with the reward | pass decisions agree | samples |",
             "|---|---|---|---|"]
    for kind, entry in block["judges"].items():
        r = _num(entry["pearson"]) + ("" if entry["scored"] else " (point-biserial)")
        lines.append(f"| {kind} | {r} | {_num(entry['agreement'])} | {entry['n']} |")
    tail = ("" if not block["not_independent"] else
            f"\n\nAbove r = {block['independence_threshold']:g}: "
            + ", ".join(block["not_independent"]) + " (not independent of the reward).")
    return head + "\n".join(lines) + tail


def headroom_markdown(block: dict[str, Any]) -> str:
    """The room for pass@k in one paragraph."""
    if not block.get("available"):
        return f"Room for pass@k not checked: {block.get('reason')}."
    values = ", ".join(f"pass@{k} {v:.3f}" for k, v in block["val_passk"].items())
    verdict = (f"room at pass@{block['k']}" if block["room"] else
               f"**no room for pass@k** (the verdict keeps pass@{block['k']})")
    return (f"The baseline ({block['system']}) on validation at generation's settings: "
            f"{values}; room means at most {block['headroom']:g}: {verdict} (the verdict's k "
            f"chosen by {block['chosen_by']}: {block['rule']}).")


def paper_sentences(aggregated: dict[str, Any]) -> str:
    """The judges in the paper's setup, in plain text: who decided the passes, how the other
    judges agree with the oracle, and how the judges agree with the training reward."""
    judges = (((aggregated.get("settings") or {}).get("passk") or {}).get("judges") or {})
    primary = judges.get("primary", "similarity")
    parts = []
    if primary == "oracle":
        validity = aggregated.get("judge_validity") or {}
        unknown = [entry["overall"]["oracle_unknown_share"]
                   for entry in (validity.get("judges") or {}).values()]
        parts.append("Passes are decided by the demo corpus's own ground truth (the oracle "
                     "judge): a sample passes when it names the tweet's topic in one of the "
                     "stances of the tweet's references, as read from the generator's own "
                     "templates, with no encoder"
                     + (f"; {unknown[0]:.1%} of the test samples match no template and count "
                        "as fails." if unknown and unknown[0] is not None else "."))
        for kind, entry in (validity.get("judges") or {}).items():
            stats = entry["overall"]
            parts.append(f"Against the oracle, the {kind} judge decides {_num(stats['accuracy'])}"
                         f" of the test samples alike (Cohen's kappa {_num(stats['kappa'])}, "
                         f"precision {_num(stats['precision'])}, recall "
                         f"{_num(stats['recall'])} of a pass).")
    reward = aggregated.get("judge_reward") or {}
    for kind, entry in (reward.get("judges") or {}).items():
        if entry["pearson"] is None:
            continue
        how = "scores" if entry["scored"] else "decisions"
        parts.append(f"The {kind} judge's {how} correlate with the training reward at r = "
                     f"{entry['pearson']:.2f} and its pass decisions agree with the reward's "
                     f"on {_num(entry['agreement'])} of the samples"
                     + (": it is not independent of the reward." if kind in
                        reward.get("not_independent", []) else "."))
    return " ".join(parts)
