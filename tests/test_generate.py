"""Generation through the engine seam: left padding is exact, sampling settings are explicit,
output is seeded, the transformers engine's training sampler matches `generate`, and min-p
truncates as transformers' generate does (min_p 0: the replies without it)."""

from __future__ import annotations

import pytest
import torch

from polychromic.evaluation.generate import generate_system, group_test_prompts
from polychromic.io import read_jsonl
from polychromic.models.prompts import clean_reply, few_shot_examples, prompt_tokens, reply_tokens
from polychromic.models.tokens import left_pad
from polychromic.sampling import hf, open_engine, training_sampler
from polychromic.sampling.base import Sampling
from polychromic.sampling.hf import _warpers, generation_config
from polychromic.settings import section
from polychromic.systems import System, parse_system

from conftest import PROMPTS

GENERATION = section("generation", {"num_samples": 3, "temperature": 1.0, "top_p": 0.9,
                                    "top_k": 0, "max_new_tokens": 8, "batch_size": 6})


def system(name: str, prompt: str, shots: int = 0, temperature: float | None = None) -> System:
    return System(name, prompt, shots, None, temperature,
                  name.split("@")[0] if temperature is not None else None)


def variant(name: str, prompt: str) -> System:
    """The system of a variant name (`zero_shot@m0.3`), its overrides parsed from the name."""
    base, overrides = parse_system(name)
    return System(name, prompt, 0, None, overrides.temperature, base, overrides.top_p,
                  overrides.top_k, overrides.min_p)


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
    assert effective.min_p == 0.0  # set, not left to a model's generation_config
    engine.model.generation_config.min_p = 0.05  # a model that ships its own min_p
    try:
        effective, _ = engine.model._prepare_generation_config(config)
        assert effective.min_p == 0.0
        hot = generation_config(engine.tokenizer, 8, Sampling(0.7, 0.9, 0, 8, min_p=0.2))
        assert engine.model._prepare_generation_config(hot)[0].min_p == 0.2
    finally:
        engine.model.generation_config.min_p = None
    greedy = generation_config(engine.tokenizer, 8, None)
    assert greedy.do_sample is False and greedy.temperature is None and greedy.min_p is None


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


def _generated(settings: System, tiny_base, toy_splits, folder) -> list[dict]:
    """The generate step's records for one system on the toy test split (seed 1)."""
    out = folder / f"{settings.name}.jsonl"
    generate_system(toy_splits["test"], toy_splits["train"], tiny_base, None, str(out),
                    settings, GENERATION, PROMPTS, 1)
    return read_jsonl(out)


def test_temperature_system_samples_at_its_temperature(tiny_base, toy_splits, tmp_path):
    """`zero_shot@t2.0` (polychromic.systems): samples at 2.0, the same greedy replies."""
    def run(settings: System) -> list[dict]:
        return _generated(settings, tiny_base, toy_splits, tmp_path)

    plain = run(system("zero_shot", "zero_shot"))
    hot = run(system("zero_shot@t2.0", "zero_shot", temperature=2.0))
    assert {r["settings"]["temperature"] for r in plain} == {1.0}
    assert {r["settings"]["temperature"] for r in hot} == {2.0}
    assert {r["system"] for r in hot} == {"zero_shot@t2.0"}
    assert [r["greedy"] for r in hot] == [r["greedy"] for r in plain]
    assert [r["samples"] for r in hot] != [r["samples"] for r in plain]


def _first_tokens(engine, prompt: list[int], sampling: Sampling, n: int) -> set[int]:
    """The first token of `n` replies sampled by `generate` with the engine's own config."""
    ids = torch.tensor([prompt])
    config = generation_config(engine.tokenizer, 1, sampling, num_return_sequences=n)
    with torch.no_grad():
        out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                    generation_config=config)
    return set(out[:, ids.size(1)].tolist())


def test_min_p_warper_follows_the_temperature_on_known_logits() -> None:
    """min-p keeps the tokens with probability >= min_p x the top one's, computed after the
    temperature (transformers' order: temperature, top-k, top-p, min-p); min_p 0 adds no
    warper at all."""
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.14, 0.1, 0.06]]))
    ids = torch.zeros((1, 1), dtype=torch.long)

    def kept(sampling: Sampling) -> list[int]:
        scores = _warpers(sampling)(ids, logits.clone())
        return torch.isfinite(scores)[0].nonzero()[:, 0].tolist()

    assert kept(Sampling(1.0, 1.0, 0, 8, min_p=0.3)) == [0, 1]  # >= 0.15
    assert kept(Sampling(1.0, 1.0, 0, 8, min_p=0.0)) == [0, 1, 2, 3, 4]
    # at T = 2 the probabilities go as sqrt(p): relative 1, .63, .53, .45, .35 (at T = 1:
    # 1, .4, .28, .2, .12), so min_p 0.5 after the temperature keeps three, before it one
    assert kept(Sampling(2.0, 1.0, 0, 8, min_p=0.5)) == [0, 1, 2]
    assert kept(Sampling(1.0, 1.0, 0, 8, min_p=0.5)) == [0]
    assert kept(Sampling(1.0, 1.0, 2, 8, min_p=0.3)) == [0, 1]
    names = [type(w).__name__ for w in _warpers(Sampling(2.0, 0.9, 3, 8, min_p=0.1))]
    assert names == ["TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper",
                     "MinPLogitsWarper"]
    assert [type(w).__name__ for w in _warpers(Sampling(2.0, 0.9, 3, 8))] == names[:3]


def test_min_p_drops_the_unlikely_tokens_in_generate_and_training(tiny_base, toy_splits):
    """At temperature 2 the tiny model's first token is spread thin: min_p 0 samples tokens
    below 0.5 x the top one's probability, min_p 0.5 never does, in `generate` and in the
    training sampler alike; and the cut is taken after the temperature (it keeps tokens that
    a cut before it, at T = 1, would drop)."""
    engine = open_engine("transformers", tiny_base, None)
    tweet = read_jsonl(toy_splits["test"])[0]["tweet"]
    prompt = prompt_tokens(engine.tokenizer, PROMPTS, "zero_shot", tweet)
    with torch.no_grad():
        logits = engine.model(input_ids=torch.tensor([prompt])).logits[0, -1].float()

    def above_half(temperature: float) -> set[int]:
        probs = torch.softmax(logits / temperature, dim=-1)
        return set((probs >= 0.5 * probs.max()).nonzero()[:, 0].tolist())

    allowed = above_half(2.0)
    torch.manual_seed(0)
    free = _first_tokens(engine, prompt, Sampling(2.0, 1.0, 0, 1), 400)
    cut = _first_tokens(engine, prompt, Sampling(2.0, 1.0, 0, 1, min_p=0.5), 400)
    assert free - allowed, "min_p 0 should sample some unlikely token at T = 2"
    assert cut <= allowed and cut - above_half(1.0)
    ids, mask = left_pad([prompt], engine.tokenizer.pad_token_id)
    trained = training_sampler("transformers")(
        engine.model, ids, mask, 400, Sampling(2.0, 1.0, 0, 1, min_p=0.5),
        engine.tokenizer.eos_token_id, engine.tokenizer.pad_token_id)
    assert set(trained[:, 0].tolist()) <= allowed and set(trained[:, 0].tolist()) - above_half(1.0)


def test_min_p_zero_leaves_the_replies_bit_identical(tiny_base, toy_splits, monkeypatch):
    """min_p 0 (the default) gives exactly the replies of a generate call whose warper list
    has no min-p (the config before min_p existed: min_p unset); a real min_p changes them."""
    engine = open_engine("transformers", tiny_base, None)
    tweets = [r["tweet"] for r in read_jsonl(toy_splits["test"])][::3][:3]
    prompts = [prompt_tokens(engine.tokenizer, PROMPTS, "zero_shot", t) for t in tweets]

    def replies(min_p: float) -> list[list[str]]:  # generate's, num_return_sequences
        engine.seed(7)
        return engine.sample_recomputed(prompts, 6, Sampling(2.0, 1.0, 0, 12, min_p=min_p))

    with_zero = replies(0.0)
    engine.seed(7)  # the engine's own sampling (the prompt shared) draws the same replies
    assert engine.sample(prompts, 6, Sampling(2.0, 1.0, 0, 12, min_p=0.0)) == with_zero
    built = hf.generation_config

    def without_min_p(*args, **kwargs):
        config = built(*args, **kwargs)
        config.min_p = None
        return config

    monkeypatch.setattr(hf, "generation_config", without_min_p)
    assert replies(0.0) == with_zero
    monkeypatch.undo()
    assert replies(0.5) != with_zero


def test_min_p_variant_samples_with_its_overrides(tiny_base, toy_splits, tmp_path):
    """`zero_shot@t2.0m0.5`: temperature and min_p its own, top_p and top_k generation's; the
    greedy replies unchanged; every setting of the sampling recorded."""
    def run(settings: System) -> list[dict]:
        return _generated(settings, tiny_base, toy_splits, tmp_path)

    hot = run(variant("zero_shot@t2.0", "zero_shot"))
    cut = run(variant("zero_shot@t2.0m0.5", "zero_shot"))
    recorded = cut[0]["settings"]
    assert (recorded["temperature"], recorded["min_p"]) == (2.0, 0.5)
    assert (recorded["top_p"], recorded["top_k"]) == (0.9, 0)
    assert hot[0]["settings"]["min_p"] == 0.0 and hot[0]["settings"]["top_k"] == 0
    assert {r["system"] for r in cut} == {"zero_shot@t2.0m0.5"}
    assert [r["greedy"] for r in cut] == [r["greedy"] for r in hot]
    assert [r["samples"] for r in cut] != [r["samples"] for r in hot]
