"""Significance of per-prompt differences: the reference system against each other system.

Why: one seed gives one number per prompt and system; whether the reference system beats another
system on a metric is a paired question over prompts. For metric m,
reference system A, other system B and the prompts where both values are defined, the paired
differences are d_p = m_A(p) - m_B(p), p = 1..N. Each test reports:

- mean difference  mean(d) = mean(m_A) - mean(m_B), the statistic of the test and the
  direction of every claim, so the two can never disagree;
- paired sign-flip permutation test of the mean difference (Fisher's randomisation test; Good,
  "Permutation, Parametric, and Bootstrap Tests of Hypotheses", 2005): under H0 each d_p is
  symmetric about 0, so flipping its sign leaves the distribution unchanged; the two-sided p is
  the share of sign vectors e in {-1, 1}^N with |mean_p e_p d_p| >= |mean_p d_p|,

      p = #{e : |sum_p e_p d_p| >= |sum_p d_p|} / 2^N        exactly, when 2^N <= B and N <= 20
      p = (1 + #{b : |sum_p e_bp d_p| >= |sum_p d_p|}) / (B + 1)        B random sign vectors

  (`numpy.random.default_rng([stats_seed, 1])`, fresh for every test). When every d_p is 0 the
  p is 1.0. It tests the same quantity that the bootstrap CI brackets;
- Cohen's d_z, the paired effect size, = mean(d) / std(d, ddof=1); 0.0 when every d_p is 0; null
  (with a note) when the differences are a non-zero constant (d_z would be infinite) or N < 2;
- bootstrap 95% percentile CI of mean(d): B resamples of the N prompts with replacement,
  ``numpy.random.default_rng(stats_seed)`` fresh for every test (reproducible, independent of
  test order), CI = [2.5th, 97.5th] percentile of the B resampled means;
- Holm-adjusted permutation p over the family of all tests of the seed (m tests, p sorted
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

from polychromic.evaluation.registry import get_metric
from polychromic.settings import EvaluationSettings

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


def crossed_t_test(diff: np.ndarray, ci: float = CI) -> tuple[float, float, float]:
    """(CI low, CI high, two-sided p) of the mean of `diff`, a seeds x tweets matrix of paired
    differences (no NaN), with seeds and tweets as crossed random factors.

    Every seed answers the same test tweets, so the mean over the S x T cells varies with the
    seeds (training runs) and with the tweets. Its variance is estimated by the method of
    moments as

        SE^2 = var_s(dbar_s.) / S + var_t(dbar_.t) / T

    (the variance of the seed means over S, plus that of the tweet means over T; it counts the
    interaction noise twice, so it errs wide), and the reference distribution is Student's t
    with Satterthwaite's degrees of freedom (Satterthwaite 1946, "An approximate distribution of
    estimates of variance components"),

        df = SE^4 / ( (var_s/S)^2 / (S-1) + (var_t/T)^2 / (T-1) ),

    so that with few seeds and a real seed-to-seed spread df falls towards S - 1 and the
    interval widens as it should; with identical seeds it is the paired t over tweets.
    CI = mean -+ t_{df, (1+ci)/2} SE; p = 2 P(T_df >= |mean| / SE). A zero SE (every cell the
    same) gives p = 1.0 for a zero mean and 0.0 otherwise, with the interval a point.
    A percentile bootstrap that resamples seeds is anticonservative with 3 seeds (it shrinks the
    seed variance by (S-1)/S and has no small-sample widening), which is why this rule is a t.
    """
    from scipy import stats as st

    n_seeds, n_tweets = diff.shape
    mean = float(diff.mean())
    seed_part = float(np.var(diff.mean(axis=1), ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    tweet_part = float(np.var(diff.mean(axis=0), ddof=1)) / n_tweets if n_tweets > 1 else 0.0
    se = math.sqrt(seed_part + tweet_part)
    if se == 0.0:
        return mean, mean, 1.0 if mean == 0.0 else 0.0
    denominator = ((seed_part ** 2 / (n_seeds - 1) if n_seeds > 1 else 0.0)
                   + (tweet_part ** 2 / (n_tweets - 1) if n_tweets > 1 else 0.0))
    df = (seed_part + tweet_part) ** 2 / denominator
    half = float(st.t.ppf((1.0 + ci) / 2.0, df)) * se
    return mean - half, mean + half, float(2.0 * st.t.sf(abs(mean) / se, df))


def sign_flip_p(diff: np.ndarray, samples: int, seed: int, chunk: int = 4096) -> float:
    """Two-sided p of the paired sign-flip permutation test of mean(diff) (module docstring):
    exact over all 2^N sign vectors when that is at most `samples`, else Monte Carlo."""
    n = diff.size
    observed = abs(float(diff.sum())) - 1e-12 * max(1.0, float(np.abs(diff).sum()))
    if not np.any(diff):
        return 1.0
    if n <= 20 and 2**n <= samples:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ diff) >= observed))
    rng = np.random.default_rng([seed, 1])
    extreme = 0
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        extreme += int(np.sum(np.abs(signs @ diff) >= observed))
    return (1 + extreme) / (samples + 1)


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
    permutation_samples: int,
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
                    "p",
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
        notes.append("all paired differences are 0: p = 1.0")
    result["p"] = sign_flip_p(diff, permutation_samples, seed)
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


def test_settings(settings: EvaluationSettings) -> dict[str, Any]:
    """How the tests of `statistical_tests` were made, for the settings of the file."""
    return {"reference_system": settings.reference_system,
            "bootstrap_samples": settings.bootstrap_samples,
            "permutation_samples": settings.permutation_samples,
            "stats_seed": settings.stats_seed, "correction": "holm", "ci": CI, "alpha": ALPHA,
            "test": "paired sign-flip permutation test of the mean difference, two-sided (exact "
                    "when 2^n <= permutation_samples, else Monte Carlo, numpy "
                    "default_rng([stats_seed, 1]) per test)",
            "cohens_d_z": "mean(diff) / std(diff, ddof=1), diff = reference - other (paired)",
            "bootstrap": "percentile CI of mean(diff), prompts resampled, "
                         "numpy default_rng(stats_seed) per test"}


def statistical_tests(per_prompt: dict[str, dict[str, Sequence[float | None]]],
                      settings: EvaluationSettings) -> list[dict[str, Any]]:
    """Test the reference system against every other system on every shared metric.

    `per_prompt[system][metric]` is the metric's per-prompt list (same prompt order for all
    systems). Holm correction runs over the whole list of tests returned.
    """
    reference_system = settings.reference_system
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
            row.update(paired_test(ref_values, metrics[metric], settings.bootstrap_samples,
                                   settings.stats_seed, settings.permutation_samples))
            tests.append(row)
    adjusted = holm([row["p"] for row in tests])
    for row, p_holm in zip(tests, adjusted, strict=True):
        row["p_holm"] = p_holm
        row["better"] = better(row["metric"], row["mean_diff"], p_holm, reference_system)
        if "notes" in row:
            row["notes"] = row.pop("notes")  # keep notes last, after the contract's fields
    return tests
