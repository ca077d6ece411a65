"""Single-answer quality: the greedy reply against ALL references of its tweet (best reference).

Why: a diversity-aware objective must not buy diversity with worse replies.
Every score of a greedy reply g with references R is the best over references.

- ROUGE-1/2/L F1 (rouge-score, ``use_stemmer=True``), max over references
  (`polychromic.similarity.rouge_best`, which holds the formula).

- BERTScore F1 (Zhang et al. 2020, the ``bert_score`` package) with the judge
  (`evaluation.judge`) at layer L::

      x_i, y_j = L2-normalised layer-L token vectors of g and r (the judge's tokenizer; the
                 special start/end tokens carry no weight, idf off)
      P = mean_i max_j x_i . y_j,  R = mean_j max_i x_i . y_j,  F1 = 2 P R / (P + R)
      score = max_{r in R} F1(g, r)

  No baseline rescaling: bert_score ships no baseline for these models (raw F1 of sentence
  encoders sits high, around 0.6 to 1.0; compare systems, not absolute values).

- Perplexity of the reference replies under the system (lower is better), per prompt::

      PPL = exp( sum_r nll(r) / sum_r tokens(r) )

  from ``reference_nll`` (summed nats) and ``reference_tokens`` of the generation records.

An empty (or whitespace-only) greedy reply scores 0.0 on ROUGE and BERTScore, without calling
either library.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _bert_score_model_type(model_path: str | os.PathLike) -> str:
    """A path bert_score loads as a BERT model: it loads a random T5 when "t5" is in the string.

    When the path contains "t5", link the folder from a temp dir whose path has no "t5".
    """
    path = str(Path(model_path).resolve())
    if "t5" not in path:
        return path
    for _ in range(100):
        tmp = tempfile.mkdtemp(prefix="bertscore_")
        link = Path(tmp) / "encoder"
        if "t5" not in str(link):
            link.symlink_to(path, target_is_directory=True)
            return str(link)
        os.rmdir(tmp)
    raise RuntimeError(f"could not find a temp path without 't5' for the model {path}")


@functools.lru_cache(maxsize=2)
def get_bert_scorer(model_path: str, num_layers: int):
    """One bert_score.BERTScorer per (local model folder, layer) and process."""
    from bert_score import BERTScorer

    with contextlib.redirect_stdout(io.StringIO()):
        return BERTScorer(model_type=_bert_score_model_type(model_path), num_layers=num_layers,
                          idf=False, rescale_with_baseline=False, device="cpu")


def bertscore_best(candidates: Sequence[str], references: Sequence[Sequence[str]],
                   model_path: str | os.PathLike, num_layers: int = 6,
                   batch_size: int = 64) -> list[float]:
    """BERTScore F1 of every candidate against its closest reference, in one batched call.

    Empty candidates score 0.0 and empty references are skipped, before bert_score sees them.
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    groups: dict[tuple[str, ...], list[int]] = {}  # candidates sharing a reference list
    for index, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
        kept = tuple(ref for ref in refs if ref.strip())
        if not kept:
            raise ValueError(f"candidate {index}: no non-empty reference to score against")
        if cand.strip():
            groups.setdefault(kept, []).append(index)
    pairs_c, pairs_r, owner = [], [], []
    for kept, members in groups.items():  # adjacent, so a chunk re-encodes few references
        for index in members:
            pairs_c += [candidates[index]] * len(kept)
            pairs_r += kept
            owner += [index] * len(kept)
    best = np.full(len(candidates), -np.inf)
    if pairs_c:
        scorer = get_bert_scorer(str(model_path), int(num_layers))
        # bert_score sorts the unique sentences of a call by word count with ties in set()
        # order, which changes with Python's hash seed; different batches mean different
        # padding and last-digit differences. Scoring fixed chunks of pairs, each in ONE
        # bert_score batch, makes the result independent of that order.
        f1_parts = []
        for start in range(0, len(pairs_c), batch_size):
            chunk_c = pairs_c[start : start + batch_size]
            chunk_r = pairs_r[start : start + batch_size]
            _, _, f1 = scorer.score(chunk_c, chunk_r, batch_size=2 * len(chunk_c))
            f1_parts.append(f1.double().numpy())
        np.maximum.at(best, np.asarray(owner), np.concatenate(f1_parts))
    best[np.isneginf(best)] = 0.0  # empty candidates
    return [float(value) for value in best]


def perplexity(reference_nll: Sequence[float], reference_tokens: Sequence[int]) -> float:
    """exp(total nats / total tokens) over a prompt's references.

    nan when no token was scored, inf when the exponent overflows: the caller writes null.
    """
    if len(reference_nll) != len(reference_tokens):
        raise ValueError("reference_nll and reference_tokens differ in length")
    tokens = float(sum(reference_tokens))
    if tokens <= 0:
        return math.nan
    try:
        return math.exp(float(sum(reference_nll)) / tokens)
    except OverflowError:
        return math.inf
