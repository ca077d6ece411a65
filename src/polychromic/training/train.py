"""The `train` rule: LoRA fine-tuning of the base model with the baseline or polychromic objective.

    loss = CE(reply | prompt)                               experiment objective "sft"
    loss = CE(reply | prompt) + lambda * L_pg               experiment objective "polychromic"

(see `polychromic.training.sft` and `polychromic.training.polychromic`). AdamW on the LoRA
parameters, cosine schedule with linear warmup, gradient clipping at 1.0, validation loss on the
VAL split every `eval_every` steps with optional early stopping. The adapter saved
(`save_pretrained`, loadable by `PeftModel.from_pretrained`) is, by
`training.checkpoint_selection`, the one with the best validation loss (step 0, the base model,
included) or the one of the last step run; run.json records which (`saved_step`).

Resumable: every `save_every` steps the full state (LoRA weights, optimizer, scheduler, data
order, RNG states, best adapter so far, log rows) goes to a checkpoint folder OUTSIDE the rule's
outputs (Snakemake deletes incomplete outputs), so a killed job re-run continues where it
stopped; on CPU the final adapter is bitwise that of an uninterrupted run.

Data parallel: under `accelerate launch --num_processes G` every process draws the same global
micro-batches, keeps its 1/G share of the rows, and the LoRA gradients are summed across
processes; the loss is normalised by the GLOBAL number of reply tokens, so the update equals the
single-process one up to floating-point order and per-process dropout masks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from polychromic.io import read_json, read_jsonl, write_json, write_text
from polychromic.models.base import load_model, load_tokenizer, model_path
from polychromic.training.polychromic import PolychromicConfig, PolychromicObjective
from polychromic.training.sft import (
    IGNORE,
    collate,
    count_targets,
    encode_example,
    summed_token_loss,
)

log = logging.getLogger(__name__)

LOG_FIELDS = [
    "step", "loss", "ce", "policy_term", "mean_reward", "mean_set_diversity",
    "advantage_magnitude", "raw_advantage_magnitude", "lr", "tokens_per_s", "val_loss",
]  # fmt: skip


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def add_lora(model: Any, lora: dict) -> Any:
    from peft import LoraConfig, get_peft_model

    if getattr(model, "is_loaded_in_4bit", False):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    config = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=list(lora["target_modules"]),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


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
    seconds: float = 0.0


@dataclass
class Parallel:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        return items[self.rank :: self.world]

    def sum_gradients(self, params: list[torch.Tensor]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)


def parallel_context() -> Parallel:
    from polychromic.models.base import default_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Parallel(device=default_device())
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())  # gloo on CPU, nccl on GPU
    return Parallel(accelerator.process_index, accelerator.num_processes, str(accelerator.device))


@torch.no_grad()
def validation_loss(model: Any, examples: list, pad_id: int, batch_size: int = 32) -> float:
    """Mean next-token CE over all reply tokens of the validation split."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = _to(collate(examples[start : start + batch_size], pad_id), device)
        total += float(summed_token_loss(model, batch))
        tokens += count_targets(batch)
    model.train(was_training)
    return total / max(tokens, 1)


def _to(batch: dict, device: Any) -> dict:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def lora_state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def fingerprint(*parts: Any) -> str:
    """Hash of everything that must match for a checkpoint to be resumed."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rng_states() -> dict:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
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


def load_checkpoint(folder: Path, key: str) -> dict | None:
    path = folder / "state.pt"
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=False)
    if state.get("fingerprint") != key:
        log.warning("ignoring checkpoint %s: it belongs to other settings or data", path)
        return None
    return state


def train_experiment(
    train: str,
    val: str,
    base: str,
    adapter_dir: str,
    log_csv: str,
    summary: str,
    experiment_name: str,
    experiment: dict,
    training: dict,
    lora: dict,
    prompts_dir: str,
    seed: int,
    embedding_model: str | None = None,
    checkpoint_dir: str | None = None,
    manifest: str | None = None,
) -> dict:
    """Fine-tune one (experiment, seed) and write the adapter, the step log and a summary."""
    selection = training.get("checkpoint_selection", "best_val_loss")
    if selection not in ("best_val_loss", "last"):
        raise ValueError(f"training.checkpoint_selection must be best_val_loss or last, not "
                         f"{selection!r}")
    started = time.perf_counter()
    parallel = parallel_context()
    seed_everything(seed)
    tokenizer = load_tokenizer(base)
    model = add_lora(load_model(base, device=parallel.device), lora)
    model.train()
    max_length = int(training["max_length"])
    train_records, val_records = read_jsonl(train), read_jsonl(val)
    train_examples = [encode_example(tokenizer, prompts_dir, r, max_length) for r in train_records]
    val_examples = [encode_example(tokenizer, prompts_dir, r, max_length) for r in val_records]
    truncated = sum(e.truncated for e in train_examples + val_examples)
    if truncated:
        log.warning(
            "%d examples longer than training.max_length = %d were cut", truncated, max_length
        )
    if not val_examples:
        raise ValueError(f"the validation split {val} is empty: model selection needs it")

    objective_name = experiment.get("objective", "sft")
    objective: PolychromicObjective | None = None
    poly: PolychromicConfig | None = None
    if objective_name == "polychromic":
        from polychromic.embeddings import get_encoder

        poly = PolychromicConfig.from_dict(experiment)
        references: dict[str, list[str]] = {}
        for record in train_records:
            references.setdefault(record["tweet_id"], []).append(record["reply"])
        encoder = get_encoder(embedding_model, parallel.device)  # d(S) needs it for any reward
        objective = PolychromicObjective(poly, tokenizer, references, encoder)
    elif objective_name != "sft":
        raise ValueError(f"unknown objective {objective_name!r} (sft | polychromic)")

    from transformers import get_cosine_schedule_with_warmup

    steps = int(training["max_steps"])
    accumulation = int(training.get("grad_accum", 1))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(training["learning_rate"]))
    schedule = get_cosine_schedule_with_warmup(optimizer, int(training["warmup_steps"]), steps)
    stream = BatchStream(train_examples, int(training["batch_size"]), seed)
    pad_id = tokenizer.pad_token_id
    eval_every = int(training["eval_every"])
    save_every = int(training.get("save_every", 0))
    patience = int(training.get("early_stopping_patience", 0))

    folder = Path(checkpoint_dir) if checkpoint_dir else None
    key = fingerprint(
        experiment,
        training,
        lora,
        seed,
        read_json(base),
        parallel.world,
        file_sha256(train),
        file_sha256(val),
    )
    progress = Progress()
    resumed = load_checkpoint(folder, key) if folder else None
    if resumed:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in resumed["lora"]:
                    param.copy_(resumed["lora"][name])
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["schedule"])
        stream.restore(resumed["stream"])
        progress = Progress(**resumed["progress"])
        restore_rng(resumed["rng"])
        log.info("resumed from the checkpoint of step %d", progress.step)
    else:
        progress.best_val_loss = validation_loss(model, val_examples, pad_id)
        progress.best_state = lora_state(model)
        progress.rows.append({"step": 0, "val_loss": progress.best_val_loss})

    writer = _metrics_writer(training.get("report_to", "none"), Path(adapter_dir).parent)
    clock = time.perf_counter()
    progress_bar = tqdm(
        range(progress.step + 1, steps + 1),
        desc=f"train {experiment_name} seed {seed}",
        mininterval=5,
        disable=not parallel.main,
    )
    for step in progress_bar:
        tick = time.perf_counter()
        global_batches = [stream.next() for _ in range(accumulation)]
        batches = [_to(collate(b, pad_id), parallel.device) for b in global_batches]
        targets = sum(count_targets(b) for b in batches)  # GLOBAL reply tokens of the step
        local = [_to(collate(parallel.share(b), pad_id), parallel.device) for b in global_batches]
        row: dict[str, Any] = {"step": step}
        ce_total = 0.0
        for index, batch in enumerate(local):
            loss = summed_token_loss(model, batch) / targets
            ce_total += float(loss.detach())
            if objective is not None and index == 0 and (step - 1) % poly.every_n_steps == 0:
                term = _policy_loss(objective, model, batches[0], seed, step, row, parallel)
                loss = loss + poly.lambda_ * term
            loss.backward()
        parallel.sum_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        row["ce"] = _global_sum(ce_total, parallel)
        row["lr"] = schedule.get_last_lr()[0]
        row["loss"] = row["ce"] + (poly.lambda_ * row["policy_term"] if "policy_term" in row else 0)
        row["tokens_per_s"] = round(targets / max(time.perf_counter() - tick, 1e-9), 1)
        if step % eval_every == 0 or step == steps:
            row["val_loss"] = validation_loss(model, val_examples, pad_id)
            if row["val_loss"] < progress.best_val_loss:
                progress.best_val_loss, progress.best_step = row["val_loss"], step
                progress.best_state = lora_state(model)
                progress.evals_without_gain = 0
            else:
                progress.evals_without_gain += 1
            progress_bar.set_postfix(ce=f"{row['ce']:.3f}", val=f"{row['val_loss']:.3f}")
            log.info("step %d: %s", step, {k: v for k, v in row.items() if k != "step"})
        progress.rows.append(row)
        progress.step = step
        if writer is not None and parallel.main:
            for name, value in row.items():
                if name != "step" and isinstance(value, float | int):
                    writer.add_scalar(f"train/{name}", value, step)
        stop = bool(patience) and progress.evals_without_gain >= patience
        if folder and parallel.main and save_every and (step % save_every == 0) and step < steps:
            progress.seconds += time.perf_counter() - clock
            clock = time.perf_counter()
            save_checkpoint(folder, key, model, optimizer, schedule, stream, progress)
        if stop:
            log.info("early stopping at step %d (best step %d)", step, progress.best_step)
            break
    progress.seconds += time.perf_counter() - clock
    if writer is not None:
        writer.close()

    saved_step = progress.best_step if selection == "best_val_loss" else progress.step
    if selection == "best_val_loss":
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in progress.best_state:
                    param.copy_(progress.best_state[name])
    result = {
        "experiment": experiment_name,
        "seed": seed,
        "objective": objective_name,
        "base_model": model_path(base),
        "best_step": progress.best_step,
        "best_val_loss": progress.best_val_loss,
        "checkpoint_selection": selection,
        "saved_step": saved_step,
        "adapter_is_initial": saved_step == 0,
        "steps_run": progress.step,
        "resumed_from_step": (resumed or {}).get("progress", {}).get("step"),
        "processes": parallel.world,
        "train_examples": len(train_examples),
        "val_examples": len(val_examples),
        "truncated_examples": truncated,
        "data_manifest_sha256": file_sha256(manifest) if manifest else None,
        "train_seconds": round(progress.seconds, 2),
        "polychromic_seconds": (
            {k: round(v, 3) for k, v in objective.timings.items()} if objective else None
        ),
        "wall_seconds_this_process": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_memory_mb": (
            round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if torch.cuda.is_available()
            else None
        ),
        "settings": {"experiment": experiment, "training": training, "lora": lora},
    }
    if saved_step == 0:
        log.warning(
            "the saved adapter is the initial (zero) LoRA, i.e. the base model: %s",
            "no checkpoint beat the base model's validation loss (check learning_rate and "
            "max_steps, or use training.checkpoint_selection: last)"
            if selection == "best_val_loss" else "no training step ran",
        )
    if parallel.main:
        model.save_pretrained(adapter_dir)
        _sort_target_modules(Path(adapter_dir) / "adapter_config.json")
        write_text(Path(adapter_dir) / "README.md", model_card(result))
        _write_log(log_csv, progress.rows)
        write_json(summary, result)
        if folder and (folder / "state.pt").exists():
            (folder / "state.pt").unlink()  # the run is complete: its outputs supersede it
    return result


def _sort_target_modules(path: Path) -> None:
    """peft writes target_modules from a set, in hash-seed order: sort it for identical files."""
    config = read_json(path)
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        write_json(path, config)


def model_card(result: dict) -> str:
    """The adapter's card: what it was trained from and how it ended."""
    settings = json.dumps(result["settings"], indent=2)
    return f"""---
library_name: peft
base_model: {result["base_model"]}
tags: [lora, polychromic, {result["objective"]}]
---
# LoRA adapter: experiment `{result["experiment"]}`, seed {result["seed"]}

- objective: `{result["objective"]}`
- base model: `{result["base_model"]}`
- data manifest SHA-256: `{result["data_manifest_sha256"]}`
- saved: the adapter of step {result["saved_step"]} of {result["steps_run"]}
  (checkpoint selection `{result["checkpoint_selection"]}`)
- best validation loss {result["best_val_loss"]:.4f}
  at step {result["best_step"]} of {result["steps_run"]}
- training time {result["train_seconds"]} s on {result["processes"]} process(es)

Load with `PeftModel.from_pretrained(base, this_folder)`. Resolved settings:

```json
{settings}
```
"""


def _global_sum(value: float, parallel: Parallel) -> float:
    if parallel.world == 1:
        return value
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=parallel.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item())


def _policy_loss(
    objective: PolychromicObjective,
    model: Any,
    batch: dict,
    seed: int,
    step: int,
    row: dict,
    parallel: Parallel,
) -> torch.Tensor:
    """L_pg on up to max_prompts distinct prompts of the batch, in a forked RNG stream.

    Under data parallelism the prompts are shared out and each process's term is weighted by
    its share, so the summed gradient is that of the mean over all prompts.
    """
    chosen: list[str] = []
    prompts: list[list[int]] = []
    for ids, labels, mask, pid in zip(
        batch["input_ids"],
        batch["labels"],
        batch["attention_mask"],
        batch["tweet_ids"],
        strict=True,
    ):
        if pid in chosen or len(chosen) >= objective.config.max_prompts:
            continue
        prompt_len = int(((labels == IGNORE) & (mask == 1)).sum())
        chosen.append(pid)
        prompts.append(ids[:prompt_len].tolist())
    mine, my_prompts = parallel.share(chosen), parallel.share(prompts)
    if not mine:
        return torch.zeros((), device=batch["input_ids"].device)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed * 1_000_003 + step * 1_009 + parallel.rank)
        term, stats = objective.loss(model, mine, my_prompts)
    term = term * (len(mine) / len(chosen))
    row.update(policy_term=_global_sum(float(term.detach()), parallel), **stats)
    return term


def _metrics_writer(report_to: str, folder: Path) -> Any:
    """Optional TensorBoard / W&B logging of the step rows; off ("none") by default."""
    if report_to in (None, "none"):
        return None
    if report_to == "tensorboard":
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(
                "report_to: tensorboard needs `pip install -e '.[tensorboard]'`"
            ) from error
        return SummaryWriter(log_dir=str(folder / "tensorboard"))
    if report_to == "wandb":
        import wandb  # optional; offline with WANDB_MODE=offline

        run = wandb.init(dir=str(folder), reinit=True)

        class _Wandb:
            def add_scalar(self, name: str, value: float, step: int) -> None:
                run.log({name: value}, step=step)

            def close(self) -> None:
                run.finish()

        return _Wandb()
    raise ValueError(f"unknown report_to {report_to!r} (none | tensorboard | wandb)")


def _write_log(path: str, rows: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


def launch_training(gpus: int = 1, **kwargs: Any) -> dict | None:
    """Run `train_experiment` here, or under `accelerate launch` with one process per GPU.

    With `gpus` > 1 this is still ONE SLURM task: accelerate starts the processes itself.
    """
    if int(gpus) <= 1:
        return train_experiment(**kwargs)
    folder = Path(kwargs["checkpoint_dir"] or Path(kwargs["summary"]).parent)
    folder.mkdir(parents=True, exist_ok=True)
    arguments = folder / "launch_arguments.json"
    write_json(arguments, kwargs)
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(int(gpus)),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--multi_gpu",
        "-m",
        "polychromic.training.launch",
        str(arguments),
    ]
    log.info("launching %s", " ".join(command))
    subprocess.run(command, check=True)
    return read_json(kwargs["summary"])
