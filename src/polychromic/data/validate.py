"""Validation of the raw collection: every input line is kept or rejected, never lost.

Why: raw exports are messy (truncated lines, missing fields, counts written as "1.2K", a JSON
array instead of JSONL, a byte-order mark, stray non-UTF-8 bytes). A bad line must neither stop
the run silently nor disappear: it goes to `rejected.jsonl` with its file, line number and reason,
and the report proves the identity kept + rejected + blank + used_as_tweet = lines read, per file
and in total (``used_as_tweet`` is only non-zero for scraper exports, see below).

Reading a file (`read_items`):

- a gzip, bzip2 or xz file (by its magic bytes) is decompressed first; a zip archive, or a
  compressed file cut short, is refused by name (ValueError): compressed bytes are never read
  as lines;
- a UTF-8 byte-order mark is stripped (also in the middle of a file, where ``cat`` puts one),
  a UTF-16 file (by its byte-order mark) is decoded, "\\r\\n" line ends are accepted;
- an empty file (or one of blank lines only) is reported as ``empty file``;
- a file whose whole text is one JSON array is read element by element (line = 1-based element
  number), a file whose whole text is one JSON object (pretty-printed) is one item; the report
  says so. An array cut short (an interrupted download) keeps its complete elements and rejects
  the rest as one ``truncated JSON array`` entry;
- otherwise the file is JSONL: a line that is not valid UTF-8 -> ``non-UTF-8 bytes``; not JSON
  -> ``not JSON`` (the detail keeps the parser's column), or ``truncated last line`` for a
  last line without newline that does not parse; a ``\\ud83d``-style escape of half a character
  -> ``lone surrogate escape``; a NUL character, as a raw byte or as a ``\\u0000`` escape alike
  -> ``NUL character``; blank lines are counted as ``blank``.

Formats (`data.format`, see `polychromic.data.importers`): ``auto`` looks at the first objects
of each file. Raw records are checked one by one (`schema.normalize_record`: ``not an object``,
missing / wrong type / empty required fields, wrong types of expected fields, with counts
coerced: "1.2K" -> 1200; ids stripped of surrounding white space); a `reply_id` seen before
(in any file) -> ``duplicate reply_id`` (the first one is kept); a `tweet_id` seen before with
another text (white space aside) -> ``conflicting tweet text``, naming the first one's file and
line (the first is kept: its replies would otherwise become references of the wrong tweet).
Scraper exports (Apify, Twitter API v2) are items that are tweets: replies are paired with
their tweets across all export files, and each item ends as a record (then checked as above),
as the tweet of at least one pair (``used_as_tweet``), or rejected (``tweet without reply``,
``reply whose tweet is missing``, ``duplicate tweet id``, ...). An API v2 page without tweets
counts as ``blank``.

The rule fails (ValueError) when the rejected fraction, rejected / (kept + rejected), exceeds
`max_rejected_fraction`, naming the three most frequent reasons, or when nothing is kept at all.
The outputs are written before it fails; and since Snakemake deletes the outputs of a failed
job, the report and the rejected lines are also written to `evidence` (a folder under
results/logs/, which Snakemake leaves alone), and the error names those copies. A run that
passes removes an earlier failure's copies, so they never outlive what they describe.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polychromic.data.importers import (
    FORMATS,
    ExportTweet,
    ImportReject,
    Pairing,
    apify_tweet,
    detect_format,
    is_twitter_v2_response,
    pair_tweets,
    twitter_v2_page,
)
from polychromic.data.schema import SchemaError, normalize_record
from polychromic.io import write_json, write_jsonl

log = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
# (name, magic bytes, the standard-library module whose decompress() reads it)
COMPRESSIONS = (("gzip", b"\x1f\x8b", "gzip"), ("bzip2", b"BZh", "bz2"),
                ("xz", b"\xfd7zXZ\x00", "lzma"))
ZIP_MAGIC = b"PK\x03\x04"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
RAW_PREVIEW_CHARS = 2000
NUL_DETAIL = ("{} (U+0000 has no place in a tweet; a file full of them is often UTF-16 "
              "without a byte-order mark)")  # a rejected line's `raw` is cut to this length


@dataclass
class Item:
    """One unit of a file (a JSONL line, an array element): parsed, or the reason it is not."""

    line: int
    obj: Any = None
    raw: str = ""
    reason: str | None = None
    detail: str = ""


def _split_lines(data: bytes) -> list[bytes]:
    """Lines as `wc -l` sees them, plus a last line without a newline; "\\r\\n" accepted."""
    if not data:
        return []
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [piece[:-1] if piece.endswith(b"\r") else piece for piece in pieces]


def _refuse_constant(name: str) -> Any:
    """Refuse NaN and Infinity (not writable as strict JSON)."""
    raise ValueError(f"non-standard JSON constant {name}")


def _any_string(value: Any, found: Any) -> bool:
    """True when `found` holds for a string (or a key) anywhere in the JSON value `value`."""
    if isinstance(value, str):
        return bool(found(value))
    if isinstance(value, dict):
        return any(_any_string(key, found) or _any_string(item, found)
                   for key, item in value.items())
    if isinstance(value, list):
        return any(_any_string(item, found) for item in value)
    return False


def _has_surrogates(value: Any) -> bool:
    """True when a string (or a key) holds half of a UTF-16 pair or an undecodable byte."""
    return _any_string(value, lambda text: any("\ud800" <= char <= "\udfff" for char in text))


def _printable(text: str) -> str:
    """`text` writable as UTF-8: lone surrogates become their escape sequence."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _array_elements(text: str) -> tuple[list[Item], bool] | None:
    """Elements of a JSON array read one by one; None when `text` is not one array.

    The flag says whether the array was cut short (an unreadable rest became one item).
    """
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    position = text.index("[") + 1
    items: list[Item] = []
    length = len(text)

    def skip(at: int) -> int:
        """The first position at or after `at` that is not white space."""
        while at < length and text[at] in " \t\r\n":
            at += 1
        return at

    position = skip(position)
    if position < length and text[position] == "]":
        return ([], False) if not text[skip(position + 1):].strip() else None
    while True:
        number = len(items) + 1
        try:
            obj, end = decoder.raw_decode(text, position)
        except ValueError as error:
            rest = text[position:]
            truncated = not text.rstrip().endswith("]")
            items.append(Item(number, raw=rest, reason="truncated JSON array" if truncated
                              else "not JSON",
                              detail=f"element {number} and everything after it do not parse "
                                     f"({error}); the rest of the file is this one entry"))
            return items, True
        items.append(Item(number, obj=obj, raw=text[position:end]))
        position = skip(end)
        if position >= length:  # every element is complete, only the closing "]" is missing
            return items, True
        if text[position] == "]":
            return (items, False) if not text[position + 1:].strip() else None
        if text[position] != ",":
            return None
        position = skip(position + 1)


def _looks_like_jsonl(data: bytes) -> bool:
    """Several lines, at least half of the non-blank ones JSON on their own."""
    lines = [line for line in _split_lines(data) if line.strip()]
    parsed = 0
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            continue
        parsed += 1
    return parsed >= 2 and 2 * parsed >= len(lines)


def _decompressed(path: str, data: bytes, stats: dict[str, Any]) -> bytes:
    """`data` decompressed when it is a gzip, bzip2 or xz file (by its magic bytes, whatever
    its name); a zip archive, or a compressed file that does not decompress, is refused by
    name (ValueError): its bytes are never read as lines."""
    for name, magic, module in COMPRESSIONS:
        if data.startswith(magic):
            try:
                data = importlib.import_module(module).decompress(data)
            except (OSError, EOFError, ValueError) as error:  # truncated or corrupt
                raise ValueError(f"{path}: a {name} file that does not decompress ({error}); "
                                 "nothing of it was read") from error
            stats["notes"].append(f"{name}-compressed file decompressed")
            return data
    if data.startswith(ZIP_MAGIC):
        raise ValueError(f"{path}: a zip archive, which is not read (it may hold several "
                         "files): unpack it and list its JSONL files in data.raw, or gzip them")
    return data


def read_items(path: str) -> tuple[dict[str, Any], list[Item]]:
    """The items of one file and its reading stats (format, blank lines, notes)."""
    stats: dict[str, Any] = {"file": path, "format": "jsonl", "unit": "line", "blank": 0,
                             "notes": []}
    data = _decompressed(path, Path(path).read_bytes(), stats)
    data = _without_byte_order_mark(data, stats)
    if not data.strip():
        stats["notes"].append("empty file")
        stats["blank"] = len(_split_lines(data))
        log.warning("%s: empty file", path)
        return stats, []
    items = _document_items(path, data, stats)
    if items is None:
        items = _jsonl_items(data, stats)
    return stats, items


def _without_byte_order_mark(data: bytes, stats: dict[str, Any]) -> bytes:
    """`data` as UTF-8 without a leading byte-order mark (a UTF-16 file is decoded first)."""
    if data.startswith(UTF16_BOMS):
        data = data.decode("utf-16", errors="replace").encode("utf-8")
        stats["notes"].append("UTF-16 file (byte-order mark) decoded")
    if data.startswith(BOM):
        data = data[len(BOM):]
        stats["notes"].append("UTF-8 byte-order mark stripped")
    return data


def _document_items(path: str, data: bytes, stats: dict[str, Any]) -> list[Item] | None:
    """The items of a file that is one JSON object or one JSON array; None for JSONL."""
    stripped = data.decode("utf-8", errors="surrogateescape").strip()
    document: Any = None
    if stripped[:1] in "[{":
        try:
            document = json.loads(stripped, parse_constant=_refuse_constant)
        except ValueError:
            document = None
    if isinstance(document, dict) and "\n" in stripped:
        stats["format"], stats["unit"] = "json-object", "document"
        stats["notes"].append("one JSON object spread over several lines, read as one item")
        return [_checked(Item(1, obj=document, raw=stripped), from_bytes=True)]
    if stripped.startswith("[") and not isinstance(document, dict):
        return _array_items(path, data, stripped, document, stats)
    return None


def _array_items(path: str, data: bytes, stripped: str, document: Any,
                 stats: dict[str, Any]) -> list[Item] | None:
    """The elements of a file that is one JSON array (parsed as `document` unless cut short).

    None when the text is no array after all, or a cut-short "array" that reads as JSONL.
    """
    elements = _array_elements(stripped) if document is None else (
        [Item(n, obj=o, raw=json.dumps(o, ensure_ascii=False))
         for n, o in enumerate(document, start=1)], False)
    if elements is not None and elements[1] and _looks_like_jsonl(data):
        elements = None  # JSONL whose first record happens to be an array
    if elements is None:
        return None
    items, cut = elements
    stats["format"], stats["unit"] = "json-array", "element"
    stats["notes"].append(
        f"a JSON array, not JSONL: its {len(items)} elements were read as lines "
        "(line = 1-based element number)"
        + ("; the array is cut short (no closing bracket: the file may have been cut "
           "after its last complete element)" if cut else ""))
    log.warning("%s is a JSON array, not JSONL: reading its elements", path)
    return [_checked(item, from_bytes=True) for item in items]


def _jsonl_items(data: bytes, stats: dict[str, Any]) -> list[Item]:
    """The lines of a JSONL file, parsed or with the reason they are not; counts blank lines."""
    lines = _split_lines(data)
    ends_with_newline = data.endswith(b"\n")
    items = []
    for number, raw_bytes in enumerate(lines, start=1):
        if raw_bytes.startswith(BOM):
            raw_bytes = raw_bytes[len(BOM):]
        if b"\x00" in raw_bytes:
            items.append(Item(number, raw=raw_bytes.decode("utf-8", errors="backslashreplace"),
                              reason="NUL character", detail=NUL_DETAIL.format(
                                  f"a raw NUL byte at position {raw_bytes.index(0)}")))
            continue
        try:
            line = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as error:
            items.append(Item(number, raw=raw_bytes.decode("utf-8", errors="backslashreplace"),
                              reason="non-UTF-8 bytes",
                              detail=f"invalid byte at position {error.start}"))
            continue
        if not line.strip():
            stats["blank"] += 1
            continue
        try:
            obj = json.loads(line, parse_constant=_refuse_constant)
        except ValueError as error:  # includes NaN / Infinity: not writable as strict JSON
            last = number == len(lines) and not ends_with_newline
            items.append(Item(number, raw=line, reason="truncated last line" if last
                              else "not JSON", detail=str(error)))  # with its column
            continue
        items.append(_checked(Item(number, obj=obj, raw=line), from_bytes=False))
    return items


def _checked(item: Item, from_bytes: bool) -> Item:
    """Reject an item holding undecodable bytes or half a UTF-16 pair (unwritable as UTF-8),
    or a NUL character (as a \\u0000 escape: the same reason as a raw NUL byte)."""
    if item.reason is None and _has_surrogates(item.obj):
        item.reason = "non-UTF-8 bytes" if from_bytes else "lone surrogate escape"
        item.detail = ("invalid UTF-8 bytes inside the element" if from_bytes
                       else "a \\uXXXX escape of half a character (a cut emoji?)")
        item.obj = None
    elif item.reason is None and _has_nul(item.obj):
        item.reason, item.obj = "NUL character", None
        item.detail = NUL_DETAIL.format("a \\u0000 escape")
    return item


def _has_nul(value: Any) -> bool:
    """True when a string (or a key) anywhere in `value` holds U+0000."""
    return _any_string(value, lambda text: "\x00" in text)


class _Collector:
    """Accumulates kept and rejected records and the counts of one run."""

    def __init__(self) -> None:
        """Start with nothing kept, rejected or seen."""
        self.kept: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.seen_reply_ids: dict[str, tuple[str, int]] = {}
        # tweet_id -> (its text, white space collapsed; file; line) as first kept
        self.seen_tweets: dict[str, tuple[str, str, int]] = {}

    def reject(self, stats: dict[str, Any], file: str, line: int, reason: str, raw: str,
               detail: str = "", item: int | None = None) -> None:
        """Record one rejected unit with its reason and count it in `stats`."""
        entry: dict[str, Any] = {"file": file, "line": line, "reason": reason,
                                 "raw": _printable(raw[:RAW_PREVIEW_CHARS])}
        if item is not None:
            entry["item"] = item
        if detail:
            entry["detail"] = _printable(detail)
        self.rejected.append(entry)
        stats["rejected"] += 1
        stats["reasons"][reason] = stats["reasons"].get(reason, 0) + 1

    def consider(self, stats: dict[str, Any], file: str, line: int, obj: Any, raw: str,
                 item: int | None = None) -> None:
        """Keep `obj` as a record, or reject it for its schema error or a repeated reply_id."""
        try:
            record = normalize_record(obj)
        except SchemaError as error:
            self.reject(stats, file, line, error.reason, raw, error.detail, item)
            return
        reply_id, tweet_id = record["reply_id"], record["tweet_id"]
        text = " ".join(record["tweet"].split())
        first = self.seen_tweets.get(tweet_id)
        if first is not None and first[0] != text:
            self.reject(stats, file, line, "conflicting tweet text", raw,
                        f"tweet_id {tweet_id!r} has another text at {first[1]}:{first[2]} "
                        f"({first[0][:80]!r}); the first one is kept", item)
            return
        if reply_id in self.seen_reply_ids:
            first_file, first_line = self.seen_reply_ids[reply_id]
            self.reject(stats, file, line, "duplicate reply_id", raw,
                        f"{reply_id!r} first seen at {first_file}:{first_line}", item)
            return
        self.seen_reply_ids[reply_id] = (file, line)
        self.seen_tweets.setdefault(tweet_id, (text, file, line))
        record["source_file"] = file
        record["source_line"] = line
        if item is not None:
            record["source_item"] = item
        self.kept.append(record)
        stats["kept"] += 1


def _export_items(path: str, source_format: str, items: list[Item], stats: dict[str, Any],
                  lookups: list[ExportTweet]) -> list[ExportTweet | ImportReject]:
    """The tweets (or rejects) of one export file; counts its units into `stats`."""
    out: list[ExportTweet | ImportReject] = []
    for item in items:
        if item.reason is not None:
            stats["lines_read"] += 1
            out.append(ImportReject(path, item.line, item.reason, item.raw, item.detail))
        elif source_format == "apify":
            stats["lines_read"] += 1
            out.append(apify_tweet(item.obj, path, item.line, item.raw))
        elif is_twitter_v2_response(item.obj):
            tweets, included, notes = twitter_v2_page(item.obj, path, item.line)
            stats["notes"].extend(notes)
            lookups.extend(included)
            if not tweets:
                stats["lines_read"] += 1
                stats["blank"] += 1
                stats["notes"].append(f"line {item.line}: an API response without tweets")
            stats["lines_read"] += len(tweets)
            out.extend(tweets)
        else:
            stats["lines_read"] += 1
            out.append(ImportReject(path, item.line, "not an API v2 response", item.raw,
                                    "expected an object with data and includes"))
    if source_format == "twitter_v2":
        stats["unit"] = "tweet"
    return out


def _identity(stats: dict[str, Any]) -> dict[str, Any]:
    """The count identity kept + rejected + blank + used_as_tweet = lines_read, and if it holds."""
    total = stats["kept"] + stats["rejected"] + stats["blank"] + stats["used_as_tweet"]
    return {
        "equation": "kept + rejected + blank + used_as_tweet = lines_read",
        "kept": stats["kept"],
        "rejected": stats["rejected"],
        "blank": stats["blank"],
        "used_as_tweet": stats["used_as_tweet"],
        "lines_read": stats["lines_read"],
        "holds": total == stats["lines_read"],
    }


@dataclass
class _Run:
    """The output paths and settings of one validation run."""

    validated: str
    rejected: str
    report: str
    max_rejected_fraction: float
    input_format: str


@dataclass
class _Reading:
    """What reading every input file gave, before replies are paired with their tweets."""

    per_file: list[dict[str, Any]] = field(default_factory=list)
    raw_items: dict[int, list[Item]] = field(default_factory=dict)  # file index -> raw records
    export_items: list[tuple[str, ExportTweet | ImportReject]] = field(default_factory=list)
    lookups: list[ExportTweet] = field(default_factory=list)


# (line, item or 0, "record" | "reject" | "tweet", entry) of one export file
_ExportEntry = tuple[int, int, str, Any]


def _checked_inputs(raw_files: Any, max_rejected_fraction: float, input_format: str
                    ) -> list[str]:
    """The input paths as strings; raises for no, missing or repeated files and bad settings."""
    if isinstance(raw_files, str | Path):
        raw_files = [str(raw_files)]
    if not raw_files:
        raise ValueError("no raw input files given (config data.raw is empty)")
    if not 0.0 <= float(max_rejected_fraction) <= 1.0:
        raise ValueError(f"max_rejected_fraction must be in [0, 1], got {max_rejected_fraction}")
    if input_format not in FORMATS:
        raise ValueError(f"data.format must be one of {list(FORMATS)}, got {input_format!r}")
    for path in raw_files:
        if Path(path).is_dir():
            raise IsADirectoryError(f"data.raw names a directory, not a file: {path} (list "
                                    "the JSONL files inside it)")
        if not Path(path).is_file():
            raise FileNotFoundError(f"raw input file not found: {path}")
    twice = sorted({str(p) for p in raw_files if list(map(str, raw_files)).count(str(p)) > 1})
    if twice:
        raise ValueError(f"data.raw lists the same file more than once: {twice}")
    return list(map(str, raw_files))


def _read_all(paths: list[str], input_format: str) -> _Reading:
    """Read every file first: replies and their tweets may sit in different export files."""
    reading = _Reading()
    for index, path in enumerate(paths):
        stats, items = read_items(path)
        stats.update(lines_read=stats["blank"], kept=0, rejected=0, used_as_tweet=0, reasons={})
        source_format = input_format
        if source_format == "auto":
            source_format = detect_format(item.obj for item in items if item.reason is None)
        stats["source_format"] = source_format
        if source_format == "raw":
            stats["lines_read"] += len(items)
            reading.raw_items[index] = items
        else:
            entries = _export_items(path, source_format, items, stats, reading.lookups)
            reading.export_items.extend((source_format, entry) for entry in entries)
            log.info("%s: %s export, %d items", path, source_format, len(entries))
        reading.per_file.append(stats)
    return reading


def _entries_by_file(pairing: Pairing | None) -> dict[str, list[_ExportEntry]]:
    """The outcome of every export item (record, reject or tweet used), grouped by file."""
    by_file: dict[str, list[_ExportEntry]] = {}
    if pairing is not None:
        for paired in pairing.records:
            by_file.setdefault(paired.file, []).append(
                (paired.line, paired.item or 0, "record", paired))
        for entry in pairing.rejects:
            by_file.setdefault(entry.file, []).append((entry.line, entry.item or 0, "reject",
                                                       entry))
        for file, _line, _item in pairing.used_as_tweet:
            by_file.setdefault(file, []).append((_line, _item or 0, "tweet", None))
    return by_file


def _account_raw(collector: _Collector, stats: dict[str, Any], items: list[Item]) -> None:
    """Keep or reject each item of a raw-record file."""
    path = stats["file"]
    for item in items:
        if item.reason is not None:
            collector.reject(stats, path, item.line, item.reason, item.raw, item.detail)
        else:
            collector.consider(stats, path, item.line, item.obj, item.raw)


def _account_export(collector: _Collector, stats: dict[str, Any],
                    entries: list[_ExportEntry]) -> None:
    """Keep, reject or count as a used tweet each paired item of an export file, in file order."""
    path = stats["file"]
    for line, _item, kind, entry in sorted(entries, key=lambda e: (e[0], e[1])):
        if kind == "record":
            collector.consider(stats, path, line, entry.record, entry.raw, entry.item)
        elif kind == "reject":
            collector.reject(stats, path, line, entry.reason, entry.raw, entry.detail,
                             entry.item)
        else:
            stats["used_as_tweet"] += 1


def _account(reading: _Reading, by_file: dict[str, list[_ExportEntry]]) -> _Collector:
    """Sort every unit of every file into kept or rejected, with the per-file counts."""
    collector = _Collector()
    for index, stats in enumerate(reading.per_file):
        path = stats["file"]
        if index in reading.raw_items:
            _account_raw(collector, stats, reading.raw_items[index])
        else:
            _account_export(collector, stats, by_file.get(path, []))
        stats["identity"] = _identity(stats)
        log.info("%s: %d %ss read, %d kept, %d rejected, %d blank, %d used as tweet", path,
                 stats["lines_read"], stats["unit"], stats["kept"], stats["rejected"],
                 stats["blank"], stats["used_as_tweet"])
    return collector


def _totals(per_file: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts summed over all files, with the rejection reasons most frequent first."""
    totals: dict[str, Any] = {key: sum(s[key] for s in per_file)
                              for key in ("lines_read", "kept", "rejected", "blank",
                                          "used_as_tweet")}
    reasons: Counter[str] = Counter()
    for stats in per_file:
        reasons.update(stats["reasons"])
    totals["reasons"] = dict(reasons.most_common())
    return totals


def _rejected_fraction(totals: dict[str, Any]) -> tuple[float, int]:
    """rejected / (kept + rejected) (0 when nothing was considered) and that denominator."""
    considered = totals["kept"] + totals["rejected"]
    return (totals["rejected"] / considered if considered else 0.0), considered


def _worst_reasons(totals: dict[str, Any]) -> list[dict[str, Any]]:
    """The three most frequent rejection reasons with their counts."""
    return [{"reason": reason, "count": count}
            for reason, count in list(totals["reasons"].items())[:3]]


def _report(run: _Run, per_file: list[dict[str, Any]], pairing: Pairing | None
            ) -> dict[str, Any]:
    """The validation report; raises RuntimeError when the count identity does not hold."""
    totals = _totals(per_file)
    fraction, _ = _rejected_fraction(totals)
    identity = _identity(totals)
    if not identity["holds"] or any(not s["identity"]["holds"] for s in per_file):
        raise RuntimeError(f"validation lost lines (bug): {identity}")
    return {
        "files": per_file,
        "totals": totals,
        "identity": identity,
        "format_setting": run.input_format,
        "pairing": pairing.stats if pairing is not None else None,
        "rejected_fraction": round(fraction, 6),
        "rejected_fraction_definition": "rejected / (kept + rejected); blank lines and tweets "
                                        "used by pairs not counted",
        "max_rejected_fraction": float(run.max_rejected_fraction),
        "worst_reasons": _worst_reasons(totals),
        "passed": fraction <= run.max_rejected_fraction and totals["kept"] > 0,
        "outputs": {"validated": str(run.validated), "rejected": str(run.rejected)},
    }


def _failure(run: _Run, totals: dict[str, Any], n_files: int) -> str | None:
    """Why the run fails (nothing kept, or too large a fraction rejected), or None."""
    fraction, considered = _rejected_fraction(totals)
    if totals["kept"] == 0:
        return f"no valid record in {n_files} raw file(s) ({totals['lines_read']} lines read)"
    if fraction > run.max_rejected_fraction:
        named = ", ".join(f"{w['reason']} ({w['count']})" for w in _worst_reasons(totals))
        return (f"rejected fraction {fraction:.4f} exceeds max_rejected_fraction "
                f"{run.max_rejected_fraction}: {totals['rejected']} of {considered} records "
                f"rejected; worst reasons: {named}")
    return None


def _keep_evidence(evidence: str | None, failure: str | None, rejected: list[dict[str, Any]],
                   report: dict[str, Any]) -> str | None:
    """On failure, the rejected lines and the report copied into `evidence` (where a failed
    job's clean-up cannot reach them); the path of the copied lines, or None. On success an
    earlier failure's copies are removed."""
    if evidence is None:
        return None
    folder = Path(evidence)
    copies = (folder / "rejected.jsonl", folder / "validation_report.json")
    if failure is None:
        for path in copies:
            path.unlink(missing_ok=True)
        return None
    write_jsonl(copies[0], rejected)
    write_json(copies[1], report)
    return str(copies[0])


def validate_raw(
    raw_files: list[str],
    validated: str,
    rejected: str,
    report: str,
    max_rejected_fraction: float,
    input_format: str = "auto",
    evidence: str | None = None,
) -> dict[str, Any]:
    """Validate `raw_files` into `validated` / `rejected` JSONL and a JSON `report`; return it.

    `input_format` is ``auto`` (detected per file), ``raw``, ``apify`` or ``twitter_v2``.
    Raises ValueError when the rejected fraction exceeds `max_rejected_fraction` or when no
    record is kept (outputs are written first, and copied into `evidence`),
    FileNotFoundError for a missing input.
    """
    paths = _checked_inputs(raw_files, max_rejected_fraction, input_format)
    run = _Run(validated, rejected, report, max_rejected_fraction, input_format)
    reading = _read_all(paths, input_format)
    pairing = (pair_tweets(reading.export_items, reading.lookups) if reading.export_items
               else None)
    collector = _account(reading, _entries_by_file(pairing))
    result = _report(run, reading.per_file, pairing)
    write_jsonl(validated, collector.kept)
    write_jsonl(rejected, collector.rejected)
    write_json(report, result)
    totals = result["totals"]
    log.info("validation: %d kept, %d rejected (%.2f%%), %d blank, %d used as tweet of %d",
             totals["kept"], totals["rejected"], 100 * _rejected_fraction(totals)[0],
             totals["blank"], totals["used_as_tweet"], totals["lines_read"])
    failure = _failure(run, totals, len(paths))
    kept = _keep_evidence(evidence, failure, collector.rejected, result)
    if failure is not None:
        raise ValueError(f"{failure}; see {kept or run.rejected}"
                         + (f" (a copy of {run.rejected}, which a failed job loses) and "
                            f"{Path(kept).with_name('validation_report.json')}" if kept else ""))
    return result
