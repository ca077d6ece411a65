"""Cost of the polychromic objective over baseline SFT, measured side by side in one process.

    make bench-train        (or: .venv/bin/python bench/train_overhead.py [--steps 40])

Two policies, the same data and settings for the baseline and the objective:

- the tiny demo model (0.3 M parameters): its 22 M-parameter reward encoder (MiniLM) is 70
  times its size, the reverse of a real study, so the reward dominates;
- a random-weight Qwen3 of about 230 M parameters (10 times the reward encoder), the shape of
  a real study's ratio: policy compute dominates.

For each it times baseline SFT and polychromic training (N = 4, n = 2, 32 new tokens) sampling
every step and every 5th step, and prints the ratios polychromic / baseline with the time per
phase: sampling (batched), reward (encoder embeddings + set scores), policy-gradient forward,
and the rest (CE pass, the shared backward, optimizer). Validation is pushed past the last
step so it does not count. Targets: <= 2.0x sampling every step, <= 1.3x every 5th step (for
the policy 10x the encoder).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch
from common import PROMPTS, prepare

from polychromic.io import read_json, write_json
from polychromic.training.train import train_from_spec

LORA = {"r": 8, "alpha": 16, "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]}  # fmt: skip
POLY = {"objective": "polychromic", "lambda": 1.0, "num_samples": 4, "set_size": 2,
        "max_new_tokens": 32}  # fmt: skip
# label: (batch size, prompts sampled per step, share of --steps): the large policy runs fewer
SHAPES = {"tiny": (16, 4, 1.0), "large": (4, 2, 0.25)}


def large_policy(base: str, folder: Path) -> tuple[str, int]:
    """A random-weight Qwen3 of ~230 M parameters with the demo tokenizer: its pointer file
    and parameter count."""
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(read_json(base)["path"])
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816,
                         num_hidden_layers=18, num_attention_heads=16, num_key_value_heads=8,
                         head_dim=64, max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    model = Qwen3ForCausalLM(config)
    path = folder / "large"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    pointer = folder / "large.json"
    write_json(pointer, {"kind": "local", "path": str(path), "dtype": "float32"})
    return str(pointer), sum(p.numel() for p in model.parameters())


def parameter_count(path: str) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())


def run(inputs: dict, base: str, folder: Path, name: str, experiment: dict, steps: int,
        batch: int) -> dict:
    training = {"max_steps": steps, "batch_size": batch, "grad_accum": 1, "learning_rate": 0.002,
                "warmup_steps": 2, "eval_every": steps + 1, "max_length": 96,
                "save_every": 0}  # fmt: skip
    out = folder / name
    train_from_spec({
        "job": {"train": inputs["train"], "val": inputs["val"], "base": base,
                "prompts_dir": PROMPTS, "adapter_dir": str(out / "adapter"),
                "log_csv": str(out / "log.csv"), "summary": str(out / "run.json")},
        "experiment": {"name": name, **experiment}, "training": training, "lora": LORA,
        "seed": 0})
    return read_json(out / "run.json")


def measure(inputs: dict, base: str, folder: Path, label: str, steps: int) -> dict:
    batch, prompts, share = SHAPES[label]
    steps = max(5, int(steps * share))
    poly = {**POLY, "max_prompts": prompts}
    return {"steps": steps, "batch": batch, "prompts": prompts,
            "baseline": run(inputs, base, folder, f"{label}_sft", {"objective": "sft"}, steps,
                            batch),
            "every step": run(inputs, base, folder, f"{label}_1", {**poly, "every_n_steps": 1},
                              steps, batch),
            "every 5th step": run(inputs, base, folder, f"{label}_5",
                                  {**poly, "every_n_steps": 5}, steps, batch)}


def report(label: str, parameters: int, runs: dict, threads: int) -> None:
    base = runs["baseline"]["train_seconds"]
    print(f"{label}: policy of {parameters / 1e6:.1f} M parameters (reward encoder MiniLM, "
          f"22.7 M), batch {runs['batch']}, {runs['prompts']} prompts x 4 samples, "
          f"{runs['steps']} steps, {threads} thread(s)")
    print(f"  baseline SFT: {base:.2f} s ({1000 * base / runs['steps']:.0f} ms/step)")
    for name in ("every step", "every 5th step"):
        result = runs[name]
        total = result["train_seconds"]
        phases = result["objective_seconds"]
        parts = {**phases, "rest (CE pass, backward, optimizer)": total - sum(phases.values())}
        print(f"  polychromic, sampling {name}: {total:.2f} s, ratio {total / base:.2f}x")
        for phase, seconds in parts.items():
            print(f"      {phase:38s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = prepare(folder)
        tiny_size = parameter_count(read_json(inputs["base"])["path"])
        tiny = measure(inputs, inputs["base"], folder, "tiny", args.steps)
        large_base, large_size = large_policy(inputs["base"], folder)
        large = measure(inputs, large_base, folder, "large", args.steps)
    report("tiny", tiny_size, tiny, args.threads)
    report("large", large_size, large, args.threads)


if __name__ == "__main__":
    main()
