"""Token-level helpers shared by pretraining, training and generation.

Padding: generation and the policy-gradient pass put prompts on the RIGHT edge (left padding),
so every row's continuation starts at the same column; teacher-forced training pads on the
right. Position ids always come from the attention mask, so a padded row is computed exactly
as the same row alone.
"""

from __future__ import annotations

from typing import Any

import torch


def _pad(rows: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        if row:
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span] = torch.tensor(row)
            mask[i, span] = 1
    return ids, mask


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with each row aligned to the right edge."""
    return _pad(rows, pad_id, left=True)


def right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with each row aligned to the left edge."""
    return _pad(rows, pad_id, left=False)


def token_logprobs(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """log p(x_t | x_<t) for t = 1..L-1, shape (B, L-1); position ids follow the mask."""
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    logits = (
        model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions)
        .logits[:, :-1, :]
        .float()
    )
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def generation_config(
    tokenizer: Any,
    max_new_tokens: int,
    sample: bool,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_return_sequences: int = 1,
) -> Any:
    """A complete GenerationConfig: nothing is left to the model's or the library's defaults.

    transformers fills unset sampling fields from the model's generation_config.json (Qwen3-8B
    ships top_k = 20) or its own defaults (top_k = 50), which would truncate the distribution
    behind the config's back; here top_k = 0 means "off" and every field is explicit.
    """
    from transformers import GenerationConfig

    settings: dict[str, Any] = {
        "max_new_tokens": int(max_new_tokens),
        "num_return_sequences": int(num_return_sequences),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "do_sample": bool(sample),
    }
    if sample:
        settings.update(temperature=float(temperature), top_p=float(top_p), top_k=int(top_k))
    else:
        settings.update(temperature=None, top_p=None, top_k=None)
    return GenerationConfig(**settings)


@torch.no_grad()
def sample_continuations(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    num_samples: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
) -> torch.Tensor:
    """`num_samples` sampled continuations per left-padded prompt, shape (B * n, <= T).

    A lean sampling loop for the training objective: the prompt is encoded ONCE and its KV cache
    repeated n times (`generate` with num_return_sequences encodes every copy), and the loop
    stops as soon as every row has produced `eos_id`. The distribution is transformers' own:
    the same temperature / top-k / top-p warpers as `generate`, then multinomial sampling.
    Rows after their end-of-turn token hold `pad_id`.
    """
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True
    )
    cache = out.cache  # transformers >= 5.24 names it `cache` (formerly past_key_values)
    cache.batch_repeat_interleave(num_samples)
    logits = out.logits[:, -1, :].float().repeat_interleave(num_samples, dim=0)
    mask = attention_mask.repeat_interleave(num_samples, dim=0)
    position = positions[:, -1:].repeat_interleave(num_samples, dim=0)
    history = input_ids.repeat_interleave(num_samples, dim=0)
    finished = torch.zeros(logits.size(0), dtype=torch.bool, device=logits.device)
    tokens = []
    for _ in range(int(max_new_tokens)):
        scores = warpers(history, logits)
        next_token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)
        tokens.append(next_token)
        finished |= next_token == eos_id
        if bool(finished.all()):
            break
        history = torch.cat([history, next_token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position = position + 1
        out = model(
            input_ids=next_token[:, None], attention_mask=mask, position_ids=position,
            cache=cache, use_cache=True,
        )  # fmt: skip
        logits = out.logits[:, -1, :].float()
    return torch.stack(tokens, dim=1)
