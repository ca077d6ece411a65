"""Diversity of a system's n sampled replies to one prompt, then averaged over prompts.

Why: the polychromic objective is meant to make the n answers to one tweet differ from each
other. All per-prompt metrics look at one prompt's samples only.

- Self-BLEU (lower = more diverse)::

      SelfBLEU = (1/n) sum_i BLEU(s_i ; {s_j : j != i}) / 100

  sacrebleu sentence BLEU, tokeniser '13a', case-sensitive, smoothing 'exp' (sacrebleu default)
  with ``effective_order=True`` (n-gram orders with no hypothesis n-gram are left out, as a
  sentence-level BLEU should), capped at 1 against float rounding. An empty sample has BLEU 0
  (sacrebleu's value).

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


def self_bleu(samples: Sequence[str]) -> float:
    """Mean sentence BLEU (in [0, 1]) of each sample against the other n-1 as references."""
    if len(samples) < 2:
        raise ValueError(f"Self-BLEU needs at least 2 samples, got {len(samples)}")
    bleu = _bleu()
    scores = [  # min: sacrebleu returns 100.00000000000004 for identical strings
        min(1.0, bleu.sentence_score(sample, [*samples[:i], *samples[i + 1:]]).score / 100.0)
        for i, sample in enumerate(samples)
    ]
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
