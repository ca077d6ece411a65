"""Diversity of a system's n sampled replies to one prompt, then averaged over prompts.

Why: the polychromic objective is meant to make the n answers to one tweet differ from each
other. All per-prompt metrics look at one prompt's samples only.

- Self-BLEU (lower = more diverse)::

      SelfBLEU = (1/n) sum_i BLEU(s_i ; {s_j : j != i}) / 100

  sacrebleu sentence BLEU, tokeniser '13a', case-sensitive, smoothing 'exp' (sacrebleu default)
  with ``effective_order=True`` (n-gram orders with no hypothesis n-gram are left out, as a
  sentence-level BLEU should), capped at 1 against float rounding. An empty sample has BLEU 0
  (sacrebleu's value). Computed without the n (n-1)-reference sentence_score calls (2,450
  per prompt at n = 50): BLEU of s_i against the others needs, per n-gram g of s_i, the largest
  count of g among the OTHER samples, which is the largest count over all samples unless s_i
  alone holds it, then the second largest; and the reference length closest to s_i's among the
  others' lengths (ties to the shorter). From these sufficient statistics sacrebleu's own
  `BLEU.compute_bleu` gives the score: equal to sacrebleu's `sentence_score` (tested).

- distinct-n (higher = more diverse)::

      distinct_n = |unique n-grams| / |n-grams|

  over the n-grams of all samples of the prompt (n-grams do not cross sample boundaries),
  tokens = ``text.lower().split()`` (lowercased, whitespace-split). When the samples hold no
  n-gram at all (every sample shorter than n tokens) the ratio is undefined: nan, which the caller
  writes as null with a reason rather than a made-up 0 or 1.

- semantic diversity (higher = more diverse): mean pairwise cosine distance of the samples'
  sentence embeddings (`polychromic.similarity.semantic_diversity`, which holds the formula;
  the polychromic objective's set diversity is the same function).

- pooled distinct-n (``pooled_distinct_n``): distinct-n over the samples of ALL prompts of a
  system at once (corpus level: one number, no per-prompt values).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

SELF_BLEU_SETTINGS = {
    "library": "sacrebleu",
    "tokenize": "13a",
    "lowercase": False,
    "smooth_method": "exp",
    "effective_order": True,
    "scale": "BLEU/100, in [0, 1]",
    "empty_sample": "BLEU 0 (sacrebleu)",
}
DISTINCT_TOKENIZATION = (
    "text.lower().split() (lowercased, whitespace tokens); n-grams within a sample"
)


@functools.lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)


def self_bleu_signature(n_samples: int) -> str:
    """sacrebleu's signature string of the Self-BLEU computation (n-1 references)."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    bleu.sentence_score("x", ["x"] * max(1, n_samples - 1))  # the signature records nrefs
    return str(bleu.get_signature())


def _ngram_counts(samples: Sequence[str]) -> tuple[list[Counter], list[int]]:
    """Each sample's n-gram counts (orders 1-4) and length, tokenised as sacrebleu does."""
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    bleu = _bleu()
    pairs = [extract_all_word_ngrams(bleu.tokenizer(sample.rstrip()), 1, bleu.max_ngram_order)
             for sample in samples]
    return [counts for counts, _ in pairs], [length for _, length in pairs]


def _others_max(counts: list[Counter]) -> dict[tuple, tuple[int, int, int]]:
    """Per n-gram: (largest count, how many samples hold it, second largest)."""
    table: dict[tuple, list[int]] = {}
    for sample in counts:
        for gram, count in sample.items():
            table.setdefault(gram, []).append(count)
    out = {}
    for gram, values in table.items():
        values.sort(reverse=True)
        out[gram] = (values[0], values.count(values[0]), values[1] if len(values) > 1 else 0)
    return out


def _closest_other_length(lengths: list[int], i: int) -> int:
    """sacrebleu's reference length for sample i against the others: the closest length,
    ties to the shorter."""
    others = lengths[:i] + lengths[i + 1:]
    return min(others, key=lambda length: (abs(lengths[i] - length), length))


def self_bleu(samples: Sequence[str]) -> float:
    """Mean sentence BLEU (in [0, 1]) of each sample against the other n-1 as references,
    from n-gram count algebra (module docstring)."""
    from sacrebleu.metrics import BLEU

    if len(samples) < 2:
        raise ValueError(f"Self-BLEU needs at least 2 samples, got {len(samples)}")
    counts, lengths = _ngram_counts(samples)
    best = _others_max(counts)
    orders = _bleu().max_ngram_order
    scores = []
    for i, sample in enumerate(counts):
        correct, total = [0] * orders, [0] * orders
        for gram, count in sample.items():
            top, holders, second = best[gram]
            others = second if count == top and holders == 1 else top
            total[len(gram) - 1] += count
            correct[len(gram) - 1] += min(count, others)
        score = BLEU.compute_bleu(correct, total, lengths[i], _closest_other_length(lengths, i),
                                  smooth_method="exp", effective_order=True,
                                  max_ngram_order=orders).score
        scores.append(min(1.0, score / 100.0))  # sacrebleu gives 100.00000000000004 at times
    return float(np.mean(scores))


def ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """Word n-grams of a lowercased, whitespace-tokenised text."""
    tokens = text.lower().split()
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _distinct(counts: Counter, total: int) -> float:
    return len(counts) / total if total else math.nan


def distinct_n(samples: Iterable[str], n: int) -> float:
    """Unique / total word n-grams over the samples; nan when there is no n-gram at all."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    counts: Counter = Counter()
    for sample in samples:
        counts.update(ngrams(sample, n))
    return _distinct(counts, sum(counts.values()))


def pooled_distinct_n(samples_per_prompt: Iterable[Sequence[str]], n: int) -> float:
    """distinct-n over the samples of all prompts at once (corpus level)."""
    return distinct_n((s for samples in samples_per_prompt for s in samples), n)
