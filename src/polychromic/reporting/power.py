"""How many test prompts does a study need to detect a pass@k difference? A pilot-based answer.

Why: issue 8 asks for a study powered to detect a pass@10 difference of `delta` (0.05) at the
Holm-adjusted 0.05 level. The study's rule (significance.py) calls a difference detectable when
the Holm-adjusted Wilcoxon p is below alpha in *every* seed. A simple, conservative
calculation from a pilot run:

- sigma = std (ddof=1) of the per-prompt paired differences of the metric (reference minus
  baseline) in the pilot's `passk_results.json`, pooled over its seeds;
- Holm's first step is Bonferroni: a single true effect among `family` tests needs
  p < alpha / family, so we use alpha' = alpha / family (conservative for Holm);
- the paired test over P prompts is approximated by the paired z-test (Wilcoxon's
  asymptotic relative efficiency against it is >= 0.864, 3/pi ~ 0.955 for normal data);
- the power in one seed is Phi(delta sqrt(P) / sigma - z_{1 - alpha'/2}); every seed must
  succeed, so the study's power is that to the power of the number of seeds (seeds treated as
  independent replications).

`prompts_needed` inverts it for a target study power. `python -m polychromic.reporting.power
results/evaluation/seed_*/passk_results.json` prints the pilot's sigma and a small table.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence

from scipy.stats import norm


def paired_sd(pilot: Sequence[dict], metric: str = "pass@10", reference: str = "polychromic_lora",
              other: str = "baseline_lora") -> tuple[float, int]:
    """(std of the per-prompt differences, number of differences) pooled over pilot seeds."""
    diffs = []
    for doc in pilot:
        ref = doc["systems"][reference][metric]["per_prompt"]
        oth = doc["systems"][other][metric]["per_prompt"]
        diffs += [a - b for a, b in zip(ref, oth, strict=True) if a is not None and b is not None]
    if len(diffs) < 2:
        raise ValueError("the pilot needs at least 2 per-prompt differences")
    mean = sum(diffs) / len(diffs)
    return math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)), len(diffs)


def study_power(prompts: int, sigma: float, delta: float, family: int, seeds: int,
                alpha: float = 0.05) -> float:
    """Probability that every seed detects a true difference `delta` (module docstring)."""
    z = norm.ppf(1 - alpha / family / 2)
    per_seed = norm.cdf(delta * math.sqrt(prompts) / sigma - z)
    return float(per_seed ** seeds)


def prompts_needed(sigma: float, delta: float, family: int, seeds: int, power: float = 0.8,
                   alpha: float = 0.05) -> int:
    """Test prompts for `power` of detecting `delta` in every seed (module docstring)."""
    per_seed = power ** (1.0 / seeds)
    z = norm.ppf(1 - alpha / family / 2) + norm.ppf(per_seed)
    return math.ceil((z * sigma / delta) ** 2)


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m polychromic.reporting.power seed_*/passk_results.json",
              file=sys.stderr)
        return 2
    pilot = [json.loads(open(path, encoding="utf-8").read()) for path in paths]
    sigma, count = paired_sd(pilot)
    print(f"pilot: sigma of per-prompt pass@10 differences = {sigma:.3f} ({count} differences)")
    print("family  seeds  prompts for power 0.8 (delta 0.05)  power with 200 prompts")
    for family in (1, 3, 45, 135):
        for seeds in (1, 3):
            print(f"{family:6d}  {seeds:5d}  {prompts_needed(sigma, 0.05, family, seeds):34d}"
                  f"  {study_power(200, sigma, 0.05, family, seeds):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
