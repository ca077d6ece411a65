"""Small, strict file helpers shared by every stage: JSONL and JSON in and out.

Writes go through a temporary file and an atomic rename, so a killed job never leaves a
half-written output that looks complete; the temporary file a killed write leaves is removed
by the next write of the same output.
"""

from __future__ import annotations

import glob
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file written by this pipeline (trusted: any bad line is an error)."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error


_UMASK = os.umask(0)
os.umask(_UMASK)


def remove_stale_temporaries(path: str | Path) -> int:
    """Remove the temporary files (`.{name}.XXXX.tmp`) that killed writes of `path` left
    behind; called before each new write of it, so one is never kept past the next run
    (an output has one writer: its rule's job). Returns how many were removed."""
    path = Path(path)
    removed = 0
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def write_text(path: str | Path, text: str) -> None:
    """Write `text` atomically (temporary file in the same folder, then rename); a temporary
    file of an earlier, killed write of `path` is removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def markers(name: str) -> tuple[str, str]:
    """The comment lines around a generated block `name` of a Markdown page."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(path: str | Path, name: str, body: str) -> None:
    """Replace the text between the markers of block `name` in `path` with `body`, the
    markers kept on lines of their own; an error where `path` has no such block."""
    begin, end = markers(name)
    text = Path(path).read_text(encoding="utf-8")
    if begin not in text or end not in text:
        raise ValueError(f"{path}: no {begin} ... {end} block to write between")
    head, rest = text.split(begin, 1)
    write_text(path, f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}")


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records one per line; returns how many were written."""
    lines = [json.dumps(record, ensure_ascii=False, sort_keys=False) for record in records]
    write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def _check_finite(value: Any, where: str = "") -> None:
    """JSON has no NaN: refuse to write one silently (strict JSON readers reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} at {where or 'top level'}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


def write_json(path: str | Path, data: Any, allow_nan: bool = False) -> None:
    """Write pretty JSON. NaN/inf are refused unless `allow_nan` (then written as null)."""
    if allow_nan:
        data = _nan_to_none(data)
    else:
        _check_finite(data)
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    return value


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def rename_into_place(built: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a model folder built in a scratch folder to `target` in one rename (atomic on one
    file system), so no reader sees it half-written; where another process got there first
    (`target` already holds a config.json) its copy stands."""
    try:
        os.rename(built, target)
    except OSError:
        if not (Path(target) / "config.json").is_file():
            raise
