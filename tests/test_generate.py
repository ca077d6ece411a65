"""Generation through the engine seam: left padding is exact, sampling settings are explicit,
output is seeded, and the transformers engine's training sampler matches `generate`."""

from __future__ import annotations

import pytest
import torch

from polychromic.evaluation.generate import generate_system, group_test_prompts
from polychromic.io import read_jsonl
from polychromic.models.prompts import clean_reply, few_shot_examples, prompt_tokens, reply_tokens
from polychromic.models.tokens import left_pad
from polychromic.sampling import open_engine, training_sampler
from polychromic.sampling.base import Sampling
from polychromic.sampling.hf import generation_config
from polychromic.settings import section
from polychromic.systems import System

from conftest import PROMPTS

GENERATION = section("generation", {"num_samples": 3, "temperature": 1.0, "top_p": 0.9,
                                    "top_k": 0, "max_new_tokens": 8, "batch_size": 6})


def system(name: str, prompt: str, shots: int = 0, temperature: float | None = None) -> System:
    return System(name, prompt, shots, None, temperature,
                  name.split("@")[0] if temperature is not None else None)


def test_prompts_group_replies_by_tweet_in_order():
    records = [
        {"tweet_id": "b", "tweet": "B", "reply": "b1", "stance": "agree"},
        {"tweet_id": "a", "tweet": "A", "reply": "a1"},
        {"tweet_id": "b", "tweet": "B", "reply": "b2", "stance": "question"},
    ]
    prompts = group_test_prompts(records)
    assert [p["prompt_id"] for p in prompts] == ["b", "a"]
    assert prompts[0]["references"] == ["b1", "b2"]
    assert prompts[0]["reference_stances"] == ["agree", "question"]
    assert prompts[1]["reference_stances"] is None


def test_clean_reply_drops_thinking():
    assert clean_reply("<think>\nhmm</think>\n\n Sure thing ") == "Sure thing"
    assert clean_reply("<think>never closed") == ""


def test_sampling_config_is_explicit(tiny_base):
    engine = open_engine("transformers", tiny_base, None)
    config = generation_config(engine.tokenizer, 8, Sampling(0.7, 0.9, 0, 8))
    effective, _ = engine.model._prepare_generation_config(config)
    assert (effective.top_k, effective.top_p, effective.temperature) == (0, 0.9, 0.7)
    greedy = generation_config(engine.tokenizer, 8, None)
    assert greedy.do_sample is False and greedy.temperature is None


def test_batched_greedy_equals_one_prompt_at_a_time(tiny_base, toy_splits):
    engine = open_engine("transformers", tiny_base, None)
    tweets = [r["tweet"] for r in read_jsonl(toy_splits["test"])][::3][:4]
    prompts = [prompt_tokens(engine.tokenizer, PROMPTS, "zero_shot", t) for t in tweets]
    prompts[0] = prompts[0] + prompts[0][-3:]  # different lengths: real left padding
    assert len({len(p) for p in prompts}) > 1
    batched = engine.greedy(prompts, 8)
    alone = [engine.greedy([p], 8)[0] for p in prompts]
    assert batched == alone


def test_reference_nll_scores_exactly_the_reply_tokens(tiny_base):
    engine = open_engine("transformers", tiny_base, None)
    tokenizer, model = engine.tokenizer, engine.model
    prompt = prompt_tokens(tokenizer, PROMPTS, "lora", "Thinking about coffee today")
    references = ["Totally agree, coffee really helps", "Not so sure"]
    nll, tokens = engine.reference_nll(prompt, references)
    for reference, value, count in zip(references, nll, tokens, strict=True):
        reply = reply_tokens(tokenizer, reference)
        ids = torch.tensor([prompt + reply])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        assert count == len(reply)
        assert value == pytest.approx(float(-logp[-len(reply) :].sum()), rel=1e-5)


def test_generate_system_is_seeded_and_follows_the_contract(tiny_base, toy_splits, tmp_path):
    def run(name: str, seed: int) -> list[dict]:
        out = tmp_path / f"{name}.jsonl"
        generate_system(
            toy_splits["test"], toy_splits["train"], tiny_base, None, str(out),
            system("few_shot", "few_shot", shots=2), GENERATION, PROMPTS, seed,
        )  # fmt: skip
        return read_jsonl(out)

    first, again, other = run("a", 1), run("b", 1), run("c", 2)
    assert first == again
    assert [r["samples"] for r in first] != [r["samples"] for r in other]
    tweets = {r["tweet_id"] for r in read_jsonl(toy_splits["test"])}
    assert [r["prompt_id"] for r in first] == list(dict.fromkeys(
        r["tweet_id"] for r in read_jsonl(toy_splits["test"])))  # fmt: skip
    for record in first:
        assert record["prompt_id"] in tweets
        assert len(record["samples"]) == 3 and isinstance(record["greedy"], str)
        assert len(record["reference_nll"]) == len(record["references"])
        assert record["settings"]["top_k"] == 0 and record["settings"]["shots"] == 2
        assert record["settings"]["engine"] == "transformers"
        assert record["system"] == "few_shot" and record["seed"] == 1


def test_few_shot_examples_come_from_train_only(toy_splits):
    train = read_jsonl(toy_splits["train"])
    train_tweets = {r["tweet"] for r in train}
    for prompt_id in ["t030", "t031", "t032"]:
        examples = few_shot_examples(train, 3, seed=4, prompt_id=prompt_id)
        assert len(examples) == 3 and all(e["tweet"] in train_tweets for e in examples)
    assert few_shot_examples(train, 3, 4, "t030") == few_shot_examples(train, 3, 4, "t030")
    with pytest.raises(ValueError, match="train split"):
        few_shot_examples([], 3, 4, "t030")


def test_training_sampler_matches_generate_when_deterministic(tiny_base, toy_splits):
    """The lean sampler (prompt encoded once, KV cache repeated) computes the same next-token
    distribution as `generate`: with top_k = 1 both must produce the greedy replies."""
    engine = open_engine("transformers", tiny_base, None)
    tokenizer = engine.tokenizer
    tweets = [r["tweet"] for r in read_jsonl(toy_splits["test"])][::3][:3]
    prompts = [prompt_tokens(tokenizer, PROMPTS, "lora", t) for t in tweets]
    prompts[0] = prompts[0] + prompts[0][-2:]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    samples = training_sampler("transformers")(
        engine.model, ids, mask, 2, Sampling(1.0, 1.0, 1, 8), tokenizer.eos_token_id,
        tokenizer.pad_token_id)
    assert samples.shape[0] == 6
    texts = [clean_reply(t) for t in tokenizer.batch_decode(samples, skip_special_tokens=True)]
    greedy = engine.greedy(prompts, 8)
    assert texts == [g for g in greedy for _ in range(2)]


def test_temperature_system_samples_at_its_temperature(tiny_base, toy_splits, tmp_path):
    """`zero_shot@t2.0` (polychromic.systems): samples at 2.0, the same greedy replies."""
    def run(settings: System) -> list[dict]:
        out = tmp_path / f"{settings.name}.jsonl"
        generate_system(toy_splits["test"], toy_splits["train"], tiny_base, None, str(out),
                        settings, GENERATION, PROMPTS, 1)
        return read_jsonl(out)

    plain = run(system("zero_shot", "zero_shot"))
    hot = run(system("zero_shot@t2.0", "zero_shot", temperature=2.0))
    assert {r["settings"]["temperature"] for r in plain} == {1.0}
    assert {r["settings"]["temperature"] for r in hot} == {2.0}
    assert {r["system"] for r in hot} == {"zero_shot@t2.0"}
    assert [r["greedy"] for r in hot] == [r["greedy"] for r in plain]
    assert [r["samples"] for r in hot] != [r["samples"] for r in plain]
