"""The `generate` rule: one system's replies to every test tweet, saved for later scoring.

Per test prompt (a tweet with all its test-split replies as references): one greedy reply (for
quality metrics) and `num_samples` sampled replies (temperature / top_p from config; for
diversity and pass@k), batched across prompts with left padding and `num_return_sequences`,
seeded. Also the summed negative log-likelihood of every reference reply under the system
(prompt-conditioned), for perplexity. Metrics are computed later from this file, so changing a
metric never re-runs generation (the human-eval split between sampling and scoring).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch
from tqdm import tqdm

from polychromic.io import read_jsonl, write_jsonl
from polychromic.models.base import load_model, load_tokenizer, model_path
from polychromic.models.prompts import few_shot_examples, prompt_tokens, reply_tokens
from polychromic.models.tokens import generation_config, left_pad, token_logprobs
from polychromic.systems import parse_system

log = logging.getLogger(__name__)

THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", flags=re.DOTALL)


def clean_reply(text: str) -> str:
    """Drop any thinking block and surrounding whitespace from a decoded reply."""
    return THINK_BLOCK.sub("", text).strip()


def group_test_prompts(test_records: list[dict]) -> list[dict]:
    """Group test records by tweet, in order of first appearance: one prompt per tweet."""
    prompts: dict[str, dict] = {}
    for record in test_records:
        prompt = prompts.setdefault(
            record["tweet_id"],
            {
                "prompt_id": record["tweet_id"],
                "tweet": record["tweet"],
                "references": [],
                "reference_stances": [],
            },
        )
        prompt["references"].append(record["reply"])
        prompt["reference_stances"].append(record.get("stance"))
    for prompt in prompts.values():
        if all(stance is None for stance in prompt["reference_stances"]):
            prompt["reference_stances"] = None
    return list(prompts.values())


@torch.no_grad()
def generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    num_return: int,
    sample: bool,
    generation: dict,
) -> list[list[str]]:
    """Replies for a batch of tokenised prompts: `num_return` per prompt."""
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    ids, mask = ids.to(model.device), mask.to(model.device)
    config = generation_config(
        tokenizer,
        generation["max_new_tokens"],
        sample,
        temperature=generation["temperature"],
        top_p=generation["top_p"],
        top_k=generation.get("top_k", 0),
        num_return_sequences=num_return,
    )
    out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    texts = tokenizer.batch_decode(out[:, ids.size(1) :], skip_special_tokens=True)
    texts = [clean_reply(t) for t in texts]
    return [texts[i * num_return : (i + 1) * num_return] for i in range(len(prompts))]


@torch.no_grad()
def reference_nll(
    model: Any, tokenizer: Any, prompt: list[int], references: list[str]
) -> tuple[list[float], list[int]]:
    """Summed NLL (nats) and token count of each reference reply (+ end of turn) given a prompt."""
    replies = [reply_tokens(tokenizer, reference) for reference in references]
    ids, mask = left_pad([prompt + reply for reply in replies], tokenizer.pad_token_id)
    logp = token_logprobs(model, ids.to(model.device), mask.to(model.device))
    lengths = [len(reply) for reply in replies]
    # Left padding: every row ends with its reply, so the reply is the last `length` positions.
    nll = [float(-logp[i, -length:].sum()) for i, length in enumerate(lengths)]
    return nll, lengths


def generate_system(
    test: str,
    train: str,
    base: str,
    adapter: str | None,
    output: str,
    system: str,
    system_settings: dict,
    generation: dict,
    prompts_dir: str,
    seed: int,
) -> int:
    """Write `generations/seed_{seed}/{system}.jsonl`; returns the number of prompts."""
    tokenizer = load_tokenizer(base)
    model = load_model(base, adapter)
    template = system_settings["prompt"]
    train_records = read_jsonl(train) if template == "few_shot" else []
    prompts = group_test_prompts(read_jsonl(test))
    if not prompts:
        raise ValueError(f"the test split {test} is empty")
    token_prompts = []
    for prompt in prompts:
        examples = (
            few_shot_examples(
                train_records, int(system_settings.get("shots", 0)), seed, prompt["prompt_id"]
            )
            if template == "few_shot"
            else []
        )
        token_prompts.append(
            prompt_tokens(tokenizer, prompts_dir, template, prompt["tweet"], examples)
        )
    # A temperature system (`baseline_lora@t1.3`, polychromic.systems) samples at its own
    # temperature; the greedy reply does not depend on it.
    _, variant_temperature = parse_system(system)
    temperature = system_settings.get("temperature", variant_temperature)
    if temperature is not None:
        generation = {**generation, "temperature": float(temperature)}
    n = int(generation["num_samples"])
    batch_size = max(1, int(generation["batch_size"]) // max(n, 1))
    settings = {
        "num_samples": n,
        "temperature": float(generation["temperature"]),
        "top_p": float(generation["top_p"]),
        "top_k": int(generation.get("top_k", 0)),
        "max_new_tokens": int(generation["max_new_tokens"]),
        "prompt": template,
        "shots": int(system_settings.get("shots", 0)),
        "model": model_path(base),
        "adapter": adapter,
    }
    torch.manual_seed(seed)
    records = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=f"generate {system}", mininterval=5):
        chunk = token_prompts[start : start + batch_size]
        greedy = generate_batch(model, tokenizer, chunk, 1, False, generation)
        samples = generate_batch(model, tokenizer, chunk, n, True, generation)
        for offset, prompt in enumerate(prompts[start : start + batch_size]):
            nll, tokens = reference_nll(model, tokenizer, chunk[offset], prompt["references"])
            records.append(
                {
                    **prompt,
                    "greedy": greedy[offset][0],
                    "samples": samples[offset],
                    "reference_nll": nll,
                    "reference_tokens": tokens,
                    "system": system,
                    "seed": seed,
                    "settings": settings,
                }
            )
    write_jsonl(output, records)
    log.info("%s: %d prompts x (1 greedy + %d samples)", system, len(records), n)
    return len(records)
