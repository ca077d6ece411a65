"""Generation: left padding is exact, sampling settings are explicit, output is seeded."""

from __future__ import annotations

import pytest
import torch

from polychromic.evaluation.generate import (
    clean_reply,
    generate_batch,
    generate_system,
    group_test_prompts,
    reference_nll,
)
from polychromic.io import read_jsonl
from polychromic.models.base import load_model, load_tokenizer
from polychromic.models.prompts import few_shot_examples, prompt_tokens, reply_tokens
from polychromic.models.tokens import generation_config

from conftest import PROMPTS

GENERATION = {"num_samples": 3, "temperature": 1.0, "top_p": 0.9, "top_k": 0,
              "max_new_tokens": 8, "batch_size": 6}  # fmt: skip


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
    tokenizer = load_tokenizer(tiny_base)
    model = load_model(tiny_base)
    config = generation_config(tokenizer, 8, True, temperature=0.7, top_p=0.9, top_k=0)
    effective, _ = model._prepare_generation_config(config)
    assert (effective.top_k, effective.top_p, effective.temperature) == (0, 0.9, 0.7)
    greedy = generation_config(tokenizer, 8, False)
    assert greedy.do_sample is False and greedy.temperature is None


def test_batched_greedy_equals_one_prompt_at_a_time(tiny_base, toy_splits):
    tokenizer = load_tokenizer(tiny_base)
    model = load_model(tiny_base)
    tweets = [r["tweet"] for r in read_jsonl(toy_splits["test"])][::3][:4]
    prompts = [prompt_tokens(tokenizer, PROMPTS, "zero_shot", t) for t in tweets]
    prompts[0] = prompts[0] + prompts[0][-3:]  # different lengths: real left padding
    assert len({len(p) for p in prompts}) > 1
    batched = generate_batch(model, tokenizer, prompts, 1, False, GENERATION)
    alone = [generate_batch(model, tokenizer, [p], 1, False, GENERATION)[0] for p in prompts]
    assert batched == alone


def test_reference_nll_scores_exactly_the_reply_tokens(tiny_base):
    tokenizer = load_tokenizer(tiny_base)
    model = load_model(tiny_base)
    prompt = prompt_tokens(tokenizer, PROMPTS, "lora", "Thinking about coffee today")
    references = ["Totally agree, coffee really helps", "Not so sure"]
    nll, tokens = reference_nll(model, tokenizer, prompt, references)
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
            toy_splits["test"], toy_splits["train"], tiny_base, None, str(out), "few_shot",
            {"prompt": "few_shot", "shots": 2}, GENERATION, PROMPTS, seed,
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
    from polychromic.models.tokens import left_pad, sample_continuations

    tokenizer = load_tokenizer(tiny_base)
    model = load_model(tiny_base)
    tweets = [r["tweet"] for r in read_jsonl(toy_splits["test"])][::3][:3]
    prompts = [prompt_tokens(tokenizer, PROMPTS, "lora", t) for t in tweets]
    prompts[0] = prompts[0] + prompts[0][-2:]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    samples = sample_continuations(
        model, ids, mask, 2, 8, tokenizer.eos_token_id, tokenizer.pad_token_id, top_k=1
    )
    assert samples.shape[0] == 6
    texts = [clean_reply(t) for t in tokenizer.batch_decode(samples, skip_special_tokens=True)]
    greedy = generate_batch(model, tokenizer, prompts, 1, False, GENERATION)
    assert texts == [g[0] for g in greedy for _ in range(2)]


def test_temperature_system_samples_at_its_temperature(tiny_base, toy_splits, tmp_path):
    """`zero_shot@t2.0` (polychromic.systems): samples at 2.0, the same greedy replies."""
    def run(name: str, settings: dict) -> list[dict]:
        out = tmp_path / f"{name}.jsonl"
        generate_system(toy_splits["test"], toy_splits["train"], tiny_base, None, str(out), name,
                        settings, GENERATION, PROMPTS, 1)
        return read_jsonl(out)

    plain = run("zero_shot", {"prompt": "zero_shot"})
    hot = run("zero_shot@t2.0", {"prompt": "zero_shot", "temperature": 2.0,
                                 "base_system": "zero_shot"})
    assert {r["settings"]["temperature"] for r in plain} == {1.0}
    assert {r["settings"]["temperature"] for r in hot} == {2.0}
    assert {r["system"] for r in hot} == {"zero_shot@t2.0"}
    assert [r["greedy"] for r in hot] == [r["greedy"] for r in plain]
    assert [r["samples"] for r in hot] != [r["samples"] for r in plain]
