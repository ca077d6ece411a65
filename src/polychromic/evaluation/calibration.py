"""The pass threshold of each criterion, calibrated on the validation split instead of hand-set.

Why: "a sample passes when its similarity to the closest reference reaches 0.7" means different
things under different judges (cosines of all-mpnet-base-v2 and all-MiniLM-L6-v2 live on
different scales) and for ROUGE-L. The threshold is chosen on data the test never sees, by one
documented rule, applied to each criterion:

- **pairs with stances** (every validation reference has a `stance`, as in the demo corpus):
  positives are pairs of references of one tweet with the same stance, negatives pairs of
  references of one tweet with different stances: a pass should mean "the same kind of reply";
- **pairs without stances**: for each reference r of a tweet with at least two references, the
  positive is r against the closest other reference of its own tweet, the negative r against
  the closest reference of one other tweet drawn at random (seeded): a pass should mean "a
  reply to this tweet";
- the threshold is the midpoint between two adjacent observed scores that maximises Youden's
  J = TPR - FPR (a score >= threshold counts as a pass); ties go to the lower threshold.

The file `evaluation/judge_calibration.json` holds, per criterion, the threshold, the rule, the
pair counts, TPR, FPR and J, and the score quantiles of both groups, for the pass criterion,
for `semantic` (the judge cosine: coverage clusters references at it whatever the criterion) and
for `rougeL` (the lexical reading). `evaluation.passk.threshold` (the criterion's) and
`evaluation.passk.lexical_threshold` (ROUGE-L) override the calibrated values. The file also
fixes the judge's precision (`judge.precision`): evaluation reads it from here, so calibration
and every seed embed alike even where `judge_precision: auto` would resolve differently.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import numpy as np

from polychromic.encoders import default_layer, describe
from polychromic.evaluation.quality import bertscore_best
from polychromic.io import read_jsonl, write_json
from polychromic.settings import EvaluationSettings
from polychromic.similarity import rouge_l_similarity

RULE = ("Youden's J over validation pairs: same-stance against different-stance references of "
        "one tweet when every reference has a stance, else each reference against the closest "
        "other reference of its tweet and the closest reference of one random other tweet; the "
        "midpoint of the best split, ties to the lower")


def youden_threshold(positives: np.ndarray, negatives: np.ndarray) -> dict[str, float]:
    """The threshold maximising TPR - FPR over the midpoints of adjacent distinct scores."""
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(f"calibration needs positive and negative pairs, got {positives.size} "
                         f"and {negatives.size}: the validation split has too few references")
    scores = np.unique(np.concatenate([positives, negatives]))
    cuts = np.concatenate([[scores[0] - 1e-9], (scores[1:] + scores[:-1]) / 2.0,
                           [scores[-1] + 1e-9]])
    tpr = (positives[None, :] >= cuts[:, None]).mean(axis=1)
    fpr = (negatives[None, :] >= cuts[:, None]).mean(axis=1)
    best = int(np.argmax(tpr - fpr))  # the first (lowest) cut on ties
    return {"threshold": float(cuts[best]), "tpr": float(tpr[best]), "fpr": float(fpr[best]),
            "youden_j": float(tpr[best] - fpr[best])}


def stance_pairs(groups: dict[str, list[dict]]) -> tuple[list[tuple], list[tuple]]:
    """(positive, negative) index pairs within each tweet by stance, as (tweet, i, j)."""
    positives, negatives = [], []
    for tweet, refs in groups.items():
        for i in range(len(refs)):
            for j in range(i + 1, len(refs)):
                same = refs[i]["stance"] == refs[j]["stance"]
                (positives if same else negatives).append((tweet, i, j))
    return positives, negatives


def scores(groups: dict[str, list[dict]], similarity: Any, seed: int
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """(positive scores, negative scores, the pairing used) under `similarity`, a function
    (texts, candidates) -> the similarity of each text to its closest candidate."""
    texts = {tweet: [r["reply"] for r in refs] for tweet, refs in groups.items()}
    if all(r.get("stance") for refs in groups.values() for r in refs):
        positives, negatives = stance_pairs(groups)
        pos = [similarity([texts[t][i]], [texts[t][j]])[0] for t, i, j in positives]
        neg = [similarity([texts[t][i]], [texts[t][j]])[0] for t, i, j in negatives]
        return np.array(pos), np.array(neg), "stance"
    rng = random.Random(seed)
    tweets = sorted(texts)
    pos, neg = [], []
    for tweet in tweets:
        if len(texts[tweet]) < 2:
            continue
        others = [t for t in tweets if t != tweet]
        for index, reply in enumerate(texts[tweet]):
            siblings = texts[tweet][:index] + texts[tweet][index + 1:]
            pos.append(similarity([reply], siblings)[0])
            if others:
                neg.append(similarity([reply], texts[rng.choice(others)])[0])
    return np.array(pos), np.array(neg), "closest reference"


def summary(positives: np.ndarray, negatives: np.ndarray, pairing: str) -> dict[str, Any]:
    """One criterion's calibration record."""
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {**youden_threshold(positives, negatives), "pairing": pairing,
            "positives": int(positives.size), "negatives": int(negatives.size),
            "positive_quantiles": [float(q) for q in np.quantile(positives, quantiles)],
            "negative_quantiles": [float(q) for q in np.quantile(negatives, quantiles)],
            "quantile_levels": quantiles}


def judge_description(settings: EvaluationSettings,
                      calibration: dict[str, Any] | None = None) -> dict[str, str]:
    """{name, path, precision} of the judge, as written into every file its numbers go into;
    the precision is the calibration's when given (the module docstring says why)."""
    from polychromic.embeddings import resolve_precision

    judge = describe(settings.judge)
    calibrated = (calibration or {}).get("judge") or {}
    if calibrated and calibrated.get("name") != judge["name"]:
        raise ValueError(f"the calibration was made with the judge {calibrated.get('name')!r}, "
                         f"not {judge['name']!r}: run the calibrate rule again")
    precision = calibrated.get("precision") or resolve_precision(settings.judge_precision)
    return {**judge, "precision": precision}


def calibrate_judge(val: str, output: str, settings: EvaluationSettings) -> dict[str, Any]:
    """Write `judge_calibration.json`: the semantic (judge cosine) and lexical (ROUGE-L)
    thresholds calibrated on the validation split `val` (module docstring)."""
    from polychromic.embeddings import get_encoder

    groups: dict[str, list[dict]] = defaultdict(list)
    for record in read_jsonl(val):
        if record["reply"].strip():
            groups[record["tweet_id"]].append(record)
    judge = judge_description(settings)
    encoder = get_encoder(judge["path"], precision=judge["precision"])
    cache: dict[str, np.ndarray] = {}

    def cosine(texts: list[str], candidates: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts + candidates if t not in cache})
        cache.update(zip(missing, encoder.encode(missing), strict=True))
        a = np.stack([cache[t] for t in texts])
        b = np.stack([cache[t] for t in candidates])
        return (a @ b.T).max(axis=1).astype(np.float64)

    def bertscore(texts: list[str], candidates: list[str]) -> np.ndarray:
        layer = settings.bertscore_layer or default_layer(settings.judge)
        return np.array(bertscore_best(texts, [candidates] * len(texts), judge["path"], layer))

    measures = {"semantic": cosine, "bertscore": bertscore, "rougeL": rouge_l_similarity}
    result: dict[str, Any] = {"judge": judge, "rule": RULE, "tweets": len(groups)}
    for criterion in dict.fromkeys([settings.passk.criterion, "semantic", "rougeL"]):
        result[criterion] = summary(*scores(groups, measures[criterion], settings.stats_seed))
    write_json(output, result)
    return result


def thresholds(settings: EvaluationSettings, calibration: dict[str, Any] | None
               ) -> tuple[float, float, dict[str, str]]:
    """(pass threshold of the criterion, ROUGE-L threshold of the lexical reading, where each
    came from): the config's value when set, else the calibrated one."""
    passk = settings.passk
    if calibration is None and (passk.threshold is None or passk.lexical_threshold is None):
        raise ValueError("a threshold is null (calibrate on validation) but no calibration "
                         "file was given")
    main = (passk.threshold if passk.threshold is not None
            else calibration[passk.criterion]["threshold"])
    lexical = (passk.lexical_threshold if passk.lexical_threshold is not None
               else calibration["rougeL"]["threshold"])
    source = {"threshold": "config" if passk.threshold is not None else "validation",
              "lexical_threshold": "config" if passk.lexical_threshold is not None
              else "validation"}
    return float(main), float(lexical), source
