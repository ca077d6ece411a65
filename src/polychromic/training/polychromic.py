"""The polychromic objective (after Hamid et al., "Polychromic Objectives for Reinforcement
Learning", 2025, arXiv 2509.25424): score SETS of generations by quality times diversity, and
credit each generation by the sets it belongs to. Registered as objective `polychromic`
(`polychromic.objectives`, where its settings and their defaults live).

For a prompt x with references R(x) and N replies y_1..y_N sampled from the current policy
(cleaned as the evaluation cleans them, `prompts.clean_reply`):

    r_i   = clip(max_{z in R(x)} sim(y_i, z), 0, 1)          reward (default: cosine under the
                                                             reward_model, all-MiniLM-L6-v2, an
                                                             encoder the evaluation never uses)
    g_i   = 1[r_i >= tau]                                    "good": the reward reaches
                                                             quality_threshold
    d(S)  = (1 / C(|S|,2)) sum_{i<j in S} g_i g_j (1 - cos(e_i, e_j))
                                                             diversity among the good replies
    f(S)  = ( mean_{i in S} r_i ) * d(S)                     for every subset S of size n
    A_i   = mean_{S : i in S} f(S)  -  mean_S f(S)           marginal advantage
    A_i  <- A_i / max(std_j A_j, floor)                      when normalize_advantages
    L_pg  = -(1/N) sum_i A_i * (1/L) sum_t log pi_T(y_{i,t} | x, y_{i,<t})
    loss  = CE(reference reply) + lambda * L_pg              (L_pg averaged over the prompts)

Why the gate g: with d over all replies, an empty or gibberish reply is far from the others and
raises d(S), so junk earned a positive advantage. Gating the diversity by quality is the idea of
quality-aware diversity rewards (DARLING, Li et al. 2025, arXiv 2509.02534, multiplies a
quality reward by a diversity reward); here only pairs of good replies count. Then a reply that
is not good never gets a higher advantage than a good one of the same prompt: replacing it by
the good one in any set raises the mean reward and cannot lower d(S) (a test checks it). The
price: a prompt with fewer than two good replies has d = 0 for every set, hence no policy
gradient (the CE term still trains on it); `good_fraction` in the training log shows how often
replies pass, and tau is on the reward's scale (a cosine for `semantic`, an F1 for `rougeL`).

The loose ends of a policy-gradient term, each decided: the log-probabilities are taken in the
same state as the sampling (no dropout; layers that checkpoint activations keep doing so), at
the sampling temperature T (top-p and
top-k truncation are refused by the settings: the term needs the probabilities of the
distribution sampled from); L is the constant max_new_tokens by default, so a reply's weight
does not grow as it gets shorter (the length bias that Dr. GRPO removes, Liu et al. 2025,
arXiv 2503.20783), or the reply's own length with `length_normalization: mean`; the std of the
advantages is floored (`advantage_std_floor`), so near-identical samples keep near-zero
advantages instead of being blown up to +-1.

The advantages are constants (computed without gradient); the gradient of L_pg flows through
log pi, so lambda > 0 changes the update and lambda = 0 is exactly the baseline. Sampling runs
every `every_n_steps` optimizer steps on up to `max_prompts` prompts of the batch, all prompts x N
replies in ONE batched sampling call, inside a forked RNG stream so the main stream (data order,
dropout of the CE pass) is the same as the baseline's.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from polychromic.encoders import describe
from polychromic.models.prompts import clean_reply
from polychromic.models.tokens import left_pad, token_logprobs
from polychromic.objectives import PolychromicSettings
from polychromic.sampling import training_sampler
from polychromic.sampling.base import Sampling
from polychromic.similarity import rouge_l_similarity, semantic_diversity, semantic_similarity
from polychromic.training.objective import ExtraLoss, ObjectiveContext, Step
from polychromic.training.sft import IGNORE


def set_diversity(embeddings: np.ndarray, good: np.ndarray, subset: tuple[int, ...]) -> float:
    """d(S): mean over the C(|S|,2) pairs of S of g_i g_j (1 - cos(e_i, e_j))."""
    members = list(subset)
    kept = [i for i in members if good[i]]
    if len(kept) < 2:
        return 0.0
    pairs_kept = len(kept) * (len(kept) - 1) / 2
    pairs_all = len(members) * (len(members) - 1) / 2
    return semantic_diversity(embeddings[kept]) * pairs_kept / pairs_all


def marginal_advantages(rewards: np.ndarray, embeddings: np.ndarray, set_size: int,
                        normalize: bool, floor: float, threshold: float
                        ) -> tuple[np.ndarray, dict[str, float]]:
    """A_i for one prompt (module docstring). rewards: (N,), embeddings: (N, d) unit rows;
    `threshold` is the quality gate tau (0: every reply counts). Returns (A, stats)."""
    n_samples = len(rewards)
    good = rewards >= threshold
    subsets = list(itertools.combinations(range(n_samples), set_size))
    diversity = np.array([set_diversity(embeddings, good, s) for s in subsets])
    scores = np.array([float(np.mean(rewards[list(s)])) for s in subsets]) * diversity
    overall = scores.mean()
    advantages = np.empty(n_samples)
    for i in range(n_samples):
        containing = [f for s, f in zip(subsets, scores, strict=True) if i in s]
        advantages[i] = np.mean(containing) - overall
    raw_magnitude = float(np.abs(advantages).mean())
    if normalize:
        advantages = advantages / max(float(advantages.std()), floor)
    stats = {"mean_set_score": float(overall), "mean_set_diversity": float(diversity.mean()),
             "raw_advantage_magnitude": raw_magnitude, "good_fraction": float(good.mean())}
    return advantages, stats


def rewards(
    texts: list[str],
    embeddings: np.ndarray,
    reference_embs: np.ndarray | None,
    references: list[str],
    criterion: str,
) -> np.ndarray:
    """r_i = clip(similarity to the closest reference, 0, 1) under the reward encoder or
    ROUGE-L (an empty reply scores 0, as in evaluation)."""
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


@contextlib.contextmanager
def without_dropout(model: Any) -> Iterator[None]:
    """The model in eval mode (no dropout, as when the replies were sampled), except the layers
    that checkpoint activations: transformers checkpoints only modules in training mode, and a
    policy forward over P x N replies without it may not fit in memory. Modes are restored on
    exit, so the backward of such a forward must run inside it again: checkpointed layers
    recompute their forward then (`ExtraLoss.backward_context`)."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for module in model.modules():
        if getattr(module, "gradient_checkpointing", False) is True:
            module.training = modes[module]
    try:
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode


def reply_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   sample_ids: torch.Tensor, sample_mask: torch.Tensor, temperature: float,
                   length: int | None) -> torch.Tensor:
    """(1/L) sum_t log pi_T(y_t | x, y_<t) per row, with gradient, without dropout (the state
    the replies were sampled in; `without_dropout`); L = `length`, or each reply's own length
    when None. Prompts are left-padded."""
    input_ids = torch.cat([prompt_ids, sample_ids], dim=1)
    attention = torch.cat([prompt_mask, sample_mask], dim=1)
    with without_dropout(model):
        logp = token_logprobs(model, input_ids, attention, temperature)
    logp = logp[:, prompt_ids.size(1) - 1:]
    mask = sample_mask.to(logp.dtype)
    total = (logp * mask).sum(dim=1)
    return total / (float(length) if length else mask.sum(dim=1).clamp(min=1.0))


def policy_term(advantages: torch.Tensor, reply_logp: torch.Tensor) -> torch.Tensor:
    """L_pg = mean over prompts of -(1/N) sum_i A_i * logp_i. Shapes: (P, N), (P, N)."""
    return -(advantages * reply_logp).mean(dim=1).mean()


class PolychromicObjective:
    """`polychromic.training.objective.Objective`: lambda * L_pg on up to max_prompts prompts
    of the step's first micro-batch, every `every_n_steps` steps."""

    log_fields = ("policy_term", "mean_reward", "mean_set_diversity", "good_fraction",
                  "advantage_magnitude", "raw_advantage_magnitude")

    def __init__(self, settings: PolychromicSettings, context: ObjectiveContext) -> None:
        from polychromic.embeddings import get_encoder

        self.settings = settings
        self.tokenizer = context.tokenizer
        self.references: dict[str, list[str]] = {}
        for record in context.train_records:
            self.references.setdefault(record["tweet_id"], []).append(record["reply"])
        self.encoder = get_encoder(settings.reward_model, context.device)  # d(S) needs it
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
            adv, stats = marginal_advantages(r, e, c.set_size, c.normalize_advantages,
                                             c.advantage_std_floor, c.quality_threshold)
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
        texts = [clean_reply(t) for t in texts]  # as the evaluation cleans replies
        self.timings["sampling"] += time.perf_counter() - tick
        tick = time.perf_counter()
        advantages, stats = self.score(prompt_ids, texts)
        self.timings["reward"] += time.perf_counter() - tick
        tick = time.perf_counter()
        c = self.settings
        length = c.max_new_tokens if c.length_normalization == "constant" else None
        logp = reply_logprobs(model, ids, mask, samples, sample_mask, c.temperature, length)
        self.timings["policy_forward"] += time.perf_counter() - tick
        adv = torch.tensor(advantages, dtype=logp.dtype, device=logp.device)
        term = policy_term(adv, logp.view(len(prompts), c.num_samples))
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
                         {"policy_term": policy, **stats},
                         backward_context=lambda: without_dropout(model))

    def summary(self) -> dict[str, Any]:
        return {"reward_model": describe(self.settings.reward_model),
                "objective_seconds": {k: round(v, 3) for k, v in self.timings.items()}}
