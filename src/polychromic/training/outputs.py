"""What a finished training run leaves behind: the adapter's card, the step log, the optional
TensorBoard / W&B stream, and a peft config written the same way every time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from polychromic.io import read_json, write_json


def sort_target_modules(path: Path) -> None:
    """peft writes target_modules from a set, in hash-seed order: sort it for identical files."""
    adapter_config = read_json(path)
    if isinstance(adapter_config.get("target_modules"), list):
        adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
        write_json(path, adapter_config)


def base_model_line(result: dict) -> str:
    """The base model in words: its name, hub name, license and where its weights were read."""
    info = result.get("base_model_info") or {}
    name = info.get("name") or Path(str(result["base_model"])).name
    hub = f" (`{info['hub_name']}`)" if info.get("hub_name") else ""
    license_ = info.get("license") or "not stated in its folder's model card"
    weights = f"; {info['weights']}, from {info['source']}" if info.get("weights") else ""
    return (f"{name}{hub}, license {license_}{weights}, loaded from `{result['base_model']}` "
            f"in {result.get('dtype', 'float32')}")


def model_card(result: dict) -> str:
    """The adapter's card: what it was trained from (the base model and its license, the
    system message) and how it ended."""
    settings = json.dumps(result["settings"], indent=2)
    info = result.get("base_model_info") or {}
    system = str(result.get("system_message", "")).replace("\n", " ")
    targets = ", ".join(result.get("lora_target_modules") or [])
    return f"""---
library_name: peft
base_model: {info.get("hub_name") or result["base_model"]}
tags: [lora, polychromic, {result["objective"]}]
---
# LoRA adapter: experiment `{result["experiment"]}`, seed {result["seed"]}

- objective: `{result["objective"]}`
- base model: {base_model_line(result)}
- LoRA on: {targets}
- system message: "{system}"
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


def metrics_writer(report_to: str, folder: Path) -> Any:
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


def write_log(path: str, rows: list[dict], fields: list[str]) -> None:
    """training_log.csv: one row per step, the columns `fields` (empty where not logged)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
