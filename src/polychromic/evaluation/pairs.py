"""Held-out reference pairs and Youden's threshold: the rule that calibrates a pass threshold
on validation data, shared by the judge's calibration (`evaluation.calibration`, whose
docstring defines the pairing) and the training reward's quality gate (`training.gate`).

A module of its own so that the train rule depends on the rule, not on the judge's
calibration file (its bootstrap and records), which evaluation alone reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

# (texts, candidates) -> the similarity of each text to its best-matching candidate
Similarity = Callable[[list[str], list[str]], Sequence[float]]
# per scored validation tweet: (positive scores, negative scores)
TweetScores = list[tuple[np.ndarray, np.ndarray]]


def youden_threshold(positives: np.ndarray, negatives: np.ndarray) -> dict[str, float]:
    """The threshold maximising TPR - FPR over the midpoints of adjacent distinct scores."""
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(f"calibration needs positive and negative pairs, got {positives.size} "
                         f"and {negatives.size}: the validation split has too few references")
    scores = np.unique(np.concatenate([positives, negatives]))
    cuts = np.concatenate([[scores[0] - 1e-9], (scores[1:] + scores[:-1]) / 2.0,
                           [scores[-1] + 1e-9]])
    # |{score >= cut}| by sorting, not a cuts x scores matrix: the bootstrap calls this 1000 times
    tpr = (positives.size - np.searchsorted(np.sort(positives), cuts, side="left")) / positives.size
    fpr = (negatives.size - np.searchsorted(np.sort(negatives), cuts, side="left")) / negatives.size
    best = int(np.argmax(tpr - fpr))  # the first (lowest) cut on ties
    return {"threshold": float(cuts[best]), "tpr": float(tpr[best]), "fpr": float(fpr[best]),
            "youden_j": float(tpr[best] - fpr[best])}


def scores(groups: dict[str, list[dict]], similarity: Similarity, seed: int) -> TweetScores:
    """Per validation tweet with at least two non-empty references, in sorted tweet order:
    (positive scores, negative scores) of its references under `similarity` (module docstring:
    held-out best match among its own references, best match among one random other tweet's)."""
    texts = {tweet: [r["reply"] for r in refs if r["reply"].strip()]
             for tweet, refs in groups.items()}
    tweets = sorted(t for t in texts if texts[t])
    rng = random.Random(seed)
    result = []
    for tweet in tweets:
        if len(texts[tweet]) < 2:
            continue
        others = [t for t in tweets if t != tweet]
        pos, neg = [], []
        for index, reply in enumerate(texts[tweet]):
            siblings = texts[tweet][:index] + texts[tweet][index + 1:]
            pos.append(float(similarity([reply], siblings)[0]))
            if others:
                neg.append(float(similarity([reply], texts[rng.choice(others)])[0]))
        result.append((np.array(pos, dtype=np.float64), np.array(neg, dtype=np.float64)))
    return result


def pooled(per_tweet: TweetScores, counts: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) of all tweets, tweet i counted `counts[i]` times (default once)."""
    if not per_tweet:
        return np.array([]), np.array([])
    counts = np.ones(len(per_tweet), dtype=int) if counts is None else counts

    def side(k: int) -> np.ndarray:
        values = np.concatenate([group[k] for group in per_tweet])
        return np.repeat(values, np.repeat(counts, [group[k].size for group in per_tweet]))

    return side(0), side(1)


def best_cosine(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> Similarity:
    """(texts, candidates) -> each text's cosine with its best-matching candidate, from unit
    embeddings by `encode`: `texts` (the validation replies) embedded up front in one call,
    in sorted order, any other text once, when first asked for."""
    every = sorted(set(texts))
    cache: dict[str, np.ndarray] = dict(zip(every, encode(every), strict=True))

    def cosine(texts: list[str], candidates: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts + candidates if t not in cache})
        if missing:
            cache.update(zip(missing, encode(missing), strict=True))
        a = np.stack([cache[t] for t in texts])
        b = np.stack([cache[t] for t in candidates])
        return (a @ b.T).max(axis=1).astype(np.float64)

    return cosine
