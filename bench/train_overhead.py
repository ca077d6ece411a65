"""Cost of the polychromic objective over baseline SFT, measured side by side in one process.

    make bench-train        (or: .venv/bin/python bench/train_overhead.py [--steps 40])

Two policies, the same data and settings for the baseline and the objective:

- the tiny demo model (0.3 M parameters): its 22 M-parameter reward encoder (MiniLM) is 70
  times its size, the reverse of a real study, so the reward costs as much as the sampling;
- a random-weight Qwen3 of about 237 M parameters (over 10 times the reward encoder), the
  shape of a real study's ratio: policy compute dominates.

The objective's settings are the default config's (N = 4 samples, sets of 2, 24 new tokens,
a quarter of the batch's prompts sampled: 4 of 16 for the tiny policy, 2 of 8 for the large
one). For each policy it trains baseline SFT and polychromic sampling every step and every 5th
step, `--repeats` times in turn, and prints the median time per step of the loop (validation
excluded: `train_seconds - validation_seconds` of run.json), the ratios polychromic / baseline
of the medians, and the time per phase of the median run: sampling (batched), reward (encoder
embeddings + set scores), the policy-gradient forward, and the rest (CE pass, the shared
backward, optimizer). Targets: <= 2.0x sampling every step, <= 1.3x every 5th step (for the
large policy).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch
from common import PROMPTS, arguments, prepare

from polychromic.io import read_json, read_jsonl, write_json, write_jsonl
from polychromic.training.train import train_from_spec

LORA = {"r": 8, "alpha": 16, "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]}  # fmt: skip
POLY = {"objective": "polychromic", "lambda": 1.0, "num_samples": 4, "set_size": 2,
        "max_new_tokens": 24}  # fmt: skip
# label: (batch size, prompts sampled per step, share of --steps): the large policy runs fewer
SHAPES = {"tiny": (16, 4, 1.0), "large": (8, 2, 0.25)}
VALIDATION_RECORDS = 16  # the final validation is timed apart; a small split keeps it short
KINDS = ("baseline", "every step", "every 5th step")


def large_policy(base: str, folder: Path) -> tuple[str, int]:
    """A random-weight Qwen3 of ~237 M parameters with the demo tokenizer: its pointer file
    and parameter count."""
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(read_json(base)["path"])
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816,
                         num_hidden_layers=20, num_attention_heads=16, num_key_value_heads=8,
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


def measure(inputs: dict, base: str, folder: Path, label: str, steps: int,
            repeats: int) -> dict:
    """Every kind of run `repeats` times, in turn: {kind: [run.json, ...]} and the shape."""
    batch, prompts, share = SHAPES[label]
    steps = max(5, int(steps * share))
    poly = {**POLY, "max_prompts": prompts}
    experiments = {"baseline": {"objective": "sft"},
                   "every step": {**poly, "every_n_steps": 1},
                   "every 5th step": {**poly, "every_n_steps": 5}}
    runs: dict = {"steps": steps, "batch": batch, "prompts": prompts,
                  **{kind: [] for kind in KINDS}}
    for repeat in range(repeats):
        for kind, experiment in experiments.items():
            name = f"{label}_{KINDS.index(kind)}_{repeat}"
            runs[kind].append(run(inputs, base, folder, name, experiment, steps, batch))
    return runs


def step_seconds(result: dict) -> float:
    """Seconds of the step loop without the validation passes."""
    return result["train_seconds"] - result["validation_seconds"]


def median_run(results: list[dict]) -> dict:
    """The run with the median loop time (the lower middle one for an even count)."""
    ordered = sorted(results, key=step_seconds)
    return ordered[(len(ordered) - 1) // 2]


def report(label: str, parameters: int, runs: dict, threads: int) -> None:
    repeats = len(runs["baseline"])
    base = statistics.median(step_seconds(r) for r in runs["baseline"])
    print(f"{label}: policy of {parameters / 1e6:.1f} M parameters (reward encoder MiniLM, "
          f"22.7 M), batch {runs['batch']}, {runs['prompts']} prompts x {POLY['num_samples']} "
          f"samples x {POLY['max_new_tokens']} new tokens, {runs['steps']} steps, "
          f"median of {repeats} run(s), {threads} thread(s)")
    print(f"  baseline SFT: {base:.2f} s ({1000 * base / runs['steps']:.0f} ms/step)")
    for kind in KINDS[1:]:
        total = statistics.median(step_seconds(r) for r in runs[kind])
        middle = median_run(runs[kind])
        phases = middle["objective_seconds"]
        parts = {**phases,
                 "rest (CE pass, backward, optimizer)": step_seconds(middle) - sum(phases.values())}
        print(f"  polychromic, sampling {kind}: {total:.2f} s, ratio {total / base:.2f}x "
              f"(runs: {', '.join(f'{step_seconds(r):.1f}' for r in runs[kind])} s)")
        for phase, seconds in parts.items():
            share = 100 * seconds / step_seconds(middle)
            print(f"      {phase:38s} {seconds:7.2f} s  {share:5.1f} %")


def main() -> None:
    args = arguments(__doc__, steps=40, repeats=3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = prepare(folder)
        write_jsonl(inputs["val"], read_jsonl(inputs["val"])[:VALIDATION_RECORDS])
        tiny_size = parameter_count(read_json(inputs["base"])["path"])
        tiny = measure(inputs, inputs["base"], folder, "tiny", args.steps, args.repeats)
        large_base, large_size = large_policy(inputs["base"], folder)
        large = measure(inputs, large_base, folder, "large", args.steps, args.repeats)
    report("tiny", tiny_size, tiny, args.threads)
    report("large", large_size, large, args.threads)


if __name__ == "__main__":
    main()
