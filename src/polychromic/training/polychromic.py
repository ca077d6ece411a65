"""The polychromic objective (after Hamid et al., "Polychromic Objectives for Reinforcement
Learning", 2025): score SETS of generations by quality times diversity, and credit each generation
by the sets it belongs to. DESIGN.md section 6.

For a prompt x with references R(x) and N replies y_1..y_N sampled from the current policy:

    r_i   = clip(max_{z in R(x)} sim(y_i, z), 0, 1)                  reward (default: cosine of
                                                                     MiniLM embeddings)
    f(S)  = ( mean_{i in S} r_i ) * d(S),   d(S) = mean_{i<j in S} (1 - cos(e_i, e_j))
            for every subset S of size n of {1..N}
    A_i   = mean_{S : i in S} f(S)  -  mean_S f(S)                   marginal advantage
    A_i  <- A_i / (std_i(A) + eps)                                   when normalize_advantages
    L_pg  = -(1/N) sum_i A_i * mean_t log pi(y_{i,t} | x, y_{i,<t})
    loss  = CE(reference reply) + lambda * L_pg   (L_pg averaged over the sampled prompts)

The advantages are constants (computed without gradient); the gradient of L_pg flows through
log pi, so lambda > 0 changes the update and lambda = 0 is exactly the baseline. Raw advantages
are small (about 0.06 in a prototype, which made lambda = 1 a no-op), hence the normalisation.
Sampling runs every `every_n_steps` optimizer steps on up to `max_prompts` prompts of the batch,
all prompts x N replies in ONE batched `generate`, inside a forked RNG stream so the main stream
(data order, dropout of the CE pass) is the same as the baseline's.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from polychromic.evaluation.diversity import semantic_diversity
from polychromic.evaluation.passk import rouge_l_similarity, semantic_similarity
from polychromic.models.tokens import left_pad, sample_continuations, token_logprobs


@dataclass(frozen=True)
class PolychromicConfig:
    """Settings of the objective; config keys are the field names (`lambda` for lambda_)."""

    lambda_: float = 1.0  # weight of the policy-gradient term; 0 reproduces the baseline
    num_samples: int = 4  # N: replies sampled per prompt
    set_size: int = 2  # n: size of the scored subsets
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling
    top_k: int = 0  # top-k sampling; 0 = off (the model's own default is never applied)
    max_new_tokens: int = 24  # length limit of a sampled reply
    every_n_steps: int = 1  # sample on every k-th optimizer step
    max_prompts: int = 4  # prompts of the batch that get samples
    reward: str = "semantic"  # semantic (MiniLM cosine) | rougeL
    normalize_advantages: bool = True  # divide A by std(A) + eps per prompt
    eps: float = 1e-6

    @classmethod
    def from_dict(cls, settings: dict) -> PolychromicConfig:
        known = {f.name for f in fields(cls)}
        values = {("lambda_" if k == "lambda" else k): v for k, v in settings.items()}
        values.pop("objective", None)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown polychromic settings: {sorted(unknown)}")
        config = cls(**values)
        if not 2 <= config.set_size < config.num_samples:
            # With set_size == num_samples there is one subset, which holds every sample, so
            # every advantage is exactly 0 and the objective silently reduces to the baseline.
            raise ValueError("polychromic needs 2 <= set_size < num_samples (else A_i = 0)")
        return config


def set_diversity(embeddings: np.ndarray, subset: tuple[int, ...]) -> float:
    """d(S): mean pairwise cosine distance 1 - e_i.e_j over i < j in S (the evaluation's metric)."""
    return semantic_diversity(embeddings[list(subset)])


def marginal_advantages(
    rewards: np.ndarray, embeddings: np.ndarray, set_size: int, normalize: bool, eps: float = 1e-6
) -> tuple[np.ndarray, dict[str, float]]:
    """A_i for one prompt. rewards: (N,), embeddings: (N, d) unit rows. Returns (A, stats)."""
    n_samples = len(rewards)
    subsets = list(itertools.combinations(range(n_samples), set_size))
    scores = np.array(
        [float(np.mean(rewards[list(s)])) * set_diversity(embeddings, s) for s in subsets]
    )
    overall = scores.mean()
    advantages = np.empty(n_samples)
    for i in range(n_samples):
        containing = [f for s, f in zip(subsets, scores, strict=True) if i in s]
        advantages[i] = np.mean(containing) - overall
    raw_magnitude = float(np.abs(advantages).mean())
    if normalize:
        advantages = advantages / (advantages.std() + eps)
    stats = {
        "mean_set_score": float(overall),
        "mean_set_diversity": float(np.mean([set_diversity(embeddings, s) for s in subsets])),
        "raw_advantage_magnitude": raw_magnitude,
    }
    return advantages, stats


def rewards(
    texts: list[str],
    embeddings: np.ndarray,
    reference_embs: np.ndarray | None,
    references: list[str],
    criterion: str,
) -> np.ndarray:
    """r_i = clip(similarity to the closest reference, 0, 1), with the pass@k criterion's own
    similarity (an empty reply scores 0, as in evaluation)."""
    if criterion == "semantic":
        similarity = semantic_similarity(texts, embeddings, reference_embs)
    else:
        similarity = rouge_l_similarity(texts, references)
    return np.clip(similarity, 0.0, 1.0)


def sample_token_mask(sample_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for the tokens of each reply up to and including its first end-of-turn token."""
    is_eos = sample_ids == eos_id
    after_eos = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0
    return (~after_eos).long()


def mean_token_logprobs(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    sample_ids: torch.Tensor,
    sample_mask: torch.Tensor,
) -> torch.Tensor:
    """mean_t log pi(y_t | x, y_<t) per row, with gradient. Prompts are left-padded."""
    input_ids = torch.cat([prompt_ids, sample_ids], dim=1)
    attention = torch.cat([prompt_mask, sample_mask], dim=1)
    logp = token_logprobs(model, input_ids, attention)[:, prompt_ids.size(1) - 1 :]
    mask = sample_mask.to(logp.dtype)
    return (logp * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def policy_term(advantages: torch.Tensor, mean_logp: torch.Tensor) -> torch.Tensor:
    """L_pg = mean over prompts of -(1/N) sum_i A_i * mean_t log pi. Shapes: (P, N), (P, N)."""
    return -(advantages * mean_logp).mean(dim=1).mean()


class PolychromicObjective:
    """Samples replies, scores sets, and returns lambda * L_pg for a list of prompts."""

    def __init__(
        self,
        config: PolychromicConfig,
        tokenizer: Any,
        references: dict[str, list[str]],
        encoder: Any,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.references = references
        self.encoder = encoder
        # Seconds spent per phase, summed over calls (read by bench/train_overhead.py).
        self.timings: dict[str, float] = defaultdict(float)
        self._cache: dict[str, np.ndarray] = {}
        # Reference embeddings are fixed: computed once, not at every step.
        self.reference_embs: dict[str, np.ndarray] = {}
        if config.reward == "semantic":
            ids = sorted(references)
            flat = [text for pid in ids for text in references[pid]]
            embs = encoder.encode(flat)
            offset = 0
            for pid in ids:
                count = len(references[pid])
                self.reference_embs[pid] = embs[offset : offset + count]
                offset += count

    @torch.no_grad()
    def sample(self, model: Any, prompts: list[list[int]]) -> tuple[torch.Tensor, ...]:
        """All prompts x N replies in one batched sampling loop (prompt encoded once, its KV
        cache shared by the N replies). Returns the repeated prompt ids/mask and the samples."""
        c = self.config
        device = next(model.parameters()).device
        ids, mask = left_pad(prompts, self.tokenizer.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        was_training = model.training
        model.eval()
        samples = sample_continuations(
            model, ids, mask, c.num_samples, c.max_new_tokens, self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id, temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
        )  # fmt: skip
        model.train(was_training)
        rep_ids = ids.repeat_interleave(c.num_samples, dim=0)
        rep_mask = mask.repeat_interleave(c.num_samples, dim=0)
        return rep_ids, rep_mask, samples

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings with a cache: a trained policy repeats itself, and MiniLM dominates the
        reward's cost on a small policy."""
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache.update(zip(missing, self.encoder.encode(missing), strict=True))
        return np.stack([self._cache[t] for t in texts])

    def score(self, prompt_ids: list[str], texts: list[str]) -> tuple[np.ndarray, dict]:
        """Advantages (P, N) for decoded replies grouped by prompt, plus logged statistics."""
        c = self.config
        n = c.num_samples
        embs = self._embed(texts)  # d(S) needs embeddings whatever the reward
        advantages, logs = [], []
        for p, pid in enumerate(prompt_ids):
            group = texts[p * n : (p + 1) * n]
            e = embs[p * n : (p + 1) * n]
            reference_embs = self.reference_embs.get(pid)
            r = rewards(group, e, reference_embs, self.references[pid], c.reward)
            adv, stats = marginal_advantages(r, e, c.set_size, c.normalize_advantages, c.eps)
            stats["mean_reward"] = float(r.mean())
            advantages.append(adv)
            logs.append(stats)
        merged = {key: float(np.mean([s[key] for s in logs])) for key in logs[0]}
        return np.stack(advantages), merged

    def loss(self, model: Any, prompt_ids: list[str], prompts: list[list[int]]) -> tuple:
        """(L_pg tensor with gradient, statistics). Caller multiplies by lambda."""
        c = self.config
        tick = time.perf_counter()
        ids, mask, samples = self.sample(model, prompts)
        sample_mask = sample_token_mask(samples, self.tokenizer.eos_token_id)
        texts = self.tokenizer.batch_decode(samples, skip_special_tokens=True)
        texts = [t.strip() for t in texts]
        self.timings["sampling"] += time.perf_counter() - tick
        tick = time.perf_counter()
        advantages, stats = self.score(prompt_ids, texts)
        self.timings["reward"] += time.perf_counter() - tick
        tick = time.perf_counter()
        mean_logp = mean_token_logprobs(model, ids, mask, samples, sample_mask)
        self.timings["policy_forward"] += time.perf_counter() - tick
        adv = torch.tensor(advantages, dtype=mean_logp.dtype, device=mean_logp.device)
        term = policy_term(adv, mean_logp.view(len(prompts), c.num_samples))
        stats["advantage_magnitude"] = float(np.abs(advantages).mean())
        stats["mean_sample_tokens"] = float(sample_mask.sum(dim=1).float().mean())
        return term, stats
