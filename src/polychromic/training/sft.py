"""Supervised fine-tuning data and loss: the chat-formatted prompt is masked, the reply is learned.

Each example is `chat_prompt(lora template(tweet))` (after the system message) followed by
`reply + <|im_end|>`; labels are -100 on prompt tokens and padding, so the causal-LM
cross-entropy covers reply tokens (and the end-of-turn token, which teaches the model when to
stop) only. The labels are masked by the attention mask and the prompt's length, never by the
pad id: a tokenizer whose pad token is its end-of-turn token (SmolLM2's, and any tokenizer
`load_tokenizer` gives pad = eos) keeps the reply's final end-of-turn token as a label.

Truncation is explicit: prompt + reply never exceed `training.max_length` tokens (the
tokenizer's own `model_max_length` is never relied on; a GGUF tokenizer says 1e30).

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
from polychromic.models.tokens import cut_middle, right_pad

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
        prompt_ids = cut_middle(prompt_ids, budget, head)
    reply_ids = reply_ids[: max_length - len(prompt_ids)]
    return Example(record["tweet_id"], prompt_ids, reply_ids, truncated)


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded input_ids, attention_mask and labels: a token is a label where the
    attention mask is 1 and its position is at or after the prompt's length (-100 on prompt
    and padding), whatever its id, so an end-of-turn token that is also the pad token stays a
    label."""
    ids, mask = right_pad([e.prompt_tokens + e.reply_tokens for e in examples], pad_id)
    prompt_lengths = torch.tensor([len(e.prompt_tokens) for e in examples])
    in_reply = torch.arange(ids.size(1))[None, :] >= prompt_lengths[:, None]
    labels = ids.masked_fill(~(in_reply & (mask == 1)), IGNORE)
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
