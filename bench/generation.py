"""Generation and evaluation speed, measured side by side in one process.

    make bench-eval        (or: .venv/bin/python bench/generation.py)

1. On the tiny demo model: 50 test prompts x 10 samples x 32 new tokens, batched across prompts
   (left padding, each prompt's KV cache shared by its samples; what the `generate` rule does)
   against the earlier design, one `generate` call per sample. Prints both times and the
   speed-up (target >= 8x). The shared prompt alone is measured on SmolLM2 (bench/smollm2.py).
2. The whole `evaluate` step (the judge's embeddings, diversity with Self-BLEU, quality with
   BERTScore, pass@k and its lexical reading, coverage, permutation tests) for 100 prompts x 50
   samples x 4 systems, with peak memory (target: under 120 s on 2 cores), after the judge's
   calibration on the validation split (timed apart), with the judge at the default precision
   (`evaluation.judge_precision: auto`). The samples are demo replies drawn at
   random per prompt, each with a word dropped half of the time, so that most are distinct
   (the judge embeds each distinct text once; metrics do not care who wrote them).
3. The judge's embeddings in float32 and in bfloat16 (where native) on up to 1,000 demo replies:
   texts per second of each and the largest change of an embedding (1 - cos).
"""

from __future__ import annotations

import random
import resource
import tempfile
import time
from pathlib import Path

import yaml
from common import PROMPTS, REPO, arguments, prepare

from polychromic.config import load_settings
from polychromic.contract import CALIBRATION_FILE, SEED_FILES
from polychromic.embeddings import resolve_precision
from polychromic.evaluation.calibration import calibrate_judge
from polychromic.evaluation.evaluate import evaluate_seed
from polychromic.evaluation.generate import group_test_prompts
from polychromic.io import read_jsonl, write_jsonl
from polychromic.models.prompts import prompt_tokens
from polychromic.sampling import open_engine
from polychromic.sampling.base import Sampling

N_SAMPLES = 10  # the generation benchmark
EVAL_SAMPLES = 50  # the evaluation benchmark: the default generation.num_samples
SAMPLING = Sampling(temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=32)


def bench_generation(inputs: dict, prompts_count: int, batch_prompts: int) -> tuple[float, float]:
    engine = open_engine("transformers", inputs["base"], None)
    records = read_jsonl(inputs["test"]) + read_jsonl(inputs["val"])
    tweets = [p["tweet"] for p in group_test_prompts(records)][:prompts_count]
    prompts = [prompt_tokens(engine.tokenizer, PROMPTS, "lora", tweet) for tweet in tweets]
    n = N_SAMPLES
    engine.seed(0)
    start = time.perf_counter()
    for i in range(0, len(prompts), batch_prompts):
        engine.sample(prompts[i : i + batch_prompts], n, SAMPLING)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for prompt in prompts:
        for _ in range(n):
            engine.sample([prompt], 1, SAMPLING)
    one_by_one = time.perf_counter() - start
    return batched, one_by_one


def varied(rng: random.Random, replies: list[str]) -> str:
    """A demo reply, with one word dropped half of the time."""
    words = rng.choice(replies).split()
    if len(words) > 3 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    return " ".join(words)


def bench_evaluate(folder: Path, inputs: dict, prompts_count: int) -> tuple[float, float, int]:
    """(seconds of the calibration, seconds of evaluate_seed, distinct samples)."""
    settings = load_settings(yaml.safe_load((REPO / "config.yaml").read_text()))
    rng = random.Random(0)
    replies = [r["reply"] for r in read_jsonl(inputs["train"])]
    prompts = group_test_prompts(read_jsonl(inputs["train"]))[:prompts_count]
    files, distinct = {}, set()
    for system in settings.systems:  # the default study's systems, fake but real-looking replies
        rows = [
            {**p, "greedy": rng.choice(replies),
             "samples": [varied(rng, replies) for _ in range(EVAL_SAMPLES)],
             "reference_nll": [20.0] * len(p["references"]),
             "reference_tokens": [10] * len(p["references"]), "system": system, "seed": 0,
             "settings": {"num_samples": EVAL_SAMPLES, "temperature": SAMPLING.temperature,
                          "top_p": SAMPLING.top_p, "top_k": SAMPLING.top_k,
                          "max_new_tokens": SAMPLING.max_new_tokens, "prompt": "lora",
                          "shots": 0, "model": "tiny", "adapter": None}}
            for p in prompts
        ]  # fmt: skip
        distinct.update(sample for row in rows for sample in row["samples"])
        files[system] = str(folder / f"{system}.jsonl")
        write_jsonl(files[system], rows)
    out = folder / "evaluation"
    start = time.perf_counter()
    calibrate_judge(inputs["val"], str(out / CALIBRATION_FILE), settings.evaluation)
    calibrated = time.perf_counter()
    outputs = {name: str(out / file) for name, file in SEED_FILES.items()}
    evaluate_seed(files, outputs, settings.evaluation, seed=0,
                  calibration=str(out / CALIBRATION_FILE))
    return calibrated - start, time.perf_counter() - calibrated, len(distinct)


def bench_judge_precision(inputs: dict, count: int = 1000) -> str:
    """float32 against bfloat16 embeddings of the judge on `count` demo replies: the speed of
    each, and the largest 1 - cos between the two embeddings of one reply."""
    import numpy as np

    from polychromic.embeddings import SentenceEncoder, native_bfloat16

    replies = sorted({r["reply"] for r in read_jsonl(inputs["train"])})
    texts = random.Random(0).sample(replies, min(count, len(replies)))
    seconds, vectors = {}, {}
    for precision in ("float32", "bfloat16"):
        if precision == "bfloat16" and not native_bfloat16():
            return (f"judge embeddings, float32: {len(texts) / seconds['float32']:.0f} texts/s; "
                    "bfloat16 is not native on this CPU (auto uses float32)")
        encoder = SentenceEncoder("all-mpnet-base-v2", precision=precision)
        encoder.encode(texts[:64])  # warm-up
        start = time.perf_counter()
        vectors[precision] = encoder.encode(texts)
        seconds[precision] = time.perf_counter() - start
    change = float(np.max(1 - np.sum(vectors["float32"] * vectors["bfloat16"], axis=1)))
    return (f"judge embeddings of {len(texts)} demo replies: float32 "
            f"{len(texts) / seconds['float32']:.0f} texts/s, bfloat16 "
            f"{len(texts) / seconds['bfloat16']:.0f} texts/s, speed-up "
            f"{seconds['float32'] / seconds['bfloat16']:.1f}x; largest 1 - cos between the two "
            f"embeddings of one reply {change:.1e}")


def main() -> None:
    args = arguments(__doc__, prompts=50, batch_prompts=16, eval_prompts=100)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = prepare(folder, pretrain_steps=300)
        batched, one_by_one = bench_generation(inputs, args.prompts, args.batch_prompts)
        calibrate_seconds, evaluate_seconds, distinct = bench_evaluate(folder, inputs,
                                                                       args.eval_prompts)
        precision_line = bench_judge_precision(inputs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tiny model, {args.prompts} prompts x 10 samples x 32 new tokens, "
          f"{args.threads} thread(s)")  # fmt: skip
    print(f"batched ({args.batch_prompts} prompts x 10 per call): {batched:6.2f} s")
    print(f"one sample per call (earlier design):       {one_by_one:6.2f} s")
    print(f"speed-up: {one_by_one / batched:.1f}x")
    print(f"calibrate the judge on the validation split: {calibrate_seconds:.1f} s")
    print(f"evaluate, {args.eval_prompts} prompts x {EVAL_SAMPLES} samples x 4 systems "
          f"({distinct} distinct samples), judge all-mpnet-base-v2 in "
          f"{resolve_precision('auto')}: {evaluate_seconds:.1f} s, peak RSS of this process "
          f"{peak:.0f} MB")  # fmt: skip
    print(precision_line)


if __name__ == "__main__":
    main()
