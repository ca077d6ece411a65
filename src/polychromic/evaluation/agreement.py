"""How far a judge can be trusted, per seed and system, as counts the aggregate adds up.

Why: a pass@k is only as good as its judge, and a judge that agrees with the training reward
measures what training optimised. Two checks, on the test samples of every system:

- **validity against the oracle** (where it decides, the demo corpus): each other judge's
  decision on every sample against the oracle's, as a confusion table (`tp`, `fp`, `fn`, `tn`:
  the oracle is the truth, a pass the positive class; a sample the oracle cannot tell counts
  as a fail and is counted in `oracle_unknown`). The aggregate turns the tables into accuracy,
  Cohen's kappa (Cohen 1960, "A coefficient of agreement for nominal scales"), precision and
  recall of "pass" (`reporting.judge_validity`);
- **agreement with the training reward**: the reward of every sample (the reference system's
  objective's reward: its reward encoder's best-reference cosine, or ROUGE-L) against each
  judge's score (the similarity judge's; a judge without scores, the oracle, by its 0/1
  decision, a point-biserial correlation), as the sums a pooled Pearson correlation needs,
  and the agreement of their pass decisions (the judge's, and reward >= the objective's
  quality threshold).

Only sums and counts are written, so that seeds and systems pool exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from polychromic.embeddings import get_encoder
from polychromic.evaluation import coverage as cov
from polychromic.evaluation.judges import Decisions
from polychromic.evaluation.judging import encode
from polychromic.evaluation.registry import LEXICAL
from polychromic.evaluation.view import SystemView

ORACLE = "oracle"


def confusion(judged: Sequence[np.ndarray], truth: Decisions) -> dict[str, int]:
    """A judge's pass decisions (per prompt) against the oracle's: tp, fp, fn, tn, the
    samples, and the oracle's unknowns (counted as fails)."""
    mine = np.concatenate([np.asarray(p, dtype=bool) for p in judged])
    true = np.concatenate(truth.passed)
    return {"tp": int((mine & true).sum()), "fp": int((mine & ~true).sum()),
            "fn": int((~mine & true).sum()), "tn": int((~mine & ~true).sum()),
            "n": int(true.size), "oracle_unknown": int(np.concatenate(truth.unknown).sum())}


def pearson_sums(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """n and the sums of x, y, x^2, y^2 and xy: what a pooled Pearson r needs."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return {"n": int(x.size), "sx": float(x.sum()), "sy": float(y.sum()),
            "sxx": float((x * x).sum()), "syy": float((y * y).sum()),
            "sxy": float((x * y).sum())}


def pearson(sums: dict[str, float]) -> float | None:
    """Pearson r from `pearson_sums` (added up over any number of parts); None when a side is
    constant or there are fewer than 3 samples."""
    n = sums["n"]
    if n < 3:
        return None
    cov = sums["sxy"] - sums["sx"] * sums["sy"] / n
    var_x = sums["sxx"] - sums["sx"] ** 2 / n
    var_y = sums["syy"] - sums["sy"] ** 2 / n
    if var_x <= 1e-12 * max(1.0, sums["sxx"]) or var_y <= 1e-12 * max(1.0, sums["syy"]):
        return None
    return float(cov / np.sqrt(var_x * var_y))


def reward_agreement(decisions: Decisions, reward: Sequence[np.ndarray],
                     threshold: float) -> dict[str, Any]:
    """One judge against the training reward on one system's samples: the Pearson sums of
    (judge score, reward) (the 0/1 decision where the judge has no score) and the counts of
    their pass decisions (`both`, `neither`, `judge_only`, `reward_only`)."""
    judge_pass = np.concatenate(decisions.passed)
    scores = (np.concatenate(decisions.scores) if decisions.scores is not None
              else judge_pass.astype(np.float64))
    values = np.concatenate([np.asarray(r, dtype=np.float64) for r in reward])
    reward_pass = values >= threshold
    return {**pearson_sums(scores, values),
            "scored": decisions.scores is not None,
            "both": int((judge_pass & reward_pass).sum()),
            "neither": int((~judge_pass & ~reward_pass).sum()),
            "judge_only": int((judge_pass & ~reward_pass).sum()),
            "reward_only": int((~judge_pass & reward_pass).sum())}


def judge_checks(views: dict[str, SystemView], block: dict[str, dict[str, Any]],
                 reward: dict[str, Any] | None) -> dict[str, Any]:
    """Per system, into the pass@k file's `block`: every judge's confusion with the oracle
    (`judge_validity`, where the oracle decides) and its agreement with the training reward
    (`judge_reward`, with a reward); returns how the reward was scored."""
    kinds = {view.judge for view in views.values()} | {
        kind for view in views.values() for kind in view.second_judges}
    rewards = reward_scores(views, reward) if reward else None
    for system, view in views.items():
        judged = {kind: view.reading(kind) for kind in (view.judge, *view.second_judges)}
        judged[LEXICAL] = lexical_decisions(view)
        if ORACLE in judged:
            oracle = judged[ORACLE]
            block[system]["judge_validity"] = {
                kind: confusion(decisions.passed, oracle)
                for kind, decisions in judged.items() if kind != ORACLE}
        if rewards is not None:
            block[system]["judge_reward"] = {
                kind: reward_agreement(decisions, rewards[system],
                                                 reward["quality_threshold"])
                for kind, decisions in judged.items()}
    return {"judges": sorted(kinds | {LEXICAL}), "reward": reward}


def lexical_decisions(view: SystemView) -> Decisions:
    """The lexical reading as decisions: ROUGE-L of the closest reference at its threshold."""
    passed = [np.array(cov.passing(sims, texts, view.lexical_threshold), dtype=bool)
              for sims, texts in zip(view.lexical_similarities, view.samples, strict=True)]
    return Decisions(passed, [np.zeros(len(p), dtype=bool) for p in passed],
                            [[None] * len(p) for p in passed],
                            [np.asarray(s, dtype=np.float64) for s in view.lexical_similarities])


def reward_scores(views: dict[str, SystemView], reward: dict[str, Any]
                  ) -> dict[str, list[np.ndarray]]:
    """Every sample's training reward: ROUGE-L of its closest reference for a rougeL reward,
    else the reward encoder's cosine to its closest reference (one batched encoder call)."""
    if reward["reward"] == "rougeL":
        return {system: [np.asarray(s, dtype=np.float64) for s in view.lexical_similarities]
                for system, view in views.items()}
    from polychromic.encoders import describe

    encoder = get_encoder(describe(reward["reward_model"])["path"])
    first = next(iter(views.values()))
    refs = [r for group in first.references for r in group]
    texts = [s for view in views.values() for group in view.samples for s in group]
    vectors = dict(zip(refs + texts, encode(encoder, refs + texts), strict=True))
    out = {}
    for system, view in views.items():
        out[system] = [np.array([max(float(vectors[s] @ vectors[r]) for r in group_refs)
                                 for s in group]) if group else np.zeros(0)
                       for group, group_refs in zip(view.samples, view.references,
                                                    strict=True)]
    return out
