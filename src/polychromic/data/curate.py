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
14. ``near_duplicate``: embedding cosine (`near_duplicate_model`, MiniLM by default,
    `polychromic.embeddings`) >=
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polychromic.data.filters import (
    Encoder,
    count_emoji,
    is_all_caps,
    language_mismatch,
    longest_run,
    near_duplicates,
)
from polychromic.io import read_jsonl, write_json, write_jsonl
from polychromic.settings import CurationSettings, as_dict

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
ENGAGEMENT_MINIMUMS: dict[str, str] = {
    "min_tweet_likes": "tweet_likes",
    "min_reply_likes": "reply_likes",
    "min_reply_author_followers": "reply_author_followers",
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
    """The numeric value of `field` in `record`, or None when absent or not a number."""
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _author(value: Any) -> str:
    """An author handle compared case-insensitively, without a leading "@"."""
    return str(value or "").strip().lstrip("@").casefold()


Hit = Callable[[dict[str, Any]], "dict[str, Any] | bool"]
NamedFilter = tuple[str, Hit]


def _record_filters(settings: CurationSettings) -> list[NamedFilter]:
    """The per-record rule filters 1-12, in order, as (name, record -> hit).

    A hit is True or a dict of details shown with the report's examples; False/None/{} = no hit.
    """
    optional = [_engagement_filter(settings), _language_filter(settings)]
    return [*_text_filters(settings), *_style_filters(settings),
            *(named for named in optional if named is not None)]


def _text_filters(settings: CurationSettings) -> list[NamedFilter]:
    """Filters 1-6 on what the reply says: length, links, hashtags, spam, generic replies."""
    filters: list[NamedFilter] = []
    minimum, maximum = settings.min_reply_chars, settings.max_reply_chars
    if minimum is not None:
        filters.append(("too_short", lambda r: len(r["reply"].strip()) < minimum))
    if maximum is not None:
        filters.append(("too_long", lambda r: len(r["reply"].strip()) > maximum))
    if settings.drop_urls:
        filters.append(("url", lambda r: URL_PATTERN.search(r["reply"]) is not None))
    if settings.max_hashtags is not None:
        hashtags = settings.max_hashtags
        filters.append(("too_many_hashtags",
                        lambda r: len(HASHTAG_PATTERN.findall(r["reply"])) > hashtags))
    spam = phrase_pattern(list(settings.spam_keywords or []))
    if spam is not None:
        def spam_hit(record: dict[str, Any]) -> dict[str, Any] | bool:
            """The spam keyword found in the reply, if any."""
            match = spam.search(record["reply"])
            return {"keyword": match.group(0)} if match else False
        filters.append(("spam", spam_hit))
    generic = {normalize_text(str(text)) for text in settings.generic_replies or []}
    filters.append(("generic", lambda r: normalize_text(r["reply"]) in generic
                    or not normalize_text(r["reply"])))
    return filters


def _style_filters(settings: CurationSettings) -> list[NamedFilter]:
    """Filters 7-10 on how the reply is written and by whom: emoji, caps, runs, self-replies."""
    filters: list[NamedFilter] = []
    if settings.max_emojis is not None:
        emojis = settings.max_emojis
        filters.append(("too_many_emojis", lambda r: count_emoji(r["reply"]) > emojis))
    if settings.drop_all_caps:
        filters.append(("all_caps", lambda r: is_all_caps(r["reply"])))
    if settings.max_repeated_chars is not None:
        run = settings.max_repeated_chars
        filters.append(("repeated_chars", lambda r: longest_run(r["reply"]) > run))
    if settings.drop_self_replies:
        filters.append(("self_reply", lambda r: bool(_author(r.get("reply_author")))
                        and _author(r.get("reply_author")) == _author(r.get("tweet_author"))))
    return filters


def _engagement_filter(settings: CurationSettings) -> NamedFilter | None:
    """Filter 11, low engagement, when any engagement minimum is set."""
    minimums = {field: getattr(settings, key) for key, field in ENGAGEMENT_MINIMUMS.items()
                if getattr(settings, key) is not None}
    if not minimums:
        return None

    def engagement_hit(record: dict[str, Any]) -> dict[str, Any] | bool:
        """The first measured engagement field below its minimum, if any."""
        for field, limit in minimums.items():
            value = _number(record, field)
            if value is not None and value < limit:
                return {"field": field, "value": record[field], "minimum": limit}
        return False
    return "low_engagement", engagement_hit


def _language_filter(settings: CurationSettings) -> NamedFilter | None:
    """Filter 12, a reply fairly surely not in the configured language, when one is set."""
    if settings.language is None:
        return None
    target = settings.language

    def language_hit(record: dict[str, Any]) -> dict[str, Any] | bool:
        """The language guessed for the reply when it is not the target one."""
        guessed = language_mismatch(record["reply"], target)
        return {"guessed": guessed} if guessed else False
    return "language", language_hit


def _likes(record: dict[str, Any]) -> float:
    """The reply's likes (0 when absent), which decide the copy a duplicate filter keeps."""
    return _number(record, "reply_likes") or 0.0


def default_encoder(model: str | None = None) -> Encoder:
    """The encoder of `curation.near_duplicate_model` (a known name or a local folder)."""
    from polychromic.embeddings import get_encoder

    return get_encoder(model).encode


@dataclass
class _Verdicts:
    """Per record: the filter that dropped it (None = kept) and the details of the drop."""

    dropped_by: list[str | None]
    details: list[dict[str, Any] | None]

    def drop(self, index: int, name: str, details: dict[str, Any] | None) -> None:
        """Mark record `index` as dropped by filter `name`."""
        self.dropped_by[index] = name
        self.details[index] = details


def apply_rule_filters(
    records: list[dict[str, Any]],
    settings: CurationSettings,
    encode: Encoder | None = None,
) -> tuple[list[str | None], list[dict[str, Any] | None], dict[str, Any]]:
    """Rule filters 1-14: the filter dropping each record (None = kept), details, report facts.

    Returned: the filter that dropped each record, the details of each drop, and facts for the
    report (near-duplicate timings, unmeasured fields). `encode` (texts -> unit vectors)
    replaces the encoder of `settings.near_duplicate_model`, which is only loaded when the
    near-duplicate filter is on and has something to compare.
    """
    verdicts = _Verdicts([None] * len(records), [None] * len(records))
    facts: dict[str, Any] = {}
    _apply_record_filters(records, _record_filters(settings), verdicts)
    unmeasured = {field: sum(1 for r in records if _number(r, field) is None)
                  for key, field in ENGAGEMENT_MINIMUMS.items()
                  if getattr(settings, key) is not None}
    if unmeasured:
        facts["engagement_unmeasured"] = unmeasured
    if settings.drop_exact_duplicates:
        _drop_exact_duplicates(records, verdicts)
    if settings.near_duplicate_threshold is not None:
        facts["near_duplicate"] = _drop_near_duplicates(
            records, verdicts, settings, _LazyEncoder(encode, settings.near_duplicate_model))
    return verdicts.dropped_by, verdicts.details, facts


def _apply_record_filters(records: list[dict[str, Any]], filters: list[NamedFilter],
                          verdicts: _Verdicts) -> None:
    """Drop each record by the first of `filters` that hits it."""
    for index, record in enumerate(records):
        for name, hit in filters:
            result = hit(record)
            if result:
                verdicts.drop(index, name, result if isinstance(result, dict) else None)
                break


def _drop_exact_duplicates(records: list[dict[str, Any]], verdicts: _Verdicts) -> None:
    """Drop all but the most-liked (then first) surviving copy of a reply to the same tweet."""
    best: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        if verdicts.dropped_by[index] is not None:
            continue
        key = (record["tweet_id"], normalize_text(record["reply"]))
        if key not in best or _likes(record) > _likes(records[best[key]]):
            best[key] = index
    for index, record in enumerate(records):
        if verdicts.dropped_by[index] is None:
            kept = best[(record["tweet_id"], normalize_text(record["reply"]))]
            if kept != index:
                verdicts.drop(index, "exact_duplicate",
                              {"kept_reply_id": records[kept]["reply_id"]})


def _drop_near_duplicates(records: list[dict[str, Any]], verdicts: _Verdicts,
                          settings: CurationSettings, encode: Encoder) -> dict[str, Any]:
    """Drop surviving replies too close to a kept one (embedding cosine); return the facts."""
    threshold = settings.near_duplicate_threshold
    alive = [index for index, verdict in enumerate(verdicts.dropped_by) if verdict is None]
    groups = ([records[i]["tweet_id"] for i in alive]
              if settings.near_duplicate_scope == "tweet" else None)
    found, info = near_duplicates(
        [records[i]["reply"] for i in alive], [_likes(records[i]) for i in alive],
        float(threshold), encode, groups)
    for position, (kept, cosine) in found.items():
        index, kept_index = alive[position], alive[kept]
        verdicts.drop(index, "near_duplicate", {"kept_reply_id": records[kept_index]["reply_id"],
                                                "kept_reply": records[kept_index]["reply"],
                                                "cosine": round(cosine, 4)})
    log.info("near-duplicates: %d of %d compared (%d texts encoded in %.1f s, compared in "
             "%.2f s)", len(found), info["compared"], info["encoded_texts"],
             info["encode_seconds"], info["compare_seconds"])
    return {**info, "threshold": float(threshold), "scope": settings.near_duplicate_scope}


class _LazyEncoder:
    """Loads the sentence encoder on first use (not at all when nothing needs comparing)."""

    def __init__(self, encode: Encoder | None, model: str) -> None:
        """Use `encode` when given, else the encoder `model` once needed."""
        self.encode, self.model = encode, model

    def __call__(self, texts: list[str]) -> Any:
        """The embeddings of `texts` (loading the encoder on the first call)."""
        if self.encode is None:
            self.encode = default_encoder(self.model)
        return self.encode(texts)


def rule_filter_survivors(
    records: list[dict[str, Any]],
    settings: CurationSettings,
    encode: Encoder | None = None,
) -> list[dict[str, Any]]:
    """The records that pass rule filters 1-14 (the candidates for human review)."""
    verdicts, _, _ = apply_rule_filters(records, settings, encode)
    return [record for record, verdict in zip(records, verdicts, strict=True) if verdict is None]


def curate(
    validated: str,
    curated: str,
    report: str,
    settings: CurationSettings,
    decisions: str | None,
    encode: Encoder | None = None,
) -> dict[str, Any]:
    """Filter `validated` into `curated` and write `report` (JSON); return the report.

    `settings` is the config's `curation` section; `decisions` the path of a decisions JSONL file
    (None or a missing file: no decisions); `encode` replaces the encoder of the
    near-duplicate filter (tests).
    """
    records = read_jsonl(validated)
    dropped_by, details, facts = apply_rule_filters(records, settings, encode)
    verdicts = _Verdicts(dropped_by, details)
    examples = _Examples(records, verdicts)
    for index, verdict in enumerate(verdicts.dropped_by):
        if verdict is not None:
            examples.note(index, verdict)
    decided, decisions_summary = read_decisions(decisions)
    applied = _apply_decisions(records, verdicts, decided, settings.undecided, examples)
    output = [record for index, record in enumerate(records)
              if verdicts.dropped_by[index] is None]
    dropped = {name: sum(1 for verdict in verdicts.dropped_by if verdict == name)
               for name in FILTER_ORDER}
    result: dict[str, Any] = {
        "input": len(records),
        "output": len(output),
        "filter_order": list(FILTER_ORDER),
        "filters": {name: {"dropped": dropped[name], "examples": examples.by_filter[name]}
                    for name in FILTER_ORDER},
        "dropped_total": sum(dropped.values()),
        "rule_filter_survivors": len(records) - sum(dropped[name] for name in RULE_FILTERS),
        "decisions": _decisions_report(decisions_summary, applied, settings.undecided),
        "settings": {key: value for key, value in as_dict(settings).items()
                     if key != "decisions"},
        **facts,
        "identity": _checked_identity(len(records), len(output), dropped),
    }
    write_jsonl(curated, output)
    write_json(report, result)
    log.info("curation: %d -> %d records (%s)", len(records), len(output),
             ", ".join(f"{name} {count}" for name, count in dropped.items() if count))
    if not output:
        log.warning("curation kept no record")
    return result


class _Examples:
    """The first MAX_EXAMPLES records dropped by each filter, with the details of the drop."""

    def __init__(self, records: list[dict[str, Any]], verdicts: _Verdicts) -> None:
        """Collect examples of `records`, whose drop details are in `verdicts`."""
        self.records, self.verdicts = records, verdicts
        self.by_filter: dict[str, list[dict[str, Any]]] = {name: [] for name in FILTER_ORDER}

    def note(self, index: int, name: str) -> None:
        """Show record `index` as an example of filter `name` unless it has enough already."""
        if len(self.by_filter[name]) < MAX_EXAMPLES:
            record = self.records[index]
            self.by_filter[name].append({"reply_id": record["reply_id"],
                                         "tweet_id": record["tweet_id"],
                                         "reply": record["reply"],
                                         **(self.verdicts.details[index] or {})})


@dataclass
class _Applied:
    """How the human decisions applied to the records."""

    counts: dict[str, int]  # decisions of the records that passed the rule filters
    keep_overridden: int  # "keep" decisions of records a rule filter dropped
    unmatched: int  # decided reply_ids that are not in the input


def _apply_decisions(records: list[dict[str, Any]], verdicts: _Verdicts,
                     decided: dict[str, str], undecided: str, examples: _Examples) -> _Applied:
    """Drop the rule-filter survivors a human discarded (and the undecided ones, if so set)."""
    applied = _Applied({"keep": 0, "discard": 0, "skip": 0, "none": 0}, 0, 0)
    input_ids = set()
    for index, record in enumerate(records):
        input_ids.add(record["reply_id"])
        decision = decided.get(record["reply_id"])
        if verdicts.dropped_by[index] is not None:
            applied.keep_overridden += decision == "keep"
            continue
        applied.counts[decision or "none"] += 1
        if decision == "discard":
            verdicts.drop(index, "human_discard", verdicts.details[index])
            examples.note(index, "human_discard")
        elif decision != "keep" and undecided == "drop":
            verdicts.drop(index, "undecided_dropped", verdicts.details[index])
            examples.note(index, "undecided_dropped")
    applied.unmatched = len(set(decided) - input_ids)
    return applied


def _decisions_report(summary: dict[str, Any], applied: _Applied, undecided: str
                      ) -> dict[str, Any]:
    """The decisions part of the curation report: the file, counts and their caveats."""
    return {
        **summary,
        "counts": applied.counts,
        "counts_note": "decisions of the records that passed the rule filters "
                       "(skip and none are undecided)",
        "undecided_policy": undecided,
        "keep_overridden_by_rule_filter": applied.keep_overridden,
        "unmatched_reply_ids": applied.unmatched,
    }


def _checked_identity(n_input: int, n_output: int, dropped: dict[str, int]) -> dict[str, Any]:
    """The identity input = kept + sum(dropped); raises RuntimeError when it does not hold."""
    identity = {
        "equation": "input = kept + sum(dropped)",
        "input": n_input,
        "kept": n_output,
        "dropped": sum(dropped.values()),
        "holds": n_input == n_output + sum(dropped.values()),
    }
    if not identity["holds"]:
        raise RuntimeError(f"curation lost records (bug): {identity}")
    return identity
