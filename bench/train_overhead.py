"""Cost of the polychromic objective over baseline SFT, measured side by side in one process.

    make bench-train        (or: .venv/bin/python bench/train_overhead.py [--steps 40])

On the tiny demo model and the demo corpus, with the same data, batch (16) and number of steps,
it times baseline SFT and polychromic training (N = 4, n = 2, max_prompts = 4,
max_new_tokens = 32) sampling every step and every 5th step, and prints the ratios
polychromic / baseline with the time per phase: sampling (batched generate), reward (MiniLM
embeddings + set scores), policy-gradient forward, and the rest (CE pass, the shared backward,
optimizer). Validation is pushed past the last step so it does not count. Targets: <= 2.0x
sampling every step, <= 1.3x every 5th step.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch
from common import PROMPTS, prepare

from polychromic.io import read_json
from polychromic.training.train import train_from_spec

LORA = {"r": 8, "alpha": 16, "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]}  # fmt: skip
POLY = {"objective": "polychromic", "lambda": 1.0, "num_samples": 4, "set_size": 2,
        "max_prompts": 4, "max_new_tokens": 32}  # fmt: skip


def run(inputs: dict, folder: Path, name: str, experiment: dict, steps: int) -> dict:
    training = {"max_steps": steps, "batch_size": 16, "grad_accum": 1, "learning_rate": 0.002,
                "warmup_steps": 2, "eval_every": steps + 1, "max_length": 96,
                "save_every": 0}  # fmt: skip
    out = folder / name
    train_from_spec({
        "job": {"train": inputs["train"], "val": inputs["val"], "base": inputs["base"],
                "prompts_dir": PROMPTS, "adapter_dir": str(out / "adapter"),
                "log_csv": str(out / "log.csv"), "summary": str(out / "run.json")},
        "experiment": {"name": name, **experiment}, "training": training, "lora": LORA,
        "seed": 0})
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
        phases = result["objective_seconds"]
        rest = total - sum(phases.values())
        parts = {**phases, "rest (CE pass, backward, optimizer)": rest}
        print(f"polychromic, sampling {name}: {total:.2f} s, ratio {total / base:.2f}x")
        for phase, seconds in parts.items():
            print(f"    {phase:38s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()
