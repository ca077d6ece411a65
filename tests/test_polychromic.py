"""The polychromic objective: formula on a hand example, and that its gradient is real."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from polychromic.embeddings import get_encoder
from polychromic.io import read_jsonl
from polychromic.models.base import load_model, load_tokenizer
from polychromic.objectives import PolychromicSettings
from polychromic.settings import section
from polychromic.training.objective import ObjectiveContext
from polychromic.training.polychromic import (
    PolychromicObjective,
    QualityRLObjective,
    marginal_advantages,
)
from polychromic.training.sampled import policy_term, rewards, sample_token_mask, standardise
from polychromic.training.sft import collate, encode_example, summed_token_loss
from polychromic.training.train import add_lora

from conftest import PROMPTS

LORA = section("lora", {"r": 4, "alpha": 8, "dropout": 0.0,
                        "target_modules": ["q_proj", "v_proj", "up_proj"]})


def test_hand_computed_three_samples():
    # r = (1, .5, 0); e1 = e3 orthogonal to e2. Subsets of size 2:
    # {1,2}: mean r .75 * d 1 = .75; {1,3}: .5 * 0 = 0; {2,3}: .25 * 1 = .25; mean f = 1/3.
    rewards = np.array([1.0, 0.5, 0.0])
    embs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    adv, stats = marginal_advantages(rewards, embs, set_size=2, normalize=False, floor=0.01,
                                     threshold=0.0)
    expected = np.array([(0.75 + 0) / 2, (0.75 + 0.25) / 2, (0 + 0.25) / 2]) - 1 / 3
    np.testing.assert_allclose(adv, expected, atol=1e-12)
    assert stats["mean_set_score"] == pytest.approx(1 / 3)
    assert stats["mean_set_diversity"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize(("n_samples", "set_size"), [(4, 2), (4, 3), (6, 2), (3, 2)])
def test_advantages_sum_to_zero(n_samples, set_size, normalize):
    rng = np.random.default_rng(n_samples * 10 + set_size)
    embs = rng.normal(size=(n_samples, 8))
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    rewards = rng.uniform(size=n_samples)
    for threshold in (0.0, 0.5):
        adv, _ = marginal_advantages(rewards, embs, set_size, normalize, 1e-6, threshold)
        assert abs(adv.sum()) < 1e-9
        if normalize and np.abs(adv).max() > 0:
            assert adv.std() == pytest.approx(1.0, rel=1e-4)


def test_set_score_rewards_diverse_good_sets():
    # Two near-identical good replies and one different good reply: the different one gains.
    embs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    adv, _ = marginal_advantages(np.array([0.9, 0.9, 0.9]), embs, 2, normalize=False,
                                 floor=0.01, threshold=0.0)
    assert adv[2] > 0 > adv[0]
    assert adv[0] == pytest.approx(adv[1])


def test_hand_computed_gate_counts_only_good_pairs():
    # tau = 0.6: samples 1 and 2 are good, 3 is not. Sets of size 2: {1,2}: mean r .75 * d 1;
    # {1,3}: 0 (3 is not good, so the pair has no diversity); {2,3}: 0. mean f = .25.
    rewards = np.array([0.9, 0.6, 0.1])
    embs = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    adv, stats = marginal_advantages(rewards, embs, 2, normalize=False, floor=0.01,
                                     threshold=0.6)
    np.testing.assert_allclose(adv, np.array([0.75 / 2, 0.75 / 2, 0.0]) - 0.25, atol=1e-12)
    assert stats["good_fraction"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", range(40))
def test_a_reply_that_is_not_good_never_outranks_a_good_one(seed):
    rng = np.random.default_rng(seed)
    n, size = int(rng.integers(3, 7)), 2 + int(rng.integers(0, 2))
    size = min(size, n - 1)
    embs = rng.normal(size=(n, 6))
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    rewards = rng.uniform(size=n)
    adv, _ = marginal_advantages(rewards, embs, size, True, 0.01, threshold=0.5)
    good, bad = adv[rewards >= 0.5], adv[rewards < 0.5]
    if good.size and bad.size:
        assert bad.max() <= good.min() + 1e-12


def test_junk_earns_no_advantage_with_the_real_encoder():
    """Two good paraphrases, an empty reply and gibberish, scored with the real MiniLM: before
    the quality gate the gibberish got the largest advantage among the replies."""
    encoder = get_encoder()
    references = ["I love my morning coffee, it wakes me up", "Coffee in the morning is the best"]
    texts = ["Morning coffee is the best way to wake up",
             "Morning coffee is the best way to wake up!", "", "lorem ipsum dolor"]
    embs, refs = encoder.encode(texts), encoder.encode(references)
    r = rewards(texts, embs, refs, references, "semantic")
    assert r[0] >= 0.7 and r[1] >= 0.7 and r[2] == 0.0 and r[3] < 0.7
    ungated, _ = marginal_advantages(r, embs, 2, True, 0.01, threshold=0.0)
    assert ungated[3] > max(ungated[0], ungated[1])  # the defect: gibberish on top
    adv, _ = marginal_advantages(r, embs, 2, True, 0.01, threshold=0.7)
    assert max(adv[2], adv[3]) <= min(adv[0], adv[1])
    assert abs(adv.sum()) < 1e-9


# --- quality_rl: the same advantage with the diversity factor off -------------------------------

def _unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.normal(size=(n, 6))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(10))
def test_quality_rl_advantage_is_the_centred_reward_times_its_closed_form_constant(seed):
    """f(S) = mean reward: A_i = (N-n)/(n(N-1)) (r_i - mean r) before normalisation, and
    (r_i - mean r) / std r, GRPO's group advantage, after it (std well above the floor)."""
    rng = np.random.default_rng(seed)
    n_samples = int(rng.integers(3, 8))
    rewards, embs = rng.uniform(size=n_samples), _unit_rows(rng, n_samples)
    for set_size in range(2, n_samples):
        raw, stats = marginal_advantages(rewards, embs, set_size, False, 0.01, 0.5,
                                         diversity=False)
        c = (n_samples - set_size) / (set_size * (n_samples - 1))
        np.testing.assert_allclose(raw, c * (rewards - rewards.mean()), atol=1e-12)
        assert stats["mean_set_score"] == pytest.approx(rewards.mean())
        assert stats["raw_advantage_magnitude"] == pytest.approx(np.abs(raw).mean())
        normalised, _ = marginal_advantages(rewards, embs, set_size, True, 1e-9, 0.5,
                                            diversity=False)
        np.testing.assert_allclose(normalised, standardise(rewards, True, 1e-9), atol=1e-9)


def test_quality_rl_applies_the_floor_on_the_scale_of_the_advantage():
    """A / max(std A, floor) = (r - mean r) / max(std r, floor / c): near-equal rewards keep
    near-zero advantages, as in polychromic."""
    rewards = np.array([0.5, 0.5 + 1e-4, 0.5, 0.5 - 1e-4])
    embs = np.eye(4)
    c = (4 - 2) / (2 * 3)
    adv, _ = marginal_advantages(rewards, embs, 2, True, 0.01, 0.0, diversity=False)
    np.testing.assert_allclose(adv, standardise(rewards, True, 0.01 / c), atol=1e-12)
    assert np.abs(adv).max() < 0.05


def test_quality_rl_ignores_the_embeddings_where_polychromic_does_not():
    rng = np.random.default_rng(7)
    rewards = rng.uniform(0.5, 1.0, size=5)  # every reply good at tau 0.5
    first, second = _unit_rows(rng, 5), _unit_rows(rng, 5)
    args = (3, True, 0.01, 0.5)
    plain = [marginal_advantages(rewards, e, *args, diversity=False) for e in (first, second)]
    np.testing.assert_array_equal(plain[0][0], plain[1][0])  # same advantages
    assert plain[0][1]["mean_set_diversity"] != plain[1][1]["mean_set_diversity"]  # still logged
    poly = [marginal_advantages(rewards, e, *args)[0] for e in (first, second)]
    assert not np.allclose(poly[0], poly[1])
    assert not np.allclose(poly[0], plain[0][0])  # the diversity factor changes the credit


def test_quality_rl_equals_polychromic_when_every_good_pair_is_fully_diverse():
    """Orthogonal embeddings and every reply good: d(S) = 1 for every subset, so the two set
    scores, hence the advantages, are the same."""
    rewards = np.array([0.9, 0.2, 0.6, 0.75])
    for normalize in (False, True):
        poly, _ = marginal_advantages(rewards, np.eye(4), 2, normalize, 0.01, 0.0)
        plain, _ = marginal_advantages(rewards, np.eye(4), 2, normalize, 0.01, 0.0,
                                       diversity=False)
        np.testing.assert_allclose(plain, poly, atol=1e-12)


def test_quality_rl_is_registered_with_polychromic_settings():
    from polychromic.objectives import build_settings, implementation, settings_as_config

    settings = build_settings("quality_rl", {"set_size": 3, "num_samples": 5})
    assert settings_as_config(settings) == {**settings_as_config(PolychromicSettings()),
                                            "set_size": 3, "num_samples": 5}
    assert implementation("quality_rl") is QualityRLObjective
    assert issubclass(QualityRLObjective, PolychromicObjective)
    with pytest.raises(ValueError, match="set_size"):
        build_settings("quality_rl", {"set_size": 4, "num_samples": 4})


def test_near_identical_samples_keep_near_zero_advantages():
    base = np.array([1.0, 0.0, 0.0])
    embs = np.stack([base + 1e-7 * np.array([0.0, i, 0.0]) for i in range(4)])
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    rewards = np.array([0.8, 0.8 + 1e-7, 0.8, 0.8 - 1e-7])
    adv, stats = marginal_advantages(rewards, embs, 2, True, 0.01, threshold=0.7)
    assert stats["raw_advantage_magnitude"] < 1e-6
    assert np.abs(adv).max() < 1e-4  # the std floor: not blown up to +-1


def test_rewards_use_closest_reference_are_clipped_and_zero_for_empty():
    samples = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    refs = np.array([[0.0, 1.0], [1.0, 0.0]])
    r = rewards(["a", "b", "  "], samples, refs, ["x", "y"], "semantic")
    np.testing.assert_allclose(r, [1.0, 0.0, 0.0])
    r = rewards(["the cat sat", "dogs bark", ""], samples, None, ["the cat sat"], "rougeL")
    assert r[0] == pytest.approx(1.0) and r[1] == 0.0 and r[2] == 0.0


def test_sample_mask_stops_after_first_eos():
    ids = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 7, 2, 0], [5, 6, 7, 8, 9]])
    mask = sample_token_mask(ids, eos_id=2)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_policy_term_formula():
    adv = torch.tensor([[1.0, -1.0], [0.5, -0.5]])
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -1.0]], requires_grad=True)
    term = policy_term(adv, logp)
    # prompt 1: -(1*-1 + -1*-2)/2 = -0.5 ; prompt 2: -(0.5*-3 + -0.5*-1)/2 = 0.5 ; mean 0
    assert float(term.detach()) == pytest.approx(0.0)
    term.backward()
    np.testing.assert_allclose(logp.grad.numpy(), -adv.numpy() / 4)


def _gradients(tiny_base, toy_splits, lam: float | None) -> dict[str, torch.Tensor]:
    """Gradient of CE + lam * L_pg (CE alone when lam is None) w.r.t. the LoRA parameters."""
    torch.manual_seed(0)
    tokenizer = load_tokenizer(tiny_base)
    model = add_lora(load_model(tiny_base), LORA)
    model.train()
    records = read_jsonl(toy_splits["train"])[:6]
    batch = collate([encode_example(tokenizer, PROMPTS, r, 64) for r in records], 0)
    # every sample counts as good here: the test is about the gradient path, and the tiny
    # model's samples rarely reach a calibrated gate
    config = PolychromicSettings(lambda_=lam or 0.0, num_samples=4, set_size=2, max_new_tokens=8,
                                 quality_threshold=0.0)
    objective = PolychromicObjective(config, ObjectiveContext(tokenizer, records, "cpu"))
    prompts = [
        e.prompt_tokens for e in [encode_example(tokenizer, PROMPTS, r, 64) for r in records]
    ]
    ids = [r["tweet_id"] for r in records]
    loss = summed_token_loss(model, batch) / 10
    if lam is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            term, stats = objective.loss(model, ids[:3], prompts[:3])
        loss = loss + lam * term
        assert np.isfinite(stats["mean_reward"])
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.slow
def test_gradient_equals_baseline_at_lambda_zero_and_differs_above(tiny_base, toy_splits):
    base = _gradients(tiny_base, toy_splits, None)
    zero = _gradients(tiny_base, toy_splits, 0.0)
    moved = _gradients(tiny_base, toy_splits, 1.0)
    for name in base:
        assert torch.equal(base[name], zero[name]), name
    # LoRA B starts at zero, so only B has a gradient at the first step; the policy term must
    # reach every B (a constant added to the loss would change none of them).
    lora_b = [n for n in base if "lora_B" in n]
    assert lora_b
    assert all(not torch.allclose(base[n], moved[n], atol=1e-7) for n in lora_b)


@pytest.mark.slow
def test_gradient_flows_only_through_logprobs(tiny_base, toy_splits):
    """lambda * L_pg alone has a non-zero gradient: the diversity score is not a constant."""
    grads_ce = _gradients(tiny_base, toy_splits, None)
    grads_mix = _gradients(tiny_base, toy_splits, 5.0)
    diff = sum(float((grads_mix[n] - grads_ce[n]).abs().sum()) for n in grads_ce)
    assert diff > 1e-4


def test_subset_enumeration_matches_itertools():
    n, k = 6, 3
    rewards = np.linspace(0, 1, n)
    embs = np.eye(n)
    adv, stats = marginal_advantages(rewards, embs, k, normalize=False, floor=0.01, threshold=0.0)
    subsets = list(itertools.combinations(range(n), k))
    scores = [rewards[list(s)].mean() * 1.0 for s in subsets]  # orthogonal: d(S) = 1
    assert stats["mean_set_score"] == pytest.approx(np.mean(scores))


def test_policy_logprobs_keep_gradient_checkpointing(tiny_base, toy_splits, tmp_path):
    """Without dropout is not eval mode for the layers that checkpoint activations: the policy
    forward over P x N replies keeps checkpointing (memory), with the same gradient."""
    import json

    from polychromic.models.tokens import left_pad
    from polychromic.training.sampled import reply_logprobs, without_dropout

    pointer = json.loads(open(tiny_base).read())
    checkpointed = tmp_path / "base_model.json"
    checkpointed.write_text(json.dumps({**pointer, "gradient_checkpointing": True}))
    tokenizer = load_tokenizer(tiny_base)
    record = read_jsonl(toy_splits["train"])[0]
    ids, mask = left_pad([encode_example(tokenizer, PROMPTS, record, 64).prompt_tokens],
                        tokenizer.pad_token_id)
    sample = torch.tensor([tokenizer(record["reply"])["input_ids"][:5]])
    grads, calls = [], []
    for path in (tiny_base, checkpointed):
        torch.manual_seed(0)
        model = add_lora(load_model(path), section("lora", {**LORA.__dict__, "dropout": 0.5,
                                                            "target_modules": ["q_proj"]}))
        model.train()
        count = [0]
        for layer in model.modules():
            if getattr(layer, "gradient_checkpointing", False) is True:
                inner = layer._gradient_checkpointing_func

                def counted(*args, _inner=inner, _count=count, **kwargs):
                    _count[0] += 1
                    return _inner(*args, **kwargs)

                layer._gradient_checkpointing_func = counted
        logp = reply_logprobs(model, ids, mask, sample, torch.ones_like(sample), 1.0, 24)
        with without_dropout(model):  # the loop's ExtraLoss.backward_context
            logp.sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
        calls.append(count[0])
        assert model.training and all(m.training for m in model.modules())  # modes restored
    assert calls[0] == 0 and calls[1] > 0  # the checkpointed model really checkpointed
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_policy_logprobs_ignore_dropout_follow_temperature_and_length(tiny_base, toy_splits):
    """The policy term's log-probabilities: the same with LoRA dropout on (eval mode, the mode
    of sampling), those of softmax(logits / T), summed over the reply and divided by L."""
    from polychromic.models.tokens import left_pad, token_logprobs
    from polychromic.training.sampled import reply_logprobs

    torch.manual_seed(0)
    tokenizer = load_tokenizer(tiny_base)
    model = add_lora(load_model(tiny_base), section("lora", {**LORA.__dict__, "dropout": 0.5,
                                                              "target_modules": ["q_proj"]}))
    model.train()
    record = read_jsonl(toy_splits["train"])[0]
    prompt = encode_example(tokenizer, PROMPTS, record, 64).prompt_tokens
    ids, mask = left_pad([prompt], tokenizer.pad_token_id)
    sample = torch.tensor([tokenizer(record["reply"])["input_ids"][:5]])
    sample_mask = torch.ones_like(sample)
    first = reply_logprobs(model, ids, mask, sample, sample_mask, 1.0, 24)
    again = reply_logprobs(model, ids, mask, sample, sample_mask, 1.0, 24)
    assert torch.equal(first, again) and model.training  # no dropout noise, mode restored
    mean = reply_logprobs(model, ids, mask, sample, sample_mask, 1.0, None)
    assert float(mean.detach()) == pytest.approx(float(first.detach()) * 24 / 5, rel=1e-5)
    hot = reply_logprobs(model, ids, mask, sample, sample_mask, 2.0, 24)
    model.eval()
    full = torch.cat([ids, sample], dim=1)
    with torch.no_grad():
        logits = model(input_ids=full).logits[:, :-1].float() / 2.0
    expected = torch.log_softmax(logits, -1).gather(-1, full[:, 1:, None])[0, -5:, 0].sum() / 24
    assert float(hot) == pytest.approx(float(expected), rel=1e-4)
    assert token_logprobs(model, full, torch.ones_like(full), 2.0).shape == (1, full.size(1) - 1)
