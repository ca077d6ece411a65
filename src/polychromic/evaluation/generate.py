"""The `generate` rule: one system's replies to every test tweet, saved for later scoring.

Per test prompt (a tweet with all its test-split replies as references): one greedy reply (for
quality metrics) and `num_samples` sampled replies (for diversity and pass@k), batched across
prompts, seeded. Also the summed negative log-likelihood of every reference reply under the
system (prompt-conditioned), for perplexity. Metrics are computed later from this file, so
changing a metric never re-runs generation (the human-eval split between sampling and scoring).

The replies come from the engine of `generation.engine` (`polychromic.sampling`); this module
builds the prompts, walks the batches and writes the records, whatever the engine.
"""

from __future__ import annotations

import logging
from typing import Any

from tqdm import tqdm

from polychromic.io import read_json, read_jsonl, write_jsonl
from polychromic.models.base import model_path
from polychromic.models.prompts import few_shot_examples, prompt_tokens, system_message
from polychromic.sampling import open_engine
from polychromic.sampling.base import Engine, Sampling
from polychromic.settings import GenerationSettings
from polychromic.systems import System, chosen_system

log = logging.getLogger(__name__)


def group_test_prompts(test_records: list[dict]) -> list[dict]:
    """Group test records by tweet, in order of first appearance: one prompt per tweet, with its
    references, their stance labels and the tweet's topic label where the data carry them (the
    oracle judge reads them: polychromic.evaluation.judges)."""
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
        prompt.setdefault("topics", set()).add(record.get("topic"))
    for prompt in prompts.values():
        if all(stance is None for stance in prompt["reference_stances"]):
            prompt["reference_stances"] = None
        topics = prompt.pop("topics")
        if len(topics) == 1 and None not in topics:  # the tweet's topic label, where the data
            prompt["topic"] = topics.pop()           # carry one (the demo corpus)
    return list(prompts.values())


def system_sampling(system: System, generation: GenerationSettings) -> Sampling:
    """The sampling of a system: generation's, with the keys a sampling variant sets itself
    (`baseline_lora@t1.3`: temperature; `baseline_lora@t1.6m0.1`: temperature and min_p;
    `polychromic.systems`) in their place; the greedy reply does not depend on it."""
    values = {"temperature": generation.temperature, "top_p": generation.top_p,
              "top_k": generation.top_k, "min_p": generation.min_p,
              **system.overrides.items()}
    return Sampling(temperature=float(values["temperature"]), top_p=float(values["top_p"]),
                    top_k=int(values["top_k"]), max_new_tokens=int(generation.max_new_tokens),
                    min_p=float(values["min_p"]))


def token_prompts(tokenizer: Any, prompts: list[dict], system: System, train: str,
                  prompts_dir: str, seed: int) -> list[list[int]]:
    """The chat prompt of every test tweet in the system's template (few-shot examples from
    the train split only)."""
    train_records = read_jsonl(train) if system.prompt == "few_shot" else []
    out = []
    for prompt in prompts:
        examples = (few_shot_examples(train_records, system.shots, seed, prompt["prompt_id"])
                    if system.prompt == "few_shot" else [])
        out.append(prompt_tokens(tokenizer, prompts_dir, system.prompt, prompt["tweet"],
                                 examples))
    return out


def generation_records(engine: Engine, prompts: list[dict], tokens: list[list[int]],
                       n: int, sampling: Sampling, batch_prompts: int) -> list[dict]:
    """Greedy reply, n samples and reference NLLs of every prompt, batch by batch (the greedy
    batch first, then its samples: the engine's random stream depends on this order)."""
    records = []
    for start in tqdm(range(0, len(prompts), batch_prompts), desc="generate", mininterval=5):
        chunk = tokens[start:start + batch_prompts]
        greedy = engine.greedy(chunk, sampling.max_new_tokens)
        samples = engine.sample(chunk, n, sampling)
        for offset, prompt in enumerate(prompts[start:start + batch_prompts]):
            nll, counts = engine.reference_nll(chunk[offset], prompt["references"])
            records.append({**prompt, "greedy": greedy[offset], "samples": samples[offset],
                            "reference_nll": nll, "reference_tokens": counts})
    return records


def generate_system(test: str, train: str, base: str, adapter: str | None, output: str,
                    system: System, generation: GenerationSettings, prompts_dir: str,
                    seed: int, max_prompts: int | None = None,
                    selection: str | None = None) -> int:
    """Write `generations/seed_{seed}/{system}.jsonl` for the tweets of the split file `test`
    (the validation split for the sampling choice of `evaluation.selection`, where
    `max_prompts` keeps the first tweets by id); with `selection` (selection.json) the system
    samples at the setting chosen for it on validation. Returns the number of prompts."""
    system = chosen_system(system, read_json(selection) if selection else None)
    engine = open_engine(generation.engine, base, adapter)
    prompts = group_test_prompts(read_jsonl(test))
    if not prompts:
        raise ValueError(f"the split {test} is empty")
    if max_prompts is not None:
        prompts = sorted(prompts, key=lambda prompt: prompt["prompt_id"])[:max_prompts]
    tokens = token_prompts(engine.tokenizer, prompts, system, train, prompts_dir, seed)
    sampling = system_sampling(system, generation)
    n = generation.num_samples
    settings = {
        "num_samples": n, "temperature": sampling.temperature, "top_p": sampling.top_p,
        "top_k": sampling.top_k, "min_p": sampling.min_p,
        "max_new_tokens": sampling.max_new_tokens,
        "prompt": system.prompt, "shots": system.shots,
        "system_message": system_message(prompts_dir), "model": model_path(base),
        "adapter": adapter, "engine": generation.engine,
    }
    engine.seed(seed, system.name)
    records = generation_records(engine, prompts, tokens, n, sampling,
                                 max(1, generation.batch_size // max(n, 1)))
    for record in records:
        record.update(system=system.name, seed=seed, settings=settings)
    write_jsonl(output, records)
    log.info("%s: %d prompts x (1 greedy + %d samples)", system.name, len(records), n)
    return len(records)
