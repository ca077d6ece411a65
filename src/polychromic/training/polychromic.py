"""The polychromic objective (after Hamid et al., "Polychromic Objectives for Reinforcement
Learning", 2025): score SETS of generations by quality times diversity, and credit each generation
by the sets it belongs to. Registered as objective `polychromic` (`polychromic.objectives`,
where its settings and their defaults live).

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
from typing import Any

import numpy as np
import torch

from polychromic.models.tokens import left_pad, token_logprobs
from polychromic.objectives import PolychromicSettings
from polychromic.sampling import training_sampler
from polychromic.sampling.base import Sampling
from polychromic.similarity import rouge_l_similarity, semantic_diversity, semantic_similarity
from polychromic.training.objective import ExtraLoss, ObjectiveContext, Step
from polychromic.training.sft import IGNORE


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
    """`polychromic.training.objective.Objective`: lambda * L_pg on up to max_prompts prompts
    of the step's first micro-batch, every `every_n_steps` steps."""

    log_fields = ("policy_term", "mean_reward", "mean_set_diversity", "advantage_magnitude",
                  "raw_advantage_magnitude")

    def __init__(self, settings: PolychromicSettings, context: ObjectiveContext) -> None:
        from polychromic.embeddings import get_encoder

        self.settings = settings
        self.tokenizer = context.tokenizer
        self.references: dict[str, list[str]] = {}
        for record in context.train_records:
            self.references.setdefault(record["tweet_id"], []).append(record["reply"])
        self.encoder = get_encoder(context.reward_model, context.device)  # d(S) needs it
        self.sampler = training_sampler()
        # Seconds spent per phase, summed over calls (run.json, bench/train_overhead.py).
        self.timings: dict[str, float] = defaultdict(float)
        self._cache: dict[str, np.ndarray] = {}
        self.reference_embs = self._reference_embeddings() if settings.reward == "semantic" else {}

    def _reference_embeddings(self) -> dict[str, np.ndarray]:
        """Reference embeddings are fixed: computed once, not at every step."""
        ids = sorted(self.references)
        embs = self.encoder.encode([text for pid in ids for text in self.references[pid]])
        out, offset = {}, 0
        for pid in ids:
            count = len(self.references[pid])
            out[pid], offset = embs[offset:offset + count], offset + count
        return out

    @torch.no_grad()
    def sample(self, model: Any, prompts: list[list[int]]) -> tuple[torch.Tensor, ...]:
        """All prompts x N replies in one batched sampling call (in eval mode). Returns the
        repeated prompt ids/mask and the samples."""
        c = self.settings
        device = next(model.parameters()).device
        ids, mask = left_pad(prompts, self.tokenizer.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        was_training = model.training
        model.eval()
        sampling = Sampling(c.temperature, c.top_p, c.top_k, c.max_new_tokens)
        samples = self.sampler(model, ids, mask, c.num_samples, sampling,
                               self.tokenizer.eos_token_id, self.tokenizer.pad_token_id)
        model.train(was_training)
        return (ids.repeat_interleave(c.num_samples, dim=0),
                mask.repeat_interleave(c.num_samples, dim=0), samples)

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings with a cache: a trained policy repeats itself, and the encoder dominates
        the reward's cost on a small policy."""
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache.update(zip(missing, self.encoder.encode(missing), strict=True))
        return np.stack([self._cache[t] for t in texts])

    def score(self, prompt_ids: list[str], texts: list[str]) -> tuple[np.ndarray, dict]:
        """Advantages (P, N) for decoded replies grouped by prompt, plus logged statistics."""
        c = self.settings
        n = c.num_samples
        embs = self._embed(texts)  # d(S) needs embeddings whatever the reward
        advantages, logs = [], []
        for p, pid in enumerate(prompt_ids):
            group, e = texts[p * n:(p + 1) * n], embs[p * n:(p + 1) * n]
            r = rewards(group, e, self.reference_embs.get(pid), self.references[pid], c.reward)
            adv, stats = marginal_advantages(r, e, c.set_size, c.normalize_advantages, c.eps)
            stats["mean_reward"] = float(r.mean())
            advantages.append(adv)
            logs.append(stats)
        merged = {key: float(np.mean([s[key] for s in logs])) for key in logs[0]}
        return np.stack(advantages), merged

    def loss(self, model: Any, prompt_ids: list[str], prompts: list[list[int]]) -> tuple:
        """(L_pg tensor with gradient, statistics). The caller weights it by lambda."""
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
        term = policy_term(adv, mean_logp.view(len(prompts), self.settings.num_samples))
        stats["advantage_magnitude"] = float(np.abs(advantages).mean())
        stats["mean_sample_tokens"] = float(sample_mask.sum(dim=1).float().mean())
        return term, stats

    def prompts_of(self, batch: dict) -> tuple[list[str], list[list[int]]]:
        """Up to max_prompts distinct prompts of a micro-batch: (tweet ids, prompt tokens)."""
        chosen: list[str] = []
        prompts: list[list[int]] = []
        for ids, labels, mask, pid in zip(batch["input_ids"], batch["labels"],
                                          batch["attention_mask"], batch["tweet_ids"],
                                          strict=True):
            if pid in chosen or len(chosen) >= self.settings.max_prompts:
                continue
            prompt_len = int(((labels == IGNORE) & (mask == 1)).sum())
            chosen.append(pid)
            prompts.append(ids[:prompt_len].tolist())
        return chosen, prompts

    def extra_loss(self, model: Any, batch: dict, step: Step) -> ExtraLoss | None:
        """lambda * L_pg on the step's sampling steps, in a forked RNG stream. Under data
        parallelism the prompts are shared out and each process's term is weighted by its
        share, so the summed gradient is that of the mean over all prompts."""
        if (step.step - 1) % self.settings.every_n_steps:
            return None
        chosen, prompts = self.prompts_of(batch)
        parallel = step.parallel
        mine, my_prompts = parallel.share(chosen), parallel.share(prompts)
        if not mine:
            term, stats = torch.zeros((), device=batch["input_ids"].device), {}
        else:
            devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(step.seed * 1_000_003 + step.step * 1_009 + parallel.rank)
                term, stats = self.loss(model, mine, my_prompts)
            term = term * (len(mine) / len(chosen))
        policy = parallel.global_sum(float(term.detach()))
        return ExtraLoss(self.settings.lambda_ * term, self.settings.lambda_ * policy,
                         {"policy_term": policy, **stats})

    def summary(self) -> dict[str, Any]:
        return {"objective_seconds": {k: round(v, 3) for k, v in self.timings.items()}}
