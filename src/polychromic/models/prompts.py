"""Prompts: jinja2 templates in resources/prompts/ wrapped by the model's own chat template.

One function builds the text a model sees for a tweet, used by training and by generation
alike, so the LoRA systems are evaluated on exactly the prompt they were trained on. The chat
template comes from the tokenizer (Qwen3's or SmolLM2's real one for a real model; a Qwen-style
one for the tiny model) and is applied with thinking disabled (`enable_thinking=False`).

Every conversation opens with the system message of `system.j2` in the same prompts folder
(training, zero-shot, few-shot and LoRA systems alike), so a model's own default system prompt
never leaks in: SmolLM2's template inserts "You are a helpful AI assistant named SmolLM..."
unless a system message is given. Edit `system.j2` to change it; training and generation
re-run (the rules take it as an input).
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path
from typing import Any

import jinja2


@functools.lru_cache(maxsize=16)
def load_template(prompts_dir: str, name: str) -> jinja2.Template:
    path = Path(prompts_dir) / f"{name}.j2"
    if not path.is_file():
        raise FileNotFoundError(f"prompt template {path} does not exist")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(path.read_text(encoding="utf-8"))


def user_message(
    prompts_dir: str, name: str, tweet: str, examples: list[dict] | None = None
) -> str:
    """Render the user message of template `name` for one tweet."""
    return (
        load_template(str(prompts_dir), name).render(tweet=tweet, examples=examples or []).strip()
    )


SYSTEM_TEMPLATE = "system"  # system.j2: the system message of every conversation


def system_message(prompts_dir: str) -> str:
    """The system message every prompt opens with (`system.j2` of the prompts folder)."""
    return load_template(str(prompts_dir), SYSTEM_TEMPLATE).render().strip()


def chat_prompt(tokenizer: Any, message: str, system: str) -> str:
    """The text up to where the assistant's reply starts (generation prompt, no thinking): the
    system message `system`, then the user message."""
    return tokenizer.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": message}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )


def reply_suffix(tokenizer: Any) -> str:
    """What closes an assistant turn: the tokenizer's end-of-turn token (`<|im_end|>` for Qwen)."""
    return tokenizer.eos_token


def prompt_tokens(
    tokenizer: Any, prompts_dir: str, name: str, tweet: str, examples: list[dict] | None = None
) -> list[int]:
    """Token ids of the full chat prompt for one tweet (training and generation alike): the
    system message of `system.j2`, then template `name` as the user message."""
    text = chat_prompt(tokenizer, user_message(prompts_dir, name, tweet, examples),
                       system_message(prompts_dir))
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@functools.lru_cache(maxsize=16)
def prompt_prefix_length(tokenizer: Any, prompts_dir: str, name: str) -> int:
    """How many leading tokens every prompt of template `name` shares (the system message, the
    chat header and the template text before the tweet): what a truncation must keep."""
    first = prompt_tokens(tokenizer, prompts_dir, name, "alpha beta gamma")
    second = prompt_tokens(tokenizer, prompts_dir, name, "zulu yankee xray")
    length = 0
    while length < min(len(first), len(second)) and first[length] == second[length]:
        length += 1
    return length


def reply_tokens(tokenizer: Any, reply: str) -> list[int]:
    """Token ids of a reply followed by the end-of-turn token (what the model must produce)."""
    return tokenizer(reply + reply_suffix(tokenizer), add_special_tokens=False)["input_ids"]


THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", flags=re.DOTALL)


def clean_reply(text: str) -> str:
    """A decoded reply as scored: any thinking block and surrounding whitespace dropped."""
    return THINK_BLOCK.sub("", text).strip()


def few_shot_examples(train: list[dict], shots: int, seed: int, prompt_id: str) -> list[dict]:
    """`shots` (tweet, reply) pairs from the TRAIN split, seeded per (seed, prompt)."""
    if shots <= 0:
        return []
    if not train:
        raise ValueError("few-shot examples need a non-empty train split")
    rng = random.Random(f"{seed}:{prompt_id}")
    picked = rng.sample(range(len(train)), k=min(shots, len(train)))
    return [{"tweet": train[i]["tweet"], "reply": train[i]["reply"]} for i in picked]
