"""SmolLM2-135M-Instruct (`model.name: smollm2-135m-instruct`) measured side by side in one run.

    make bench-smollm2        (or: .venv/bin/python bench/smollm2.py [--repeats 3])

The real model a laptop runs (134.5 M parameters, converted by `make venv`), in the dtype of
`model.dtype: auto` (bfloat16 where the CPU computes it natively, else float32; printed):

1. Generation: `--prompts` demo test prompts x 50 samples x 32 new tokens per call (the default
   generation settings: temperature 1, top-p 0.95), with the prompt encoded once and its KV
   cache shared by its samples (the transformers engine's `sample`) and without (`generate`
   with num_return_sequences, which encodes the prompt for every sample: the earlier design),
   in turn, `--repeats` times: the median seconds of each and the speed-up.
2. Training: baseline SFT and the polychromic objective at the default config's proportions
   (config.yaml: batch 16, max_length 96, LoRA r 8 on every projection; the polychromic
   experiment samples 4 of the batch's prompts x 4 replies x 24 new tokens every step, reward
   MiniLM), `--steps` steps per run, the two in turn `--repeats` times: the median time per
   step of the loop (validation excluded), the ratio, and the phases of the median
   polychromic run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import yaml
from common import PROMPTS, REPO, arguments, prepare_splits
from train_overhead import median_run, step_seconds

from polychromic.evaluation.generate import group_test_prompts
from polychromic.io import read_json, read_jsonl, write_jsonl
from polychromic.models.base import build_base_model, resolve_dtype
from polychromic.models.prompts import prompt_tokens
from polychromic.sampling import open_engine
from polychromic.sampling.base import Sampling
from polychromic.settings import section
from polychromic.training.train import train_from_spec

NAME = "smollm2-135m-instruct"
N_SAMPLES = 50
VALIDATION_RECORDS = 16  # the final validation is timed apart; a small split keeps it short


def bench_generation(inputs: dict, base: str, prompts_count: int, repeats: int) -> dict:
    """{shared, recomputed: [seconds per repeat]} for `prompts_count` prompts x 50 samples."""
    generation = section("generation", {})
    sampling = Sampling(generation.temperature, generation.top_p, generation.top_k,
                        generation.max_new_tokens, generation.min_p)
    engine = open_engine("transformers", base, None)
    tweets = [p["tweet"] for p in group_test_prompts(read_jsonl(inputs["test"]))]
    times: dict[str, list[float]] = {"shared": [], "recomputed": []}
    for repeat in range(repeats):
        chunk = tweets[repeat * prompts_count:(repeat + 1) * prompts_count]
        prompts = [prompt_tokens(engine.tokenizer, PROMPTS, "zero_shot", t) for t in chunk]
        for kind, call in (("shared", engine.sample), ("recomputed", engine.sample_recomputed)):
            engine.seed(repeat)
            start = time.perf_counter()
            call(prompts, N_SAMPLES, sampling)
            times[kind].append(time.perf_counter() - start)
    return {**times, "max_new_tokens": sampling.max_new_tokens}


def bench_training(inputs: dict, base: str, folder: Path, steps: int, repeats: int) -> dict:
    """{baseline, polychromic: [run.json, ...]} at the default config's proportions."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    training = {**config["training"], "max_steps": steps, "eval_every": steps + 1,
                "warmup_steps": 0, "save_every": 0, "checkpoint_selection": "last"}
    experiments = {"baseline": config["experiments"]["baseline"],
                   "polychromic": config["experiments"]["polychromic"]}
    runs: dict = {kind: [] for kind in experiments}
    for repeat in range(repeats):
        for kind, experiment in experiments.items():
            out = folder / f"{kind}_{repeat}"
            train_from_spec({
                "job": {"train": inputs["train"], "val": inputs["val"], "base": base,
                        "prompts_dir": PROMPTS, "adapter_dir": str(out / "adapter"),
                        "log_csv": str(out / "log.csv"), "summary": str(out / "run.json")},
                "experiment": {"name": kind, **experiment}, "training": training,
                "lora": config["lora"], "seed": repeat})
            runs[kind].append(read_json(out / "run.json"))
    return {**runs, "training": training, "experiment": experiments["polychromic"]}


def report(generation: dict, training: dict, dtype: str, prompts_count: int, steps: int,
           threads: int) -> None:
    shared = statistics.median(generation["shared"])
    recomputed = statistics.median(generation["recomputed"])
    repeats = len(generation["shared"])
    print(f"smollm2-135m-instruct (SmolLM2-135M-Instruct, 134.5 M parameters) in {dtype}, "
          f"{threads} thread(s), median of {repeats} run(s)")
    print(f"  generation, {prompts_count} prompt(s) x {N_SAMPLES} samples x "
          f"{generation['max_new_tokens']} new tokens per call:")
    print(f"    prompt shared by its samples (KV cache repeated): {shared:7.2f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in generation['shared'])} s)")
    print(f"    prompt encoded for every sample (num_return_sequences): {recomputed:7.2f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in generation['recomputed'])} s)")
    print(f"    speed-up: {recomputed / shared:.2f}x")
    config, poly = training["training"], training["experiment"]
    base = statistics.median(step_seconds(r) for r in training["baseline"]) / steps
    total = statistics.median(step_seconds(r) for r in training["polychromic"]) / steps
    print(f"  training, batch {config['batch_size']} x max_length {config['max_length']}, "
          f"LoRA r {training['baseline'][0]['settings']['lora']['r']} on "
          f"{len(training['baseline'][0]['lora_target_modules'])} projections, {steps} steps "
          f"per run:")
    print(f"    SFT step: {base:.2f} s (runs: "
          f"{', '.join(f'{step_seconds(r) / steps:.2f}' for r in training['baseline'])} s)")
    print(f"    polychromic step ({poly['max_prompts']} prompts x {poly['num_samples']} samples "
          f"x {poly['max_new_tokens']} new tokens, every step): {total:.2f} s, ratio "
          f"{total / base:.2f}x (runs: "
          f"{', '.join(f'{step_seconds(r) / steps:.2f}' for r in training['polychromic'])} s)")
    middle = median_run(training["polychromic"])
    phases = middle["objective_seconds"]
    parts = {**phases,
             "rest (CE pass, backward, optimizer)": step_seconds(middle) - sum(phases.values())}
    for phase, seconds in parts.items():
        print(f"        {phase:38s} {seconds / steps:7.2f} s/step "
              f"{100 * seconds / step_seconds(middle):5.1f} %")


def main() -> None:
    args = arguments(__doc__, prompts=2, steps=3, repeats=3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = prepare_splits(folder)
        write_jsonl(inputs["val"], read_jsonl(inputs["val"])[:VALIDATION_RECORDS])
        base = folder / "base_model.json"
        build_base_model(inputs["train"], inputs["val"], str(base),
                         section("model", {"name": NAME, "dtype": "auto"}))
        dtype = resolve_dtype(read_json(base), "cpu")
        generation = bench_generation(inputs, str(base), args.prompts, args.repeats)
        training = bench_training(inputs, str(base), folder, args.steps, args.repeats)
    report(generation, training, dtype, args.prompts, args.steps, args.threads)


if __name__ == "__main__":
    main()
