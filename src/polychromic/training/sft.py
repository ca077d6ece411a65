"""Supervised fine-tuning data and loss: the chat-formatted prompt is masked, the reply is learned.

Each example is `chat_prompt(lora template(tweet))` followed by `reply + <|im_end|>`; labels are
-100 on prompt tokens, so the causal-LM cross-entropy covers reply tokens (and the end-of-turn
token, which teaches the model when to stop) only.

Loss normalisation under gradient accumulation: with micro-batches b = 1..B of one optimizer
step and T the number of reply tokens in ALL of them,

    loss = sum_b sum_{t in reply tokens of b} -log p(y_t | y_<t, x) / T

so `batch 4 x accumulation 4` gives the same gradient as `batch 16` (a per-micro-batch mean
would weight short replies more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from polychromic.models.prompts import prompt_prefix_length, prompt_tokens, reply_tokens

IGNORE = -100


@dataclass
class Example:
    tweet_id: str
    prompt_tokens: list[int]
    reply_tokens: list[int]
    truncated: bool = False


def encode_example(
    tokenizer: Any, prompts_dir: str, record: dict, max_length: int, template: str = "lora"
) -> Example:
    prompt_ids = prompt_tokens(tokenizer, prompts_dir, template, record["tweet"])
    reply_ids = reply_tokens(tokenizer, record["reply"])
    # Keep the whole prompt and cut the reply; only a prompt that leaves fewer than 8 tokens for
    # the reply loses tokens of the tweet, from its middle: the chat header and the template
    # text before the tweet, and the end of the prompt (where the reply starts), are kept (the
    # caller counts such examples through `truncated`).
    truncated = len(prompt_ids) + len(reply_ids) > max_length
    budget = max_length - 8
    if len(prompt_ids) > budget:
        head = min(prompt_prefix_length(tokenizer, prompts_dir, template), budget // 2)
        prompt_ids = prompt_ids[:head] + prompt_ids[len(prompt_ids) - (budget - head):]
    reply_ids = reply_ids[: max_length - len(prompt_ids)]
    return Example(record["tweet_id"], prompt_ids, reply_ids, truncated)


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded input_ids, attention_mask and labels (-100 on prompt and padding)."""
    width = max(len(e.prompt_tokens) + len(e.reply_tokens) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for i, example in enumerate(examples):
        full = example.prompt_tokens + example.reply_tokens
        ids[i, : len(full)] = torch.tensor(full)
        mask[i, : len(full)] = 1
        start = len(example.prompt_tokens)
        labels[i, start : len(full)] = torch.tensor(example.reply_tokens)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "tweet_ids": [e.tweet_id for e in examples],
    }


def count_targets(batch: dict[str, torch.Tensor]) -> int:
    """Number of reply tokens that carry loss (labels shifted by one, as the model does)."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def summed_token_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum (not mean) of the next-token cross-entropy over reply tokens of the batch."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    shifted = logits[:, :-1, :].float()
    targets = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        shifted.reshape(-1, shifted.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


class SFT:
    """The baseline objective: the loop's cross-entropy term alone, nothing added."""

    log_fields: tuple[str, ...] = ()

    def __init__(self, settings: object, context: object) -> None:
        self.settings = settings

    def extra_loss(self, model: Any, batch: dict, step: object) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {"reward_model": None}
