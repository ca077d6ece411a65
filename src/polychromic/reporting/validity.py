"""When a comparison cannot say anything: degenerate measurements and void comparisons.

Why: pointed at a real collection with a weak or mis-set pass criterion, every system's pass@k
can be 0 on every test tweet; a paired test of 0 against 0 then reports "no detectable
difference" with a CI of [0, 0], a null result that is really a broken measurement. And a
"polychromic" system whose saved adapter is the untouched base model measures nothing of its
objective. The verdict names both instead of testing them (`reporting.verdict`):

- **degenerate** (`degenerate_reason`): on a metric whose per-tweet values lie in [0, 1]
  (pass@k, coverage), the share of test tweets on which both systems sit at the same bound (0,
  or 1) in every seed is at least `evaluation.degenerate_share` (0.95): those tweets are ties
  that carry no information, and the few others cannot carry a test. Two systems with the same
  per-tweet pass@1 and pass@k on every tweet and seed have no difference and no variance to
  test (`identical_reason`; one identical row alone, such as a perfectly matched pass@1, is no
  obstacle, and a constant non-zero difference is a perfectly consistent effect, tested). A
  degenerate pass@1 or pass@k row makes the verdict **inconclusive (degenerate)**, with the
  reason; a degenerate coverage row is marked;
- **void** (`void_reason`): one of the two systems is the base model in every seed (its saved
  adapter is the initial, zero LoRA: `adapter_is_initial` in every run), or the two are the
  same model at the same sampling (one experiment, one sampling setting), or the two
  experiments' saved adapters are equal weight for weight in every seed (`adapter_sha256` of
  run.json; a sampling objective whose policy term was always zero trains the baseline's
  adapter bit for bit, and the reason names that cause). The verdict is **void**, with the
  reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polychromic.evaluation.registry import get_metric, parse_passk
from polychromic.reporting.significance import Evidence, seed_means_per_prompt
from polychromic.systems import parse_system
from polychromic.training.gate import ZERO_CAUSE

DEGENERATE = "inconclusive (degenerate)"
VOID = "void"
BOUNDED = ("coverage",)  # besides pass@k: per-tweet values in [0, 1]
ADVICE = {
    "passk": "the pass criterion cannot separate the systems on this data: calibrate the pass "
             "threshold on validation (evaluation.passk.threshold: null) or choose another "
             "judge",
    "coverage": "the coverage criterion cannot separate the systems on this data: check that "
                "the references carry stances and that the judge's threshold is calibrated",
}


def _bounded(metric: str) -> bool:
    return parse_passk(metric) is not None or metric in BOUNDED


def _values(evidence: Evidence, metric: str, reference: str,
            other: str) -> tuple[np.ndarray, np.ndarray]:
    """Both systems' per-seed, per-tweet values of `metric` on the tweets both have."""
    docs = [documents[get_metric(metric).group] for documents in evidence.seed_documents]
    _, ref = seed_means_per_prompt(docs, reference, metric)
    _, oth = seed_means_per_prompt(docs, other, metric)
    keep = ~(np.isnan(ref).any(axis=0) | np.isnan(oth).any(axis=0))
    return ref[:, keep], oth[:, keep]


def identical_reason(evidence: Evidence, metrics: list[str], reference: str,
                     other: str) -> str | None:
    """Why nothing can be tested when the two systems have the same per-tweet values of every
    one of `metrics` in every seed (no difference and no variance), or None."""
    for metric in metrics:
        ref, oth = _values(evidence, metric, reference, other)
        if not ref.size or not np.array_equal(ref, oth):
            return None
    labels = " and ".join(get_metric(metric).label for metric in metrics)
    return (f"{reference} and {other} have the same {labels} on every test tweet in every "
            "seed: there is no difference, and no variance, to test")


def degenerate_reason(evidence: Evidence, metric: str, reference: str, other: str,
                      share: float) -> str | None:
    """Why `metric` (bounded in [0, 1]) cannot separate `reference` from `other` on these
    tweets (module docstring), or None when it can."""
    if not _bounded(metric):
        return None
    ref, oth = _values(evidence, metric, reference, other)
    if not ref.size:
        return None
    label = get_metric(metric).label
    advice = ADVICE["passk" if parse_passk(metric) is not None else "coverage"]
    at = {bound: (np.isclose(ref, bound) & np.isclose(oth, bound)).all(axis=0).mean()
          for bound in (0.0, 1.0)}
    tied = at[0.0] + at[1.0]
    if tied < share:
        return None
    where = (f"is {bound:g} for {value:.0%} of test tweets in both systems"
             for bound, value in at.items() if value >= share)
    what = next(where, f"is 0 or 1 in both systems for {tied:.0%} of test tweets")
    return f"{label} {what} ({reference}, {other}, every seed): {advice}"


def _experiment_of(aggregated: dict[str, Any], system: str) -> tuple[str, dict] | None:
    for name, entry in (aggregated.get("experiments") or {}).items():
        if system in (entry.get("systems") or []):
            return name, entry
    return None


def _sampling(aggregated: dict[str, Any], system: str) -> Any:
    chosen = ((aggregated.get("selection") or {}).get("systems") or {}).get(system)
    return chosen["sampling"] if chosen else parse_system(system).overrides.items()


def void_reason(aggregated: dict[str, Any], reference: str, other: str) -> str | None:
    """Why the comparison of `reference` with `other` is void (module docstring), or None."""
    seeds = set(aggregated.get("seeds") or [])
    served = {system: _experiment_of(aggregated, system) for system in (reference, other)}
    for system, found in served.items():
        if found and seeds and seeds <= set(found[1].get("initial_adapter_seeds") or []):
            return (f"{system} is the untouched base model in every seed: the saved adapter of "
                    f"experiment {found[0]} is the initial, zero LoRA (run.json: "
                    "adapter_is_initial), so the comparison measures nothing of its objective "
                    "(training.checkpoint_selection: last keeps the trained adapter)")
    if not (served[reference] and served[other]):
        return None
    if (served[reference][0] == served[other][0]
            and _sampling(aggregated, reference) == _sampling(aggregated, other)):
        return (f"{reference} and {other} are the same model (experiment "
                f"{served[reference][0]}) at the same sampling: there is nothing to compare")
    return identical_adapters_reason(served[reference], served[other])


def identical_adapters_reason(first: tuple[str, dict], second: tuple[str, dict]) -> str | None:
    """Why two experiments whose saved adapters are equal weight for weight in every seed
    (`adapter_sha256` of their runs) cannot be compared, naming the zero policy term when that
    is the cause; None when some seed differs or a digest is missing."""
    (name_a, a), (name_b, b) = first, second
    digests_a, digests_b = a.get("adapter_sha256") or [], b.get("adapter_sha256") or []
    if name_a == name_b or not digests_a or None in digests_a or digests_a != digests_b:
        return None
    reason = (f"the saved adapters of experiments {name_a} and {name_b} are identical, weight "
              "for weight, in every seed (run.json: adapter_sha256), so the systems are one "
              "model and the comparison measures nothing of either objective")
    causes = []
    for name, entry in ((name_a, a), (name_b, b)):
        zero = entry.get("zero_term") or {}
        if zero.get("share") == 1.0:
            causes.append(f"{name}'s policy-gradient term was zero in every one of its "
                          f"{zero['sampling_steps']} sampling steps: "
                          + ZERO_CAUSE.format(at=f" ({_gate(entry)})"))
    return reason + (f": {'; '.join(causes)}" if causes else "")


def _gate(entry: dict[str, Any]) -> str:
    thresholds = [t for t in (entry.get("quality_gate") or {}).get("thresholds") or []
                  if t is not None]
    source = (entry.get("quality_gate") or {}).get("source")
    return f"{thresholds[0]:.3f}, {source}" if thresholds else "unknown"
