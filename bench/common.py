"""Set-up shared by the benchmarks: the demo corpus through the data stage, a tiny base model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import yaml

from polychromic.data.curate import curate
from polychromic.data.split import split_dataset
from polychromic.data.validate import validate_raw
from polychromic.models.base import build_base_model
from polychromic.settings import section

REPO = Path(__file__).resolve().parents[1]
PROMPTS = str(REPO / "resources" / "prompts")


def prepare(folder: Path, pretrain_steps: int = 300) -> dict[str, str]:
    """Demo corpus -> validated -> curated -> splits -> tiny base model, all inside `folder`."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    paths = prepare_splits(folder)
    tiny = {**config["model"]["tiny"], "pretrain_steps": pretrain_steps}
    base = folder / "base" / "base_model.json"
    build_base_model(paths["train"], paths["val"], str(base),
                     section("model", {"path": None, "tiny": tiny}))
    return {**paths, "base": str(base)}


def prepare_splits(folder: Path) -> dict[str, str]:
    """Demo corpus -> validated -> curated -> splits, inside `folder`: {train, val, test}."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    data = folder / "data"
    validate_raw([str(REPO / "resources/demo/raw.jsonl")], str(data / "validated.jsonl"),
                 str(data / "rejected.jsonl"), str(data / "validation.json"), 0.1)  # fmt: skip
    settings = section("curation", {**config["curation"], "decisions": str(folder / "none.jsonl")})
    curate(str(data / "validated.jsonl"), str(data / "curated.jsonl"), str(data / "cur.json"),
           settings, None)  # fmt: skip
    paths = {name: str(data / f"{name}.jsonl") for name in ("train", "val", "test")}
    split_dataset(str(data / "curated.jsonl"), paths["train"], paths["val"], paths["test"],
                  str(data / "split.json"), str(data / "manifest.json"),
                  {"train": 0.8, "val": 0.1, "test": 0.1}, 42)  # fmt: skip
    return paths


def arguments(doc: str, **defaults: int) -> argparse.Namespace:
    """A benchmark's command line: one integer option per default (`eval_prompts=100` gives
    `--eval-prompts`) plus `--threads` (default 2 unless given); the torch threads set from it,
    warnings logged."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, value in {"threads": 2, **defaults}.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    return args
