"""Baseline SFT: prompt masking, loss normalisation under accumulation, and real training runs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from polychromic.config import Experiment
from polychromic.io import read_json, read_jsonl
from polychromic.models.base import load_model, load_tokenizer
from polychromic.models.prompts import chat_prompt, system_message, user_message
from polychromic.settings import ConfigError, section
from polychromic.training.checkpoint import BatchStream
from polychromic.training.sft import (
    IGNORE,
    collate,
    count_targets,
    encode_example,
    summed_token_loss,
)
from polychromic.training.train import TrainJob, add_lora, setup, train_from_spec, train_step

from conftest import PROMPTS

LORA = {"r": 4, "alpha": 8, "dropout": 0.05, "target_modules": ["q_proj", "v_proj", "up_proj"]}
TRAINING = {
    "max_steps": 6,
    "batch_size": 4,
    "grad_accum": 1,
    "learning_rate": 0.05,
    "warmup_steps": 1,
    "eval_every": 3,
    "max_length": 128,
}


def test_mask_covers_exactly_the_reply_and_end_token(tiny_base, toy_splits):
    tokenizer = load_tokenizer(tiny_base)
    record = read_jsonl(toy_splits["train"])[0]
    example = encode_example(tokenizer, PROMPTS, record, 128)
    batch = collate([example], tokenizer.pad_token_id)
    labels = batch["labels"][0]
    learned = tokenizer.decode(labels[labels != IGNORE])
    assert learned == record["reply"] + "<|im_end|>"
    prompt_text = tokenizer.decode(batch["input_ids"][0][labels == IGNORE])
    assert prompt_text == chat_prompt(tokenizer, user_message(PROMPTS, "lora", record["tweet"]),
                                      system_message(PROMPTS))
    assert prompt_text.endswith("<|im_start|>assistant\n")


def test_truncation_keeps_the_chat_header_and_the_end_of_the_prompt(tiny_base, toy_splits):
    tokenizer = load_tokenizer(tiny_base)
    record = {**read_jsonl(toy_splits["train"])[0]}
    record["tweet"] = " ".join(["coffee beans morning"] * 40)  # far longer than max_length
    full = encode_example(tokenizer, PROMPTS, record, 1000)
    cut = encode_example(tokenizer, PROMPTS, record, 48)
    assert cut.truncated and len(cut.prompt_tokens) == 40
    text = tokenizer.decode(cut.prompt_tokens)
    assert text.startswith("<|im_start|>user\nReply to this tweet.")  # header and instruction
    assert text.endswith("<|im_start|>assistant\n")  # where the reply starts
    assert cut.prompt_tokens[-10:] == full.prompt_tokens[-10:]
    assert cut.reply_tokens and cut.reply_tokens == full.reply_tokens[:len(cut.reply_tokens)]


def test_accumulation_gives_the_batch_gradient(tiny_base, toy_splits):
    """4 micro-batches of 4 with the token-normalised loss == one batch of 16."""
    torch.manual_seed(0)
    tokenizer = load_tokenizer(tiny_base)
    model = add_lora(load_model(tiny_base), section("lora", {**LORA, "dropout": 0.0}))
    model.eval()  # no dropout: the two computations must see the same function
    examples = [encode_example(tokenizer, PROMPTS, r, 128) for r in read_jsonl(toy_splits["train"])]
    examples = examples[:16]
    pad = tokenizer.pad_token_id

    def grads():
        return [
            p.grad.clone() for p in model.parameters() if p.requires_grad and p.grad is not None
        ]

    full = collate(examples, pad)
    (summed_token_loss(model, full) / count_targets(full)).backward()
    whole = grads()
    model.zero_grad()
    micro = [collate(examples[i : i + 4], pad) for i in range(0, 16, 4)]
    targets = sum(count_targets(b) for b in micro)
    assert targets == count_targets(full)
    for batch in micro:
        (summed_token_loss(model, batch) / targets).backward()
    for a, b in zip(whole, grads(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # A per-micro-batch mean (the common bug) would give a different gradient here.
    lengths = {count_targets(b) for b in micro}
    assert len(lengths) > 1


def _first_step(tiny_base, toy_splits, tmp_path, batch_size: int, grad_accum: int
                ) -> tuple[list, dict, list]:
    """Step 1 of a polychromic run at batch_size x grad_accum: the prompts its policy term
    sampled ((tweet ids, prompt tokens) per call), the step's log row, and the prompts the
    objective would pick from the first micro-batch alone."""
    out = tmp_path / f"b{batch_size}x{grad_accum}"
    job = TrainJob(toy_splits["train"], toy_splits["val"], tiny_base, PROMPTS,
                   str(out / "adapter"), str(out / "log.csv"), str(out / "run.json"))
    experiment = Experiment.from_config("poly", {
        "objective": "polychromic", "lambda": 1.0, "num_samples": 3, "set_size": 2,
        "max_new_tokens": 4, "max_prompts": 6, "quality_threshold": 0.0})
    training = section("training", {**TRAINING, "batch_size": batch_size,
                                    "grad_accum": grad_accum})
    run = setup(job, experiment, training, section("lora", LORA), seed=7)
    first = run.objective.prompts_of(collate(
        BatchStream(run.train_examples, batch_size, 7).next(), run.pad_id))
    sampled, loss = [], run.objective.loss
    run.objective.loss = lambda model, ids, prompts: (sampled.append((ids, prompts)),
                                                      loss(model, ids, prompts))[1]
    row = train_step(run, 1)
    return sampled, row, list(first)


@pytest.mark.slow
def test_the_policy_term_sees_every_micro_batch_of_the_step(tiny_base, toy_splits, tmp_path):
    """batch 16 x accum 1 and batch 4 x accum 4 draw the same 16 examples: the sampled objective
    picks the same max_prompts prompts from them and gives the same policy term, where the
    first micro-batch alone (4 examples) holds fewer than max_prompts distinct prompts."""
    one, one_row, _ = _first_step(tiny_base, toy_splits, tmp_path, 16, 1)
    accumulated, accumulated_row, first = _first_step(tiny_base, toy_splits, tmp_path, 4, 4)
    assert len(one) == len(accumulated) == 1  # the extra loss is computed once per step
    assert accumulated == one and len(one[0][0]) == 6
    assert len(first[0]) < 6 and first[0] != one[0][0]  # what batches[0] alone gave
    for key in ("policy_term", "pg_term", "mean_reward"):
        assert accumulated_row[key] == pytest.approx(one_row[key], rel=1e-5, abs=1e-7), key


def _train(tiny_base, toy_splits, tmp_path, name, experiment, training=None):
    out = tmp_path / name
    result = train_from_spec({
        "job": {"train": toy_splits["train"], "val": toy_splits["val"], "base": tiny_base,
                "prompts_dir": PROMPTS, "adapter_dir": str(out / "adapter"),
                "log_csv": str(out / "training_log.csv"), "summary": str(out / "run.json")},
        "experiment": {"name": name, **experiment}, "training": training or TRAINING,
        "lora": LORA, "seed": 7})
    return result, load_file(out / "adapter" / "adapter_model.safetensors")


@pytest.mark.slow
def test_lambda_zero_is_bitwise_the_baseline_and_lambda_moves_it(tiny_base, toy_splits, tmp_path):
    poly = {
        "objective": "polychromic",
        "num_samples": 3,
        "set_size": 2,
        "max_new_tokens": 6,
        "max_prompts": 2,
        "quality_threshold": 0.0,  # every reply is good: the tiny model's rarely reach a gate
    }
    _, baseline = _train(tiny_base, toy_splits, tmp_path, "baseline", {"objective": "sft"})
    zero_run, zero = _train(tiny_base, toy_splits, tmp_path, "zero", {**poly, "lambda": 0.0})
    _, moved = _train(tiny_base, toy_splits, tmp_path, "moved", {**poly, "lambda": 5.0})
    assert baseline.keys() == zero.keys() == moved.keys()
    for key in baseline:
        assert torch.equal(baseline[key], zero[key]), key
    assert any(not torch.equal(baseline[k], moved[k]) for k in baseline)
    # Training changed the adapter (LoRA B starts at zero).
    changed = {k: float(v.abs().sum()) for k, v in baseline.items() if "lora_B" in k}
    assert changed and all(total > 0 for total in changed.values()), changed
    log = (tmp_path / "zero" / "training_log.csv").read_text().splitlines()
    header = log[0].split(",")
    assert {"policy_term", "mean_reward", "mean_set_diversity", "advantage_magnitude"} <= set(
        header
    )
    assert zero_run["best_step"] in (0, 3, 6)
    summary = read_json(tmp_path / "zero" / "run.json")
    assert summary["objective"] == "polychromic" and summary["seed"] == 7


def test_polychromic_trains_with_gradient_checkpointing_and_dropout(tiny_base, toy_splits,
                                                                    tmp_path):
    """The policy term's backward recomputes checkpointed layers in its own no-dropout state
    (ExtraLoss.backward_context): the loop runs, and gives the adapter of a run without
    checkpointing."""
    import json

    checkpointed = tmp_path / "base_model.json"
    checkpointed.write_text(json.dumps({**read_json(tiny_base), "gradient_checkpointing": True}))
    poly = {"objective": "polychromic", "lambda": 1.0, "num_samples": 3, "set_size": 2,
            "max_new_tokens": 6, "max_prompts": 2, "quality_threshold": 0.0}
    training = {**TRAINING, "max_steps": 3}
    _, plain = _train(tiny_base, toy_splits, tmp_path, "plain", poly, training)
    _, saved = _train(str(checkpointed), toy_splits, tmp_path, "checkpointed", poly, training)
    assert LORA["dropout"] > 0 and plain.keys() == saved.keys()
    for key in plain:
        torch.testing.assert_close(plain[key], saved[key], rtol=1e-4, atol=1e-6)


def test_checkpoint_selection_best_val_loss_or_last(tiny_base, toy_splits, tmp_path):
    """A learning rate that wrecks the model: the best validation loss is the base model's
    (step 0), so best_val_loss saves the initial, zero LoRA and says so; last saves the trained
    adapter of the last step."""
    wild = {**TRAINING, "learning_rate": 5.0, "warmup_steps": 0}
    best_run, best = _train(tiny_base, toy_splits, tmp_path, "best", {"objective": "sft"}, wild)
    assert best_run["best_step"] == 0  # the premise: training only made validation worse
    assert best_run["saved_step"] == 0 and best_run["adapter_is_initial"]
    assert best_run["checkpoint_selection"] == "best_val_loss"
    assert any("lora_B" in k for k in best)
    assert all(not v.any() for k, v in best.items() if "lora_B" in k)
    last_run, last = _train(tiny_base, toy_splits, tmp_path, "last", {"objective": "sft"},
                            {**wild, "checkpoint_selection": "last"})
    assert last_run["saved_step"] == last_run["steps_run"] == 6
    assert not last_run["adapter_is_initial"] and last_run["best_step"] == 0
    assert any("lora_B" in k for k in last)
    assert all(v.any() for k, v in last.items() if "lora_B" in k)
    card = (tmp_path / "last" / "adapter" / "README.md").read_text()
    assert "the adapter of step 6 of 6" in card and "`last`" in card
    with pytest.raises(ConfigError, match="checkpoint_selection"):
        _train(tiny_base, toy_splits, tmp_path, "bad", {"objective": "sft"},
               {**wild, "checkpoint_selection": "first"})


@pytest.mark.slow
def test_adapter_loads_with_peft(tiny_base, toy_splits, tmp_path):
    _train(tiny_base, toy_splits, tmp_path, "sft", {"objective": "sft"})
    model = load_model(tiny_base, tmp_path / "sft" / "adapter")
    assert type(model).__name__ == "PeftModelForCausalLM"


def test_gradient_checkpointing_gives_the_same_gradient(tiny_base, toy_splits, tmp_path):
    """The memory option for real models changes how, not what, is computed."""
    import json

    pointer = json.loads(open(tiny_base).read())
    checkpointed = tmp_path / "base_model.json"
    checkpointed.write_text(json.dumps({**pointer, "gradient_checkpointing": True}))
    tokenizer = load_tokenizer(tiny_base)
    examples = [encode_example(tokenizer, PROMPTS, r, 128) for r in read_jsonl(toy_splits["train"])]
    batch = collate(examples[:8], tokenizer.pad_token_id)
    grads = []
    for path in (tiny_base, checkpointed):
        torch.manual_seed(0)
        model = add_lora(load_model(path), section("lora", {**LORA, "dropout": 0.0}))
        model.train()
        summed_token_loss(model, batch).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert load_model(checkpointed).is_gradient_checkpointing
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
