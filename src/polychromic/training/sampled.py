"""What every sampling objective shares: sample N replies per prompt from the policy, reward
them against the prompt's references, turn the rewards into advantages (the one thing each
objective defines), and add a policy-gradient term to the loop's cross-entropy.

For a prompt x with references R(x) and N replies y_1..y_N sampled from the current policy at
temperature T (cleaned as the evaluation cleans them, `prompts.clean_reply`):

    r_i   = clip(max_{z in R(x)} sim(y_i, z), 0, 1)        reward (default: cosine under the
                                                           reward_model, all-MiniLM-L6-v2, an
                                                           encoder the evaluation never uses)
    g_i   = 1[r_i >= tau]                                  "good" (tau = quality_threshold, or
                                                           calibrated on validation by default:
                                                           polychromic.training.gate)
    A_i   = the objective's advantage                      polychromic: marginal set score;
                                                           diversity_bonus: GRPO on r_i + bonus;
                                                           passk_training: pass@k group advantage
    lp_i  = (1/L) sum_t log pi_T(y_{i,t} | x, y_{i,<t})    L = max_new_tokens (Dr. GRPO, Liu et
                                                           al. 2025, arXiv 2503.20783) or |y_i|
    L_pg  = -(1/N) sum_i A_i lp_i                          averaged over the prompts
    KL    = (1/N) sum_i (1/L) sum_t k_{i,t}                 p = log pi_T, q = log pi_ref,T
            k3 = exp(q - p) - (q - p) - 1   (kl_estimator: k3, the default, as GRPO)
            k2 = (p - q)^2 / 2              (kl_estimator: k2)
    loss  = ce_weight * CE(reference reply) + lambda * (L_pg + kl_weight * KL)

pi_ref is the base model (the LoRA adapter switched off). k3 is Schulman's estimator of
KL(pi || pi_ref) ("Approximating KL Divergence", 2020), the penalty of GRPO (Shao et al. 2024,
arXiv 2402.03300): never negative, zero only where pi = pi_ref. As a loss differentiated through
p, though, its expected gradient is that of the other direction, KL(pi_ref || pi) per token,
while k2's is that of KL(pi || pi_ref) per token (Tang and Munos 2025, "On a few pitfalls in KL
divergence gradient estimation for RL", arXiv 2506.09477); neither is the gradient of the
sequence-level KL (a per-token penalty ignores how a token changes the later ones). Both pull
the policy towards pi_ref and vanish there, which is what the penalty is for here: with
ce_weight = 0 nothing else anchors the policy (pure RL, as Polychromic PPO and Poly-EPO, arXiv
2604.17654, which change only the advantage of PPO/GRPO).

The loose ends, each decided: the log-probabilities are taken in the state of the sampling (no
dropout; layers that checkpoint activations keep doing so, `without_dropout`), at the sampling
temperature (top-p and top-k truncation are refused by the settings: the term needs the
probabilities of the distribution sampled from); the advantages are constants (no gradient), so
the gradient flows through log pi only and lambda = 0 is exactly the baseline. Sampling runs every
`every_n_steps` optimizer steps on up to `max_prompts` prompts of the batch, all prompts x N
replies in ONE batched call, inside a forked RNG stream, so the main stream (data order, the CE
pass's dropout) is the baseline's.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from polychromic.encoders import describe
from polychromic.models.prompts import clean_reply
from polychromic.models.tokens import left_pad, token_logprobs
from polychromic.objectives import SampledSettings
from polychromic.sampling import training_sampler
from polychromic.sampling.base import Sampling
from polychromic.similarity import rouge_l_similarity, semantic_similarity
from polychromic.training.gate import calibrate_gate, fixed_gate
from polychromic.training.objective import ExtraLoss, ObjectiveContext, Step
from polychromic.training.sft import IGNORE


def rewards(texts: list[str], embeddings: np.ndarray, reference_embs: np.ndarray | None,
            references: list[str], criterion: str) -> np.ndarray:
    """r_i = clip(similarity to the closest reference, 0, 1) under the reward encoder or
    ROUGE-L (an empty reply scores 0, as in evaluation)."""
    if criterion == "semantic":
        similarity = semantic_similarity(texts, embeddings, reference_embs)
    else:
        similarity = rouge_l_similarity(texts, references)
    return np.clip(similarity, 0.0, 1.0)


def standardise(values: np.ndarray, normalize: bool, floor: float) -> np.ndarray:
    """values - their mean, divided by max(std, floor) when `normalize` (the group-relative
    advantage of GRPO, with the std floored so near-identical samples keep near-zero
    advantages)."""
    centred = values - values.mean()
    return centred / max(float(values.std()), floor) if normalize else centred


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


def reply_token_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                         sample_ids: torch.Tensor, sample_mask: torch.Tensor,
                         temperature: float) -> torch.Tensor:
    """log pi_T(y_t | x, y_<t) of each reply token, (B, T), zero after the reply's end, with
    gradient, without dropout (`without_dropout`). Prompts are left-padded."""
    input_ids = torch.cat([prompt_ids, sample_ids], dim=1)
    attention = torch.cat([prompt_mask, sample_mask], dim=1)
    with without_dropout(model):
        logp = token_logprobs(model, input_ids, attention, temperature)
    return logp[:, prompt_ids.size(1) - 1:] * sample_mask.to(logp.dtype)


def per_reply(token_values: torch.Tensor, sample_mask: torch.Tensor,
              length: int | None) -> torch.Tensor:
    """(1/L) sum_t over each reply's tokens; L = `length`, or the reply's own length (None)."""
    total = token_values.sum(dim=1)
    return total / (float(length) if length else sample_mask.sum(dim=1).clamp(min=1).to(total))


def reply_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   sample_ids: torch.Tensor, sample_mask: torch.Tensor, temperature: float,
                   length: int | None) -> torch.Tensor:
    """lp_i = (1/L) sum_t log pi_T(y_t | x, y_<t) per row (module docstring)."""
    tokens = reply_token_logprobs(model, prompt_ids, prompt_mask, sample_ids, sample_mask,
                                  temperature)
    return per_reply(tokens, sample_mask, length)


def k3_kl(policy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-token k3 = exp(q - p) - (q - p) - 1 for policy log-probs p and reference log-probs
    q of the sampled tokens (>= 0; 0 where p = q; its gradient in p is 1 - exp(q - p))."""
    delta = reference - policy
    return torch.exp(delta) - delta - 1.0


def k2_kl(policy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-token k2 = (p - q)^2 / 2 (>= 0; its gradient in p is p - q)."""
    return 0.5 * (policy - reference) ** 2


KL_ESTIMATORS = {"k3": k3_kl, "k2": k2_kl}


@torch.no_grad()
def reference_token_logprobs(model: Any, *args: Any) -> torch.Tensor:
    """`reply_token_logprobs` under the base model: the LoRA adapter switched off (peft)."""
    with model.disable_adapter():
        return reply_token_logprobs(model, *args)


def policy_term(advantages: torch.Tensor, reply_logp: torch.Tensor) -> torch.Tensor:
    """L_pg = mean over prompts of -(1/N) sum_i A_i * lp_i. Shapes: (P, N), (P, N)."""
    return -(advantages * reply_logp).mean(dim=1).mean()


class SampledObjective:
    """`polychromic.training.objective.Objective` for every sampling objective: subclasses
    define `advantages` (and name its logged statistics in `advantage_fields`)."""

    advantage_fields: tuple[str, ...] = ()

    def __init__(self, settings: SampledSettings, context: ObjectiveContext) -> None:
        from polychromic.embeddings import get_encoder

        self.settings = settings
        self.ce_weight = settings.ce_weight
        self.tokenizer = context.tokenizer
        self.references: dict[str, list[str]] = {}
        for record in context.train_records:
            self.references.setdefault(record["tweet_id"], []).append(record["reply"])
        self.encoder = get_encoder(settings.reward_model, context.device)  # diversity needs it
        self.gate = (fixed_gate(settings.quality_threshold, settings.reward)
                     if settings.quality_threshold is not None else
                     calibrate_gate(list(context.val_records), settings.reward,
                                    self.encoder.encode))
        self.quality_threshold = self.gate["threshold"]  # tau, whether fixed or calibrated
        self.sampler = training_sampler()
        # Seconds spent per phase, summed over calls (run.json, bench/train_overhead.py).
        self.timings: dict[str, float] = defaultdict(float)
        self._cache: dict[str, np.ndarray] = {}
        self.reference_embs = self._reference_embeddings() if settings.reward == "semantic" else {}
        self.log_fields = ("policy_term", "pg_term", "mean_reward", *self.advantage_fields,
                           "good_fraction", "advantage_magnitude", "raw_advantage_magnitude",
                           *(("kl",) if settings.kl_weight else ()))

    def advantages(self, rewards: np.ndarray, embeddings: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, float]]:
        """A (N,) for one prompt's rewards and unit-norm embeddings, plus statistics (at least
        `raw_advantage_magnitude`, the mean |A| before normalisation)."""
        raise NotImplementedError

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
        embs = self._embed(texts)  # the diversity needs embeddings whatever the reward
        advantages, logs = [], []
        for p, pid in enumerate(prompt_ids):
            group, e = texts[p * n:(p + 1) * n], embs[p * n:(p + 1) * n]
            r = rewards(group, e, self.reference_embs.get(pid), self.references[pid], c.reward)
            adv, stats = self.advantages(r, e)
            stats["mean_reward"] = float(r.mean())
            stats["good_fraction"] = float(np.mean(r >= self.quality_threshold))
            advantages.append(adv)
            logs.append(stats)
        merged = {key: float(np.mean([s[key] for s in logs])) for key in logs[0]}
        return np.stack(advantages), merged

    def loss(self, model: Any, prompt_ids: list[str], prompts: list[list[int]]) -> tuple:
        """(L_pg + kl_weight * KL with gradient, statistics). The caller weights it by lambda."""
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
        args = (ids, mask, samples, sample_mask, c.temperature)
        tokens = reply_token_logprobs(model, *args)
        logp = per_reply(tokens, sample_mask, length)
        self.timings["policy_forward"] += time.perf_counter() - tick
        adv = torch.tensor(advantages, dtype=logp.dtype, device=logp.device)
        term = policy_term(adv, logp.view(len(prompts), c.num_samples))
        stats["pg_term"] = float(term.detach())
        if c.kl_weight:
            tick = time.perf_counter()
            reference = reference_token_logprobs(model, *args)
            penalty = KL_ESTIMATORS[c.kl_estimator](tokens, reference) * sample_mask
            kl = per_reply(penalty, sample_mask, length).mean()
            term = term + c.kl_weight * kl
            stats["kl"] = float(kl.detach())
            self.timings["reference_forward"] += time.perf_counter() - tick
        stats["advantage_magnitude"] = float(np.abs(advantages).mean())
        stats["mean_sample_tokens"] = float(sample_mask.sum(dim=1).float().mean())
        return term, stats

    def prompts_of(self, batch: dict) -> tuple[list[str], list[list[int]]]:
        """Up to max_prompts distinct prompts of the step's batch (every micro-batch of the
        optimizer step, in order), first come first: (tweet ids, prompt tokens)."""
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
        """lambda * (L_pg + kl_weight * KL) on the step's sampling steps, in a forked RNG stream.
        Under data parallelism the prompts are shared out and each process's term is weighted
        by its share, so the summed gradient is that of the mean over all prompts; the logged
        statistics are means over all prompts the same way. `policy_term` is the term lambda
        multiplies (KL included), `pg_term` L_pg alone."""
        if (step.step - 1) % self.settings.every_n_steps:
            return None
        chosen, prompts = self.prompts_of(batch)
        parallel = step.parallel
        mine, my_prompts = parallel.share(chosen), parallel.share(prompts)
        share = len(mine) / len(chosen)
        if not mine:
            term, stats = torch.zeros((), device=batch["input_ids"].device), {}
        else:
            devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(step.seed * 1_000_003 + step.step * 1_009 + parallel.rank)
                term, stats = self.loss(model, mine, my_prompts)
            term = term * share
        policy = parallel.global_sum(float(term.detach()))
        logged = {key: parallel.global_sum(stats.get(key, 0.0) * share)
                  for key in self.log_fields if key != "policy_term"}
        return ExtraLoss(self.settings.lambda_ * term, self.settings.lambda_ * policy,
                         {"policy_term": policy, **logged},
                         backward_context=lambda: without_dropout(model))

    def summary(self) -> dict[str, Any]:
        return {"reward_model": describe(self.settings.reward_model),
                "quality_gate": self.gate,
                "objective_seconds": {k: round(v, 3) for k, v in self.timings.items()}}
