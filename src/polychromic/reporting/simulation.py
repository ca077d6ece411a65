"""The primary rule run on simulated studies: its false-positive rate and its power, measured.

Why: a test's level is a property of the test *with this design*, and with 3 seeds the usual
approximations fail (Satterthwaite's t rejected up to 7 % of true nulls at 0.05). So the
project does not assume the rule holds its level: it simulates it, and every power figure it
reports is a simulation of the rule it uses, not a formula for another rule.

The model of one metric's seeds x tweets table of paired differences (the one the crossed test
assumes, `stats.crossed_t_test`):

    d(s, t) = delta + a_s + b_t + e_st,   a ~ N(0, seed^2), b ~ N(0, tweet^2),
                                          e ~ N(0, interaction^2), all independent,

with the three standard deviations in `Components` (given, or estimated from a run's own table
by the method of moments: `Components.from_matrix`). A simulated study draws one such table per
metric of the family (the verdict's: pass@1, pass@k, coverage, each with its own components;
the metrics are drawn independently) and runs the rule exactly as the verdict does:
`stats.crossed_parts` for each metric's p, then `significance.decide` for Holm over the family
and the seeds' sign agreement. Over R replicates the rate of a decision is its share, with its
Monte Carlo standard error sqrt(rate (1 - rate) / R).

The limits of the model: per-tweet pass@k differences are bounded and discrete, not normal, and
the family's metrics are correlated in a real study; the simulation checks the rule's level
under the model the test assumes, at variance components a study actually has.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polychromic.evaluation.stats import crossed_parts
from polychromic.reporting.significance import decide

ALPHA = 0.05
CHUNK = 1000  # replicates drawn at once (memory: CHUNK x seeds x tweets floats per metric)


@dataclass(frozen=True)
class Components:
    """Standard deviations of the seed effect, the tweet effect and their interaction."""

    seed: float
    tweet: float
    interaction: float

    @classmethod
    def from_matrix(cls, diff: np.ndarray) -> Components:
        """Method-of-moments estimates from a seeds x tweets table (no NaN): s_e^2 = MS_E,
        s_a^2 = max(0, (MS_S - MS_E) / T), s_b^2 = max(0, (MS_T - MS_E) / S); with one seed the
        seed part is 0 and the tweets' variance is the tweet effect."""
        diff = np.asarray(diff, dtype=np.float64)
        n_seeds, n_tweets = diff.shape
        if n_tweets < 2:
            raise ValueError("variance components need at least 2 tweets")
        if n_seeds < 2:
            return cls(0.0, float(np.std(diff, ddof=1)), 0.0)
        seed_means, tweet_means = diff.mean(axis=1), diff.mean(axis=0)
        residual = diff - seed_means[:, None] - tweet_means[None, :] + diff.mean()
        ms_error = float((residual ** 2).sum()) / ((n_seeds - 1) * (n_tweets - 1))
        ms_seeds = n_tweets * float(np.var(seed_means, ddof=1))
        ms_tweets = n_seeds * float(np.var(tweet_means, ddof=1))
        return cls(math.sqrt(max(0.0, (ms_seeds - ms_error) / n_tweets)),
                   math.sqrt(max(0.0, (ms_tweets - ms_error) / n_seeds)),
                   math.sqrt(ms_error))

    def as_dict(self) -> dict[str, float]:
        return {"seed": self.seed, "tweet": self.tweet, "interaction": self.interaction}


@dataclass(frozen=True)
class Rates:
    """What R simulated studies gave: per metric of the family the share of replicates in
    which it was detectable, the share in which any was, and the raw test's rejection rates
    at alpha and at alpha / family (Holm's first step) for the first metric."""

    detectable: list[float]
    any_detectable: float
    test_alpha: float
    test_first_step: float
    replicates: int

    def se(self, rate: float) -> float:
        """The Monte Carlo standard error of a rate."""
        return math.sqrt(max(rate * (1.0 - rate), 0.0) / self.replicates)


def draw(rng: np.random.Generator, components: Components, delta: float, replicates: int,
         seeds: int, tweets: int) -> np.ndarray:
    """`replicates` seeds x tweets tables of the model (module docstring)."""
    return (delta + components.seed * rng.standard_normal((replicates, seeds, 1))
            + components.tweet * rng.standard_normal((replicates, 1, tweets))
            + components.interaction * rng.standard_normal((replicates, seeds, tweets)))


def simulate(components: Sequence[Components], deltas: Sequence[float], seeds: int,
             tweets: int, replicates: int, seed: int = 0, alpha: float = ALPHA) -> Rates:
    """Run the primary rule on `replicates` simulated studies of `seeds` x `tweets`, one table
    per metric of the family (`components[j]`, true difference `deltas[j]`)."""
    if len(components) != len(deltas) or not components:
        raise ValueError("one true difference per metric of the family")
    rng = np.random.default_rng(seed)
    family = len(components)
    detected = np.zeros(family)
    any_hits = first = first_step = 0
    for start in range(0, replicates, CHUNK):
        size = min(CHUNK, replicates - start)
        p = np.empty((size, family))
        diffs = np.empty((size, family))
        seed_diffs = np.empty((size, family, seeds))
        for j, (parts, delta) in enumerate(zip(components, deltas, strict=True)):
            tables = draw(rng, parts, delta, size, seeds, tweets)
            crossed = crossed_parts(tables)
            p[:, j], diffs[:, j] = crossed.p(), crossed.mean
            seed_diffs[:, j] = tables.mean(axis=-1)
        _, detectable = decide(p, seed_diffs, diffs, alpha)
        detected += detectable.sum(axis=0)
        any_hits += int(detectable.any(axis=1).sum())
        first += int((p[:, 0] < alpha).sum())
        first_step += int((p[:, 0] < alpha / family).sum())
    return Rates([float(x) / replicates for x in detected], any_hits / replicates,
                 first / replicates, first_step / replicates, replicates)


def power(components: Sequence[Components], index: int, delta: float, seeds: int, tweets: int,
          replicates: int, seed: int = 0, alpha: float = ALPHA) -> float:
    """The share of simulated studies in which metric `index` of the family is detectable when
    its true difference is `delta` and the others' are 0."""
    deltas = [delta if j == index else 0.0 for j in range(len(components))]
    return simulate(components, deltas, seeds, tweets, replicates, seed,
                    alpha).detectable[index]


def detectable_delta(components: Sequence[Components], index: int, seeds: int, tweets: int,
                     replicates: int, target: float = 0.8, seed: int = 0,
                     alpha: float = ALPHA, upper: float = 1.0) -> float | None:
    """The smallest true difference of metric `index` that the rule detects with power
    `target`, by bisection on delta with the same random draws at every delta (so the power
    curve is smooth); None when even `upper` falls short."""
    if power(components, index, upper, seeds, tweets, replicates, seed, alpha) < target:
        return None
    low, high = 0.0, upper
    while high - low > 1e-3:
        middle = (low + high) / 2.0
        if power(components, index, middle, seeds, tweets, replicates, seed, alpha) >= target:
            high = middle
        else:
            low = middle
    return high


def satterthwaite_p(tables: np.ndarray) -> np.ndarray:
    """Two-sided p of the crossed test this project used before (shown next to the rule's in
    the level table, as the reason for the change): SE^2 = var(seed means) / S + var(tweet
    means) / T, Student's t with Satterthwaite's degrees of freedom (Satterthwaite 1946)."""
    from scipy import stats as st

    n_seeds, n_tweets = tables.shape[-2:]
    seed_part = np.var(tables.mean(axis=-1), axis=-1, ddof=1) / n_seeds
    tweet_part = np.var(tables.mean(axis=-2), axis=-1, ddof=1) / n_tweets
    se = np.sqrt(seed_part + tweet_part)
    df = (seed_part + tweet_part) ** 2 / (seed_part ** 2 / (n_seeds - 1)
                                          + tweet_part ** 2 / (n_tweets - 1))
    return 2.0 * st.t.sf(np.abs(tables.mean(axis=(-2, -1))) / se, df)


def former_rates(components: Components, seeds: int, tweets: int, replicates: int,
                 seed: int = 0, alpha: float = ALPHA, family: int = 3) -> tuple[float, float]:
    """(rejection rate at alpha, at alpha / family) of `satterthwaite_p` under the null."""
    rng = np.random.default_rng([seed, 2])
    hits = np.zeros(2)
    for start in range(0, replicates, CHUNK):
        p = satterthwaite_p(draw(rng, components, 0.0, min(CHUNK, replicates - start), seeds,
                                 tweets))
        hits += [(p < alpha).sum(), (p < alpha / family).sum()]
    return float(hits[0]) / replicates, float(hits[1]) / replicates


def equivalence_rate(components: Components, margin: float, seeds: int, tweets: int,
                     replicates: int, seed: int = 0, level: float = 0.90) -> float:
    """The share of simulated studies with equal pass@1 (delta 0) in which the equivalence
    test holds (`evaluation.equivalence.tost`: the `level` interval of the crossed test inside
    +-margin, i.e. P(|BF| >= (margin - |dbar|) / SE) < 1 - level): how often the design can
    show a match at all."""
    rng = np.random.default_rng([seed, 3])
    holds = 0
    for start in range(0, replicates, CHUNK):
        parts = crossed_parts(draw(rng, components, 0.0, min(CHUNK, replicates - start),
                                   seeds, tweets))
        room = margin - np.abs(parts.mean)
        se = parts.se
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = np.where(se > 0, parts.tail(np.where(se > 0, room / np.where(
                se > 0, se, 1.0), 0.0)) < 1.0 - level, True)
        holds += int((inside & (room > 0)).sum())
    return holds / replicates
