"""Token-level helpers shared by pretraining, training and the sampling engines.

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


def cut_middle(ids: list[int], limit: int, head: int) -> list[int]:
    """`ids` cut to at most `limit` tokens by dropping tokens from the middle: the first `head`
    (at most `limit`) and the last `limit - head` are kept. Unchanged when it fits."""
    if len(ids) <= limit:
        return list(ids)
    head = max(0, min(head, limit))
    return list(ids[:head]) + (list(ids[len(ids) - (limit - head):]) if limit > head else [])


def fit_prompt(ids: list[int], context: int | None, room: int) -> list[int]:
    """A prompt cut (`cut_middle`, half head, half tail: the system message and the
    instruction open it, the tweet and the generation prompt close it) so that `room` more
    tokens (a reply) still fit in a context window of `context` tokens; unchanged when they
    fit or the window is unknown (None). ValueError when not even one prompt token fits."""
    if context is None or len(ids) + room <= context:
        return list(ids)
    limit = context - room
    if limit < 1:
        raise ValueError(f"{room} new tokens leave no room for a prompt in the model's context "
                         f"window of {context} tokens")
    return cut_middle(ids, limit, limit // 2)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with each row aligned to the right edge."""
    return _pad(rows, pad_id, left=True)


def right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with each row aligned to the left edge."""
    return _pad(rows, pad_id, left=False)


def token_logprobs(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """log p_T(x_t | x_<t) for t = 1..L-1, shape (B, L-1), of the distribution at
    `temperature` (softmax of logits / T); position ids follow the mask."""
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    logits = (
        model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions)
        .logits[:, :-1, :]
        .float()
    )
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
