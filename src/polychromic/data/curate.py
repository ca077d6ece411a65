"""Curation: rule filters, then human decisions; every dropped record is counted and shown.

Why: a model learns what it is shown. Replies that are empty talk ("so true"), links, spam or
copies teach nothing about replying, and a person reviewing samples must be able to remove more.
Each record is dropped by the *first* filter that hits it, in this fixed order:

1. ``too_short``: the stripped reply has fewer than `min_reply_chars` characters;
2. ``too_long``: more than `max_reply_chars` characters (null: no limit);
3. ``url``: contains a link (http(s)://, www., or a bare domain such as example.com/x), when
   `drop_urls`;
4. ``too_many_hashtags``: more than `max_hashtags` hashtags (null: no limit);
5. ``spam``: contains one of `spam_keywords` as a whole word or phrase, case-insensitive
   ("dm me" hits "DM  me!", "user" does not hit "ser", "crypto" does not hit "cryptography");
6. ``generic``: the normalised reply (lowercase, punctuation and symbols removed, whitespace
   collapsed) equals a normalised entry of `generic_replies`, or has no letter or digit left;
7. ``exact_duplicate``: same tweet and same normalised reply as another record, when
   `drop_exact_duplicates`; the most-liked copy is kept (ties: the first in the file);
8. ``human_discard``: the decisions file says "discard";
9. ``undecided_dropped``: no decision ("skip" counts as none) and `undecided` is "drop".

A decisions file is JSONL, one ``{"reply_id": ..., "decision": "keep"|"discard"|"skip", ...}`` per
line; the last decision for a reply_id wins; a missing file means no decisions. A "keep" does not
rescue a record a rule filter dropped (the report counts such cases). The report proves
input = kept + sum(dropped).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polychromic.io import read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

FILTER_ORDER: tuple[str, ...] = (
    "too_short",
    "too_long",
    "url",
    "too_many_hashtags",
    "spam",
    "generic",
    "exact_duplicate",
    "human_discard",
    "undecided_dropped",
)
DECISIONS: tuple[str, ...] = ("keep", "discard", "skip")
DEFAULT_SETTINGS: dict[str, Any] = {
    "min_reply_chars": 12,
    "max_reply_chars": 280,
    "drop_urls": True,
    "max_hashtags": 2,
    "spam_keywords": [],
    "generic_replies": [],
    "drop_exact_duplicates": True,
    "decisions": None,
    "undecided": "keep",
}
MAX_EXAMPLES = 5

URL_PATTERN = re.compile(
    r"(?i)(?:\bhttps?://\S+|\bwww\.\S+|"
    r"\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|ly|co|me|gg|tv|info|xyz)"
    r"(?:/\S*)?(?!\w))"
)
HASHTAG_PATTERN = re.compile(r"(?<!\w)#\w+")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lowercase, drop punctuation and symbols (keep letters, digits, spaces), collapse spaces."""
    kept = []
    for char in text.casefold():
        category = unicodedata.category(char)
        if char.isspace():
            kept.append(" ")
        elif category[0] in ("L", "N", "M"):
            kept.append(char)
        else:
            kept.append(" ")
    return _SPACE.sub(" ", "".join(kept)).strip()


def phrase_pattern(phrases: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any phrase as whole words (flexible spaces)."""
    parts = []
    for phrase in phrases:
        words = str(phrase).split()
        if words:
            parts.append(r"\s+".join(re.escape(word) for word in words))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings merged over the defaults; unknown keys and bad values raise ValueError."""
    unknown = sorted(set(settings or {}) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(
            f"unknown curation setting(s) {unknown}; known: {sorted(DEFAULT_SETTINGS)}"
        )
    merged = {**DEFAULT_SETTINGS, **(settings or {})}
    if merged["undecided"] not in ("keep", "drop"):
        raise ValueError(
            f"curation.undecided must be 'keep' or 'drop', got {merged['undecided']!r}"
        )
    for key in ("min_reply_chars", "max_reply_chars", "max_hashtags"):
        value = merged[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise ValueError(
                f"curation.{key} must be a non-negative integer or null, got {value!r}"
            )
    return merged


def read_decisions(path: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    """reply_id -> last decision of a decisions JSONL file, and a summary of the file."""
    summary: dict[str, Any] = {"file": path, "found": False, "lines": 0, "reply_ids": 0}
    if not path:
        return {}, summary
    if not Path(path).is_file():
        log.info("no decisions file at %s: every record is undecided", path)
        return {}, summary
    summary["found"] = True
    decisions: dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            summary["lines"] += 1
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
            if not isinstance(entry, dict) or "reply_id" not in entry:
                raise ValueError(f"{path}:{number}: expected an object with reply_id and decision")
            decision = entry.get("decision")
            if decision not in DECISIONS:
                raise ValueError(f"{path}:{number}: decision must be one of {list(DECISIONS)}, "
                                 f"got {decision!r}")
            decisions[str(entry["reply_id"])] = decision
    summary["reply_ids"] = len(decisions)
    return decisions, summary


def _rule_filters(settings: dict[str, Any]) -> list[tuple[str, Callable[[str], bool]]]:
    """The per-record rule filters 1-6, in order, as (name, reply -> hit)."""
    filters: list[tuple[str, Callable[[str], bool]]] = []
    minimum, maximum = settings["min_reply_chars"], settings["max_reply_chars"]
    if minimum is not None:
        filters.append(("too_short", lambda reply: len(reply.strip()) < minimum))
    if maximum is not None:
        filters.append(("too_long", lambda reply: len(reply.strip()) > maximum))
    if settings["drop_urls"]:
        filters.append(("url", lambda reply: URL_PATTERN.search(reply) is not None))
    if settings["max_hashtags"] is not None:
        limit = settings["max_hashtags"]
        filters.append(("too_many_hashtags",
                        lambda reply: len(HASHTAG_PATTERN.findall(reply)) > limit))
    spam = phrase_pattern(list(settings["spam_keywords"] or []))
    if spam is not None:
        filters.append(("spam", lambda reply: spam.search(reply) is not None))
    generic = {normalize_text(str(text)) for text in settings["generic_replies"] or []}
    filters.append(("generic", lambda reply: normalize_text(reply) in generic
                    or not normalize_text(reply)))
    return filters


def _likes(record: dict[str, Any]) -> float:
    value = record.get("reply_likes")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def curate(
    validated: str,
    curated: str,
    report: str,
    settings: dict[str, Any],
    decisions: str | None,
) -> dict[str, Any]:
    """Filter `validated` into `curated` and write `report` (JSON); return the report.

    `settings` is the config `curation` block; `decisions` the path of a decisions JSONL file
    (None or a missing file: no decisions).
    """
    config = check_settings(settings)
    records = read_jsonl(validated)
    verdicts: list[str | None] = [None] * len(records)
    examples: dict[str, list[dict[str, Any]]] = {name: [] for name in FILTER_ORDER}

    def drop(index: int, name: str, **extra: Any) -> None:
        verdicts[index] = name
        if len(examples[name]) < MAX_EXAMPLES:
            examples[name].append({"reply_id": records[index]["reply_id"],
                                   "reply": records[index]["reply"], **extra})

    filters = _rule_filters(config)
    for index, record in enumerate(records):
        for name, hit in filters:
            if hit(record["reply"]):
                drop(index, name)
                break

    if config["drop_exact_duplicates"]:
        best: dict[tuple[str, str], int] = {}
        for index, record in enumerate(records):
            if verdicts[index] is not None:
                continue
            key = (record["tweet_id"], normalize_text(record["reply"]))
            if key not in best or _likes(record) > _likes(records[best[key]]):
                best[key] = index
        for index, record in enumerate(records):
            if verdicts[index] is None:
                kept = best[(record["tweet_id"], normalize_text(record["reply"]))]
                if kept != index:
                    drop(index, "exact_duplicate", kept_reply_id=records[kept]["reply_id"])

    decided, decisions_summary = read_decisions(decisions)
    decision_counts = {"keep": 0, "discard": 0, "skip": 0, "none": 0}
    keep_overridden = 0
    input_ids = set()
    for index, record in enumerate(records):
        input_ids.add(record["reply_id"])
        decision = decided.get(record["reply_id"])
        if verdicts[index] is not None:
            keep_overridden += decision == "keep"
            continue
        decision_counts[decision or "none"] += 1
        if decision == "discard":
            drop(index, "human_discard")
        elif decision != "keep" and config["undecided"] == "drop":
            drop(index, "undecided_dropped")

    output = [record for index, record in enumerate(records) if verdicts[index] is None]
    dropped = {name: sum(1 for verdict in verdicts if verdict == name) for name in FILTER_ORDER}
    identity = {
        "equation": "input = kept + sum(dropped)",
        "input": len(records),
        "kept": len(output),
        "dropped": sum(dropped.values()),
        "holds": len(records) == len(output) + sum(dropped.values()),
    }
    if not identity["holds"]:
        raise RuntimeError(f"curation lost records (bug): {identity}")
    result: dict[str, Any] = {
        "input": len(records),
        "output": len(output),
        "filter_order": list(FILTER_ORDER),
        "filters": {name: {"dropped": dropped[name], "examples": examples[name]}
                    for name in FILTER_ORDER},
        "dropped_total": sum(dropped.values()),
        "decisions": {
            **decisions_summary,
            "counts": decision_counts,
            "counts_note": "decisions of the records that passed the rule filters "
                           "(skip and none are undecided)",
            "undecided_policy": config["undecided"],
            "keep_overridden_by_rule_filter": keep_overridden,
            "unmatched_reply_ids": len(set(decided) - input_ids),
        },
        "settings": {key: value for key, value in config.items() if key != "decisions"},
        "identity": identity,
    }
    write_jsonl(curated, output)
    write_json(report, result)
    log.info("curation: %d -> %d records (%s)", len(records), len(output),
             ", ".join(f"{name} {count}" for name, count in dropped.items() if count))
    if not output:
        log.warning("curation kept no record")
    return result
