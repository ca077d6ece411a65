"""The pass threshold of each criterion, calibrated on the validation split instead of hand-set.

Why: "a sample passes when its similarity to the closest reference reaches 0.7" means different
things under different judges (cosines of all-mpnet-base-v2 and all-MiniLM-L6-v2 live on
different scales) and for ROUGE-L. The threshold is chosen on data the test never sees, by one
documented rule, applied to each criterion and to every corpus alike (stance labels, where a
corpus has them, play no part here).

The calibration scores the statistic the test applies. At test time a sample s of tweet x
passes when max_{r in R(x)} sim(s, r) >= t, its best match among ALL references R(x) of x.
So, for every non-empty reference r of a validation tweet x with at least two non-empty
references (held out, it stands in for a good sample of x):

- **positive**: sim+(r) = max_{r' in R(x), r' != r} sim(r, r'), r's best match among the
  remaining references of its own tweet;
- **negative**: sim-(r) = max_{r' in R(y)} sim(r, r'), r's best match among the references of
  one other validation tweet y drawn at random (`random.Random(stats_seed)`, one draw per
  reference in the order of the sorted tweet ids and of the references in the file): r stands in
  for an off-topic sample of y;
- the threshold is the midpoint between two adjacent observed scores that maximises Youden's
  J = TPR - FPR, TPR = |{sim+ >= t}| / |positives|, FPR = |{sim- >= t}| / |negatives| (a score
  >= threshold counts as a pass); ties go to the lower threshold.

Every pair is scored once. Its uncertainty is a 95 % percentile bootstrap interval over
validation tweets (a tweet's pairs share references, so the tweet is the unit): B = 1000
resamples of the n scored tweets with replacement, resample b drawn as the b-th call of
`rng.integers(0, n, size=n)` on `rng = numpy.random.default_rng(stats_seed)`, a fresh generator
per criterion (so every criterion sees the same resamples); each resample pools the positive and
negative scores of its tweets (a tweet drawn twice counts twice) and recomputes Youden's
threshold; the interval is the 2.5th and 97.5th percentiles of the B thresholds
(`numpy.quantile`, linear interpolation). A threshold resting on fewer than
`MIN_POSITIVE_PAIRS` positive pairs is flagged (`few_pairs`), and `calibration_warnings` words
it for the verdict and the paper.

The file `evaluation/judge_calibration.json` holds the pass criterion's name (`criterion`) and,
per criterion, the threshold, its bootstrap interval, the pairing, the pair counts, TPR, FPR and
J, and the score quantiles of both groups, for the pass criterion, for `semantic` (the judge
cosine: coverage clusters references at it whatever the criterion) and for `rougeL` (the
lexical reading). `evaluation.passk.threshold` (the criterion's) and
`evaluation.passk.lexical_threshold` (ROUGE-L) override the calibrated values. The file also
fixes the judge's precision (`judge.precision`): evaluation reads it from here, so calibration
and every seed embed alike even where `judge_precision: auto` would resolve differently.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from polychromic.encoders import default_layer, describe
from polychromic.evaluation.pairs import TweetScores, best_cosine, pooled, scores, youden_threshold
from polychromic.evaluation.quality import bertscore_best
from polychromic.io import read_jsonl, write_json
from polychromic.settings import EvaluationSettings
from polychromic.similarity import rouge_l_similarity

PAIRING = "held-out best match"
MIN_POSITIVE_PAIRS = 100  # fewer positive validation pairs: the threshold is flagged (few_pairs)
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_CI = 0.95
RULE = ("Youden's J over validation pairs, for every corpus: each reference against its best "
        "match among the other references of its own tweet (positive) and among the "
        "references of one random other tweet (negative), the statistic a test sample is "
        "judged by; the midpoint of the best split, ties to the lower; a "
        f"{BOOTSTRAP_CI * 100:.3g} % percentile bootstrap interval over validation tweets "
        f"({BOOTSTRAP_SAMPLES} resamples)")

def bootstrap_interval(per_tweet: TweetScores, seed: int, samples: int = BOOTSTRAP_SAMPLES,
                       level: float = BOOTSTRAP_CI) -> list[float]:
    """[low, high]: the percentile bootstrap interval of Youden's threshold, resampling the
    tweets with replacement (module docstring gives the exact seeding)."""
    rng = np.random.default_rng(seed)
    n = len(per_tweet)
    cuts = np.empty(samples)
    for b in range(samples):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        cuts[b] = youden_threshold(*pooled(per_tweet, counts))["threshold"]
    tail = (1.0 - level) / 2.0
    return [float(q) for q in np.quantile(cuts, [tail, 1.0 - tail])]


def summary(per_tweet: TweetScores, seed: int) -> dict[str, Any]:
    """One criterion's calibration record."""
    positives, negatives = pooled(per_tweet)
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {**youden_threshold(positives, negatives),
            "threshold_ci": bootstrap_interval(per_tweet, seed),
            "bootstrap": {"samples": BOOTSTRAP_SAMPLES, "unit": "validation tweets",
                          "ci": BOOTSTRAP_CI},
            "pairing": PAIRING, "positives": int(positives.size),
            "negatives": int(negatives.size),
            "few_pairs": bool(positives.size < MIN_POSITIVE_PAIRS),
            "positive_quantiles": [float(q) for q in np.quantile(positives, quantiles)],
            "negative_quantiles": [float(q) for q in np.quantile(negatives, quantiles)],
            "quantile_levels": quantiles}


def calibration_warnings(calibration: dict[str, Any]) -> list[str]:
    """Sentences (lower-case, no final period) about the pass criterion's calibration: one when
    its threshold rests on fewer than `MIN_POSITIVE_PAIRS` positive pairs, else none. The
    callers decide whether it applies (a threshold set in the config does not use it)."""
    criterion = calibration.get("criterion")
    record = calibration.get(criterion) if isinstance(criterion, str) else None
    if not isinstance(record, dict) or not {"few_pairs", "threshold_ci"} <= set(record):
        raise ValueError("the calibration has no pass criterion record with few_pairs and "
                         "threshold_ci: run the calibrate rule again")
    if not record["few_pairs"]:
        return []
    low, high = record["threshold_ci"]
    level = (record.get("bootstrap") or {}).get("ci", BOOTSTRAP_CI)
    return [f"the pass threshold ({criterion}) rests on only {record['positives']} positive "
            f"validation pairs (fewer than {MIN_POSITIVE_PAIRS}): its {level * 100:.3g} % "
            f"bootstrap interval is [{low:.2f}, {high:.2f}], so pass@k moves with it"]


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
    thresholds calibrated on the validation split `val`, with their bootstrap intervals
    (module docstring); every reply is embedded once, up front."""
    from polychromic.embeddings import get_encoder

    groups: dict[str, list[dict]] = defaultdict(list)
    for record in read_jsonl(val):
        if record["reply"].strip():
            groups[record["tweet_id"]].append(record)
    judge = judge_description(settings)
    encoder = get_encoder(judge["path"], precision=judge["precision"])
    cosine = best_cosine(encoder.encode, [r["reply"] for refs in groups.values() for r in refs])

    def bertscore(texts: list[str], candidates: list[str]) -> np.ndarray:
        layer = settings.bertscore_layer or default_layer(settings.judge)
        return np.array(bertscore_best(texts, [candidates] * len(texts), judge["path"], layer))

    measures = {"semantic": cosine, "bertscore": bertscore, "rougeL": rouge_l_similarity}
    result: dict[str, Any] = {"judge": judge, "rule": RULE, "tweets": len(groups),
                              "criterion": settings.passk.criterion}
    for criterion in dict.fromkeys([settings.passk.criterion, "semantic", "rougeL"]):
        per_tweet = scores(groups, measures[criterion], settings.stats_seed)
        result[criterion] = summary(per_tweet, settings.stats_seed)
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
