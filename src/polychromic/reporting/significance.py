"""When is a difference between two systems "detectable"? The study's two rules, side by side.

Each seed's `statistical_tests.json` holds, per metric, a paired test of the reference system
against every other system over the test tweets (`polychromic.evaluation.stats`: mean
difference, bootstrap 95 % CI, two-sided sign-flip permutation p, Holm over the seed's family of
all metrics x systems). Over S seeds the study uses two rules, and only these two:

**primary** (the verdict; pre-registered): one paired comparison over seeds and test tweets.
- units: the test tweets, identical in every seed (a mismatch of `prompt_ids` raises), crossed
  with the seeds;
- differences ``d(s, t) = m_ref,s(t) - m_other,s(t)`` per seed s and tweet t; a tweet with a
  null in any seed or system is left out and counted (`n_left_out`);
- the statistic: their mean over seeds and tweets (= the mean over tweets of the per-tweet
  seed means);
- its 95 % CI and two-sided p: `stats.crossed_t_test`, seeds and tweets as crossed random
  factors (SE^2 = var of the seed means / S + var of the tweet means / T, Student's t with
  Satterthwaite's df), so the uncertainty carries the spread between training seeds as well as
  between tweets, and with few seeds the interval widens; the tweets-only reading with the seeds
  held fixed (bootstrap CI and sign-flip permutation p of the per-tweet seed means,
  `stats.paired_test`) is kept next to it as `ci_low_tweets`, `ci_high_tweets`, `p_tweets`,
  with Cohen's d_z of the seed means;
- family: Holm over the comparisons tested together (the verdict's pass@1, pass@k, coverage);
- detectable when the Holm-adjusted p < alpha *and* every seed's mean difference has the
  (non-zero) sign of the pooled one, so an effect carried by one lucky seed is not called.
A seed-to-seed spread widens the CI however many tweets there are: more seeds, not more tweets,
narrow it (`reporting.power`).

**every_seed** (the tables' daggers and the paper's sentences): stricter, with no pooling.
- detectable when every seed of the study has a Holm-adjusted permutation p < alpha for the pair
  (Holm over that seed's whole family) and the per-seed mean differences all have the sign of
  the difference over seeds; a seed without a test counts as not significant;
- a metric with no per-tweet values (a corpus-level number) has no test: "untested".

`detect(evidence, metrics, ref, other, rule)` applies either rule and answers in one shape,
`{metric, rule, diff, ci_low, ci_high, p_holm, detectable, direction, seeds, ...}`; the results
table, the paper and the verdict all call it. alpha is the evaluation's (`settings.alpha` of the
tests), 0.05 when the files do not say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polychromic.evaluation.registry import get_metric
from polychromic.evaluation.stats import crossed_t_test, holm, paired_test
from polychromic.settings import EvaluationSettings

ALPHA = 0.05
RULES = ("primary", "every_seed")


@dataclass(frozen=True)
class Evidence:
    """What the rules read: the aggregate, every seed's tests, and for the primary rule every
    seed's metric documents {group: document} (in seed order) and the evaluation settings
    (bootstrap and permutation samples, stats seed)."""

    aggregated: dict[str, Any]
    statistics: Sequence[dict[str, Any]]
    seed_documents: Sequence[dict[str, dict[str, Any]]] = field(default_factory=list)
    evaluation: EvaluationSettings | None = None

    @property
    def alpha(self) -> float:
        return alpha_of(self.statistics)

    @property
    def n_seeds(self) -> int:
        return len(self.aggregated.get("seeds") or []) or len(self.statistics)


def alpha_of(statistics: Sequence[dict[str, Any]]) -> float:
    """The tests' alpha: `settings.alpha` when every seed gives the same one, else ALPHA."""
    values = {doc.get("settings", {}).get("alpha") for doc in statistics}
    values.discard(None)
    if len(values) == 1:
        value = float(values.pop())
        if 0.0 < value < 1.0:
            return value
    return ALPHA


def seed_tests(statistics: Sequence[dict[str, Any]], metric: str, ref: str,
               other: str) -> list[dict[str, Any]]:
    """Each seed's test of `ref` vs `other` on `metric`, oriented as ref - other:
    [{seed, p_holm, diff, ci_low, ci_high}], in the order of `statistics` (a test stored as
    other vs ref has its difference negated and its CI mirrored)."""
    found = []
    for doc in statistics:
        for test in doc.get("tests", []):
            pair = (test.get("system"), test.get("other"))
            if test.get("metric") != metric or pair not in ((ref, other), (other, ref)):
                continue
            diff, low, high = test.get("mean_diff"), test.get("ci_low"), test.get("ci_high")
            if pair == (other, ref):
                diff = None if diff is None else -diff
                if low is not None and high is not None:
                    low, high = -high, -low
            found.append({"seed": doc.get("seed"), "p_holm": test.get("p_holm"),
                          "diff": diff, "ci_low": low, "ci_high": high})
    return found


def direction(detectable: bool | None, diff: float | None, metric: str) -> str:
    """'better' / 'worse' (in the metric's direction), 'none', or 'untested' (None)."""
    if detectable is None or diff is None:
        return "untested"
    if not detectable:
        return "none"
    return "better" if (diff > 0) == get_metric(metric).higher_is_better else "worse"


def signs_agree(diffs: Sequence[float | None], diff: float | None) -> bool:
    """Every per-seed difference non-zero with the (non-zero) sign of `diff`."""
    if not diff or not diffs:
        return False
    signs = {math.copysign(1.0, d) if d else 0.0 for d in diffs if d is not None}
    return len(signs) == 1 and None not in diffs and signs == {math.copysign(1.0, diff)}


def every_seed(evidence: Evidence, metric: str, ref: str, other: str) -> dict[str, Any]:
    """The every-seed rule for one pair on one metric (module docstring)."""
    means = [(evidence.aggregated.get("systems", {}).get(name, {}).get(metric) or {}).get("mean")
             for name in (ref, other)]
    diff = None if None in means else means[0] - means[1]
    tests = seed_tests(evidence.statistics, metric, ref, other)
    p_values = [t["p_holm"] for t in tests if t["p_holm"] is not None]
    detectable: bool | None
    if diff is None or not math.isfinite(diff) or not p_values:
        detectable = None
    elif len(p_values) < evidence.n_seeds:
        detectable = False
    else:
        detectable = max(p_values) < evidence.alpha and signs_agree(
            [t["diff"] for t in tests], diff)
    return {"metric": metric, "rule": "every_seed", "system": ref, "other": other,
            "diff": diff, "p_holm": max(p_values) if p_values else None,
            "p_holm_min": min(p_values) if p_values else None, "n_tests": len(p_values),
            "detectable": detectable, "direction": direction(detectable, diff, metric),
            "seeds": tests}


def per_prompt(doc: dict[str, Any], system: str, metric: str) -> list[float | None]:
    """One seed's per-tweet values of `metric` for `system` from its metric document; a metric
    the evaluation could not compute (`per_prompt: null`, e.g. k > n) is all nulls."""
    try:
        values = doc["systems"][system][metric]["per_prompt"]
    except KeyError as error:
        raise KeyError(f"seed {doc.get('seed')}: no per-prompt {metric} of {system}") from error
    if values is None:
        return [None] * len(doc.get("prompt_ids") or [])
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def seed_means_per_prompt(docs: Sequence[dict[str, Any]], system: str,
                          metric: str) -> tuple[list[str], np.ndarray]:
    """(prompt ids, array seeds x prompts with NaN for nulls); the seeds must share prompt ids.
    `docs` are the seeds' documents of the metric's group."""
    if not docs:
        raise ValueError("no seed to pool")
    ids = list(docs[0].get("prompt_ids") or [])
    rows = []
    for doc in docs:
        if list(doc.get("prompt_ids") or []) != ids:
            raise ValueError(f"seed {doc.get('seed')} was evaluated on other test tweets than "
                             f"seed {docs[0].get('seed')}: seeds cannot be pooled")
        values = per_prompt(doc, system, metric)
        if len(values) != len(ids):
            raise ValueError(f"seed {doc.get('seed')}: {len(values)} {metric} values of {system} "
                             f"for {len(ids)} prompts")
        rows.append([math.nan if v is None else v for v in values])
    return ids, np.array(rows, dtype=np.float64)


UNCERTAINTY = ("seeds and test tweets as crossed random factors: standard error from the "
               "variances of the seed means and of the tweet means, Student's t with "
               "Satterthwaite's degrees of freedom; 95 % CI and two-sided p of the mean "
               "difference")


def pooled_test(docs: Sequence[dict[str, Any]], metric: str, reference: str, other: str,
                evaluation: EvaluationSettings) -> dict[str, Any]:
    """The seed-and-tweet comparison of reference vs other on `metric` (the primary rule)."""
    _, ref = seed_means_per_prompt(docs, reference, metric)
    _, oth = seed_means_per_prompt(docs, other, metric)
    keep = ~(np.isnan(ref).any(axis=0) | np.isnan(oth).any(axis=0))
    seed_diffs = [float(np.mean(r[keep] - o[keep])) if keep.any() else None
                  for r, o in zip(ref, oth, strict=True)]
    result = paired_test(ref[:, keep].mean(axis=0).tolist(), oth[:, keep].mean(axis=0).tolist(),
                         evaluation.bootstrap_samples, evaluation.stats_seed,
                         evaluation.permutation_samples)
    result.update(ci_low_tweets=result.get("ci_low"), ci_high_tweets=result.get("ci_high"),
                  p_tweets=result.get("p"), uncertainty=UNCERTAINTY)
    if keep.any():
        low, high, p = crossed_t_test((ref - oth)[:, keep])
        result.update(ci_low=low, ci_high=high, p=p)
    result.update(metric=metric, system=reference, other=other, n_seeds=len(docs),
                  n_left_out=int((~keep).sum()),
                  seeds=[doc.get("seed") for doc in docs], seed_diffs=seed_diffs)
    return result


def primary(evidence: Evidence, metrics: Sequence[str], ref: str,
            other: str) -> list[dict[str, Any]]:
    """The primary rule for one pair on a family of metrics, Holm over the family."""
    if evidence.evaluation is None:
        raise ValueError("the primary rule needs the evaluation settings (Evidence.evaluation)")
    results = []
    for metric in metrics:
        group = get_metric(metric).group
        docs = [documents[group] for documents in evidence.seed_documents]
        results.append(pooled_test(docs, metric, ref, other, evidence.evaluation))
    return adjust(results, evidence.alpha)


def adjust(results: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Holm over `results` (one family of pooled tests), the seeds' agreement and each
    result's `detectable` and `direction`, in place."""
    for result, p in zip(results, holm([r.get("p") for r in results]), strict=True):
        diff = result.get("mean_diff")
        result.update(rule="primary", diff=diff, p_holm=p,
                      seeds_agree=signs_agree(result.get("seed_diffs") or [], diff))
        result["detectable"] = None if p is None else p < alpha and result["seeds_agree"]
        if "metric" in result:
            result["direction"] = direction(result["detectable"], diff, result["metric"])
    return results


def detect(evidence: Evidence, metrics: Sequence[str], ref: str, other: str,
           rule: str) -> list[dict[str, Any]]:
    """`ref` against `other` on each of `metrics` under `rule` ('primary' or 'every_seed'),
    one result per metric (module docstring); `detectable` is None where nothing was tested."""
    if rule == "primary":
        return primary(evidence, metrics, ref, other)
    if rule == "every_seed":
        return [every_seed(evidence, metric, ref, other) for metric in metrics]
    raise ValueError(f"unknown rule {rule!r}; known: {RULES}")
