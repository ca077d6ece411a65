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
