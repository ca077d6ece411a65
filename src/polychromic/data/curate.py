"""Curation: rule filters, then human decisions; every dropped record is counted and shown.

Why: a model learns what it is shown. Replies that are empty talk ("so true"), links, spam,
shouting or copies teach nothing about replying, and a person reviewing samples must be able to
remove more. Each record is dropped by the *first* filter that hits it, in this fixed order
(a filter whose setting is null or false is off):

1. ``too_short``: the stripped reply has fewer than `min_reply_chars` characters;
2. ``too_long``: more than `max_reply_chars` characters;
3. ``url``: contains a link (http(s)://, www., or a bare domain such as example.com/x), when
   `drop_urls`;
4. ``too_many_hashtags``: more than `max_hashtags` hashtags;
5. ``spam``: contains one of `spam_keywords` as a whole word or phrase, case-insensitive
   ("dm me" hits "DM  me!", "user" does not hit "ser", "crypto" does not hit "cryptography");
6. ``generic``: the normalised reply (lowercase, punctuation and symbols removed, whitespace
   collapsed) equals a normalised entry of `generic_replies`, or has no letter or digit left;
7. ``too_many_emojis``: more than `max_emojis` emoji (`filters.count_emoji`);
8. ``all_caps``: shouting, when `drop_all_caps` (`filters.is_all_caps`: at least 8 cased
   letters, at least 90 % upper case);
9. ``repeated_chars``: one character repeated more than `max_repeated_chars` times in a row
   ("soooooo", "!!!!!!"; digits and spaces excluded);
10. ``self_reply``: reply author == tweet author (case-insensitive, "@" ignored), when
    `drop_self_replies` (self-threads are not replies to someone);
11. ``low_engagement``: `tweet_likes` < `min_tweet_likes`, `reply_likes` < `min_reply_likes`
    or `reply_author_followers` < `min_reply_author_followers`; a record without the field is
    kept and counted as unmeasured;
12. ``language``: the reply is fairly surely not in `language` (`filters.language_mismatch`, a
    heuristic on function words and scripts that needs no download);
13. ``exact_duplicate``: same tweet and same normalised reply as another record, when
    `drop_exact_duplicates`; the most-liked copy is kept (ties: the first in the file);
14. ``near_duplicate``: embedding cosine (MiniLM, `polychromic.embeddings`) >=
    `near_duplicate_threshold` with a kept reply of the same tweet (`near_duplicate_scope:
    tweet`) or of any tweet (``corpus``); the most-liked is kept (`filters.near_duplicates`,
    batched, O(n * d) memory);
15. ``human_discard``: the decisions file says "discard";
16. ``undecided_dropped``: no decision ("skip" counts as none) and `undecided` is "drop".

A decisions file is JSONL, one ``{"reply_id": ..., "decision": "keep"|"discard"|"skip", ...}`` per
line (written by ``polychromic curate``); the last decision for a reply_id wins; a missing file
means no decisions. A "keep" does not rescue a record a rule filter dropped (the report counts
such cases). The report proves input = kept + sum(dropped).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polychromic.data.filters import (
    LANGUAGES,
    Encoder,
    count_emoji,
    is_all_caps,
    language_mismatch,
    longest_run,
    near_duplicates,
)
from polychromic.io import read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

FILTER_ORDER: tuple[str, ...] = (
    "too_short",
    "too_long",
    "url",
    "too_many_hashtags",
    "spam",
    "generic",
    "too_many_emojis",
    "all_caps",
    "repeated_chars",
    "self_reply",
    "low_engagement",
    "language",
    "exact_duplicate",
    "near_duplicate",
    "human_discard",
    "undecided_dropped",
)
RULE_FILTERS: tuple[str, ...] = FILTER_ORDER[:-2]
DECISIONS: tuple[str, ...] = ("keep", "discard", "skip")
SCOPES: tuple[str, ...] = ("corpus", "tweet")
ENGAGEMENT_MINIMUMS: dict[str, str] = {
    "min_tweet_likes": "tweet_likes",
    "min_reply_likes": "reply_likes",
    "min_reply_author_followers": "reply_author_followers",
}
DEFAULT_SETTINGS: dict[str, Any] = {
    "min_reply_chars": 12,
    "max_reply_chars": 280,
    "drop_urls": True,
    "max_hashtags": 2,
    "spam_keywords": [],
    "generic_replies": [],
    "max_emojis": 3,
    "drop_all_caps": True,
    "max_repeated_chars": 4,
    "drop_self_replies": True,
    "min_tweet_likes": None,
    "min_reply_likes": None,
    "min_reply_author_followers": None,
    "language": "en",
    "drop_exact_duplicates": True,
    "near_duplicate_threshold": None,
    "near_duplicate_scope": "corpus",
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
    for key in ("min_reply_chars", "max_reply_chars", "max_hashtags", "max_emojis",
                "max_repeated_chars", *ENGAGEMENT_MINIMUMS):
        value = merged[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise ValueError(
                f"curation.{key} must be a non-negative integer or null, got {value!r}"
            )
    if merged["language"] is not None and merged["language"] not in LANGUAGES:
        raise ValueError(f"curation.language must be one of {list(LANGUAGES)} or null, "
                         f"got {merged['language']!r}")
    threshold = merged["near_duplicate_threshold"]
    if threshold is not None and (isinstance(threshold, bool)
                                  or not isinstance(threshold, int | float)
                                  or not 0.0 < threshold <= 1.0):
        raise ValueError(f"curation.near_duplicate_threshold must be in (0, 1] or null, "
                         f"got {threshold!r}")
    if merged["near_duplicate_scope"] not in SCOPES:
        raise ValueError(f"curation.near_duplicate_scope must be one of {list(SCOPES)}, "
                         f"got {merged['near_duplicate_scope']!r}")
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


def _number(record: dict[str, Any], field: str) -> float | None:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _author(value: Any) -> str:
    return str(value or "").strip().lstrip("@").casefold()


Hit = Callable[[dict[str, Any]], "dict[str, Any] | bool"]


def _record_filters(settings: dict[str, Any]) -> list[tuple[str, Hit]]:
    """The per-record rule filters 1-12, in order, as (name, record -> hit).

    A hit is True or a dict of details shown with the report's examples; False/None/{} = no hit.
    """
    filters: list[tuple[str, Hit]] = []
    minimum, maximum = settings["min_reply_chars"], settings["max_reply_chars"]
    if minimum is not None:
        filters.append(("too_short", lambda r: len(r["reply"].strip()) < minimum))
    if maximum is not None:
        filters.append(("too_long", lambda r: len(r["reply"].strip()) > maximum))
    if settings["drop_urls"]:
        filters.append(("url", lambda r: URL_PATTERN.search(r["reply"]) is not None))
    if settings["max_hashtags"] is not None:
        hashtags = settings["max_hashtags"]
        filters.append(("too_many_hashtags",
                        lambda r: len(HASHTAG_PATTERN.findall(r["reply"])) > hashtags))
    spam = phrase_pattern(list(settings["spam_keywords"] or []))
    if spam is not None:
        def spam_hit(record: dict[str, Any]) -> dict[str, Any] | bool:
            match = spam.search(record["reply"])
            return {"keyword": match.group(0)} if match else False
        filters.append(("spam", spam_hit))
    generic = {normalize_text(str(text)) for text in settings["generic_replies"] or []}
    filters.append(("generic", lambda r: normalize_text(r["reply"]) in generic
                    or not normalize_text(r["reply"])))
    if settings["max_emojis"] is not None:
        emojis = settings["max_emojis"]
        filters.append(("too_many_emojis", lambda r: count_emoji(r["reply"]) > emojis))
    if settings["drop_all_caps"]:
        filters.append(("all_caps", lambda r: is_all_caps(r["reply"])))
    if settings["max_repeated_chars"] is not None:
        run = settings["max_repeated_chars"]
        filters.append(("repeated_chars", lambda r: longest_run(r["reply"]) > run))
    if settings["drop_self_replies"]:
        filters.append(("self_reply", lambda r: bool(_author(r.get("reply_author")))
                        and _author(r.get("reply_author")) == _author(r.get("tweet_author"))))
    minimums = {field: settings[key] for key, field in ENGAGEMENT_MINIMUMS.items()
                if settings[key] is not None}
    if minimums:
        def engagement_hit(record: dict[str, Any]) -> dict[str, Any] | bool:
            for field, limit in minimums.items():
                value = _number(record, field)
                if value is not None and value < limit:
                    return {"field": field, "value": record[field], "minimum": limit}
            return False
        filters.append(("low_engagement", engagement_hit))
    if settings["language"] is not None:
        target = settings["language"]

        def language_hit(record: dict[str, Any]) -> dict[str, Any] | bool:
            guessed = language_mismatch(record["reply"], target)
            return {"guessed": guessed} if guessed else False
        filters.append(("language", language_hit))
    return filters


def _likes(record: dict[str, Any]) -> float:
    return _number(record, "reply_likes") or 0.0


def default_encoder(embedding_model: str | None = None) -> Encoder:
    """The MiniLM sentence encoder (local weights; `embedding_model` = a local folder or None)."""
    from polychromic.embeddings import get_encoder

    return get_encoder(embedding_model).encode


def apply_rule_filters(
    records: list[dict[str, Any]],
    settings: dict[str, Any],
    embedding_model: str | None = None,
    encode: Encoder | None = None,
) -> tuple[list[str | None], list[dict[str, Any] | None], dict[str, Any]]:
    """Rule filters 1-14 on `records`: the filter that dropped each record (None = kept), the
    details of each drop, and facts for the report (near-duplicate timings, unmeasured fields).

    `encode` (texts -> unit vectors) replaces the MiniLM encoder, which is only loaded when the
    near-duplicate filter is on and has something to compare.
    """
    config = check_settings(settings)
    verdicts: list[str | None] = [None] * len(records)
    details: list[dict[str, Any] | None] = [None] * len(records)
    facts: dict[str, Any] = {}
    filters = _record_filters(config)
    for index, record in enumerate(records):
        for name, hit in filters:
            result = hit(record)
            if result:
                verdicts[index] = name
                details[index] = result if isinstance(result, dict) else None
                break
    unmeasured = {field: sum(1 for r in records if _number(r, field) is None)
                  for key, field in ENGAGEMENT_MINIMUMS.items() if config[key] is not None}
    if unmeasured:
        facts["engagement_unmeasured"] = unmeasured

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
                    verdicts[index] = "exact_duplicate"
                    details[index] = {"kept_reply_id": records[kept]["reply_id"]}

    threshold = config["near_duplicate_threshold"]
    if threshold is not None:
        alive = [index for index, verdict in enumerate(verdicts) if verdict is None]
        groups = ([records[i]["tweet_id"] for i in alive]
                  if config["near_duplicate_scope"] == "tweet" else None)
        found, info = near_duplicates(
            [records[i]["reply"] for i in alive], [_likes(records[i]) for i in alive],
            float(threshold), _LazyEncoder(encode, embedding_model), groups)
        for position, (kept, cosine) in found.items():
            index, kept_index = alive[position], alive[kept]
            verdicts[index] = "near_duplicate"
            details[index] = {"kept_reply_id": records[kept_index]["reply_id"],
                              "kept_reply": records[kept_index]["reply"],
                              "cosine": round(cosine, 4)}
        facts["near_duplicate"] = {**info, "threshold": float(threshold),
                                   "scope": config["near_duplicate_scope"]}
        log.info("near-duplicates: %d of %d compared (%d texts encoded in %.1f s, compared in "
                 "%.2f s)", len(found), info["compared"], info["encoded_texts"],
                 info["encode_seconds"], info["compare_seconds"])
    return verdicts, details, facts


class _LazyEncoder:
    """Loads the sentence encoder on first use (not at all when nothing needs comparing)."""

    def __init__(self, encode: Encoder | None, embedding_model: str | None) -> None:
        self.encode, self.embedding_model = encode, embedding_model

    def __call__(self, texts: list[str]) -> Any:
        if self.encode is None:
            self.encode = default_encoder(self.embedding_model)
        return self.encode(texts)


def rule_filter_survivors(
    records: list[dict[str, Any]],
    settings: dict[str, Any],
    embedding_model: str | None = None,
    encode: Encoder | None = None,
) -> list[dict[str, Any]]:
    """The records that pass rule filters 1-14 (the candidates for human review)."""
    verdicts, _, _ = apply_rule_filters(records, settings, embedding_model, encode)
    return [record for record, verdict in zip(records, verdicts, strict=True) if verdict is None]


def curate(
    validated: str,
    curated: str,
    report: str,
    settings: dict[str, Any],
    decisions: str | None,
    embedding_model: str | None = None,
    encode: Encoder | None = None,
) -> dict[str, Any]:
    """Filter `validated` into `curated` and write `report` (JSON); return the report.

    `settings` is the config `curation` block; `decisions` the path of a decisions JSONL file
    (None or a missing file: no decisions); `embedding_model` a local encoder folder for the
    near-duplicate filter (None: the packaged MiniLM); `encode` replaces the encoder (tests).
    """
    config = check_settings(settings)
    records = read_jsonl(validated)
    verdicts, details, facts = apply_rule_filters(records, config, embedding_model, encode)
    examples: dict[str, list[dict[str, Any]]] = {name: [] for name in FILTER_ORDER}

    def note(index: int, name: str) -> None:
        if len(examples[name]) < MAX_EXAMPLES:
            examples[name].append({"reply_id": records[index]["reply_id"],
                                   "tweet_id": records[index]["tweet_id"],
                                   "reply": records[index]["reply"], **(details[index] or {})})

    for index, verdict in enumerate(verdicts):
        if verdict is not None:
            note(index, verdict)

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
            verdicts[index] = "human_discard"
            note(index, "human_discard")
        elif decision != "keep" and config["undecided"] == "drop":
            verdicts[index] = "undecided_dropped"
            note(index, "undecided_dropped")

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
        "rule_filter_survivors": len(records) - sum(dropped[name] for name in RULE_FILTERS),
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
        **facts,
        "identity": identity,
    }
    write_jsonl(curated, output)
    write_json(report, result)
    log.info("curation: %d -> %d records (%s)", len(records), len(output),
             ", ".join(f"{name} {count}" for name, count in dropped.items() if count))
    if not output:
        log.warning("curation kept no record")
    return result
