"""The `train` rule: LoRA fine-tuning of the base model with the experiment's objective.

    loss = ce_weight * CE(reply | prompt) + objective.extra_loss(model, batch, step)

(ce_weight is the objective's, 1 unless it says otherwise, and `ce` is logged either way; the
CE is normalised over the reply tokens of all `grad_accum` micro-batches of the step, and
`batch` holds every example of the step, its micro-batches in order, so B x G trains like B*G;
`polychromic.training.sft` for the CE term, `polychromic.training.objective` for the seam,
the objectives registered in `polychromic.objectives`). AdamW on the LoRA parameters, cosine
schedule with linear warmup, gradient clipping at 1.0, validation loss on the VAL split every
`eval_every` steps with optional early stopping. The adapter saved (`save_pretrained`, loadable
by `PeftModel.from_pretrained`) is, by `training.checkpoint_selection`, the one with the best
validation loss (step 0, the base model, included) or the one of the last step run; run.json
records which (`saved_step`). Resumable through `polychromic.training.checkpoint`.

Read it top-down: `train_experiment` = `setup` -> `resume_or_start` -> `loop` (`train_step`,
`evaluate`, checkpoints) -> `finish`.

Data parallel: under `accelerate launch --num_processes G` every process draws the same global
micro-batches, keeps its 1/G share of the rows, and the LoRA gradients are summed across
processes; the loss is normalised by the GLOBAL number of reply tokens, so the update equals the
single-process one up to floating-point order and per-process dropout masks.
"""

from __future__ import annotations

import hashlib
import logging
import random
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from polychromic.config import Experiment
from polychromic.io import read_json, read_jsonl, write_json, write_text
from polychromic.models.base import (
    describe,
    load_model,
    load_tokenizer,
    model_path,
    resolve_dtype,
)
from polychromic.models.prompts import system_message
from polychromic.provenance import TRAINING_PACKAGES, environment
from polychromic.settings import LoraSettings, TrainingSettings, as_dict, section
from polychromic.training.checkpoint import (
    BatchStream,
    Progress,
    file_sha256,
    fingerprint,
    load_checkpoint,
    lora_state,
    remove_checkpoint,
    restore_rng,
    save_checkpoint,
)
from polychromic.training.gate import ZERO_CAUSE, ZERO_TERM_WARNING, zero_term_summary
from polychromic.training.objective import (
    Objective,
    ObjectiveContext,
    Parallel,
    Step,
    build_objective,
    parallel_context,
)
from polychromic.training.outputs import (
    metrics_writer,
    model_card,
    sort_target_modules,
    write_log,
)
from polychromic.training.sft import collate, count_targets, encode_example, summed_token_loss

log = logging.getLogger(__name__)

# training_log.csv: these columns, with the objective's own (`log_fields`) after `ce`.
LOG_HEAD, LOG_TAIL = ["step", "loss", "ce"], ["lr", "tokens_per_s", "val_loss"]


@dataclass(frozen=True)
class TrainJob:
    """What one train job reads and writes."""

    train: str
    val: str
    base: str
    prompts_dir: str
    adapter_dir: str
    log_csv: str
    summary: str
    checkpoint_dir: str | None = None  # outside the rule's outputs, so a re-run resumes
    manifest: str | None = None


@dataclass
class Run:
    """Everything one training run holds while it runs."""

    job: TrainJob
    experiment: Experiment
    training: TrainingSettings
    lora: LoraSettings
    seed: int
    parallel: Parallel
    model: Any
    objective: Objective
    train_examples: list
    val_examples: list
    pad_id: int
    params: list
    optimizer: Any
    schedule: Any
    stream: BatchStream
    key: str
    progress: Progress
    resumed_from: int | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def auto_target_modules(model: Any) -> tuple[str, ...]:
    """The LoRA targets read from the architecture: the names (last component) of every linear
    projection of the model (torch Linear, 4-bit Linear included, and GPT-2's Conv1D), the
    output layer excepted; for Llama and Qwen the q, k, v, o, gate, up and down projections."""
    from transformers.pytorch_utils import Conv1D

    output = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear | Conv1D) and module is not output}
    if output is not None:  # a projection named like the output layer would take it too
        names -= {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                  if module is output}
    if not names:
        raise ValueError("lora.target_modules: auto found no linear projection in the model; "
                         "list the module names")
    return tuple(sorted(names))


def target_modules(model: Any, lora: LoraSettings) -> tuple[str, ...]:
    """`lora.target_modules` as given, or read from the architecture (auto, or null)."""
    if lora.target_modules is None or lora.target_modules == "auto":
        return auto_target_modules(model)
    return tuple(lora.target_modules)


def add_lora(model: Any, lora: LoraSettings) -> Any:
    """The model with trainable LoRA adapters (peft) on `lora.target_modules` (`target_modules`:
    auto reads them from the architecture)."""
    from peft import LoraConfig, get_peft_model

    targets = list(target_modules(model, lora))
    if getattr(model, "is_loaded_in_4bit", False):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _to(batch: dict, device: Any) -> dict:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


@torch.no_grad()
def validation_loss(model: Any, examples: list, pad_id: int, batch_size: int = 32) -> float:
    """Mean next-token CE over all reply tokens of the validation split."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = _to(collate(examples[start:start + batch_size], pad_id), device)
        total += float(summed_token_loss(model, batch))
        tokens += count_targets(batch)
    model.train(was_training)
    return total / max(tokens, 1)


def encode_split(job: TrainJob, tokenizer: Any, max_length: int
                 ) -> tuple[list, list, list, list]:
    """(train records, val records, train examples, val examples); truncations are counted
    and logged."""
    train_records, val_records = read_jsonl(job.train), read_jsonl(job.val)
    train = [encode_example(tokenizer, job.prompts_dir, r, max_length) for r in train_records]
    val = [encode_example(tokenizer, job.prompts_dir, r, max_length) for r in val_records]
    truncated = sum(e.truncated for e in train + val)
    if truncated:
        log.warning("%d examples longer than training.max_length = %d were cut", truncated,
                    max_length)
    if not val:
        raise ValueError(f"the validation split {job.val} is empty: model selection needs it")
    return train_records, val_records, train, val


def setup(job: TrainJob, experiment: Experiment, training: TrainingSettings,
          lora: LoraSettings, seed: int) -> Run:
    """Model with LoRA, data, objective, optimizer and schedule (in a fixed order: each of
    them draws from the seeded random stream)."""
    parallel = parallel_context()
    seed_everything(seed)
    tokenizer = load_tokenizer(job.base)
    model = add_lora(load_model(job.base, device=parallel.device), lora)
    model.train()
    records, val_records, train_examples, val_examples = encode_split(job, tokenizer,
                                                                      training.max_length)
    context = ObjectiveContext(tokenizer, records, parallel.device, val_records)
    objective = build_objective(experiment.objective, experiment.settings, context)
    from transformers import get_cosine_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=training.learning_rate)
    schedule = get_cosine_schedule_with_warmup(optimizer, training.warmup_steps,
                                               training.max_steps)
    key = fingerprint(experiment.as_config(), as_dict(training), as_dict(lora), seed,
                      read_json(job.base), parallel.world, file_sha256(job.train),
                      file_sha256(job.val))
    return Run(job, experiment, training, lora, seed, parallel, model, objective, train_examples,
               val_examples, tokenizer.pad_token_id, params, optimizer, schedule,
               BatchStream(train_examples, training.batch_size, seed), key, Progress())


def resume_or_start(run: Run) -> None:
    """Continue from a matching checkpoint, else start with the base model's validation loss
    (step 0 of the log, the first candidate of best_val_loss)."""
    folder = Path(run.job.checkpoint_dir) if run.job.checkpoint_dir else None
    resumed = load_checkpoint(folder, run.key) if folder else None
    if not resumed:
        run.progress.best_val_loss = validation_loss(run.model, run.val_examples, run.pad_id)
        run.progress.best_state = lora_state(run.model)
        run.progress.rows.append({"step": 0, "val_loss": run.progress.best_val_loss})
        return
    with torch.no_grad():
        for name, param in run.model.named_parameters():
            if name in resumed["lora"]:
                param.copy_(resumed["lora"][name])
    run.optimizer.load_state_dict(resumed["optimizer"])
    run.schedule.load_state_dict(resumed["schedule"])
    run.stream.restore(resumed["stream"])
    run.progress = Progress(**resumed["progress"])
    run.resumed_from = run.progress.step
    restore_rng(resumed["rng"])
    log.info("resumed from the checkpoint of step %d", run.progress.step)


def train_step(run: Run, step: int) -> dict[str, Any]:
    """One optimizer step over `grad_accum` micro-batches; returns the step's log row.

    The CE term is normalised over the step's reply tokens and the objective's extra term sees
    every example of the step (all micro-batches, in order, as one batch), so `batch_size` B x
    `grad_accum` G trains like B*G x 1: a sampled objective picks its prompts from the whole
    step, not from the first micro-batch."""
    tick = time.perf_counter()
    parallel = run.parallel
    global_batches = [run.stream.next() for _ in range(run.training.grad_accum)]
    whole = _to(collate([e for b in global_batches for e in b], run.pad_id), parallel.device)
    targets = count_targets(whole)  # GLOBAL reply tokens of the step
    local = [_to(collate(parallel.share(b), run.pad_id), parallel.device)
             for b in global_batches]
    row: dict[str, Any] = {"step": step}
    ce_total, extra_value = 0.0, 0.0
    ce_weight = getattr(run.objective, "ce_weight", 1.0)
    trained = ce_weight > 0  # whether this step has a gradient at all
    for index, batch in enumerate(local):
        with torch.set_grad_enabled(ce_weight > 0):  # logged even when it does not train
            loss = summed_token_loss(run.model, batch) / targets
        ce_total += float(loss.detach())
        if ce_weight > 0:
            (loss if ce_weight == 1 else ce_weight * loss).backward()
        if index == 0:
            extra = run.objective.extra_loss(run.model, whole, Step(step, run.seed, parallel))
            if extra is not None:
                if extra.loss.requires_grad:
                    with extra.backward_context():  # its own backward: see ExtraLoss
                        extra.loss.backward()
                    trained = True
                extra_value = extra.value
                row.update(extra.logged)
    if trained:  # else (CE off, no sample this step) momentum and decay must not move it
        parallel.sum_gradients(run.params)
        torch.nn.utils.clip_grad_norm_(run.params, 1.0)
        run.optimizer.step()
    run.schedule.step()
    run.optimizer.zero_grad(set_to_none=True)
    row["ce"] = parallel.global_sum(ce_total)
    row["lr"] = run.schedule.get_last_lr()[0]
    row["loss"] = ce_weight * row["ce"] + extra_value
    row["tokens_per_s"] = round(targets / max(time.perf_counter() - tick, 1e-9), 1)
    return row


def evaluate(run: Run, row: dict[str, Any]) -> None:
    """Validation loss into the row; the best adapter so far and the early-stopping count."""
    progress = run.progress
    row["val_loss"] = validation_loss(run.model, run.val_examples, run.pad_id)
    if row["val_loss"] < progress.best_val_loss:
        progress.best_val_loss, progress.best_step = row["val_loss"], row["step"]
        progress.best_state = lora_state(run.model)
        progress.evals_without_gain = 0
    else:
        progress.evals_without_gain += 1
    log.info("step %d: %s", row["step"], {k: v for k, v in row.items() if k != "step"})


def loop(run: Run) -> None:
    """Steps from the one after the last checkpoint to max_steps (or early stopping)."""
    training, progress, parallel = run.training, run.progress, run.parallel
    folder = Path(run.job.checkpoint_dir) if run.job.checkpoint_dir else None
    writer = metrics_writer(training.report_to, Path(run.job.adapter_dir).parent)
    clock = time.perf_counter()
    bar = tqdm(range(progress.step + 1, training.max_steps + 1), mininterval=5,
               desc=f"train {run.experiment.name} seed {run.seed}", disable=not parallel.main)
    for step in bar:
        row = train_step(run, step)
        if step % training.eval_every == 0 or step == training.max_steps:
            tick = time.perf_counter()
            evaluate(run, row)
            progress.validation_seconds += time.perf_counter() - tick
            bar.set_postfix(ce=f"{row['ce']:.3f}", val=f"{row['val_loss']:.3f}")
        progress.rows.append(row)
        progress.step = step
        if writer is not None and parallel.main:
            for name, value in row.items():
                if name != "step" and isinstance(value, float | int):
                    writer.add_scalar(f"train/{name}", value, step)
        stop = bool(training.early_stopping_patience) and (
            progress.evals_without_gain >= training.early_stopping_patience)
        if (folder and parallel.main and training.save_every
                and step % training.save_every == 0 and step < training.max_steps):
            progress.seconds += time.perf_counter() - clock
            clock = time.perf_counter()
            save_checkpoint(folder, run.key, run.model, run.optimizer, run.schedule, run.stream,
                            progress)
        if stop:
            log.info("early stopping at step %d (best step %d)", step, progress.best_step)
            break
    progress.seconds += time.perf_counter() - clock
    if writer is not None:
        writer.close()


def select_adapter(run: Run) -> int:
    """Load the adapter that checkpoint_selection keeps into the model; its step."""
    progress = run.progress
    if run.training.checkpoint_selection == "last":
        return progress.step
    with torch.no_grad():
        for name, param in run.model.named_parameters():
            if name in progress.best_state:
                param.copy_(progress.best_state[name])
    return progress.best_step


def adapter_is_initial(model: Any) -> bool:
    """Whether the adapter is still the initial no-op: every LoRA B matrix exactly zero (peft
    starts B at zero; the step-0 adapter of best_val_loss, or a run whose updates all had a
    zero learning rate or no gradient)."""
    return all(not param.any() for name, param in model.named_parameters() if "lora_B" in name)


def adapter_digest(model: Any) -> str:
    """SHA-256 of the adapter's weights (every trainable tensor's name, dtype, shape and bytes,
    in name order): two runs whose adapters are equal weight for weight have one digest, what
    the verdict compares (`reporting.validity`), whatever their folders or names."""
    digest = hashlib.sha256()
    for name, tensor in sorted(lora_state(model).items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def run_summary(run: Run, saved_step: int, started: float) -> dict[str, Any]:
    """run.json: what was trained, how it ended, and what it cost."""
    progress, job = run.progress, run.job
    return {
        "experiment": run.experiment.name, "seed": run.seed,
        "objective": run.experiment.objective, "base_model": model_path(job.base),
        "base_model_info": describe(job.base),
        "dtype": resolve_dtype(read_json(job.base), str(run.parallel.device)),
        "lora_target_modules": sorted(run.model.peft_config["default"].target_modules),
        "system_message": system_message(job.prompts_dir),
        "best_step": progress.best_step, "best_val_loss": progress.best_val_loss,
        "checkpoint_selection": run.training.checkpoint_selection,
        "saved_step": saved_step, "adapter_is_initial": adapter_is_initial(run.model),
        "adapter_sha256": adapter_digest(run.model),
        "steps_run": progress.step, "resumed_from_step": run.resumed_from,
        "processes": run.parallel.world, "train_examples": len(run.train_examples),
        "val_examples": len(run.val_examples),
        "truncated_examples": sum(e.truncated for e in run.train_examples + run.val_examples),
        "data_manifest_sha256": file_sha256(job.manifest) if job.manifest else None,
        "train_seconds": round(progress.seconds, 2),
        "validation_seconds": round(progress.validation_seconds, 2), **run.objective.summary(),
        **zero_term_summary(progress.rows),
        "wall_seconds_this_process": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_memory_mb": (round(torch.cuda.max_memory_allocated() / 2**20, 1)
                               if torch.cuda.is_available() else None),
        "environment": environment(TRAINING_PACKAGES),
        "settings": {"experiment": run.experiment.as_config(),
                     "training": as_dict(run.training), "lora": as_dict(run.lora)},
    }


def finish(run: Run, started: float) -> dict[str, Any]:
    """Keep the selected adapter, write adapter, card, log and run.json, drop the checkpoint."""
    saved_step = select_adapter(run)
    result = run_summary(run, saved_step, started)
    if result["adapter_is_initial"]:
        log.warning("the saved adapter is the initial (zero) LoRA, i.e. the base model: %s",
                    "no checkpoint beat the base model's validation loss (check learning_rate "
                    "and max_steps, or use training.checkpoint_selection: last)"
                    if saved_step == 0 and run.training.checkpoint_selection == "best_val_loss"
                    else "no training step changed it")
    share = result.get("zero_term_share")
    if share is not None and share > ZERO_TERM_WARNING:
        gate = result["quality_gate"]
        log.warning("the policy-gradient term was zero in %d of %d sampling steps: %s",
                    result["zero_term_steps"], result["sampling_steps"],
                    ZERO_CAUSE.format(at=f" {gate['threshold']:.3f} ({gate['source']})"))
    if not run.parallel.main:
        return result
    adapter = Path(run.job.adapter_dir)
    run.model.save_pretrained(adapter)
    sort_target_modules(adapter / "adapter_config.json")
    write_text(adapter / "README.md", model_card(result))
    write_log(run.job.log_csv, run.progress.rows,
              LOG_HEAD + list(run.objective.log_fields) + LOG_TAIL)
    write_json(run.job.summary, result)
    if run.job.checkpoint_dir:  # the run is complete: its outputs supersede the checkpoint
        remove_checkpoint(Path(run.job.checkpoint_dir))
    return result


def train_experiment(job: TrainJob, experiment: Experiment, training: TrainingSettings,
                     lora: LoraSettings, seed: int) -> dict:
    """Fine-tune one (experiment, seed) and write the adapter, the step log and run.json."""
    started = time.perf_counter()
    run = setup(job, experiment, training, lora, seed)
    resume_or_start(run)
    loop(run)
    return finish(run, started)


def job_spec(job: TrainJob, experiment: Experiment, training: TrainingSettings,
             lora: LoraSettings, seed: int) -> dict:
    """The arguments of `train_experiment` as JSON-ready data (for `accelerate launch`)."""
    return {"job": asdict(job), "experiment": {"name": experiment.name,
                                               **experiment.as_config()},
            "training": as_dict(training), "lora": as_dict(lora), "seed": seed}


def train_from_spec(spec: dict) -> dict:
    """`train_experiment` from a `job_spec` (config sections may be partial: the schema's
    defaults fill them in)."""
    experiment = dict(spec["experiment"])
    return train_experiment(TrainJob(**spec["job"]),
                            Experiment.from_config(experiment.pop("name"), experiment),
                            section("training", spec["training"]), section("lora", spec["lora"]),
                            int(spec["seed"]))


def launch_training(spec: dict, gpus: int = 1) -> dict | None:
    """Run the training of `spec` (`job_spec`) here, or under `accelerate launch` with one
    process per GPU; with `gpus` > 1 this is still ONE job: accelerate starts the processes."""
    if int(gpus) <= 1:
        return train_from_spec(spec)
    job = spec["job"]
    folder = Path(job["checkpoint_dir"] or Path(job["summary"]).parent)
    folder.mkdir(parents=True, exist_ok=True)
    arguments = folder / "launch_arguments.json"
    write_json(arguments, spec)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes",
               str(int(gpus)), "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--multi_gpu", "-m", "polychromic.training.launch",
               str(arguments)]
    log.info("launching %s", " ".join(command))
    subprocess.run(command, check=True)
    return read_json(job["summary"])
