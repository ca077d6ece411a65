"""Similarity of replies: the measures that evaluation and training rewards share.

Why a module of its own: the polychromic objective rewards sampled replies by their similarity
to the references and their set diversity, and the evaluation measures pass@k, coverage and
diversity with the same definitions. Keeping the shared definitions here (and nothing else)
means that editing a metric of the evaluation does not re-run the training jobs that depend on
this module (the workflow tracks each rule's imports).

- best cosine: max_r cos(e(sample), e(r)) over the references r, unit-vector embeddings
  (cos = dot product); an empty or whitespace-only sample scores 0.0;
- ROUGE F1 (rouge-score, ``use_stemmer=True``: lowercase, non-alphanumeric -> space, Porter
  stemmer), max over references; an empty candidate scores 0.0::

      ROUGE-N F1(g, r) = 2 P R / (P + R),  P = |ngrams(g) & ngrams(r)| / |ngrams(g)|,
                                           R = |ngrams(g) & ngrams(r)| / |ngrams(r)|
      ROUGE-L uses LCS(g, r) in place of the clipped n-gram overlap.

- semantic diversity: mean pairwise cosine distance of n unit embeddings v_1..v_n::

      SemDiv = (1 / C(n,2)) sum_{i<j} (1 - v_i . v_j)
      with sum_{i<j} v_i . v_j = (||sum_i v_i||^2 - sum_i ||v_i||^2) / 2

  so memory is O(n d), never an n x n matrix; clipped to [0, 2] against rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@functools.lru_cache(maxsize=4)
def _rouge_scorer(rouge_types: tuple[str, ...]):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=True)


def rouge_best(candidate: str, references: Sequence[str],
               rouge_types: tuple[str, ...] = ROUGE_TYPES) -> dict[str, float]:
    """F1 of each ROUGE type, max over references; an empty candidate scores 0.0."""
    if not references:
        raise ValueError("a prompt without references cannot be scored")
    if not candidate.strip():
        return {name: 0.0 for name in rouge_types}
    scorer = _rouge_scorer(tuple(rouge_types))
    scores = [scorer.score(reference, candidate) for reference in references]
    return {name: max(float(s[name].fmeasure) for s in scores) for name in rouge_types}


def semantic_similarity(samples: Sequence[str], sample_embeddings: np.ndarray,
                        reference_embeddings: np.ndarray) -> np.ndarray:
    """Cosine of each sample (rows of unit vectors) to its closest reference: shape (n,)."""
    if reference_embeddings.shape[0] == 0:
        raise ValueError("a prompt without references cannot be scored")
    sims = (sample_embeddings @ reference_embeddings.T).max(axis=1).astype(np.float64)
    return np.where([bool(s.strip()) for s in samples], sims, 0.0)


@functools.lru_cache(maxsize=1 << 16)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """rouge-score's own tokens of `text` (lowercase, Porter-stemmed), computed once per text:
    stemming, not the LCS, is most of ROUGE-L's cost when every sample meets every reference."""
    return tuple(_rouge_tokenizer().tokenize(text))


@functools.lru_cache(maxsize=1)
def _rouge_tokenizer():
    from rouge_score.tokenizers import DefaultTokenizer

    return DefaultTokenizer(use_stemmer=True)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences, bit-parallel.

    Allison & Dix (1986), in the form of Hyyro (2004): bit i of V stands for a[i]; per token
    t of b, with M_t the bits of a equal to t, U = V & M_t and V <- (V + U) | (V - U), all
    modulo 2^|a|; the LCS length is the number of zero bits of V at the end. O(|b|) big-int
    operations instead of the |a| x |b| table (equal to rouge-score's table: tested).
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l_f1(target: Sequence[str], prediction: Sequence[str]) -> float:
    """ROUGE-L F1 of two token sequences, exactly as rouge-score computes it."""
    lcs = lcs_length(target, prediction)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(prediction), lcs / len(target)
    return 2 * precision * recall / (precision + recall)


def rouge_l_similarity(samples: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L F1 of each sample against its closest reference (empty sample -> 0.0); equal to
    `rouge_best(sample, references, ("rougeL",))` for every sample (tested), with each distinct
    text tokenised once and each distinct sample scored once."""
    if not references:
        raise ValueError("a prompt without references cannot be scored")
    refs = [rouge_tokens(reference) for reference in references]
    scores: dict[str, float] = {}
    for sample in dict.fromkeys(samples):
        tokens = rouge_tokens(sample) if sample.strip() else ()
        scores[sample] = max(rouge_l_f1(ref, tokens) for ref in refs) if tokens else 0.0
    return np.array([scores[sample] for sample in samples], dtype=np.float64)


def semantic_diversity(embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cos) over i < j of n embeddings, O(n d) memory."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"need an (n >= 2, d) array of embeddings, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("zero embedding vector: cosine undefined")
    unit = vectors / norms
    n = unit.shape[0]
    total = unit.sum(axis=0)
    sum_cos = (float(total @ total) - float((unit * unit).sum())) / 2.0
    mean_cos = sum_cos / (n * (n - 1) / 2.0)
    return float(min(2.0, max(0.0, 1.0 - mean_cos)))
