"""The `base_model` rule and the one way every later rule loads a model.

`build_base_model` writes `models/base/base_model.json`, a pointer that says which model the
study uses: a model known by name (`model.name`, converted once into the environment's cache,
`polychromic.models.known`), a real local Hugging Face causal LM (`model.path`, used as is,
never copied) or the tiny demo model that `polychromic.models.tiny` builds into the same
folder. The pointer also names the model and its license (`describe`), for the adapters' cards
and run.json. `load_model` / `load_tokenizer` read that pointer, so training and generation load
the same weights, dtype and chat template.

dtype (`model.dtype`): `auto` is bfloat16 where the device computes it natively (the judge's
rule, `polychromic.embeddings.resolve_precision`: a CUDA device with bf16, a CPU with
AVX512-BF16 or AMX) and float32 elsewhere, for a real model; the tiny demo model stays float32
(it is pretrained and saved in float32 here, and at 0.3 M parameters bfloat16 gains nothing).
An explicit float32, bfloat16 or float16 always wins. `resolve_dtype` says what a job used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from polychromic.io import read_json, read_jsonl, write_json
from polychromic.settings import ConfigError, ModelSettings, as_dict

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def build_base_model(train: str, val: str, pointer: str, model: ModelSettings) -> dict:
    """Write the base-model pointer; build and pretrain the tiny model if neither `model.name`
    nor `model.path` is set."""
    from polychromic.models import known

    output_dir = Path(pointer).parent
    info: dict[str, Any] = {"dtype": model.dtype}
    try:
        known.check_model_choice(model.name, model.path)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if model.name:
        path = known.assemble(model.name)
        info.update(kind="known", name=model.name, path=str(path.resolve()))
        log.info("using the known model %s at %s", model.name, info["path"])
    elif model.path:
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
    info["model"] = known.describe(info["kind"], model.name, info["path"])
    for key in ("attn_implementation", "load_in_4bit", "gradient_checkpointing"):
        if getattr(model, key):
            info[key] = getattr(model, key)
    write_json(pointer, info, allow_nan=True)
    return info


def model_path(pointer: str | Path) -> str:
    return read_json(pointer)["path"]


def describe(pointer: str | Path) -> dict[str, Any]:
    """{name, license, hub_name, ...} of the pointer's base model (pointers written before it
    was recorded are described from their kind and path)."""
    from polychromic.models import known

    info = read_json(pointer)
    return info.get("model") or known.describe(info.get("kind", "local"), info.get("name"),
                                               info["path"])


def context_window(config: Any) -> int | None:
    """The longest sequence (prompt + reply) the model takes, from its config; None unknown."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_tokenizer(pointer: str | Path) -> Any:
    """The model's tokenizer; pad = eos where it has no pad token (labels and samples are
    masked by the attention mask and the prompt length, never by pad id, so that is safe), and
    `model_max_length` no longer than the model's context window (a GGUF tokenizer says 1e30)."""
    from transformers import AutoConfig, AutoTokenizer

    path = model_path(pointer)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    context = context_window(AutoConfig.from_pretrained(path))
    if context and (tokenizer.model_max_length or 0) > context:
        tokenizer.model_max_length = context
    return tokenizer


def resolve_dtype(info: dict[str, Any], device: str = "cpu") -> str:
    """The dtype a job loads the pointer's model in: `model.dtype`, with `auto` resolved by the
    judge's rule on `device` (bfloat16 where native, else float32) for a real model and float32
    for the tiny demo model."""
    dtype = info.get("dtype") or "float32"
    if dtype != "auto":
        return dtype
    if info.get("kind") == "tiny":
        return "float32"
    from polychromic.embeddings import resolve_precision

    return resolve_precision("auto", str(device).split(":")[0])


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
    The dtype is `resolve_dtype`'s on `device`.
    """
    from transformers import AutoModelForCausalLM

    info = read_json(pointer)
    device = device or default_device()
    dtype = DTYPES[resolve_dtype(info, device)]
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
