"""Coverage: how many distinct modes of a tweet's references the passing samples hit.

Why: pass@k rewards a system whose k replies include one good reply; coverage asks how many of
the *kinds* of good reply a tweet has the n samples reach. Per
prompt:

    coverage = |{mode(closest reference of s) : s a passing sample}| / |{mode(r) : r a reference}|

- A sample *passes* under the pass@k rule (passk.py: criterion and threshold; empty samples
  fail). It hits the mode of its closest reference by sentence-embedding cosine (the embeddings
  every criterion has at hand; with criterion `semantic` this is the reference that made it
  pass).
- The **modes** of the references are their `stance` labels when every reference of the prompt
  has one (the demo data), else clusters of the reference embeddings: deterministic
  average-linkage agglomerative clustering on cosine distance, merging while the average
  cosine similarity between two clusters is >= the judge's cosine pass threshold (the one that
  decides whether a sample is close enough to a reference under the `semantic` criterion; the
  calibrated or configured one when that is the criterion, the calibrated one otherwise).
  Which source each prompt used is counted in the output's settings.

Coverage is in [0, 1], higher is better, and 0 for a prompt without a passing sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STANCE = "stance"
CLUSTERS = "embedding clusters"


def cluster_references(embeddings: np.ndarray, threshold: float) -> list[int]:
    """Cluster labels (0, 1, ... in order of first appearance) of unit-vector embeddings:
    average-linkage agglomerative clustering, joining clusters whose mean pairwise cosine
    is >= threshold. Deterministic (no random initialisation)."""
    count = int(embeddings.shape[0])
    if count == 0:
        raise ValueError("a prompt without references has no modes")
    if count == 1:
        return [0]
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    similarity = np.clip(embeddings @ embeddings.T, -1.0, 1.0).astype(np.float64)
    distance = 1.0 - similarity
    np.fill_diagonal(distance, 0.0)
    distance = (distance + distance.T) / 2.0
    tree = linkage(squareform(distance, checks=False), method="average")
    # fcluster joins at merge heights <= t; a tiny slack keeps cos == threshold inside.
    raw = fcluster(tree, t=1.0 - threshold + 1e-9, criterion="distance")
    order: dict[int, int] = {}
    return [order.setdefault(int(label), len(order)) for label in raw]


def reference_modes(stances: Sequence[str | None] | None, embeddings: np.ndarray,
                    threshold: float) -> tuple[list, str]:
    """(mode of each reference, source): the stances when every reference has one, else
    embedding clusters."""
    if stances is not None and len(stances) == embeddings.shape[0] and all(
            isinstance(stance, str) and stance for stance in stances):
        return list(stances), STANCE
    return cluster_references(embeddings, threshold), CLUSTERS


def closest_references(sample_embeddings: np.ndarray,
                       reference_embeddings: np.ndarray) -> np.ndarray:
    """Index of each sample's closest reference by cosine (unit vectors): shape (n,)."""
    if reference_embeddings.shape[0] == 0:
        raise ValueError("a prompt without references cannot be scored")
    return np.argmax(sample_embeddings @ reference_embeddings.T, axis=1)


def coverage(passed: Sequence[bool], closest: Sequence[int], modes: Sequence) -> tuple[float,
                                                                                       int, int]:
    """(coverage, modes hit, modes) of one prompt: `passed[i]` says whether sample i passes,
    `closest[i]` is its closest reference, `modes[r]` the mode of reference r."""
    if len(passed) != len(closest):
        raise ValueError(f"{len(passed)} pass flags but {len(closest)} closest references")
    total = len(set(modes))
    if total == 0:
        raise ValueError("a prompt without references has no modes")
    hit = {modes[int(ref)] for ok, ref in zip(passed, closest, strict=True) if ok}
    return len(hit) / total, len(hit), total


def coverage_of_hits(hits: Sequence, modes: Sequence) -> tuple[float, int, int]:
    """(coverage, modes hit, modes) of one prompt from a judge's decisions: `hits[i]` is the
    mode sample i hits (None when it does not pass), `modes[r]` the mode of reference r; a hit
    outside the references' modes is an error (a judge must hit a reference's mode)."""
    total = len(set(modes))
    if total == 0:
        raise ValueError("a prompt without references has no modes")
    hit = {mode for mode in hits if mode is not None}
    if not hit <= set(modes):
        raise ValueError(f"hits {sorted(map(str, hit - set(modes)))} are not modes of the "
                         "references")
    return len(hit) / total, len(hit), total


def passing(similarities: np.ndarray, samples: Sequence[str], threshold: float) -> list[bool]:
    """The pass@k rule per sample (passk.pass_counts counts these): similarity >= threshold
    and not empty."""
    return [bool(s >= threshold) and bool(t.strip())
            for s, t in zip(similarities, samples, strict=True)]
