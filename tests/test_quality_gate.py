"""The sampling objectives' quality gate (calibrated on validation by default), the count of
steps whose policy term was zero, and a run whose gate no reply reaches: reported as such, and
its adapter, identical to the baseline's, makes the comparison void."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from polychromic.config import Experiment
from polychromic.io import read_json, read_jsonl
from polychromic.models.base import load_tokenizer
from polychromic.objectives import build_settings, implementation
from polychromic.reporting.aggregate import summarise_runs
from polychromic.reporting.validity import identical_adapters_reason, void_reason
from polychromic.reporting.verdict import zero_term_warnings
from polychromic.systems import System
from polychromic.training.gate import calibrate_gate, zero_term_summary
from polychromic.training.objective import ObjectiveContext
from test_objectives import OBJECTIVES, SAMPLED
from test_training import _train


def words(texts: list[str]) -> np.ndarray:
    """A hashed bag-of-words encoder with unit rows: replies that share words have high
    cosines."""
    rows = np.zeros((len(texts), 256))
    for row, text in zip(rows, texts, strict=True):
        for word in text.lower().split():
            row[zlib.crc32(word.encode()) % 256] += 1.0
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


TOPICS = {"coffee": "beans roast espresso morning", "running": "shoes pace miles race",
          "garden": "tomatoes soil seeds water"}


def test_the_gate_separates_own_references_from_another_tweets():
    """Where a tweet's references share its topic words and no word with another tweet's, the
    calibrated gate lies above every reference's score against another tweet (0) and at most
    its lowest score against its own tweet's other references (the lowest split of Youden's
    J, which is 1 here), on the reward's own scale; it records where it came from."""
    records = [{"tweet_id": topic, "reply": f"{topic} {' '.join(words_.split()[i:i + 2])}"}
               for topic, words_ in TOPICS.items() for i in range(3)]
    gate = calibrate_gate(records, "semantic", words)
    assert gate["source"] == "validation" and gate["reward"] == "semantic"
    assert gate["positives"] == 9 and gate["negatives"] == 9
    assert gate["youden_j"] == 1.0 and gate["tpr"] == 1.0 and gate["fpr"] == 0.0
    own = words([r["reply"] for r in records])
    lowest = min(max(own[i] @ own[j] for j in range(3 * (i // 3), 3 * (i // 3) + 3) if j != i)
                 for i in range(9))
    assert 0.0 < gate["threshold"] <= lowest
    lexical = calibrate_gate(records, "rougeL", words)
    assert lexical["reward"] == "rougeL" and lexical["youden_j"] == 1.0
    assert lexical["threshold"] != gate["threshold"]  # F1, not the cosine


def test_a_split_without_two_references_per_tweet_cannot_calibrate():
    records = [{"tweet_id": str(i), "reply": f"reply {i}"} for i in range(5)]
    with pytest.raises(ValueError, match="gives 0 such pairs .* quality_threshold to a number"):
        calibrate_gate(records, "semantic", words)
    with pytest.raises(ValueError, match="no validation record was given"):
        calibrate_gate([], "semantic", words)


def test_the_gate_is_calibrated_by_default_and_a_number_fixes_it():
    assert build_settings("polychromic", {}).quality_threshold is None
    assert build_settings("polychromic", {"quality_threshold": 1}).quality_threshold == 1.0
    assert build_settings("polychromic", {"quality_threshold": None}).quality_threshold is None
    with pytest.raises(ValueError, match="quality_threshold"):
        build_settings("polychromic", {"quality_threshold": "high"})
    with pytest.raises(ValueError, match="quality_threshold"):
        build_settings("polychromic", {"quality_threshold": 1.5})


def test_zero_term_steps_are_counted_from_the_training_log():
    """Sampling steps log advantage_magnitude (validation-only rows and steps without samples
    do not); those at exactly 0 had no policy gradient; an SFT log has no sampling step."""
    rows = [{"step": 0, "val_loss": 1.0}, {"step": 1, "advantage_magnitude": 0.0},
            {"step": 2}, {"step": 3, "advantage_magnitude": 0.4},
            {"step": 5, "advantage_magnitude": 0.0, "val_loss": 0.9}]
    assert zero_term_summary(rows) == {"sampling_steps": 3, "zero_term_steps": 2,
                                       "zero_term_share": pytest.approx(2 / 3)}
    assert zero_term_summary([{"step": 1, "ce": 2.0}]) == {}


POLY = {"objective": "polychromic", "lambda": 5.0, "num_samples": 3, "set_size": 2,
        "max_new_tokens": 6, "max_prompts": 2}


@pytest.mark.slow
def test_a_gate_no_reply_reaches_is_reported_and_its_adapter_is_void(tiny_base, toy_splits,
                                                                     tmp_path):
    """A polychromic run whose gate (1.0) no sampled reply reaches has a zero policy term in
    every step and trains the baseline's adapter bit for bit: run.json says so, the verdict's
    warnings say so, and the comparison with the baseline is void, naming the cause. A run with
    the calibrated gate records it in run.json."""
    baseline_run, baseline = _train(tiny_base, toy_splits, tmp_path, "baseline",
                                    {"objective": "sft"})
    gated_run, gated = _train(tiny_base, toy_splits, tmp_path, "polychromic",
                              {**POLY, "quality_threshold": 1.0})
    assert gated_run["quality_gate"] == {"threshold": 1.0, "source": "config",
                                         "reward": "semantic"}
    assert gated_run["sampling_steps"] == gated_run["zero_term_steps"] > 0
    assert gated_run["zero_term_share"] == 1.0
    assert all(torch.equal(baseline[key], gated[key]) for key in baseline)
    assert gated_run["adapter_sha256"] == baseline_run["adapter_sha256"]

    experiments = {"baseline": Experiment.from_config("baseline", {"objective": "sft"}),
                   "polychromic": Experiment.from_config(
                       "polychromic", {**POLY, "quality_threshold": 1.0})}
    systems = {f"{name}_lora": System.from_config(f"{name}_lora", {"prompt": "lora",
                                                                  "experiment": name})
               for name in experiments}
    runs = {name: {7: str(tmp_path / name / "run.json")} for name in experiments}
    aggregated = {"seeds": [7], "experiments": summarise_runs(runs, [7], experiments, systems)}
    entry = aggregated["experiments"]["polychromic"]
    assert entry["zero_term"]["share"] == 1.0 and entry["quality_gate"]["thresholds"] == [1.0]
    reason = void_reason(aggregated, "polychromic_lora", "baseline_lora")
    assert reason and "identical, weight for weight" in reason, reason
    assert "zero in every one of its" in reason and "(1.000, config)" in reason, reason
    warning = zero_term_warnings(aggregated, ["polychromic_lora", "baseline_lora"])
    assert len(warning) == 1 and "experiment polychromic was zero in" in warning[0]

    calibrated_run, _ = _train(tiny_base, toy_splits, tmp_path, "calibrated", POLY)
    gate = read_json(tmp_path / "calibrated" / "run.json")["quality_gate"]
    assert gate["source"] == "validation" and 0.0 < gate["threshold"] < 1.0
    assert gate["tpr"] > gate["fpr"] and gate["reward"] == "semantic"


def test_the_judges_agreement_with_the_reward_uses_the_gate_the_training_used(tmp_path):
    """A fixed gate is the config's; a calibrated one is read from the reference experiment's
    run.json of the seed; without that file, or without the record, the evaluation stops."""
    from polychromic.evaluation.evaluate import reward_with_gate
    from polychromic.io import write_json

    fixed = {"experiment": "polychromic", "reward": "semantic", "reward_model": "m",
             "quality_threshold": 0.7}
    assert reward_with_gate(fixed, None) == fixed
    assert reward_with_gate(None, None) is None
    calibrated = {**fixed, "quality_threshold": None}
    run = tmp_path / "run.json"
    write_json(run, {"quality_gate": {"threshold": 0.42, "source": "validation"}})
    assert reward_with_gate(calibrated, str(run)) == {
        **calibrated, "quality_threshold": 0.42, "gate_source": "validation"}
    with pytest.raises(ValueError, match="run.json was not given"):
        reward_with_gate(calibrated, None)
    write_json(run, {"seed": 1})
    with pytest.raises(ValueError, match="records no quality_gate"):
        reward_with_gate(calibrated, str(run))


@pytest.mark.parametrize("name", ["polychromic", "quality_rl", "diversity_bonus",
                                  "passk_training"])
def test_every_sampling_objective_gates_at_its_calibrated_threshold(tiny_base, toy_splits,
                                                                    name):
    """Built with `quality_threshold: null` and the validation records, each sampling objective
    calibrates its gate there (the reward encoder's cosines) and scores replies against that
    gate: a reply equal to a reference is good, one sharing no word is not."""
    train, val = read_jsonl(toy_splits["train"]), read_jsonl(toy_splits["val"])
    settings = build_settings(name, {**OBJECTIVES[name], **SAMPLED, "lambda": 1.0})
    assert settings.quality_threshold is None
    context = ObjectiveContext(load_tokenizer(tiny_base), train, "cpu", val)
    objective = implementation(name)(settings, context)
    gate = objective.gate
    assert gate["source"] == "validation" and 0.0 < gate["threshold"] < 1.0
    assert objective.quality_threshold == gate["threshold"]
    tweet = train[0]["tweet_id"]
    reference = next(r["reply"] for r in train if r["tweet_id"] == tweet)
    _, stats = objective.score([tweet], [reference, reference, "zzz qqq", "xxyy ppp"])
    assert stats["good_fraction"] == 0.5, stats


def test_equal_adapters_void_a_comparison_and_different_or_missing_ones_do_not():
    def entry(digests, zero=None):
        return {"adapter_sha256": digests, "zero_term": zero or {},
                "quality_gate": {"thresholds": [0.5, 0.5], "source": "validation"}}

    zero = {"sampling_steps": 8, "zero_term_steps": 8, "share": 1.0}
    same = identical_adapters_reason(("baseline", entry(["a", "b"])),
                                     ("polychromic", entry(["a", "b"], zero)))
    assert same and "identical, weight for weight" in same and "(0.500, validation)" in same
    assert identical_adapters_reason(("baseline", entry(["a", "b"])),
                                     ("polychromic", entry(["a", "c"], zero))) is None
    assert identical_adapters_reason(("baseline", entry([None, None])),
                                     ("polychromic", entry([None, None]))) is None
    assert identical_adapters_reason(("baseline", entry([])),
                                     ("polychromic", entry([]))) is None
    assert identical_adapters_reason(("baseline", entry(["a"])),
                                     ("baseline", entry(["a"]))) is None
    partly = {"sampling_steps": 8, "zero_term_steps": 3, "share": 3 / 8}
    reason = identical_adapters_reason(("baseline", entry(["a"])),
                                       ("polychromic", entry(["a"], partly)))
    assert reason and "zero in every one" not in reason  # a partial zero is not named the cause
