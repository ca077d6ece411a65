"""Validation of the raw collection: every input line is kept or rejected, never lost.

Why: raw exports are messy (truncated lines, missing fields, counts written as "1.2K", a JSON
array instead of JSONL, a byte-order mark, stray non-UTF-8 bytes). A bad line must neither stop
the run silently nor disappear: it goes to `rejected.jsonl` with its file, line number and reason,
and the report proves the identity kept + rejected + blank = lines read, per file and in total.

Rules (DESIGN.md section 4, `schema.normalize_record`):

- a line that is not valid UTF-8 -> ``non-UTF-8 bytes``; not JSON -> ``not JSON``; JSON that is
  not an object -> ``not an object``; then missing / wrong type / empty required fields and
  wrong types of expected fields (counts are coerced: "1.2K" -> 1200);
- a `reply_id` seen before (in any file) -> ``duplicate reply_id`` (the first one is kept);
- a UTF-8 byte-order mark is stripped, "\\r\\n" line ends are accepted;
- blank lines are counted as ``blank`` and skipped;
- a file whose whole text is one JSON array is read element by element (line = 1-based element
  number), and the report says so.

The rule fails (ValueError) when the rejected fraction, rejected / (kept + rejected), exceeds
`max_rejected_fraction`, naming the three most frequent reasons, or when nothing is kept at all.
The outputs are written before it fails, so the rejected lines can be inspected.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from polychromic.data.schema import SchemaError, normalize_record
from polychromic.io import write_json, write_jsonl

log = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
RAW_PREVIEW_CHARS = 2000  # a rejected line's `raw` is cut to this length


def _split_lines(data: bytes) -> list[bytes]:
    """Lines as `wc -l` sees them, plus a last line without a newline; "\\r\\n" accepted."""
    if not data:
        return []
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [piece[:-1] if piece.endswith(b"\r") else piece for piece in pieces]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _as_json_array(data: bytes) -> list[Any] | None:
    """The elements when the whole file is one JSON array, else None."""
    stripped = data.lstrip()
    if not stripped.startswith(b"["):
        return None
    try:
        parsed = json.loads(stripped.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        return None
    return parsed if isinstance(parsed, list) else None


class _Collector:
    """Accumulates kept and rejected records and the counts of one run."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.seen_reply_ids: dict[str, tuple[str, int]] = {}

    def reject(
        self, stats: dict[str, Any], file: str, line: int, reason: str, raw: str, detail: str = ""
    ) -> None:
        entry: dict[str, Any] = {"file": file, "line": line, "reason": reason,
                                 "raw": raw[:RAW_PREVIEW_CHARS]}
        if detail:
            entry["detail"] = detail
        self.rejected.append(entry)
        stats["rejected"] += 1
        stats["reasons"][reason] = stats["reasons"].get(reason, 0) + 1

    def consider(self, stats: dict[str, Any], file: str, line: int, obj: Any, raw: str) -> None:
        try:
            record = normalize_record(obj)
        except SchemaError as error:
            self.reject(stats, file, line, error.reason, raw, error.detail)
            return
        reply_id = record["reply_id"]
        if reply_id in self.seen_reply_ids:
            first_file, first_line = self.seen_reply_ids[reply_id]
            self.reject(stats, file, line, "duplicate reply_id", raw,
                        f"{reply_id!r} first seen at {first_file}:{first_line}")
            return
        self.seen_reply_ids[reply_id] = (file, line)
        record["source_file"] = file
        record["source_line"] = line
        self.kept.append(record)
        stats["kept"] += 1


def _validate_file(path: str, collector: _Collector) -> dict[str, Any]:
    data = Path(path).read_bytes()
    stats: dict[str, Any] = {"file": path, "format": "jsonl", "lines_read": 0, "kept": 0,
                             "rejected": 0, "blank": 0, "reasons": {}, "notes": []}
    if data.startswith(BOM):
        data = data[len(BOM):]
        stats["notes"].append("UTF-8 byte-order mark stripped")
    if not data.strip():
        stats["notes"].append("empty file")
        stats["lines_read"] = len(_split_lines(data))
        stats["blank"] = stats["lines_read"]
        log.warning("%s: empty file", path)
        return stats

    elements = _as_json_array(data)
    if elements is not None:
        stats["format"] = "json-array"
        stats["notes"].append(
            f"a JSON array, not JSONL: its {len(elements)} elements were read as lines "
            "(line = 1-based element number)"
        )
        log.warning("%s is a JSON array, not JSONL: reading its %d elements", path, len(elements))
        for number, element in enumerate(elements, start=1):
            stats["lines_read"] += 1
            collector.consider(stats, path, number, element,
                               json.dumps(element, ensure_ascii=False))
        return stats

    for number, raw_bytes in enumerate(_split_lines(data), start=1):
        stats["lines_read"] += 1
        if raw_bytes.startswith(BOM):
            raw_bytes = raw_bytes[len(BOM):]
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as error:
            collector.reject(stats, path, number, "non-UTF-8 bytes",
                             raw_bytes.decode("utf-8", errors="backslashreplace"),
                             f"invalid byte at position {error.start}")
            continue
        if not text.strip():
            stats["blank"] += 1
            continue
        try:
            obj = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            collector.reject(stats, path, number, "not JSON", text, error.msg)
            continue
        except ValueError as error:  # NaN / Infinity: not JSON, and not writable as strict JSON
            collector.reject(stats, path, number, "not JSON", text, str(error))
            continue
        collector.consider(stats, path, number, obj, text)
    return stats


def _identity(stats: dict[str, Any]) -> dict[str, Any]:
    total = stats["kept"] + stats["rejected"] + stats["blank"]
    return {
        "equation": "kept + rejected + blank = lines_read",
        "kept": stats["kept"],
        "rejected": stats["rejected"],
        "blank": stats["blank"],
        "lines_read": stats["lines_read"],
        "holds": total == stats["lines_read"],
    }


def validate_raw(
    raw_files: list[str],
    validated: str,
    rejected: str,
    report: str,
    max_rejected_fraction: float,
) -> dict[str, Any]:
    """Validate `raw_files` into `validated` / `rejected` JSONL and a JSON `report`; return it.

    Raises ValueError when the rejected fraction exceeds `max_rejected_fraction` or when no
    record is kept (outputs are written first), FileNotFoundError for a missing input.
    """
    if isinstance(raw_files, str | Path):
        raw_files = [str(raw_files)]
    if not raw_files:
        raise ValueError("no raw input files given (config data.raw is empty)")
    if not 0.0 <= float(max_rejected_fraction) <= 1.0:
        raise ValueError(f"max_rejected_fraction must be in [0, 1], got {max_rejected_fraction}")
    collector = _Collector()
    per_file = []
    for path in raw_files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"raw input file not found: {path}")
        stats = _validate_file(str(path), collector)
        stats["identity"] = _identity(stats)
        per_file.append(stats)
        log.info("%s: %d lines read, %d kept, %d rejected, %d blank", path, stats["lines_read"],
                 stats["kept"], stats["rejected"], stats["blank"])

    totals: dict[str, Any] = {key: sum(s[key] for s in per_file)
                              for key in ("lines_read", "kept", "rejected", "blank")}
    reasons: Counter[str] = Counter()
    for stats in per_file:
        reasons.update(stats["reasons"])
    totals["reasons"] = dict(reasons.most_common())
    considered = totals["kept"] + totals["rejected"]
    fraction = totals["rejected"] / considered if considered else 0.0
    identity = _identity(totals)
    if not identity["holds"] or any(not s["identity"]["holds"] for s in per_file):
        raise RuntimeError(f"validation lost lines (bug): {identity}")
    worst = [{"reason": reason, "count": count} for reason, count in reasons.most_common(3)]
    result: dict[str, Any] = {
        "files": per_file,
        "totals": totals,
        "identity": identity,
        "rejected_fraction": round(fraction, 6),
        "rejected_fraction_definition": "rejected / (kept + rejected); blank lines not counted",
        "max_rejected_fraction": float(max_rejected_fraction),
        "worst_reasons": worst,
        "passed": fraction <= max_rejected_fraction and totals["kept"] > 0,
        "outputs": {"validated": str(validated), "rejected": str(rejected)},
    }
    write_jsonl(validated, collector.kept)
    write_jsonl(rejected, collector.rejected)
    write_json(report, result)
    log.info("validation: %d kept, %d rejected (%.2f%%), %d blank of %d lines", totals["kept"],
             totals["rejected"], 100 * fraction, totals["blank"], totals["lines_read"])
    if totals["kept"] == 0:
        raise ValueError(
            f"no valid record in {len(raw_files)} raw file(s) ({totals['lines_read']} lines read); "
            f"see {rejected}"
        )
    if fraction > max_rejected_fraction:
        named = ", ".join(f"{w['reason']} ({w['count']})" for w in worst)
        raise ValueError(
            f"rejected fraction {fraction:.4f} exceeds max_rejected_fraction "
            f"{max_rejected_fraction}: {totals['rejected']} of {considered} records rejected; "
            f"worst reasons: {named}; see {rejected}"
        )
    return result
