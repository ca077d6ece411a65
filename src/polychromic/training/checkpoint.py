"""Resumable training state: the data order, the RNG states and the checkpoint file.

Every `save_every` steps the full state (LoRA weights, optimizer, scheduler, data order, RNG
states, best adapter so far, log rows) goes to a checkpoint folder OUTSIDE the rule's outputs
(Snakemake deletes incomplete outputs), so a killed job re-run continues where it stopped; on
CPU the final adapter is bitwise that of an uninterrupted run. A checkpoint is resumed only when
its fingerprint (settings, data, base model, processes) matches the run's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


class BatchStream:
    """Seeded epochs of shuffled examples, cut into micro-batches; its state is checkpointed."""

    def __init__(self, examples: list, batch_size: int, seed: int) -> None:
        self.examples, self.batch_size = examples, batch_size
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def next(self) -> list:
        if len(self.order) < self.batch_size:
            fresh = list(range(len(self.examples)))
            self.rng.shuffle(fresh)
            self.order.extend(fresh)
        picked, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return [self.examples[i] for i in picked]

    def state(self) -> dict:
        return {"rng": self.rng.getstate(), "order": list(self.order)}

    def restore(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.order = list(state["order"])


@dataclass
class Progress:
    """Everything of a run that is not model or optimizer state."""

    step: int = 0
    best_step: int = 0
    best_val_loss: float = float("inf")
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    evals_without_gain: int = 0
    seconds: float = 0.0  # in the step loop, validation included
    validation_seconds: float = 0.0  # the validation part of `seconds`


def lora_state(model: Any) -> dict[str, torch.Tensor]:
    """A copy of the trainable (LoRA) parameters."""
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def fingerprint(*parts: Any) -> str:
    """Hash of everything that must match for a checkpoint to be resumed."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rng_states() -> dict:
    """The Python, NumPy, torch (and CUDA) random states."""
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    """Put back the states of `rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    folder: Path,
    key: str,
    model: Any,
    optimizer: Any,
    schedule: Any,
    stream: BatchStream,
    progress: Progress,
) -> None:
    """Atomic write of the whole training state (rename of a complete file)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "fingerprint": key,
        "lora": lora_state(model),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "stream": stream.state(),
        "rng": rng_states(),
        "progress": progress.__dict__,
    }
    tmp = folder / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / "state.pt")
    log.info("checkpoint at step %d in %s", progress.step, folder)


def remove_checkpoint(folder: Path, parents: int = 2) -> None:
    """A complete run's checkpoint: its state file (and a killed write's .tmp), then its
    folder and up to `parents` folders above it where each is left empty
    (`checkpoints/{experiment}/seed_{seed}`: the experiment's folder and `checkpoints/` go once
    no other run keeps a state there)."""
    for name in ("state.pt", "state.pt.tmp"):
        (folder / name).unlink(missing_ok=True)
    for path in [folder, *list(folder.parents)[:parents]]:
        try:
            path.rmdir()
        except OSError:  # not empty (another run's state, a killed write's .tmp) or gone
            break


def load_checkpoint(folder: Path, key: str) -> dict | None:
    """The saved state when it exists and belongs to this run (same fingerprint), else None."""
    path = folder / "state.pt"
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=False)
    if state.get("fingerprint") != key:
        log.warning("ignoring checkpoint %s: it belongs to other settings or data", path)
        return None
    return state
