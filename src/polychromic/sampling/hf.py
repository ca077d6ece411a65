"""The transformers engine: `generate` batched with left padding, and a lean training sampler.

Generation (the `generate` rule): prompts are left-padded so every continuation starts at the
same column, position ids follow the attention mask (a padded row computes exactly as the row
alone), and every sampling field is set explicitly: transformers would otherwise fill unset
fields from the model's generation_config.json (Qwen3-8B ships top_k = 20) or its own defaults
(top_k = 50). min_p = 0 is set as 0.0, not left unset: transformers then adds a min-p warper
that removes nothing (every probability is >= 0), so the replies are those without it, and a
model's own min_p is never applied. Reference log-likelihoods come from one teacher-forced pass
per prompt.

Training (`TransformersSampler`): the prompt is encoded once and its KV cache repeated n times
(`generate` with num_return_sequences encodes every copy), and the loop stops as soon as every
row has produced the end-of-turn token. The distribution is transformers' own: the same
temperature / top-k / top-p / min-p warpers as `generate`, in its order, then multinomial
sampling.
"""

from __future__ import annotations

from typing import Any

import torch

from polychromic.models.base import load_model, load_tokenizer
from polychromic.models.prompts import clean_reply, reply_tokens
from polychromic.models.tokens import left_pad, token_logprobs
from polychromic.sampling.base import Sampling


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

    def seed(self, seed: int, system: str = "") -> None:
        torch.manual_seed(seed)  # one stream per job: the system is not needed

    @torch.no_grad()
    def _generate(self, prompts: list[list[int]], num_return: int, max_new_tokens: int,
                  sampling: Sampling | None) -> list[list[str]]:
        ids, mask = left_pad(prompts, self.tokenizer.pad_token_id)
        ids, mask = ids.to(self.model.device), mask.to(self.model.device)
        config = generation_config(self.tokenizer, max_new_tokens, sampling, num_return)
        out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        texts = self.tokenizer.batch_decode(out[:, ids.size(1):], skip_special_tokens=True)
        texts = [clean_reply(text) for text in texts]
        return [texts[i * num_return:(i + 1) * num_return] for i in range(len(prompts))]

    def greedy(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        return [replies[0] for replies in self._generate(prompts, 1, max_new_tokens, None)]

    def sample(self, prompts: list[list[int]], n: int, sampling: Sampling) -> list[list[str]]:
        return self._generate(prompts, n, sampling.max_new_tokens, sampling)

    @torch.no_grad()
    def reference_nll(self, prompt: list[int], references: list[str]
                      ) -> tuple[list[float], list[int]]:
        replies = [reply_tokens(self.tokenizer, reference) for reference in references]
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


class TransformersSampler:
    """`polychromic.sampling.base.TrainingSampler`: n continuations per left-padded prompt."""

    @torch.no_grad()
    def __call__(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 n: int, sampling: Sampling, eos_id: int, pad_id: int) -> torch.Tensor:
        warpers = _warpers(sampling)
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
        for _ in range(int(sampling.max_new_tokens)):
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
