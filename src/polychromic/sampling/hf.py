"""The transformers engine: `generate` batched with left padding, and a lean training sampler.

Generation (the `generate` rule): prompts are left-padded so every continuation starts at the
same column, position ids follow the attention mask (a padded row computes exactly as the row
alone), and every sampling field is set explicitly: transformers would otherwise fill unset
fields from the model's generation_config.json (Qwen3-8B ships top_k = 20) or its own defaults
(top_k = 50). min_p = 0 is set as 0.0, not left unset: transformers then adds a min-p warper
that removes nothing (every probability is >= 0), so the replies are those without it, and a
model's own min_p is never applied. Reference log-likelihoods come from one teacher-forced pass
per prompt.

Sampling shares the prompt (`sample_shared`, for the `generate` rule's n samples and for
training's `TransformersSampler` alike): each prompt is encoded once and its KV cache repeated n
times, where `generate` with num_return_sequences encodes every copy of the prompt (at 50
samples of a short reply most of the work; `make bench` measures the speed-up). The loop stops
as soon as every row has produced the end-of-turn token. The distribution is transformers' own:
the same temperature / top-k / top-p / min-p warpers as `generate`, in its order, then one
multinomial draw per step over the rows in `generate`'s order (prompt-major), so a seed draws
the same random numbers as `generate` did (a test compares the two). The greedy reply is
`generate`'s (one sequence per prompt: nothing to share).

Truncation is explicit: a prompt longer than the model's context window minus the new tokens
(or minus a reference reply, for its log-likelihood) loses tokens from its middle
(`polychromic.models.tokens.fit_prompt`), with a warning; the tokenizer's `model_max_length` is
never relied on.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from polychromic.models.base import context_window, load_model, load_tokenizer
from polychromic.models.prompts import clean_reply, reply_tokens
from polychromic.models.tokens import fit_prompt, left_pad, token_logprobs
from polychromic.sampling.base import Sampling

log = logging.getLogger(__name__)


def generation_config(tokenizer: Any, max_new_tokens: int, sampling: Sampling | None,
                      num_return_sequences: int = 1) -> Any:
    """A complete GenerationConfig: greedy when `sampling` is None; nothing is left to the
    model's or the library's defaults (top_k = 0 and min_p = 0 mean off)."""
    from transformers import GenerationConfig

    settings: dict[str, Any] = {
        "max_new_tokens": int(max_new_tokens),
        "num_return_sequences": int(num_return_sequences),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "do_sample": sampling is not None,
    }
    if sampling is not None:
        settings.update(temperature=float(sampling.temperature), top_p=float(sampling.top_p),
                        top_k=int(sampling.top_k), min_p=float(sampling.min_p))
    else:
        settings.update(temperature=None, top_p=None, top_k=None, min_p=None)
    return GenerationConfig(**settings)


class TransformersEngine:
    """`polychromic.sampling.base.Engine` on a transformers model (+ peft adapter)."""

    def __init__(self, base: str, adapter: str | None) -> None:
        self.tokenizer = load_tokenizer(base)
        self.model = load_model(base, adapter)
        self.context = context_window(self.model.config)

    def seed(self, seed: int, system: str = "") -> None:
        torch.manual_seed(seed)  # one stream per job: the system is not needed

    def _fit(self, prompt: list[int], room: int) -> list[int]:
        """The prompt cut to leave `room` tokens in the context window (`fit_prompt`)."""
        fitted = fit_prompt(prompt, self.context, room)
        if len(fitted) < len(prompt):
            log.warning("a prompt of %d tokens was cut to %d to leave %d tokens of the "
                        "model's context window of %d", len(prompt), len(fitted), room,
                        self.context)
        return fitted

    def _batch(self, prompts: list[list[int]], room: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = left_pad([self._fit(p, room) for p in prompts], self.tokenizer.pad_token_id)
        return ids.to(self.model.device), mask.to(self.model.device)

    def _decode(self, tokens: torch.Tensor, num_return: int, count: int) -> list[list[str]]:
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        texts = [clean_reply(text) for text in texts]
        return [texts[i * num_return:(i + 1) * num_return] for i in range(count)]

    @torch.no_grad()
    def _generate(self, prompts: list[list[int]], num_return: int, max_new_tokens: int,
                  sampling: Sampling | None) -> list[list[str]]:
        ids, mask = self._batch(prompts, max_new_tokens)
        config = generation_config(self.tokenizer, max_new_tokens, sampling, num_return)
        out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        return self._decode(out[:, ids.size(1):], num_return, len(prompts))

    def greedy(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        return [replies[0] for replies in self._generate(prompts, 1, max_new_tokens, None)]

    @torch.no_grad()
    def sample(self, prompts: list[list[int]], n: int, sampling: Sampling) -> list[list[str]]:
        """n replies per prompt, each prompt encoded once (`sample_shared`)."""
        ids, mask = self._batch(prompts, sampling.max_new_tokens)
        tokens = sample_shared(self.model, ids, mask, n, sampling, self.tokenizer.eos_token_id,
                               self.tokenizer.pad_token_id)
        return self._decode(tokens, n, len(prompts))

    def sample_recomputed(self, prompts: list[list[int]], n: int, sampling: Sampling
                          ) -> list[list[str]]:
        """n replies per prompt by `generate` with num_return_sequences, which encodes the
        prompt for every sample: the earlier design, for the benchmark and the tests."""
        return self._generate(prompts, n, sampling.max_new_tokens, sampling)

    @torch.no_grad()
    def reference_nll(self, prompt: list[int], references: list[str]
                      ) -> tuple[list[float], list[int]]:
        replies = [reply_tokens(self.tokenizer, reference) for reference in references]
        prompt = self._fit(prompt, max(len(reply) for reply in replies))
        ids, mask = left_pad([prompt + reply for reply in replies], self.tokenizer.pad_token_id)
        logp = token_logprobs(self.model, ids.to(self.model.device), mask.to(self.model.device))
        lengths = [len(reply) for reply in replies]
        # Left padding: every row ends with its reply, so the reply is the last `length` columns.
        nll = [float(-logp[i, -length:].sum()) for i, length in enumerate(lengths)]
        return nll, lengths


def _warpers(sampling: Sampling) -> Any:
    """transformers' own temperature / top-k / top-p / min-p warpers, in `generate`'s order
    (`GenerationMixin._get_logits_processor`: min-p after the temperature and the other
    truncations). min_p = 0 adds nothing: it would remove no token."""
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if sampling.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    if sampling.min_p > 0.0:
        warpers.append(MinPLogitsWarper(sampling.min_p))
    return warpers


@torch.no_grad()
def sample_shared(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, n: int,
                  sampling: Sampling | None, eos_id: int, pad_id: int,
                  max_new_tokens: int | None = None) -> torch.Tensor:
    """(B * n, <= max_new_tokens) continuations of B left-padded prompts, n per prompt in
    `generate`'s order (the n of prompt 0 first); rows hold `pad_id` after their `eos_id`.

    One forward pass encodes the prompts; its KV cache is repeated n times along the batch and
    decoding continues from there. `sampling` None decodes greedily (every copy the same), as a
    check of the cache sharing against `generate`. `max_new_tokens` defaults to the sampling's.
    """
    warpers = _warpers(sampling) if sampling is not None else None
    steps = int(max_new_tokens if max_new_tokens is not None else sampling.max_new_tokens)
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                use_cache=True)
    cache = out.cache  # transformers >= 5.24 names it `cache` (formerly past_key_values)
    cache.batch_repeat_interleave(n)
    logits = out.logits[:, -1, :].float().repeat_interleave(n, dim=0)
    mask = attention_mask.repeat_interleave(n, dim=0)
    position = positions[:, -1:].repeat_interleave(n, dim=0)
    history = input_ids.repeat_interleave(n, dim=0)
    finished = torch.zeros(logits.size(0), dtype=torch.bool, device=logits.device)
    tokens = []
    for _ in range(steps):
        if warpers is None:
            token = logits.argmax(dim=-1)
        else:
            scores = warpers(history, logits)
            token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        tokens.append(token)
        finished |= token == eos_id
        if bool(finished.all()):
            break
        history = torch.cat([history, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position = position + 1
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                    cache=cache, use_cache=True)
        logits = out.logits[:, -1, :].float()
    return torch.stack(tokens, dim=1)


class TransformersSampler:
    """`polychromic.sampling.base.TrainingSampler`: n continuations per left-padded prompt,
    the prompt encoded once (`sample_shared`)."""

    def __call__(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 n: int, sampling: Sampling, eos_id: int, pad_id: int) -> torch.Tensor:
        return sample_shared(model, input_ids, attention_mask, n, sampling, eos_id, pad_id)
