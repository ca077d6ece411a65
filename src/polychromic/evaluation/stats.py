"""Significance of per-prompt differences: the reference system against each other system.

Why: one seed gives one number per prompt and system; whether the reference system beats another
system on a metric is a paired question over prompts. For metric m,
reference system A, other system B and the prompts where both values are defined, the paired
differences are d_p = m_A(p) - m_B(p), p = 1..N. Each test reports:

- mean difference  mean(d) = mean(m_A) - mean(m_B);
- Wilcoxon signed-rank test (scipy.stats.wilcoxon, two-sided, zero_method='wilcox': zero
  differences are dropped; exact or normal approximation as scipy's method='auto' chooses). When
  every d_p is 0 there is nothing to rank: statistic 0, p = 1.0 and a note;
- Cohen's d_z, the paired effect size, = mean(d) / std(d, ddof=1); 0.0 when every d_p is 0; null
  (with a note) when the differences are a non-zero constant (d_z would be infinite) or N < 2;
- bootstrap 95% percentile CI of mean(d): B resamples of the N prompts with replacement,
  ``numpy.random.default_rng(stats_seed)`` fresh for every test (reproducible, independent of
  test order), CI = [2.5th, 97.5th] percentile of the B resampled means;
- Holm-adjusted Wilcoxon p over the family of all tests of the seed (m tests, p sorted
  ascending p_(1) <= ... <= p_(m))::

      p_holm_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))

- ``better``: the reference system's name when p_holm < 0.05 and mean(d) points in the metric's
  good direction (from the registry: lower Self-BLEU and perplexity are better), "other" when
  p_holm < 0.05 and it points the other way, else "none".

These are one seed's tests. When a difference counts as *detectable* over seeds, for the
tables, the paper and the verdict, is decided in one place: `polychromic.reporting.significance`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from polychromic.evaluation.registry import get_metric

ALPHA = 0.05
CI = 0.95


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values; None entries stay None and are not in the family."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def cohens_d_z(diff: np.ndarray) -> float | None:
    """Cohen's d_z (paired) = mean(diff) / std(diff, ddof=1); 0.0 for all-zero differences."""
    if diff.size and not np.any(diff):
        return 0.0
    if diff.size < 2:
        return None
    sd = float(np.std(diff, ddof=1))
    return float(np.mean(diff) / sd) if sd > 0 else None


def bootstrap_ci(
    diff: np.ndarray, samples: int, seed: int, ci: float = CI, chunk: int = 256
) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(diff), resampling prompts with a seeded default_rng."""
    rng = np.random.default_rng(seed)
    n = diff.size
    means = np.empty(samples)
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = diff[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    tail = (1.0 - ci) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def finite_or_none(value: Any) -> float | None:
    """A JSON-safe number: None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def paired_test(
    reference: Sequence[float | None],
    other: Sequence[float | None],
    bootstrap_samples: int,
    seed: int,
) -> dict[str, Any]:
    """All statistics of one (metric, reference, other) pair; prompts with a null are skipped."""
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} reference values but {len(other)} other values")
    pairs = [
        (a, b) for a, b in zip(reference, other, strict=True) if a is not None and b is not None
    ]
    result: dict[str, Any] = {"n_prompts": len(pairs)}
    notes = []
    if len(pairs) < len(reference):
        notes.append(f"{len(reference) - len(pairs)} prompt(s) with a null value left out")
    if not pairs:
        notes.append("no prompt with values for both systems: nothing to test")
        result.update(
            dict.fromkeys(
                (
                    "mean_reference",
                    "mean_other",
                    "mean_diff",
                    "ci_low",
                    "ci_high",
                    "wilcoxon_statistic",
                    "wilcoxon_p",
                    "cohens_d_z",
                )
            )
        )
        result["notes"] = notes
        return result
    a = np.array([p[0] for p in pairs], dtype=np.float64)
    b = np.array([p[1] for p in pairs], dtype=np.float64)
    diff = a - b
    result.update(
        mean_reference=float(a.mean()), mean_other=float(b.mean()), mean_diff=float(diff.mean())
    )
    low, high = bootstrap_ci(diff, bootstrap_samples, seed)
    result.update(ci_low=low, ci_high=high)
    if not np.any(diff):
        notes.append("all paired differences are 0: Wilcoxon statistic 0, p = 1.0")
        result.update(wilcoxon_statistic=0.0, wilcoxon_p=1.0)
    else:
        w = stats.wilcoxon(a, b, alternative="two-sided")
        result.update(
            wilcoxon_statistic=finite_or_none(w.statistic), wilcoxon_p=finite_or_none(w.pvalue)
        )
    result["cohens_d_z"] = cohens_d_z(diff)
    if result["cohens_d_z"] is None:
        notes.append("Cohen's d_z undefined (fewer than 2 prompts or a constant non-zero "
                     "difference)")
    if notes:
        result["notes"] = notes
    return result


def better(
    metric: str, mean_diff: float | None, p_adjusted: float | None, reference_system: str
) -> str:
    """Which system is significantly better on `metric` (by the registry's direction)."""
    if p_adjusted is None or mean_diff is None or p_adjusted >= ALPHA or mean_diff == 0:
        return "none"
    good = mean_diff > 0 if get_metric(metric).higher_is_better else mean_diff < 0
    return reference_system if good else "other"


def test_settings(reference_system: str, bootstrap_samples: int, stats_seed: int
                  ) -> dict[str, Any]:
    """How the tests of `statistical_tests` were made, for the settings of the file."""
    return {"reference_system": reference_system, "bootstrap_samples": bootstrap_samples,
            "stats_seed": stats_seed, "correction": "holm", "ci": CI, "alpha": ALPHA,
            "wilcoxon": "scipy.stats.wilcoxon two-sided, zero_method='wilcox'",
            "cohens_d_z": "mean(diff) / std(diff, ddof=1), diff = reference - other (paired)",
            "bootstrap": "percentile CI of mean(diff), prompts resampled, "
                         "numpy default_rng(stats_seed) per test"}


def statistical_tests(
    per_prompt: dict[str, dict[str, Sequence[float | None]]],
    reference_system: str,
    bootstrap_samples: int,
    stats_seed: int,
) -> list[dict[str, Any]]:
    """Test the reference system against every other system on every shared metric.

    `per_prompt[system][metric]` is the metric's per-prompt list (same prompt order for all
    systems). Holm correction runs over the whole list of tests returned.
    """
    if reference_system not in per_prompt:
        raise KeyError(f"reference system {reference_system!r} not among {sorted(per_prompt)}")
    reference = per_prompt[reference_system]
    tests = []
    for metric, ref_values in reference.items():
        for system, metrics in per_prompt.items():
            if system == reference_system or metric not in metrics:
                continue
            row = {
                "metric": metric,
                "system": reference_system,
                "other": system,
                "higher_is_better": get_metric(metric).higher_is_better,
            }
            row.update(paired_test(ref_values, metrics[metric], bootstrap_samples, stats_seed))
            tests.append(row)
    adjusted = holm([row["wilcoxon_p"] for row in tests])
    for row, p_holm in zip(tests, adjusted, strict=True):
        row["wilcoxon_p_holm"] = p_holm
        row["better"] = better(row["metric"], row["mean_diff"], p_holm, reference_system)
        if "notes" in row:
            row["notes"] = row.pop("notes")  # keep notes last, after the contract's fields
    return tests
