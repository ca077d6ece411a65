"""How many test prompts does a study need to detect a pass@k difference? A pilot-based answer.

Why: a study should be powered to detect a pass@10 difference of `delta` (0.05, say) at the
Holm-adjusted 0.05 level. A simple, conservative calculation from a pilot run, for the two
rules the study uses (`significance.py`):

- **primary** (the verdict): the mean difference over S seeds and P test tweets, its
  uncertainty with seeds and tweets as crossed random factors (`stats.crossed_t_test`), Holm
  over a family of `family` comparisons (3: pass@1, pass@10, coverage). Its standard error has
  a seed part and a tweet part (the z approximation below ignores the t's few degrees of
  freedom with few seeds, so it errs optimistic there),

      SE(P, S)^2 = tau^2 / S + sigma^2 / P,

  sigma = the larger of the pilot's std (ddof=1) of the per-tweet differences of the seed means
  and sigma_seed / sqrt(S), what S seeds with independent noise give (when the per-tweet pass@10
  values are mostly 0 or 1, a small pilot's seed-mean std can be a fluke of a few tweets);
  tau^2 = the seeds' variance of their mean difference beyond what the tweets' noise explains,
  max(0, var_s(dbar_s) - sigma_e^2 / P_pilot), with sigma_e^2 the residual variance of the
  two-way (seed x tweet) table of differences (`seed_variance`). Power =
  Phi(delta / SE - z_{1 - alpha'/2}); when tau > 0 it cannot pass Phi(delta sqrt(S) / tau - z)
  however many tweets there are, and `prompts_needed_primary` says None (more seeds needed);
- **every-seed** (the tables' daggers): a paired test in *every* seed at
  Holm over that seed's whole family of tests. sigma = std of the per-tweet differences within
  a seed, pooled over the pilot's seeds; every seed must succeed, so the per-seed power is
  raised to the power of the number of seeds (seeds treated as independent replications).

In both, Holm's first step is Bonferroni: a single true effect among `family` tests needs
p < alpha / family, so alpha' = alpha / family (conservative for Holm); the tests (the
every-seed rule's paired sign-flip permutation test, the primary rule's crossed t) are
approximated by z-tests (they agree asymptotically); the power
of one every-seed test is Phi(delta sqrt(P) / sigma - z_{1 - alpha'/2}). The primary rule's extra
condition, every seed's mean difference of the same sign, is ignored: with a true difference
delta the chance that one seed's mean over P tweets has the other sign is
Phi(-delta sqrt(P) / sigma_seed), under 0.002 for sigma_seed = 0.24, delta = 0.05, P = 200.

It is an approximation: when most tweets tie (pass@10 = 1 for both systems) the tweets that
carry information are few, so size with margin and check the CI the study
achieves (the verdict's 95 % CI half-width says what it could detect).
`prompts_needed` inverts it for a target study power. `python -m polychromic.reporting.power
results/evaluation/seed_*/passk_results.json` prints the pilot's sigmas and a small table for the
reference and baseline systems of `config.yaml` (`--config` for another).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

from polychromic.reporting.significance import seed_means_per_prompt


def paired_sd(pilot: Sequence[dict], reference: str, other: str,
              metric: str = "pass@10") -> tuple[float, int]:
    """(std of the per-prompt differences, number of differences), the differences of every
    pilot seed taken together (one std around their common mean)."""
    diffs = []
    for doc in pilot:
        ref = doc["systems"][reference][metric]["per_prompt"]
        oth = doc["systems"][other][metric]["per_prompt"]
        diffs += [a - b for a, b in zip(ref, oth, strict=True) if a is not None and b is not None]
    if len(diffs) < 2:
        raise ValueError("the pilot needs at least 2 per-prompt differences")
    mean = sum(diffs) / len(diffs)
    return math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)), len(diffs)


def primary_sd(pilot: Sequence[dict], reference: str, other: str,
               metric: str = "pass@10") -> float:
    """The sigma the primary test is sized with: max(pooled_sd, paired_sd / sqrt(seeds))."""
    return max(pooled_sd(pilot, reference, other, metric)[0],
               paired_sd(pilot, reference, other, metric)[0] / math.sqrt(len(pilot)))


def pooled_sd(pilot: Sequence[dict], reference: str, other: str,
              metric: str = "pass@10") -> tuple[float, int]:
    """(std of the per-prompt differences of the seed means, number of prompts): the sigma of
    the primary rule (`significance.py`); a prompt with a null in any seed is left out."""
    _, ref = seed_means_per_prompt(pilot, reference, metric)
    _, oth = seed_means_per_prompt(pilot, other, metric)
    diffs = (ref - oth).mean(axis=0)
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size < 2:
        raise ValueError("the pilot needs at least 2 prompts with values in every seed")
    return float(np.std(diffs, ddof=1)), int(diffs.size)


def seed_variance(pilot: Sequence[dict], reference: str, other: str,
                  metric: str = "pass@10") -> float:
    """tau^2 (module docstring): the between-seed variance of the mean difference beyond the
    tweets' noise; 0 with one seed."""
    _, ref = seed_means_per_prompt(pilot, reference, metric)
    _, oth = seed_means_per_prompt(pilot, other, metric)
    diffs = ref - oth
    diffs = diffs[:, ~np.isnan(diffs).any(axis=0)]
    seeds, prompts = diffs.shape
    if seeds < 2 or prompts < 2:
        return 0.0
    residual = (diffs - diffs.mean(axis=1, keepdims=True) - diffs.mean(axis=0, keepdims=True)
                + diffs.mean())
    noise = float((residual ** 2).sum()) / ((seeds - 1) * (prompts - 1))
    return max(0.0, float(np.var(diffs.mean(axis=1), ddof=1)) - noise / prompts)


def primary_power(prompts: int, seeds: int, sigma: float, tau2: float, delta: float,
                  family: int, alpha: float = 0.05) -> float:
    """Power of the primary test: Phi(delta / SE(P, S) - z) (module docstring)."""
    z = norm.ppf(1 - alpha / family / 2)
    return float(norm.cdf(delta / math.sqrt(tau2 / seeds + sigma ** 2 / prompts) - z))


def prompts_needed_primary(seeds: int, sigma: float, tau2: float, delta: float, family: int,
                           power: float = 0.8, alpha: float = 0.05) -> int | None:
    """Test tweets for `power` with `seeds` seeds; None when the seeds' spread alone keeps the
    power below it (more seeds, not tweets, are needed)."""
    z = norm.ppf(1 - alpha / family / 2) + norm.ppf(power)
    room = (delta / z) ** 2 - tau2 / seeds
    return None if room <= 0 else math.ceil(sigma ** 2 / room)


def primary_delta(prompts: int, seeds: int, sigma: float, tau2: float, family: int,
                  power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest difference the primary test detects with `power`."""
    z = norm.ppf(1 - alpha / family / 2) + norm.ppf(power)
    return float(z * math.sqrt(tau2 / seeds + sigma ** 2 / prompts))


def study_power(prompts: int, sigma: float, delta: float, family: int, seeds: int,
                alpha: float = 0.05) -> float:
    """Probability that every one of `seeds` tests detects a true difference `delta` (module
    docstring); seeds=1 for the primary test."""
    z = norm.ppf(1 - alpha / family / 2)
    per_seed = norm.cdf(delta * math.sqrt(prompts) / sigma - z)
    return float(per_seed ** seeds)


def prompts_needed(sigma: float, delta: float, family: int, seeds: int, power: float = 0.8,
                   alpha: float = 0.05) -> int:
    """Test prompts for `power` of detecting `delta` in every one of `seeds` tests."""
    per_seed = power ** (1.0 / seeds)
    z = norm.ppf(1 - alpha / family / 2) + norm.ppf(per_seed)
    return math.ceil((z * sigma / delta) ** 2)


def detectable_delta(prompts: int, sigma: float, family: int, seeds: int, power: float = 0.8,
                     alpha: float = 0.05) -> float:
    """The smallest difference detected with `power` by `prompts` test prompts."""
    z = norm.ppf(1 - alpha / family / 2) + norm.ppf(power ** (1.0 / seeds))
    return float(z * sigma / math.sqrt(prompts))


def seeds_needed_primary(prompts: int, sigma: float, tau2: float, delta: float, family: int,
                         power: float = 0.8, alpha: float = 0.05, most: int = 100) -> int | None:
    """The fewest seeds (up to `most`) for `power` with `prompts` tweets; None when no number
    of seeds reaches it (the tweets' part of the error alone is too large)."""
    for seeds in range(2, most + 1):
        if primary_power(prompts, seeds, sigma, tau2, delta, family, alpha) >= power:
            return seeds
    return None


def final_test_power(runs: Sequence[dict], reference: str, other: str, metric: str,
                     delta: float = 0.05, family: int = 3, power: float = 0.8,
                     alpha: float = 0.05) -> dict[str, float | int | None]:
    """The power calculation redone on a study's own passk_results.json (one per seed) for its
    final, primary test: the sigmas it saw, the difference it could detect with `power`, its
    power for `delta`, and the tweets (at its seeds) or seeds (at its tweets) that `delta`
    would need (None: not reachable that way)."""
    sigma, prompts = primary_sd(runs, reference, other, metric), pooled_sd(
        runs, reference, other, metric)[1]
    tau2, seeds = seed_variance(runs, reference, other, metric), len(runs)
    return {"metric": metric, "reference": reference, "baseline": other, "seeds": seeds,
            "prompts": prompts, "sigma": sigma, "tau": math.sqrt(tau2), "delta": delta,
            "family": family, "alpha": alpha, "target_power": power,
            "detectable_delta": primary_delta(prompts, seeds, sigma, tau2, family, power, alpha),
            "power": primary_power(prompts, seeds, sigma, tau2, delta, family, alpha),
            "prompts_needed": prompts_needed_primary(seeds, sigma, tau2, delta, family, power,
                                                     alpha),
            "seeds_needed": seeds_needed_primary(prompts, sigma, tau2, delta, family, power,
                                                 alpha)}


def describe_power(result: dict[str, Any]) -> str:
    """`final_test_power` in two sentences, for the results page."""
    tweets = result["prompts_needed"]
    seeds = result["seeds_needed"]
    return (f"On this run's own {result['metric']} differences ({result['reference']} minus "
            f"{result['baseline']}, {result['seeds']} seeds x {result['prompts']} test tweets) "
            f"the primary test (Holm over {result['family']}, alpha {result['alpha']:g}) has "
            f"sigma {result['sigma']:.3f} over tweets and a seed-to-seed std tau "
            f"{result['tau']:.3f}: it detects a difference of {result['detectable_delta']:.3f} "
            f"with power {result['target_power']:g}, and has power {result['power']:.2f} for "
            f"{result['delta']:g}. Power {result['target_power']:g} for {result['delta']:g} "
            f"would take "
            + (f"{tweets} test tweets at {result['seeds']} seeds" if tweets is not None
               else f"more seeds, not more tweets, at {result['seeds']} seeds")
            + (f", or {seeds} seeds at {result['prompts']} tweets." if seeds is not None
               else f"; no number of seeds reaches it at {result['prompts']} tweets.")
            + " (docs/statistics.md, `polychromic.reporting.power`)")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m polychromic.reporting.power",
                                     description="Test prompts needed, from a pilot run.")
    parser.add_argument("pilot", nargs="+", help="the pilot's seed_*/passk_results.json")
    parser.add_argument("--prompts", type=int, default=200,
                        help="test prompts of the planned study (200)")
    parser.add_argument("--config", default="config.yaml",
                        help="the study config naming the reference and baseline systems")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    import yaml

    from polychromic.config import load_settings

    with open(args.config, encoding="utf-8") as handle:
        evaluation = load_settings(yaml.safe_load(handle)).evaluation
    reference, other = evaluation.reference_system, evaluation.baseline_system
    prompts = args.prompts
    pilot = [json.loads(open(path, encoding="utf-8").read()) for path in args.pilot]
    seeds = len(pilot)
    sigma_seed, count = paired_sd(pilot, reference, other)
    sigma_pooled, n_prompts = pooled_sd(pilot, reference, other)
    sigma_primary = primary_sd(pilot, reference, other)
    tau2 = seed_variance(pilot, reference, other)
    print(f"pilot: {seeds} seeds, {n_prompts} test prompts; std of the per-prompt pass@10 "
          f"difference {reference} - {other}: {sigma_seed:.3f} within a seed ({count} "
          f"differences), {sigma_pooled:.3f} of the seed means; the primary test is sized with "
          f"sigma {sigma_primary:.3f} (the larger of that and {sigma_seed:.3f} / sqrt({seeds})) "
          f"and a seed-to-seed std tau {math.sqrt(tau2):.3f}")
    print(f"rule        family  prompts for power 0.8 (delta 0.05)  power at {prompts} prompts"
          f"  delta detected at {prompts} prompts")
    for family in (1, 3):
        needed = prompts_needed_primary(seeds, sigma_primary, tau2, 0.05, family)
        print(f"{'primary':10s}  {family:6d}  "
              f"{needed if needed is not None else 'more seeds':>34}"
              f"  {primary_power(prompts, seeds, sigma_primary, tau2, 0.05, family):18.2f}"
              f"  {primary_delta(prompts, seeds, sigma_primary, tau2, family):24.3f}")
    for family in (1, 3, 45, 135):
        needed = prompts_needed(sigma_seed, 0.05, family, seeds)
        print(f"{'every-seed':10s}  {family:6d}  {needed:34d}"
              f"  {study_power(prompts, sigma_seed, 0.05, family, seeds):18.2f}"
              f"  {detectable_delta(prompts, sigma_seed, family, seeds):24.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
