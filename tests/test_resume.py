"""Training resumes bitwise after a kill, and 2 data-parallel processes follow 1 process."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from polychromic.io import read_json
from polychromic.training.checkpoint import remove_checkpoint
from polychromic.training.train import launch_training, train_from_spec

from conftest import PROMPTS

pytestmark = pytest.mark.slow

LORA = {"r": 4, "alpha": 8, "dropout": 0.05, "target_modules": ["q_proj", "v_proj", "up_proj"]}
POLY = {"objective": "polychromic", "lambda": 2.0, "num_samples": 3, "set_size": 2,
        "max_new_tokens": 6, "max_prompts": 2}  # fmt: skip


def arguments(tiny_base, toy_splits, folder, experiment, training) -> dict:
    """A `job_spec` of the train rule (polychromic.training.train)."""
    return {
        "job": {"train": toy_splits["train"], "val": toy_splits["val"], "base": tiny_base,
                "prompts_dir": PROMPTS, "adapter_dir": str(folder / "adapter"),
                "log_csv": str(folder / "training_log.csv"), "summary": str(folder / "run.json"),
                "checkpoint_dir": str(folder / "checkpoint")},
        "experiment": {"name": "x", **experiment}, "training": training, "lora": LORA,
        "seed": 5,
    }  # fmt: skip


def test_killed_run_resumes_to_the_same_adapter(tiny_base, toy_splits, tmp_path):
    training = {"max_steps": 40, "batch_size": 4, "learning_rate": 0.02, "warmup_steps": 2,
                "eval_every": 7, "max_length": 128, "save_every": 4}  # fmt: skip
    whole = arguments(tiny_base, toy_splits, tmp_path / "whole", POLY, training)
    train_from_spec(whole)

    killed = arguments(tiny_base, toy_splits, tmp_path / "killed", POLY, training)
    spec = tmp_path / "killed.json"
    spec.write_text(json.dumps(killed))
    code = (
        "import json, sys, torch; torch.set_num_threads(1);"
        "from polychromic.training.train import train_from_spec;"
        "train_from_spec(json.load(open(sys.argv[1])))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(spec)], start_new_session=True)
    state = tmp_path / "killed" / "checkpoint" / "state.pt"
    deadline = time.time() + 300
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert state.exists(), "the run ended before writing a checkpoint"
    assert not (tmp_path / "killed" / "run.json").exists(), "the run finished before the kill"

    result = train_from_spec(killed)
    assert result["resumed_from_step"] is not None and result["resumed_from_step"] > 0
    a = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / "adapter" / "adapter_model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a = (tmp_path / "whole" / "training_log.csv").read_text()
    rows_b = (tmp_path / "killed" / "training_log.csv").read_text()
    drop_speed = [
        [row[k] for k in row if k != "tokens_per_s"] for row in csv.DictReader(rows_a.splitlines())
    ]
    assert drop_speed == [
        [row[k] for k in row if k != "tokens_per_s"] for row in csv.DictReader(rows_b.splitlines())
    ]
    assert not state.exists()  # a finished run removes its checkpoint


def test_checkpoint_of_other_settings_is_not_resumed(tiny_base, toy_splits, tmp_path):
    training = {"max_steps": 4, "batch_size": 4, "learning_rate": 0.02, "warmup_steps": 1,
                "eval_every": 2, "max_length": 128, "save_every": 2}  # fmt: skip
    first = arguments(tiny_base, toy_splits, tmp_path, {"objective": "sft"}, training)
    train_from_spec(first)
    changed = {**first, "training": {**training, "learning_rate": 0.03}}
    assert train_from_spec(changed)["resumed_from_step"] is None


def test_two_processes_follow_the_one_process_loss_curve(tiny_base, toy_splits, tmp_path):
    training = {"max_steps": 6, "batch_size": 8, "learning_rate": 0.02, "warmup_steps": 1,
                "eval_every": 3, "max_length": 128, "save_every": 0}  # fmt: skip
    lora_no_dropout = {**LORA, "dropout": 0.0}
    one = arguments(tiny_base, toy_splits, tmp_path / "one", {"objective": "sft"}, training)
    two = arguments(tiny_base, toy_splits, tmp_path / "two", {"objective": "sft"}, training)
    one["lora"] = two["lora"] = lora_no_dropout
    launch_training(one, gpus=1)
    result = launch_training(two, gpus=2)
    assert result["processes"] == 2
    curve = {
        name: [
            (float(r["ce"]) if r["ce"] else None)
            for r in csv.DictReader(open(folder / "training_log.csv"))
        ]
        for name, folder in [("one", tmp_path / "one"), ("two", tmp_path / "two")]
    }
    assert len(curve["one"]) == len(curve["two"]) == 7
    for a, b in zip(curve["one"][1:], curve["two"][1:], strict=True):
        assert b == pytest.approx(a, rel=1e-4)
    assert read_json(tmp_path / "two" / "run.json")["best_val_loss"] == pytest.approx(
        read_json(tmp_path / "one" / "run.json")["best_val_loss"], rel=1e-4
    )


def test_a_finished_run_leaves_no_empty_checkpoint_folders(tmp_path):
    """checkpoints/{experiment}/seed_{seed}: the seed's folder goes with its state, and the
    experiment's and checkpoints/ once no other run keeps a state there; nothing above."""
    root = tmp_path / "results" / "checkpoints"
    for experiment in ("baseline", "polychromic"):
        (root / experiment / "seed_1").mkdir(parents=True)
        (root / experiment / "seed_1" / "state.pt").write_bytes(b"state")
    (root / "polychromic" / "seed_2").mkdir()
    (root / "polychromic" / "seed_2" / "state.pt.tmp").write_bytes(b"killed write")
    remove_checkpoint(root / "baseline" / "seed_1")
    assert not (root / "baseline").exists() and root.is_dir()
    remove_checkpoint(root / "polychromic" / "seed_1")
    assert not (root / "polychromic" / "seed_1").exists()
    assert (root / "polychromic" / "seed_2" / "state.pt.tmp").is_file()  # not this run's
    remove_checkpoint(root / "polychromic" / "seed_2")  # its own killed write goes too
    assert not root.exists() and (tmp_path / "results").is_dir()
    remove_checkpoint(root / "polychromic" / "seed_2")  # again: nothing left to remove
