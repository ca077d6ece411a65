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
from polychromic.settings import ModelSettings, as_dict

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def build_base_model(train: str, val: str, pointer: str, model: ModelSettings) -> dict:
    """Write the base-model pointer; build and pretrain the tiny model if `model.path` is unset."""
    output_dir = Path(pointer).parent
    info: dict[str, Any] = {"dtype": model.dtype}
    if model.path:
        path = Path(model.path).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"model.path {path} has no config.json: "
                "point it at a local Hugging Face model folder"
            )
        info.update(kind="local", path=str(path.resolve()))
        log.info("using the local model at %s as is", info["path"])
    else:
        from polychromic.models.tiny import build_and_pretrain

        stats = build_and_pretrain(read_jsonl(train), read_jsonl(val), output_dir, model.tiny)
        info.update(kind="tiny", path=str(output_dir), settings=as_dict(model.tiny), **stats)
    for key in ("attn_implementation", "load_in_4bit", "gradient_checkpointing"):
        if getattr(model, key):
            info[key] = getattr(model, key)
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


def default_device() -> str:
    """CUDA when a GPU is visible (one per process under `accelerate launch`), else CPU."""
    if torch.cuda.is_available():
        import os

        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def load_model(
    pointer: str | Path, adapter: str | Path | None = None, device: str | None = None
) -> Any:
    """The base causal LM in the study's dtype, with a LoRA adapter on top when given.

    Options recorded in the pointer (from config `model`): dtype, attn_implementation,
    load_in_4bit (bitsandbytes, an optional extra; GPU only) and gradient_checkpointing.
    """
    from transformers import AutoModelForCausalLM

    info = read_json(pointer)
    device = device or default_device()
    dtype = DTYPES[info.get("dtype", "float32")]
    kwargs: dict[str, Any] = {"dtype": dtype}
    if info.get("attn_implementation"):
        kwargs["attn_implementation"] = info["attn_implementation"]
    if info.get("load_in_4bit"):
        try:
            from transformers import BitsAndBytesConfig
        except ImportError as error:  # pragma: no cover - depends on the optional extra
            message = "model.load_in_4bit needs `pip install -e '.[quantization]'`"
            raise ImportError(message) from error
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
        kwargs["device_map"] = {"": device}
        model = AutoModelForCausalLM.from_pretrained(info["path"], **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(info["path"], **kwargs).to(device)
    if info.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model
