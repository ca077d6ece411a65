"""The baselines of the polychromic objective: the per-sample diversity bonus, pass@k training,
the quality-only ablation quality_rl and the pure set-RL variant (no CE anchor, optional KL to
the base model). Formulas on hand examples, their gradients on the tiny model, and each one
trained through the loop."""

from __future__ import annotations

import csv
import itertools
import sys
import types
from math import comb, sqrt

import numpy as np
import pytest
import torch
import yaml

from polychromic import objectives
from polychromic.io import read_json, read_jsonl
from polychromic.models.base import load_model, load_tokenizer
from polychromic.models.tokens import left_pad
from polychromic.objectives import SampledSettings, build_settings, implementation
from polychromic.settings import section
from polychromic.training.bonus import bonus_advantages, diversity_bonus
from polychromic.training.objective import ObjectiveContext
from polychromic.training.passk import passk_advantages
from polychromic.training.sampled import (
    k2_kl,
    k3_kl,
    reference_token_logprobs,
    reply_token_logprobs,
    standardise,
)
from polychromic.training.sft import encode_example
from polychromic.training.train import add_lora
from test_polychromic import LORA
from test_training import TRAINING, _train

from conftest import PROMPTS, REPO, SNAKEMAKE, job_counts, snakemake

SAMPLED = {"num_samples": 4, "max_new_tokens": 6, "max_prompts": 2}
OBJECTIVES = {
    "polychromic": {"set_size": 2},
    "quality_rl": {"set_size": 2},
    "diversity_bonus": {"diversity_weight": 1.0},
    "passk_training": {"k": 2},
}


# --- pass@k training -------------------------------------------------------------------------

def test_passk_hand_computed():
    """N = 4, two pass, k = 2: R = 1 - C(2,2)/C(4,2) = 5/6, sigma = sqrt(5)/6,
    A_pos = (1/6)/sigma = 1/sqrt(5), A_neg = (1 - 5/6 - C(1,1)/C(3,1))/sigma = -1/sqrt(5)."""
    adv, stats = passk_advantages(np.array([True, False, False, True]), 2, True, 0.01)
    np.testing.assert_allclose(adv, [1 / sqrt(5), -1 / sqrt(5), -1 / sqrt(5), 1 / sqrt(5)])
    assert stats["group_pass_at_k"] == pytest.approx(5 / 6)
    # one pass in five, k = 3: R = 1 - C(4,3)/C(5,3) = 0.6; a failing reply's groups fail when
    # the two others fail too: C(3,2)/C(4,2) = 0.5, so A_neg = (0.4 - 0.5)/sqrt(0.24)
    adv, _ = passk_advantages(np.array([False, True, False, False, False]), 3, True, 0.01)
    np.testing.assert_allclose(adv[1], 0.4 / sqrt(0.24))
    np.testing.assert_allclose(adv[0], -0.1 / sqrt(0.24))


@pytest.mark.parametrize("n", [3, 5, 8])
def test_passk_equals_the_mean_over_the_groups_that_contain_each_reply(n):
    """The closed form is the brute-force mean, over all C(N, k) groups containing a reply, of
    (group passes - mean) / std."""
    rng = np.random.default_rng(n)
    for _ in range(5):
        passed = rng.random(n) < rng.random()
        for k in range(1, n):
            groups = list(itertools.combinations(range(n), k))
            score = np.array([float(any(passed[list(g)])) for g in groups])
            std = max(score.std(), 0.01)
            brute = [np.mean([(s - score.mean()) / std for g, s in zip(groups, score,
                                                                          strict=True) if i in g])
                     for i in range(n)]
            adv, stats = passk_advantages(passed, k, True, 0.01)
            np.testing.assert_allclose(adv, brute, atol=1e-12)
            assert stats["group_pass_at_k"] == pytest.approx(1 - comb(int(n - passed.sum()), k)
                                                             / comb(n, k))


def test_passk_at_one_is_grpo_on_the_binary_reward_and_uniform_groups_get_nothing():
    passed = np.array([True, False, False, True, True])
    adv, _ = passk_advantages(passed, 1, True, 0.01)
    np.testing.assert_allclose(adv, standardise(passed.astype(float), True, 0.01))
    for flags in (np.ones(4, bool), np.zeros(4, bool)):
        assert not passk_advantages(flags, 2, True, 0.01)[0].any()


# --- the per-sample diversity bonus ----------------------------------------------------------

def test_bonus_hand_computed():
    """e1 = e3 orthogonal to e2; rewards 0.9, 0.8, 0.2 with tau 0.7: reply 3 is not good.
    b = (0.5, 0.5, 0), r' = (1.4, 1.3, 0.2), A = (r' - mean) / std."""
    embs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    rewards = np.array([0.9, 0.8, 0.2])
    np.testing.assert_allclose(diversity_bonus(embs, rewards >= 0.7), [0.5, 0.5, 0.0])
    adv, stats = bonus_advantages(rewards, embs, 1.0, True, 0.01, 0.7)
    shaped = np.array([1.4, 1.3, 0.2])
    np.testing.assert_allclose(adv, (shaped - shaped.mean()) / shaped.std())
    assert stats["mean_bonus"] == pytest.approx(1 / 3)
    # beta = 0: GRPO on the reward alone
    np.testing.assert_allclose(bonus_advantages(rewards, embs, 0.0, True, 0.01, 0.7)[0],
                               standardise(rewards, True, 0.01))


@pytest.mark.parametrize("seed", range(20))
def test_bonus_never_ranks_a_reply_that_is_not_good_above_a_good_one(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 8))
    embs = rng.normal(size=(n, 6))
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    rewards = rng.random(n)
    good = rewards >= 0.5
    adv, _ = bonus_advantages(rewards, embs, float(rng.uniform(0, 5)), True, 0.01, 0.5)
    if good.any() and (~good).any():
        assert adv[~good].max() < adv[good].min()


# --- the KL penalty --------------------------------------------------------------------------

def test_k3_hand_computed_and_zero_where_the_policy_is_the_reference():
    policy = torch.log(torch.tensor([0.5, 0.2], requires_grad=True))
    policy.retain_grad()
    reference = torch.log(torch.tensor([0.25, 0.2]))
    k3 = k3_kl(policy, reference)
    # q - p = log(0.5): exp = 0.5, so k3 = 0.5 - log(0.5) - 1; second token: p = q, k3 = 0
    torch.testing.assert_close(k3, torch.tensor([0.5 - float(np.log(0.5)) - 1.0, 0.0]))
    k3.sum().backward()
    torch.testing.assert_close(policy.grad, torch.tensor([1 - 0.5, 0.0]))  # 1 - exp(q - p)


def test_k2_hand_computed():
    policy = torch.tensor([-1.0, -2.0], requires_grad=True)
    k2 = k2_kl(policy, torch.tensor([-1.5, -2.0]))
    torch.testing.assert_close(k2, torch.tensor([0.125, 0.0]))  # (0.5)^2 / 2
    k2.sum().backward()
    torch.testing.assert_close(policy.grad, torch.tensor([0.5, 0.0]))  # p - q


def _reply_batch(tiny_base, toy_splits):
    tokenizer = load_tokenizer(tiny_base)
    records = read_jsonl(toy_splits["train"])[:3]
    prompts = [encode_example(tokenizer, PROMPTS, r, 64).prompt_tokens for r in records]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    samples = torch.tensor([tokenizer(r["reply"])["input_ids"][:5] for r in records])
    return ids, mask, samples, torch.ones_like(samples)


def test_kl_to_the_base_model_is_zero_at_the_start_and_its_gradient_pulls_back(tiny_base,
                                                                               toy_splits):
    torch.manual_seed(0)
    model = add_lora(load_model(tiny_base), section("lora", {**LORA.__dict__, "dropout": 0.5,
                                                             "target_modules": ["q_proj"]}))
    model.train()
    args = (*_reply_batch(tiny_base, toy_splits), 1.0)
    kl = k3_kl(reply_token_logprobs(model, *args), reference_token_logprobs(model, *args))
    assert float(kl.detach().abs().max()) == 0.0  # LoRA B starts at 0: the policy is the base
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    with torch.no_grad():
        for p in lora:
            p.normal_(0, 0.3)
    # LoRA dropout 0.5 is on in training mode, yet both passes are deterministic (no dropout)
    again = [k3_kl(reply_token_logprobs(model, *args), reference_token_logprobs(model, *args))
             for _ in range(2)]
    assert torch.equal(again[0], again[1]) and float(again[0].max()) > 0
    optimizer = torch.optim.SGD(lora, lr=0.5)
    values = []
    for _ in range(3):
        kl = k3_kl(reply_token_logprobs(model, *args), reference_token_logprobs(model, *args))
        values.append(float(kl.mean()))
        optimizer.zero_grad()
        kl.mean().backward()
        optimizer.step()
    assert values[0] > 1e-4 and values[2] < values[0], values
    assert model.training  # the reference pass left the adapter and the modes as they were


# --- every sampling objective: settings, gradient, and the loop ------------------------------

@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_settings_refuse_what_would_train_nothing(name):
    with pytest.raises(ValueError, match="nothing to train"):
        build_settings(name, {**OBJECTIVES[name], "lambda": 0.0, "ce_weight": 0.0})
    with pytest.raises(ValueError, match="kl_weight"):
        build_settings(name, {**OBJECTIVES[name], "kl_weight": -1.0})


def test_passk_needs_k_below_the_number_of_samples():
    with pytest.raises(ValueError, match="k .*num_samples"):
        build_settings("passk_training", {"k": 4, "num_samples": 4})


def _objective_gradient(tiny_base, toy_splits, name: str, lam: float) -> dict:
    """Gradient of lam * term of objective `name` w.r.t. the LoRA parameters, with its quality
    threshold at the median reward of the replies it samples, so that both passing and failing
    replies exist (the tiny model's replies would otherwise all fail the default gate)."""
    tokenizer = load_tokenizer(tiny_base)
    records = read_jsonl(toy_splits["train"])[:6]
    prompts = [encode_example(tokenizer, PROMPTS, r, 64).prompt_tokens for r in records][:3]
    ids = [r["tweet_id"] for r in records][:3]
    threshold, seen = 0.0, []
    for _ in range(2):
        torch.manual_seed(0)
        model = add_lora(load_model(tiny_base), LORA)
        model.train()
        settings = build_settings(name, {**OBJECTIVES[name], **SAMPLED, "lambda": lam,
                                         "quality_threshold": threshold})
        objective = implementation(name)(settings, ObjectiveContext(tokenizer, records, "cpu"))
        advantages = objective.advantages
        objective.advantages = lambda r, e, _a=advantages: (seen.extend(r), _a(r, e))[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            term, stats = objective.loss(model, ids, prompts)
        (lam * term).backward()
        threshold = float(np.median(seen))  # the same replies again: the seed is fixed
    assert 0 < stats["good_fraction"] < 1, stats
    return {n: p.grad.clone() for n, p in model.named_parameters() if "lora_B" in n}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_objective_moves_every_lora_b_for_a_positive_weight(name, tiny_base, toy_splits):
    grads = _objective_gradient(tiny_base, toy_splits, name, 1.0)
    assert grads and all(float(g.abs().sum()) > 0 for g in grads.values())


def _log(folder) -> list[dict]:
    with open(folder / "training_log.csv", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["ce"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["diversity_bonus", "passk_training", "quality_rl"])
def test_weight_zero_is_bitwise_the_baseline(name, tiny_base, toy_splits, tmp_path):
    _, baseline = _train(tiny_base, toy_splits, tmp_path, "baseline", {"objective": "sft"})
    experiment = {"objective": name, **OBJECTIVES[name], **SAMPLED, "lambda": 0.0,
                  "quality_threshold": 0.1, "kl_weight": 0.1}
    _, zero = _train(tiny_base, toy_splits, tmp_path, "zero", experiment)
    for key in baseline:
        assert torch.equal(baseline[key], zero[key]), key
    header = set(_log(tmp_path / "zero")[0])
    assert {"policy_term", "mean_reward", "good_fraction", "kl",
            {"diversity_bonus": "mean_bonus", "passk_training": "group_pass_at_k",
             "quality_rl": "mean_set_diversity"}[name]
            } <= header


@pytest.mark.slow
def test_without_the_ce_anchor_a_step_without_samples_changes_nothing(tiny_base, toy_splits,
                                                                      tmp_path):
    """ce_weight 0 and a single sampling step at step 1 (where the warmed-up learning rate is
    still 0): the CE of the other steps must not reach the adapter, which stays the initial one;
    with the CE at weight 1 the same run moves it."""
    experiment = {"objective": "polychromic", "set_size": 2, **SAMPLED, "lambda": 1.0,
                  "quality_threshold": 0.0, "every_n_steps": 1000}
    training = {**TRAINING, "checkpoint_selection": "last"}
    _, pure = _train(tiny_base, toy_splits, tmp_path, "pure", {**experiment, "ce_weight": 0.0},
                     training)
    _, anchored = _train(tiny_base, toy_splits, tmp_path, "anchored", experiment, training)
    lora_b = [key for key in pure if "lora_B" in key]
    assert lora_b and all(not pure[key].any() for key in lora_b)
    assert all(anchored[key].any() for key in lora_b)
    assert read_json(tmp_path / "pure" / "run.json")["adapter_is_initial"] is True  # flagged
    assert all(float(row["ce"]) > 0 for row in _log(tmp_path / "pure"))  # still logged


@pytest.mark.slow
def test_pure_set_rl_trains_without_the_ce_anchor_with_and_without_kl(tiny_base, toy_splits,
                                                                       tmp_path):
    """ce_weight 0: the loss is the lambda-weighted term alone (CE still logged), the adapter
    moves; with kl_weight > 0 the KL is 0 at the first step (the policy is the base model) and
    positive once the adapter has moved."""
    pure = {"objective": "polychromic", "set_size": 2, **SAMPLED, "lambda": 1.0,
            "quality_threshold": 0.0, "ce_weight": 0.0}
    _, sft = _train(tiny_base, toy_splits, tmp_path, "sft", {"objective": "sft"})
    for name, extra in (("plain", {}), ("kl", {"kl_weight": 0.5}),
                        ("k2", {"kl_weight": 0.5, "kl_estimator": "k2"})):
        _, adapter = _train(tiny_base, toy_splits, tmp_path, name, {**pure, **extra},
                            {**TRAINING, "checkpoint_selection": "last"})
        rows = _log(tmp_path / name)
        for row in rows:
            assert float(row["loss"]) == pytest.approx(float(row["policy_term"]), abs=1e-6)
            kl = float(row["kl"]) if extra else 0.0
            assert float(row["policy_term"]) == pytest.approx(float(row["pg_term"]) + 0.5 * kl,
                                                              abs=1e-6)
            assert float(row["ce"]) > 0
        assert any(float(adapter[k].abs().sum()) > 0 for k in adapter if "lora_B" in k)
        assert any(not torch.equal(sft[k], adapter[k]) for k in sft)
        if extra:
            kls = [float(row["kl"]) for row in rows]
            assert kls[0] == pytest.approx(0.0, abs=1e-7) and max(kls[1:]) > 1e-6, kls


@pytest.mark.slow
def test_quality_rl_trains_through_the_loop_and_is_not_polychromic(tiny_base, toy_splits,
                                                                    tmp_path):
    """A few steps of the ablation through the real loop: the adapter moves away from SFT's,
    the log has polychromic's columns (mean_set_diversity: the diversity it ignores), and with
    the same seed and sampling it trains another adapter than polychromic."""
    experiment = {**SAMPLED, "set_size": 2, "lambda": 5.0, "quality_threshold": 0.0}
    last = {**TRAINING, "checkpoint_selection": "last"}  # best_val_loss may keep step 0
    _, sft = _train(tiny_base, toy_splits, tmp_path, "sft", {"objective": "sft"}, last)
    _, plain = _train(tiny_base, toy_splits, tmp_path, "quality_rl",
                      {"objective": "quality_rl", **experiment}, last)
    _, poly = _train(tiny_base, toy_splits, tmp_path, "polychromic",
                     {"objective": "polychromic", **experiment}, last)
    assert any(not torch.equal(sft[key], plain[key]) for key in sft)
    assert any(not torch.equal(poly[key], plain[key]) for key in poly)
    rows = _log(tmp_path / "quality_rl")
    assert rows[0].keys() == _log(tmp_path / "polychromic")[0].keys()
    assert all(float(row["raw_advantage_magnitude"]) >= 0 for row in rows)
    assert read_json(tmp_path / "quality_rl" / "run.json")["objective"] == "quality_rl"


# --- the study config: every objective is a config entry the DAG expands --------------------

def _study_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "study_demo.yaml").read_text(encoding="utf-8"))
    config["data"]["raw"] = [str(REPO / "resources" / "demo" / "raw.jsonl")]
    return config


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_the_study_trains_every_objective_and_a_dry_run_lists_their_jobs(tmp_path):
    config = _study_config()
    experiments = config["experiments"]
    objectives = {values["objective"] for values in experiments.values()}
    assert {"sft", "polychromic", "diversity_bonus", "passk_training"} <= objectives
    assert any(values.get("ce_weight") == 0 for values in experiments.values())  # pure set-RL
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    output = snakemake(tmp_path, "-n")
    counts = job_counts(output)
    assert counts["train"] == len(experiments) * len(config["seeds"]), counts


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_each_objective_trains_through_the_train_rule(tmp_path):
    """A few steps of every study experiment on the small demo corpus, through the real
    Snakefile: each writes its adapter, run.json and its own columns of training_log.csv."""
    from test_end_to_end import small_config

    config = small_config(str(REPO / "resources" / "demo" / "raw.jsonl"))
    study = _study_config()["experiments"]
    shrink = {"num_samples": 3, "max_new_tokens": 6, "max_prompts": 2}
    config["experiments"] = {
        name: {**values, **(shrink if values["objective"] != "sft" else {}),
               **({"k": 2} if values["objective"] == "passk_training" else {})}
        for name, values in study.items() if name in
        ("baseline", "polychromic", "diversity_bonus", "passk_training", "polychromic_setrl")}
    config["training"].update(max_steps=3, eval_every=3, checkpoint_selection="last")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    targets = [f"results/models/{name}/seed_42/run.json" for name in config["experiments"]]
    snakemake(tmp_path, "--cores", "2", *targets)
    columns = {"polychromic": "mean_set_diversity", "diversity_bonus": "mean_bonus",
               "passk_training": "group_pass_at_k", "polychromic_setrl": "kl"}
    for name, values in config["experiments"].items():
        folder = tmp_path / "results" / "models" / name / "seed_42"
        summary = read_json(folder / "run.json")
        assert summary["objective"] == values["objective"] and summary["steps_run"] == 3
        assert (folder / "adapter" / "adapter_model.safetensors").exists()
        if name in columns:
            rows = _log(folder)
            assert len(rows) == 3 and all(row[columns[name]] != "" for row in rows), name


# --- the extending example: a new sampling objective is its advantage -------------------------

def _extending_example() -> type:
    """The RLOO objective exactly as docs/extending.md writes it (its code block, run)."""
    text = (REPO / "docs" / "extending.md").read_text(encoding="utf-8")
    block = text.split("# src/polychromic/training/rloo.py\n", 1)[1].split("```", 1)[0]
    module = types.ModuleType("rloo_example")
    exec(compile(block, "docs/extending.md", "exec"), module.__dict__)  # noqa: S102
    sys.modules["rloo_example"] = module
    return module.RLOOObjective


@pytest.fixture
def rloo():
    _extending_example()
    objectives.register("rloo", SampledSettings, "rloo_example:RLOOObjective",
                        "SFT plus lambda times a policy-gradient term with the leave-one-out "
                        "advantage")
    yield
    objectives.unregister("rloo")


@pytest.mark.slow
def test_the_extending_example_trains(rloo, tiny_base, toy_splits, tmp_path):
    adv, _ = sys.modules["rloo_example"].RLOOObjective.advantages(
        None, np.array([1.0, 0.0, 0.5]), None)
    np.testing.assert_allclose(adv, [1 - 0.25, 0 - 0.75, 0.5 - 0.5])  # hand-computed
    experiment = {"objective": "rloo", **SAMPLED, "lambda": 5.0}
    _, sft = _train(tiny_base, toy_splits, tmp_path, "sft", {"objective": "sft"})
    _, moved = _train(tiny_base, toy_splits, tmp_path, "rloo", experiment)
    assert any(not torch.equal(sft[key], moved[key]) for key in sft)
    assert "raw_advantage_magnitude" in _log(tmp_path / "rloo")[0]
