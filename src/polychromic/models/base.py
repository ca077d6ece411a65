"""The `base_model` rule and the one way every later rule loads a model.

`build_base_model` writes `models/base/base_model.json`, a pointer that says which model the
study uses: either a real local Hugging Face causal LM (`model.path`, used as is, never copied)
or the tiny demo model that `polychromic.models.tiny` builds into the same folder.
`load_model` / `load_tokenizer` read that pointer, so training and generation load the same
weights, dtype and chat template.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from polychromic.io import read_json, read_jsonl, write_json

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def build_base_model(train: str, val: str, pointer: str, model: dict) -> dict:
    """Write the base-model pointer; build and pretrain the tiny model if `model.path` is unset."""
    output_dir = Path(pointer).parent
    info: dict[str, Any] = {"dtype": model.get("dtype", "float32")}
    if model.get("path"):
        path = Path(model["path"]).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"model.path {path} has no config.json: "
                "point it at a local Hugging Face model folder"
            )
        info.update(kind="local", path=str(path.resolve()))
        log.info("using the local model at %s as is", info["path"])
    else:
        from polychromic.models.tiny import build_and_pretrain

        stats = build_and_pretrain(read_jsonl(train), read_jsonl(val), output_dir, model["tiny"])
        info.update(kind="tiny", path=str(output_dir), settings=model["tiny"], **stats)
    for key in ("attn_implementation",):
        if model.get(key):
            info[key] = model[key]
    write_json(pointer, info, allow_nan=True)
    return info


def model_path(pointer: str | Path) -> str:
    return read_json(pointer)["path"]


def load_tokenizer(pointer: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path(pointer))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(pointer: str | Path, adapter: str | Path | None = None, device: str = "cpu") -> Any:
    """The base causal LM in the study's dtype, with a LoRA adapter on top when given."""
    from transformers import AutoModelForCausalLM

    info = read_json(pointer)
    kwargs: dict[str, Any] = {"dtype": DTYPES[info.get("dtype", "float32")]}
    if info.get("attn_implementation"):
        kwargs["attn_implementation"] = info["attn_implementation"]
    model = AutoModelForCausalLM.from_pretrained(info["path"], **kwargs).to(device)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model
