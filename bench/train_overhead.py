"""Cost of the polychromic objective over baseline SFT, measured side by side in one process.

    make bench-train        (or: .venv/bin/python bench/train_overhead.py [--steps 40])

On the tiny demo model and the demo corpus, with the same data, batch (16) and number of steps,
it times baseline SFT and polychromic training (N = 4, n = 2, max_prompts = 4,
max_new_tokens = 32) sampling every step and every 5th step, and prints the ratios
polychromic / baseline with the time per phase: sampling (batched generate), reward (MiniLM
embeddings + set scores), policy-gradient forward, and the rest (CE pass, the shared backward,
optimizer). Validation is pushed past the last step so it does not count. Targets from the
issue: <= 2.0x sampling every step, <= 1.3x every 5th step.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch

from polychromic.data.curate import curate
from polychromic.data.split import split_dataset
from polychromic.data.validate import validate_raw
from polychromic.io import read_json
from polychromic.models.base import build_base_model
from polychromic.training.train import train_experiment

REPO = Path(__file__).resolve().parents[1]
LORA = {"r": 8, "alpha": 16, "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]}  # fmt: skip
POLY = {"objective": "polychromic", "lambda": 1.0, "num_samples": 4, "set_size": 2,
        "max_prompts": 4, "max_new_tokens": 32}  # fmt: skip


def prepare(folder: Path) -> dict[str, str]:
    """Demo corpus -> validated -> curated -> splits -> tiny base model, in `folder`."""
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    data = folder / "data"
    validate_raw([str(REPO / "resources/demo/raw.jsonl")], str(data / "validated.jsonl"),
                 str(data / "rejected.jsonl"), str(data / "validation.json"), 0.1)  # fmt: skip
    settings = {**config["curation"], "decisions": str(folder / "none.jsonl")}
    curate(str(data / "validated.jsonl"), str(data / "curated.jsonl"), str(data / "cur.json"),
           settings, None)  # fmt: skip
    paths = {name: str(data / f"{name}.jsonl") for name in ("train", "val", "test")}
    split_dataset(str(data / "curated.jsonl"), paths["train"], paths["val"], paths["test"],
                  str(data / "split.json"), str(data / "manifest.json"),
                  {"train": 0.8, "val": 0.1, "test": 0.1}, 42)  # fmt: skip
    tiny = {**config["model"]["tiny"], "pretrain_steps": 300}
    base = folder / "base" / "base_model.json"
    build_base_model(paths["train"], paths["val"], str(base), {"path": None, "tiny": tiny})
    return {**paths, "base": str(base)}


def run(inputs: dict, folder: Path, name: str, experiment: dict, steps: int) -> dict:
    training = {"max_steps": steps, "batch_size": 16, "grad_accum": 1, "learning_rate": 0.002,
                "warmup_steps": 2, "eval_every": steps + 1, "max_length": 96,
                "save_every": 0}  # fmt: skip
    out = folder / name
    train_experiment(
        inputs["train"], inputs["val"], inputs["base"], str(out / "adapter"),
        str(out / "log.csv"), str(out / "run.json"), name, experiment, training, LORA,
        str(REPO / "resources/prompts"), seed=0,
    )  # fmt: skip
    return read_json(out / "run.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = prepare(folder)
        runs = {
            "baseline": run(inputs, folder, "baseline", {"objective": "sft"}, args.steps),
            "every step": run(inputs, folder, "every1", {**POLY, "every_n_steps": 1}, args.steps),
            "every 5th step": run(
                inputs, folder, "every5", {**POLY, "every_n_steps": 5}, args.steps
            ),
        }
    base = runs["baseline"]["train_seconds"]
    print(f"tiny model, demo corpus, batch 16, {args.steps} steps, {args.threads} thread(s)")
    print(f"baseline SFT: {base:.2f} s ({1000 * base / args.steps:.0f} ms/step)")
    for name in ("every step", "every 5th step"):
        result = runs[name]
        total = result["train_seconds"]
        phases = result["polychromic_seconds"]
        rest = total - sum(phases.values())
        parts = {**phases, "rest (CE pass, backward, optimizer)": rest}
        print(f"polychromic, sampling {name}: {total:.2f} s, ratio {total / base:.2f}x")
        for phase, seconds in parts.items():
            print(f"    {phase:38s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()
