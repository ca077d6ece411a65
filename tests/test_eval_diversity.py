"""Diversity metrics against the libraries and the O(n^2) definitions they shortcut."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
import sacrebleu

from polychromic.evaluation.diversity import (
    distinct_n,
    pooled_distinct_n,
    self_bleu,
    self_bleu_signature,
)
from polychromic.evaluation.registry import get_metric
from polychromic.evaluation.view import SystemView
from polychromic.similarity import semantic_diversity

SAMPLES = [
    "I think the game last night was great!",
    "The game was great, honestly.",
    "Not a fan of how the team played.",
    "Great game, great team, great night.",
]


def test_self_bleu_matches_sacrebleu_called_directly() -> None:
    expected = np.mean([
        sacrebleu.sentence_bleu(s, SAMPLES[:i] + SAMPLES[i + 1:]).score / 100.0
        for i, s in enumerate(SAMPLES)
    ])
    assert self_bleu(SAMPLES) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < self_bleu(SAMPLES) < 1.0


def test_self_bleu_identical_samples_is_one_and_needs_two() -> None:
    assert self_bleu(["the same reply here"] * 5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        self_bleu(["alone"])
    assert "tok:13a" in self_bleu_signature(10) and "nrefs:9" in self_bleu_signature(10)


def test_distinct_n_hand_example() -> None:
    samples = ["The cat sat", "the cat ran", "a dog"]
    # unigrams: the, cat, sat, the, cat, ran, a, dog -> 8 total, 6 unique (lowercased)
    assert distinct_n(samples, 1) == pytest.approx(6 / 8)
    # bigrams: (the cat)(cat sat)(the cat)(cat ran)(a dog) -> 5 total, 4 unique
    assert distinct_n(samples, 2) == pytest.approx(4 / 5)
    # trigrams: (the cat sat)(the cat ran) -> 2 total, 2 unique; "a dog" has none
    assert distinct_n(samples, 3) == pytest.approx(1.0)
    # pooled over prompts: n-grams never cross sample boundaries
    assert pooled_distinct_n([samples[:2], samples[2:]], 2) == pytest.approx(4 / 5)


def test_distinct_n_without_ngrams_is_nan_not_zero() -> None:
    assert math.isnan(distinct_n(["", "   "], 1))
    assert math.isnan(distinct_n(["one two", "three"], 3))


def test_semantic_diversity_equals_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 384))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairwise = np.mean([1.0 - vectors[i] @ vectors[j] for i, j in combinations(range(12), 2)])
    assert semantic_diversity(vectors.astype(np.float32)) == pytest.approx(pairwise, abs=1e-6)


def test_semantic_diversity_edge_cases() -> None:
    same = np.tile(np.array([[0.6, 0.8]]), (6, 1))
    assert semantic_diversity(same) == pytest.approx(0.0, abs=1e-12)
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert semantic_diversity(opposite) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        semantic_diversity(np.ones((1, 3)))


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def test_off_topic_is_failing_the_own_tweet_while_passing_another() -> None:
    """Judge cosine at the semantic threshold 0.8 (the pass criterion's own threshold, 0.3 here,
    is not used): tweet 0 has reference e0, tweet 1 has e1 and u, where u passes for tweet 0 too."""
    e0, e1, u = _unit(1, 0, 0), _unit(0, 1, 0), _unit(1, 0, 0.3)
    poor = _unit(0.2, 0.5, np.sqrt(0.71))  # cosines 0.2, 0.5, 0.43: passes nowhere
    samples = [["swapped", "poor", "on topic", "on topic, closest elsewhere", ""], ["", "  "]]
    embeddings = [np.stack([e1, poor, e0, u, e1]), np.stack([e1, e1])]
    references = np.stack([e0, e1, u])
    records = [{"samples": s, "references": ["r"], "greedy": "g"} for s in samples]
    view = SystemView(records, embeddings, [references[:1], references[1:]], [0.0, 0.0],
                      [np.zeros(len(s)) for s in samples], [[0], [0, 1]], 0.3,
                      [np.zeros(len(s)) for s in samples], 0.3, references, np.array([0, 1, 1]),
                      0.8)
    # prompt 0: of 4 non-empty samples only "swapped" fails for tweet 0 and passes for tweet 1;
    # "poor" fails everywhere (at 0.3 it would count), "on topic, closest elsewhere" passes
    # for its own tweet although its closest reference is tweet 1's (the old reading: 3/4);
    # the empty sample is left out. Prompt 1: every sample empty, so undefined.
    values = get_metric("off_topic_samples").compute(view)
    assert values[0] == pytest.approx(1 / 4)
    assert math.isnan(values[1])
