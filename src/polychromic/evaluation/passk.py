"""pass@k: the chance that at least one of k replies drawn from a system is good enough.

Why: the study asks whether a diversity-aware objective helps when a model may answer k times and
the best answer counts.

A sample *passes* when its similarity to the CLOSEST reference reply of its tweet reaches a
threshold, under one criterion:

- ``semantic``:  max_r cos(e(sample), e(r)) with sentence embeddings (unit vectors, so
  cos = dot product; `polychromic.similarity`);
- ``rougeL``:    max_r ROUGE-L F1(sample, r) (rouge-score, Porter stemming; the same module);
- ``bertscore``: max_r BERTScore F1(sample, r) (bert_score with the judge, see quality.py).

An empty (or whitespace-only) sample never passes: its similarity is defined as 0.0.

With c passing samples out of n for a prompt, the unbiased estimator of Chen et al. (2021) is

    pass@k = 1 - C(n - c, k) / C(n, k)

computed in the numerically stable product form of openai/human-eval:

    pass@k = 1                                        if n - c < k
           = 1 - prod_{i = n-c+1}^{n} (1 - k / i)     otherwise

and then averaged over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polychromic.evaluation.quality import bertscore_best
from polychromic.similarity import rouge_l_similarity, semantic_similarity

CRITERIA = ("semantic", "rougeL", "bertscore")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one prompt with `c` passing samples out of `n` (Chen et al. 2021)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k} with n={n} samples")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def best_reference_similarities(
    criterion: str,
    samples: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    sample_embeddings: Sequence[np.ndarray] | None = None,
    reference_embeddings: Sequence[np.ndarray] | None = None,
    model_path: str | None = None,
    bertscore_layer: int = 6,
) -> list[np.ndarray]:
    """Per prompt, every sample's similarity to its closest reference under `criterion`.

    semantic needs the embeddings (unit vectors), bertscore the local model folder.
    """
    if criterion == "semantic":
        if sample_embeddings is None or reference_embeddings is None:
            raise ValueError("criterion 'semantic' needs sample and reference embeddings")
        return [semantic_similarity(s, e, r) for s, e, r in
                zip(samples, sample_embeddings, reference_embeddings, strict=True)]
    if criterion == "rougeL":
        return [rouge_l_similarity(s, r) for s, r in zip(samples, references, strict=True)]
    if criterion == "bertscore":
        if model_path is None:
            raise ValueError("criterion 'bertscore' needs the BERTScore model folder")
        flat = [sample for prompt in samples for sample in prompt]
        refs = [r for prompt, r in zip(samples, references, strict=True) for _ in prompt]
        scores = np.array(bertscore_best(flat, refs, model_path, bertscore_layer))
        bounds = np.cumsum([0] + [len(prompt) for prompt in samples])
        return [scores[bounds[i]:bounds[i + 1]] for i in range(len(samples))]
    raise ValueError(f"unknown pass@k criterion {criterion!r}; known: {CRITERIA}")


def pass_counts(similarities: Sequence[np.ndarray], samples: Sequence[Sequence[str]],
                threshold: float) -> list[int]:
    """Passing samples per prompt: similarity to the closest reference >= threshold.

    `similarities[p][i]` is sample i of prompt p's best-reference similarity; empty samples are
    counted as failing whatever their similarity.
    """
    counts = []
    for sims, texts in zip(similarities, samples, strict=True):
        passed = [s >= threshold and bool(t.strip()) for s, t in zip(sims, texts, strict=True)]
        counts.append(int(sum(passed)))
    return counts


def passk_per_prompt(counts: Sequence[int], n: int, k: int) -> list[float]:
    """pass@k of every prompt from its pass count."""
    return [pass_at_k(n, c, k) for c in counts]
