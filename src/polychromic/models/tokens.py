"""Token-level helpers shared by pretraining, training and generation.

Padding: generation and the policy-gradient pass put prompts on the RIGHT edge (left padding),
so every row's continuation starts at the same column; teacher-forced training pads on the
right. Position ids always come from the attention mask, so a padded row is computed exactly
as the same row alone.
"""

from __future__ import annotations

from typing import Any

import torch


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with each row aligned to the right edge."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return ids, mask


def right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with each row aligned to the left edge."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        if row:
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
    return ids, mask


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
