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
from dataclasses import dataclass
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


# Quadrature nodes u on (0, 1) and weights for the Behrens-Fisher integral
# (`behrens_fisher_sf`): Gauss-Legendre in v, u = sin^2(pi v / 2), which packs nodes into both
# tails of the integrated t distribution.
_V, _W = np.polynomial.legendre.leggauss(128)
_V = (_V + 1.0) / 2.0
_NODES = np.sin(np.pi * _V / 2.0) ** 2
_WEIGHTS = _W / 2.0 * np.pi / 2.0 * np.sin(np.pi * _V)


def behrens_fisher_sf(q: Any, c: Any, s: Any, nu_a: Any, nu_b: Any) -> np.ndarray:
    """P(|c T_a + s T_b| >= q) for independent T_a ~ t(nu_a), T_b ~ t(nu_b): the two-sided tail
    of the Behrens-Fisher distribution (arrays broadcast; c, s >= 0, c^2 + s^2 = 1).

    The integral runs over the variable with the smaller coefficient, in probability space
    (x = F^-1(u), 128 Gauss-Legendre nodes on v with u = sin^2(pi v / 2), dense in the tails),
    with the other's distribution function in
    closed form: P = E_x[ F_big(-(q + small x) / big) + 1 - F_big((q - small x) / big) ].
    With the smaller coefficient the integrand varies no faster than the integrated variable's
    own spread, so the rule is accurate to about 1e-5 (tested against adaptive quadrature);
    a zero coefficient gives the other variable's t tail exactly.
    """
    from scipy import stats as st

    q, c, s, nu_a, nu_b = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                                for v in (q, c, s, nu_a, nu_b)))
    swap = c > s
    small, big = np.where(swap, s, c)[..., None], np.where(swap, c, s)[..., None]
    nu_small, nu_big = np.where(swap, nu_b, nu_a), np.where(swap, nu_a, nu_b)
    values, where = np.unique(nu_small, return_inverse=True)  # few distinct df: ppf once each
    x = st.t.ppf(_NODES[None, :], values[:, None])[where.reshape(nu_small.shape)]
    q = q[..., None]
    tail = (st.t.sf((q - small * x) / big, nu_big[..., None])
            + st.t.cdf((-q - small * x) / big, nu_big[..., None]))
    return np.clip(tail @ _WEIGHTS, 0.0, 1.0)


@dataclass(frozen=True)
class Crossed:
    """The crossed test's pieces for a batch of seeds x tweets matrices (`crossed_parts`):
    means, the seed part `a` and tweet part `b` of the squared standard error, and their
    degrees of freedom; every field an array over the batch."""

    mean: np.ndarray
    a: np.ndarray
    b: np.ndarray
    nu_a: np.ndarray
    nu_b: np.ndarray

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(self.a + self.b)

    def tail(self, q: Any) -> np.ndarray:
        """P(|BF| >= q) under this batch's weights (the reference distribution)."""
        se = self.se
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(se > 0, np.sqrt(self.a) / se, 0.0)
            s = np.where(se > 0, np.sqrt(self.b) / se, 1.0)
        return behrens_fisher_sf(q, c, s, self.nu_a, self.nu_b)

    def p(self) -> np.ndarray:
        """Two-sided p of mean = 0; an exactly zero SE gives 1.0 for a zero mean, else 0.0."""
        se = self.se
        with np.errstate(invalid="ignore", divide="ignore"):
            stat = np.where(se > 0, np.abs(self.mean) / np.where(se > 0, se, 1.0), 0.0)
        p = self.tail(stat)
        return np.where(se > 0, p, np.where(self.mean == 0, 1.0, 0.0))


def crossed_parts(diffs: np.ndarray) -> Crossed:
    """The method-of-moments pieces of the crossed test (`crossed_t_test`) for `diffs`, an
    array (..., S, T) of seeds x tweets matrices of paired differences without NaN."""
    diffs = np.asarray(diffs, dtype=np.float64)
    n_seeds, n_tweets = diffs.shape[-2:]
    if n_seeds * n_tweets < 2:
        raise ValueError("the crossed test needs at least two cells (seeds x tweets)")
    mean = diffs.mean(axis=(-2, -1))
    seed_means, tweet_means = diffs.mean(axis=-1), diffs.mean(axis=-2)
    cells = n_seeds * n_tweets
    if n_tweets == 1:  # seeds only: the t over seed means
        a = np.var(seed_means, axis=-1, ddof=1) / n_seeds
        return Crossed(mean, a, np.zeros_like(a), np.full_like(a, n_seeds - 1.0),
                       np.ones_like(a))
    if n_seeds == 1:  # tweets only: the paired t
        b = np.var(tweet_means, axis=-1, ddof=1) / n_tweets
        return Crossed(mean, np.zeros_like(b), b, np.ones_like(b),
                       np.full_like(b, n_tweets - 1.0))
    ms_seeds = n_tweets * np.var(seed_means, axis=-1, ddof=1)
    ms_tweets = n_seeds * np.var(tweet_means, axis=-1, ddof=1)
    residual = diffs - seed_means[..., None] - tweet_means[..., None, :] + mean[..., None, None]
    df_error = (n_seeds - 1) * (n_tweets - 1)
    ms_error = (residual ** 2).sum(axis=(-2, -1)) / df_error
    return Crossed(mean, ms_seeds / cells, np.maximum(ms_tweets - ms_error, 0.0) / cells,
                   np.full_like(mean, n_seeds - 1.0), np.full_like(mean, n_tweets - 1.0))


def crossed_quantile(parts: Crossed, ci: float) -> float:
    """q with P(|BF| >= q) = 1 - ci for one matrix's `parts` (a scalar batch)."""
    from scipy.optimize import brentq

    level = 1.0 - ci
    high = 10.0
    while float(parts.tail(high)) > level:
        high *= 4.0
    return float(brentq(lambda q: float(parts.tail(q)) - level, 0.0, high, xtol=1e-10))


def crossed_t_test(diff: np.ndarray, ci: float = CI) -> tuple[float, float, float]:
    """(CI low, CI high, two-sided p) of the mean of `diff`, a seeds x tweets matrix of paired
    differences (no NaN), with seeds and tweets as crossed random factors.

    The model: d(s, t) = mu + a_s + b_t + e_st, seed effects a (training runs), tweet effects b
    and their interaction e independent with variances s_a^2, s_b^2, s_e^2, so that

        Var(dbar) = s_a^2 / S + s_b^2 / T + s_e^2 / (S T).

    From the two-way table's mean squares (MS_S over seeds, S - 1 df; MS_T over tweets, T - 1
    df; MS_E the residual, (S - 1)(T - 1) df), E[MS_S] = s_e^2 + T s_a^2 and
    E[MS_T - MS_E] = S s_b^2, so Var(dbar) is estimated without bias by A + B with

        A = MS_S / (S T)                (the seed part: S - 1 degrees of freedom)
        B = max(MS_T - MS_E, 0) / (S T) (the tweet part: T - 1 degrees of freedom)

    and the statistic is t = dbar / sqrt(A + B). Its reference distribution is the
    Behrens-Fisher distribution (Fisher 1935, "The fiducial argument in statistical
    inference"), t ~ T_a cos(theta) + T_b sin(theta), with T_a ~ t(S - 1), T_b ~ t(T - 1)
    independent and cos^2(theta) = A / (A + B) (`behrens_fisher_sf`); the CI is
    dbar -+ q sqrt(A + B) with P(|BF| >= q) = 1 - ci. B's uncertainty is MS_T's (MS_E has
    (S - 1)(T - 1) degrees of freedom), and where MS_T is close to MS_E the tweet part is
    small next to the seed part, which holds the interaction; Satterthwaite's df of the
    difference MS_T - MS_E instead falls below 1 there and made the test needlessly wide with
    few tweets (simulated: it cost up to a third of the power at 40 tweets, and the level held
    either way).

    Why not Student's t with Satterthwaite's df (Satterthwaite 1946), as before: with 3 seeds
    the seed part has 2 degrees of freedom, and a df estimated from it is too noisy to carry a
    t reference. When A comes out small by chance, that df jumps up and the critical value
    falls, and the test rejected up to 7.4 % of true nulls at 0.05 and 4.6 % at 0.05/3 in
    simulation. The Behrens-Fisher test is conservative for every variance ratio (Robinson
    1976, "Properties of Student's t and of the Behrens-Fisher solution to the two means
    problem", Annals of Statistics 4: 963-971), and in this design's simulation
    (`python -m polychromic.reporting.power --simulate`, the table in docs/statistics.md) it
    holds alpha and alpha / 3 at every seed variance with 3 and 5 seeds. The price is power
    at 3 seeds when the seeds agree; with 5 seeds it matches Satterthwaite's.

    With one seed it is the paired t over tweets, with one tweet the t over seeds. A zero SE
    (every cell the same) gives p = 1.0 for a zero mean and 0.0 otherwise, the interval a
    point.
    """
    parts = crossed_parts(np.asarray(diff, dtype=np.float64))
    mean, se, p = float(parts.mean), float(parts.se), float(parts.p())
    if se == 0.0:
        return mean, mean, p
    half = crossed_quantile(parts, ci) * se
    return mean - half, mean + half, p


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
