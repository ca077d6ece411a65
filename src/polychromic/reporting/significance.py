"""When is a difference between two systems "detectable"? The study's one rule.

Each seed's `statistical_tests.json` holds, per metric, a paired test of the reference system
against every other system over the test tweets (`polychromic.evaluation.stats`). Those per-seed
tests are *descriptive*: they say how each training seed behaved, and no claim is made from
them. Every claim (the verdict, the tables' daggers, the paper's sentences) comes from one
rule over all seeds, the **primary rule**:

- units: the test tweets, identical in every seed (a mismatch of `prompt_ids` raises), crossed
  with the seeds;
- differences ``d(s, t) = m_ref,s(t) - m_other,s(t)`` per seed s and tweet t; a tweet with a
  null in any seed or system is left out and counted (`n_left_out`);
- the statistic: their mean over seeds and tweets;
- its 95 % CI and two-sided p: `stats.crossed_t_test`, seeds and tweets as crossed random
  factors with the Behrens-Fisher reference distribution, which holds its level with 3 seeds
  (simulated: `python -m polychromic.reporting.power --simulate`); the tweets-only reading
  with the seeds held fixed (bootstrap CI and sign-flip permutation p of the per-tweet seed
  means, `stats.paired_test`) is kept next to it as `ci_low_tweets`, `ci_high_tweets`,
  `p_tweets`, with Cohen's d_z of the seed means;
- family: Holm over the comparisons tested together, declared before the tests: the verdict's
  (pass@1, pass@k, coverage of one pair), and the tables' (every other cell: `table_family`);
- detectable when the Holm-adjusted p < alpha *and* every seed's mean difference has the
  (non-zero) sign of the pooled one, so an effect carried by one lucky seed is not called
  (`decide`, the rule in array form, is what the verdict, the tables and the simulation of
  the rule's level and power all run).

A seed-to-seed spread widens the CI however many tweets there are: more seeds, not more tweets,
narrow it (`reporting.power`). alpha is the evaluation's (`settings.alpha` of the tests), 0.05
when the files do not say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polychromic.evaluation.registry import get_metric
from polychromic.evaluation.stats import crossed_t_test, paired_test
from polychromic.settings import EvaluationSettings

ALPHA = 0.05


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


def pooled_table(seed_documents: Sequence[dict[str, Any]], metric: str, reference: str,
                 other: str) -> np.ndarray:
    """The seeds x tweets table of `reference - other` on `metric` that the primary rule tests
    (tweets with a null in any seed or system left out), from every seed's metric documents
    ({group: document})."""
    docs = [documents[get_metric(metric).group] for documents in seed_documents]
    _, ref = seed_means_per_prompt(docs, reference, metric)
    _, oth = seed_means_per_prompt(docs, other, metric)
    diff = ref - oth
    return diff[:, ~np.isnan(diff).any(axis=0)]


UNCERTAINTY = ("seeds and test tweets as crossed random factors: standard error from the "
               "two-way table's mean squares (seed part and tweet part), the Behrens-Fisher "
               "reference distribution; 95 % CI and two-sided p of the mean difference")


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
    if int(keep.sum()) * len(docs) >= 2:
        low, high, p = crossed_t_test((ref - oth)[:, keep])
        result.update(ci_low=low, ci_high=high, p=p)
    elif keep.any():  # one seed and one tweet: no spread to test against
        result.update(ci_low=None, ci_high=None, p=None, notes=[
            *result.get("notes", []), "one seed and one tweet with values: nothing to test"])
    result.update(metric=metric, system=reference, other=other, n_seeds=len(docs),
                  n_left_out=int((~keep).sum()),
                  seeds=[doc.get("seed") for doc in docs], seed_diffs=seed_diffs)
    return result


def primary(evidence: Evidence, metrics: Sequence[str], ref: str,
            other: str) -> list[dict[str, Any]]:
    """The primary rule for one pair on a family of metrics, Holm over the family."""
    return family(evidence, [(metric, ref, other) for metric in metrics])


def family(evidence: Evidence, pairs: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The primary rule over one Holm family of (metric, reference, other) comparisons."""
    if evidence.evaluation is None:
        raise ValueError("the primary rule needs the evaluation settings (Evidence.evaluation)")
    results = []
    for metric, ref, other in pairs:
        group = get_metric(metric).group
        docs = [documents[group] for documents in evidence.seed_documents]
        results.append(pooled_test(docs, metric, ref, other, evidence.evaluation))
    return adjust(results, evidence.alpha)


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p along the last axis of `p` (NaN: not in the family, stays NaN); the
    array form of `stats.holm`, row by row."""
    p = np.asarray(p, dtype=np.float64)
    present = ~np.isnan(p)
    m = present.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(present, p, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    factor = m - np.arange(p.shape[-1])
    scaled = np.minimum(1.0, np.where(np.isnan(ranked), -np.inf, factor * ranked))
    adjusted_sorted = np.maximum.accumulate(scaled, axis=-1)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return np.where(present, adjusted, np.nan)


def agree(seed_diffs: np.ndarray, diffs: np.ndarray) -> np.ndarray:
    """Whether every per-seed difference (last axis) is non-zero with the non-zero sign of the
    pooled difference; the array form of `signs_agree` (NaN: a seed without a value)."""
    seed_diffs, diffs = np.asarray(seed_diffs, float), np.asarray(diffs, float)
    sign = np.sign(diffs)
    same = np.all(np.sign(seed_diffs) == sign[..., None], axis=-1)
    return same & (sign != 0) & (seed_diffs.shape[-1] > 0)


def decide(p: np.ndarray, seed_diffs: np.ndarray, diffs: np.ndarray,
           alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The primary rule's decision for families along the second-to-last axis: p (..., m),
    seed_diffs (..., m, S), diffs (..., m) -> (Holm-adjusted p, detectable), detectable when
    the adjusted p < alpha and the seeds agree in sign (`agree`)."""
    p_holm = holm_rows(p)
    with np.errstate(invalid="ignore"):
        detectable = (p_holm < alpha) & agree(seed_diffs, diffs)
    return p_holm, detectable


def adjust(results: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Holm over `results` (one family of pooled tests), the seeds' agreement and each
    result's `detectable` and `direction` (`decide`), in place."""
    if not results:
        return results
    p = np.array([np.nan if r.get("p") is None else r["p"] for r in results])
    diffs = np.array([np.nan if r.get("mean_diff") is None else r["mean_diff"]
                      for r in results])
    width = max(len(r.get("seed_diffs") or []) for r in results)
    seeds = np.full((len(results), max(width, 1)), np.nan)
    for row, result in zip(seeds, results, strict=True):
        values = [np.nan if d is None else d for d in result.get("seed_diffs") or []]
        row[:len(values)] = values
    if width == 0:
        seeds = seeds[:, :0]
    p_holm, detectable = decide(p, seeds, diffs, alpha)
    for index, result in enumerate(results):
        diff = result.get("mean_diff")
        tested = result.get("p") is not None
        result.update(rule="primary", diff=diff,
                      p_holm=float(p_holm[index]) if tested else None,
                      seeds_agree=bool(agree(seeds[index], diffs[index])),
                      detectable=bool(detectable[index]) if tested else None)
        if "metric" in result:
            result["direction"] = direction(result["detectable"], diff, result["metric"])
    return results


def detect(evidence: Evidence, metrics: Sequence[str], ref: str,
           other: str) -> list[dict[str, Any]]:
    """`ref` against `other` on each of `metrics` by the primary rule, Holm over these
    metrics, one result per metric (module docstring); `detectable` is None where nothing
    was tested."""
    return primary(evidence, metrics, ref, other)


def table_family(evidence: Evidence, metrics: Sequence[str], reference: str,
                 systems: Sequence[str], verdict: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every difference the tables and the paper mark: `reference` against each of `systems`
    on each per-tweet metric of `metrics`. The cells the verdict tested (its pair, its
    metrics) take the verdict's rows, so no difference is tested twice; the others form one
    Holm family of their own. Each result says its `family` ('verdict' or 'table') and the
    family's size."""
    taken = {}
    if verdict and verdict.get("available"):
        for row in verdict["rows"]:
            taken[(row["metric"], verdict["matched"])] = {
                **{key: row.get(key) for key in ("diff", "ci_low", "ci_high", "p", "p_holm",
                                                 "detectable", "direction", "seed_diffs")},
                "metric": row["metric"], "system": verdict["reference"],
                "other": verdict["matched"], "family": "verdict",
                "family_size": verdict.get("family")}
    pairs = [(metric, reference, other) for metric in metrics for other in systems
             if other != reference and get_metric(metric).per_prompt
             and (metric, other) not in taken]
    rows = family(evidence, pairs) if pairs and evidence.seed_documents else []
    found = list(taken.values())
    for row in rows:
        found.append({**{key: row.get(key) for key in (
            "metric", "system", "other", "diff", "ci_low", "ci_high", "p", "p_holm",
            "detectable", "direction", "seed_diffs")}, "family": "table",
            "family_size": sum(r.get("p") is not None for r in rows)})
    return found
