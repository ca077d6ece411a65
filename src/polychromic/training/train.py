"""The `train` rule: LoRA fine-tuning of the base model with the baseline or polychromic objective.

    loss = CE(reply | prompt)                               experiment objective "sft"
    loss = CE(reply | prompt) + lambda * L_pg               experiment objective "polychromic"

(see `polychromic.training.sft` and `polychromic.training.polychromic`). AdamW on the LoRA
parameters, cosine schedule with linear warmup, gradient clipping at 1.0, validation loss on the
VAL split every `eval_every` steps; the adapter with the best validation loss is the one saved
(`save_pretrained`, loadable by `PeftModel.from_pretrained`). Everything is seeded from `seed`.
"""

from __future__ import annotations

import csv
import logging
import random
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from polychromic.io import read_jsonl, write_json
from polychromic.models.base import load_model, load_tokenizer, model_path
from polychromic.training.polychromic import PolychromicConfig, PolychromicObjective
from polychromic.training.sft import collate, count_targets, encode_example, summed_token_loss

log = logging.getLogger(__name__)

LOG_FIELDS = [
    "step",
    "loss",
    "ce",
    "policy_term",
    "mean_reward",
    "mean_set_diversity",
    "advantage_magnitude",
    "raw_advantage_magnitude",
    "lr",
    "tokens_per_s",
    "val_loss",
]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def add_lora(model: Any, lora: dict) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=list(lora["target_modules"]),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


class BatchStream:
    """Seeded epochs of shuffled examples, cut into micro-batches."""

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


@torch.no_grad()
def validation_loss(model: Any, examples: list, pad_id: int, batch_size: int = 32) -> float:
    """Mean next-token CE over all reply tokens of the validation split."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id)
        total += float(summed_token_loss(model, batch))
        tokens += count_targets(batch)
    model.train(was_training)
    return total / max(tokens, 1)


def lora_state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


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
) -> dict:
    """Fine-tune one (experiment, seed) and write the adapter, the step log and a summary."""
    started = time.perf_counter()
    seed_everything(seed)
    tokenizer = load_tokenizer(base)
    model = add_lora(load_model(base), lora)
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
        encoder = get_encoder(embedding_model) if poly.reward == "semantic" else None
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
    patience = int(training.get("early_stopping_patience", 0))

    best = {"val_loss": validation_loss(model, val_examples, pad_id), "step": 0}
    best_state = lora_state(model)
    rows: list[dict] = [{"step": 0, "val_loss": best["val_loss"]}]
    evals_without_gain = 0
    progress = tqdm(range(1, steps + 1), desc=f"train {experiment_name} seed {seed}", mininterval=5)
    for step in progress:
        tick = time.perf_counter()
        batches = [collate(stream.next(), pad_id) for _ in range(accumulation)]
        targets = sum(count_targets(b) for b in batches)
        row: dict[str, Any] = {"step": step}
        ce_total = 0.0
        for index, batch in enumerate(batches):
            loss = summed_token_loss(model, batch) / targets
            ce_total += float(loss.detach())
            if objective is not None and index == 0 and (step - 1) % poly.every_n_steps == 0:
                loss = loss + poly.lambda_ * _policy_loss(objective, model, batch, seed, step, row)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        row.update(ce=ce_total, lr=schedule.get_last_lr()[0])
        row["loss"] = ce_total + (poly.lambda_ * row["policy_term"] if "policy_term" in row else 0)
        row["tokens_per_s"] = round(targets / max(time.perf_counter() - tick, 1e-9), 1)
        if step % eval_every == 0 or step == steps:
            row["val_loss"] = validation_loss(model, val_examples, pad_id)
            if row["val_loss"] < best["val_loss"]:
                best = {"val_loss": row["val_loss"], "step": step}
                best_state = lora_state(model)
                evals_without_gain = 0
            else:
                evals_without_gain += 1
            progress.set_postfix(ce=f"{ce_total:.3f}", val=f"{row['val_loss']:.3f}")
            log.info("step %d: %s", step, {k: v for k, v in row.items() if k != "step"})
        rows.append(row)
        if patience and evals_without_gain >= patience:
            log.info("early stopping at step %d (best step %d)", step, best["step"])
            break

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in best_state:
                param.copy_(best_state[name])
    model.save_pretrained(adapter_dir)
    _write_log(log_csv, rows)
    result = {
        "experiment": experiment_name,
        "seed": seed,
        "objective": objective_name,
        "base_model": model_path(base),
        "best_step": best["step"],
        "best_val_loss": best["val_loss"],
        "steps_run": rows[-1]["step"],
        "train_examples": len(train_examples),
        "val_examples": len(val_examples),
        "truncated_examples": truncated,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "settings": {"experiment": experiment, "training": training, "lora": lora},
    }
    write_json(summary, result)
    return result


def _policy_loss(
    objective: PolychromicObjective, model: Any, batch: dict, seed: int, step: int, row: dict
) -> torch.Tensor:
    """L_pg on up to max_prompts distinct prompts of the micro-batch, in a forked RNG stream."""
    from polychromic.training.sft import IGNORE

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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1_000_003 + step)
        term, stats = objective.loss(model, chosen, prompts)
    row.update(policy_term=float(term.detach()), **stats)
    return term


def _write_log(path: str, rows: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
