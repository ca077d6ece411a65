"""What a metric sees of one system in one seed: its generations and the shared heavy parts.

The evaluation computes the expensive inputs once for every system (sentence embeddings of all
samples and references, one batched BERTScore call for all greedy replies, the best-reference
similarity of every sample under the pass criterion) and hands each metric's `compute` a
`SystemView`; what several metrics share (ROUGE of the greedy replies, pass counts, coverage,
off-topic samples) is computed on first use and kept.

Off-topic samples are judged by the judge's cosine and its calibrated cosine pass threshold
(`semantic_threshold`, whatever the pass criterion): a sample is off-topic when it fails for its
own tweet but would pass for another test tweet. Counting a sample whose closest reference
merely belongs to another tweet would measure how repetitive the corpus is (many tweets share a
topic) and grow with the number of test tweets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from polychromic.evaluation import coverage as cov
from polychromic.evaluation import passk as pk
from polychromic.evaluation.judges import JUDGES, Decisions
from polychromic.similarity import rouge_best


@dataclass
class SystemView:
    records: list[dict[str, Any]]  # the system's generation records, one per test prompt
    sample_embeddings: list[np.ndarray]  # per prompt: (n, d) unit vectors
    reference_embeddings: list[np.ndarray]  # per prompt: (references, d) unit vectors
    bertscore: list[float]  # BERTScore F1 of each greedy reply (best reference)
    similarities: list[np.ndarray]  # per prompt: each sample's best-reference similarity
    modes: list[list]  # per prompt: the mode of each reference (coverage.reference_modes)
    threshold: float  # the pass threshold
    lexical_similarities: list[np.ndarray]  # per prompt: each sample's best ROUGE-L
    lexical_threshold: float
    all_references: np.ndarray  # every test reference's judge embedding, (R, d)
    owners: np.ndarray  # the prompt index of each row of all_references
    semantic_threshold: float  # the judge-cosine pass threshold (calibrated; off-topic samples)
    judge: str = "similarity"  # the primary judge's kind (evaluation.judges)
    second_judges: tuple[str, ...] = ()  # the kinds of the further readings of pass@k

    @property
    def samples(self) -> list[list[str]]:
        return [record["samples"] for record in self.records]

    @property
    def greedy(self) -> list[str]:
        return [record["greedy"] for record in self.records]

    @property
    def references(self) -> list[list[str]]:
        return [record["references"] for record in self.records]

    @property
    def n(self) -> int:
        """Samples per prompt (the same for every prompt: checked when the file is read)."""
        return len(self.records[0]["samples"])

    @functools.cached_property
    def rouge(self) -> list[dict[str, float]]:
        """ROUGE-1/2/L F1 of each greedy reply against its closest reference."""
        return [rouge_best(record["greedy"], record["references"])
                for record in self.records]

    @functools.cached_property
    def decisions(self) -> Decisions:
        """The primary judge's decisions on every sample (evaluation.judges)."""
        return JUDGES[self.judge].decide(self)

    def reading(self, kind: str) -> Decisions:
        """A judge's decisions: the primary's, or a second reading's (computed once)."""
        if kind == self.judge:
            return self.decisions
        cache = self.__dict__.setdefault("_readings", {})
        if kind not in cache:
            cache[kind] = JUDGES[kind].decide(self)
        return cache[kind]

    @functools.cached_property
    def pass_counts(self) -> list[int]:
        """Passing samples per prompt, by the primary judge."""
        return self.decisions.pass_counts

    @functools.cached_property
    def lexical_pass_counts(self) -> list[int]:
        """Passing samples per prompt under ROUGE-L and the lexical threshold."""
        return pk.pass_counts(self.lexical_similarities, self.samples, self.lexical_threshold)

    @functools.cached_property
    def passing(self) -> list[list[bool]]:
        """Per prompt, whether each sample passes (the primary judge)."""
        return [[bool(flag) for flag in passed] for passed in self.decisions.passed]

    @functools.cached_property
    def off_topic(self) -> list[float]:
        """Per prompt, the fraction of non-empty samples that are off-topic (`off_topic_fraction`
        under the judge-cosine threshold); NaN when every sample is empty."""
        return [off_topic_fraction(emb, texts, self.all_references, self.owners, index,
                                   self.semantic_threshold)
                for index, (texts, emb) in enumerate(zip(self.samples, self.sample_embeddings,
                                                         strict=True))]

    @functools.cached_property
    def coverage(self) -> list[tuple[float, int, int]]:
        """(coverage, modes hit, modes) per prompt (coverage.py): the distinct reference modes
        the primary judge's passing samples hit."""
        return [cov.coverage_of_hits(hits, labels)
                for hits, labels in zip(self.decisions.hits, self.modes, strict=True)]


def off_topic_fraction(embeddings: np.ndarray, texts: list[str], all_references: np.ndarray,
                       owners: np.ndarray, own: int, threshold: float) -> float:
    """The fraction of the non-empty samples of prompt `own` that fail for their own tweet (best
    judge cosine to its references < threshold) but would pass for another test tweet (best
    cosine to that tweet's references >= threshold); NaN when every sample is empty.

    A sample that fails everywhere is poor, not off-topic, and one that passes for its own tweet
    is on topic however close it also is to another tweet: only the swap counts, so the rate
    does not grow with how many test tweets share a topic."""
    kept = [i for i, text in enumerate(texts) if text.strip()]
    if not kept:
        return float("nan")
    passes = embeddings[kept] @ all_references.T >= threshold  # (samples, references)
    mine = owners == own
    own_pass = passes[:, mine].any(axis=1)
    other_pass = passes[:, ~mine].any(axis=1)
    return float(np.mean(~own_pass & other_pass))
