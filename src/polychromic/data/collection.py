"""Is the collection fit for the study? Counts, distributions, thresholds, and a sample to read.

Why: before any model is trained, a person should see what was collected: how many pairs and
tweets, how many distinct tweets and authors, engagement and reply lengths, the date range, and
whether the minimums the study needs (config `data.thresholds`) are met. A failed threshold is a
warning by default and an error with `strict` (config `data.strict`). `sample_for_review` writes
a seeded random sample of pairs as plain text for reading.

Thresholds (value >= limit passes):

- ``min_pairs``: records (tweet -> reply pairs);
- ``min_tweets``: distinct tweet ids;
- ``min_unique_tweet_fraction``: distinct tweet texts (case and whitespace folded) / distinct
  tweet ids;
- ``min_authors``: distinct reply authors;
- ``min_mean_tweet_likes``: mean `tweet_likes` over distinct tweets;
- ``min_mean_reply_likes``: mean `reply_likes` over pairs.

A threshold set to null is not checked. When the validation report is given, the collection
report also shows what validation read, kept and rejected (with the most frequent reasons).

A threshold whose value cannot be computed (the field is absent) is ``unmeasured``: it is
reported with the reason, warned about, and fails the rule under `strict`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.data.curate import normalize_text
from polychromic.data.schema import DATETIME_FIELDS, parse_datetime
from polychromic.io import read_json, read_jsonl, write_json
from polychromic.settings import Thresholds, as_dict

log = logging.getLogger(__name__)

THRESHOLDS: dict[str, str] = {
    "min_pairs": "tweet -> reply pairs",
    "min_tweets": "distinct tweets",
    "min_unique_tweet_fraction": "distinct tweet texts / distinct tweets",
    "min_authors": "distinct reply authors",
    "min_mean_tweet_likes": "mean tweet_likes over distinct tweets",
    "min_mean_reply_likes": "mean reply_likes over pairs",
}
TWEET_ENGAGEMENT = ("tweet_likes", "tweet_retweets")
REPLY_ENGAGEMENT = ("reply_likes", "reply_retweets", "reply_author_followers")


def distribution(values: list[float]) -> dict[str, Any]:
    """count, mean, median, p10, p90, min, max of `values` (nulls when there are none)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p10": None, "p90": None,
                "min": None, "max": None, "reason": "no values"}
    array = np.asarray(values, dtype=float)
    return {
        "count": int(array.size),
        "mean": round(float(array.mean()), 4),
        "median": round(float(np.median(array)), 4),
        "p10": round(float(np.percentile(array, 10)), 4),
        "p90": round(float(np.percentile(array, 90)), 4),
        "min": round(float(array.min()), 4),
        "max": round(float(array.max()), 4),
    }


def _numbers(items: list[dict[str, Any]], field: str) -> list[float]:
    """The numeric values of `field` in `items` (absent, null and boolean values skipped)."""
    return [float(item[field]) for item in items
            if isinstance(item.get(field), int | float) and not isinstance(item.get(field), bool)]


def _date_range(records: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """First and last parseable date of `field` and how many records have one."""
    moments: list[datetime] = []
    for record in records:
        value = record.get(field)
        if value is None:
            continue
        try:
            moments.append(parse_datetime(value))
        except ValueError:
            continue
    if not moments:
        return {"count": 0, "first": None, "last": None, "reason": "field absent"}
    return {"count": len(moments), "first": min(moments).isoformat(),
            "last": max(moments).isoformat()}


def collection_statistics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and distributions of validated records (no thresholds)."""
    tweets: dict[str, dict[str, Any]] = {}
    replies_per_tweet: Counter[str] = Counter()
    for record in records:
        tweets.setdefault(record["tweet_id"], record)
        replies_per_tweet[record["tweet_id"]] += 1
    tweet_records = list(tweets.values())
    reply_authors = Counter(r["reply_author"] for r in records if r.get("reply_author"))
    tweet_authors = {r["tweet_author"] for r in tweet_records if r.get("tweet_author")}
    per_tweet = list(replies_per_tweet.values())
    return {
        "pairs": len(records),
        "unique_tweets": len(tweets),
        "unique_tweet_texts": len({normalize_text(r["tweet"]) for r in tweet_records}),
        "unique_replies": len({r["reply_id"] for r in records}),
        "unique_reply_texts": len({normalize_text(r["reply"]) for r in records}),
        "replies_per_tweet": {
            "mean": round(float(np.mean(per_tweet)), 4) if per_tweet else None,
            "median": float(np.median(per_tweet)) if per_tweet else None,
            "min": min(per_tweet) if per_tweet else None,
            "max": max(per_tweet) if per_tweet else None,
        },
        "authors": {
            "tweet_authors": len(tweet_authors),
            "reply_authors": len(reply_authors),
            "records_without_reply_author": sum(1 for r in records if not r.get("reply_author")),
            "max_replies_by_one_author": max(reply_authors.values()) if reply_authors else 0,
        },
        "engagement": {
            **{field: distribution(_numbers(tweet_records, field)) for field in TWEET_ENGAGEMENT},
            **{field: distribution(_numbers(records, field)) for field in REPLY_ENGAGEMENT},
        },
        "engagement_note": "tweet_* over distinct tweets, reply_* over pairs",
        "reply_length": {
            "chars": distribution([float(len(r["reply"])) for r in records]),
            "words": distribution([float(len(r["reply"].split())) for r in records]),
        },
        "tweet_length_words": distribution([float(len(r["tweet"].split())) for r in tweet_records]),
        "date_range": {field: _date_range(records, field) for field in DATETIME_FIELDS},
    }


def evaluate_thresholds(stats: dict[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """Each threshold that is set, as {value, limit, status (pass|fail|unmeasured),
    description[, reason]}."""
    values: dict[str, tuple[float | None, str | None]] = {
        "min_pairs": (stats["pairs"], None),
        "min_tweets": (stats["unique_tweets"], None),
        "min_unique_tweet_fraction": (
            (round(stats["unique_tweet_texts"] / stats["unique_tweets"], 6), None)
            if stats["unique_tweets"] else (None, "no tweets")
        ),
        "min_authors": (
            (stats["authors"]["reply_authors"], None)
            if stats["authors"]["records_without_reply_author"] < stats["pairs"]
            else (None, "no record has reply_author")
        ),
        "min_mean_tweet_likes": (
            (stats["engagement"]["tweet_likes"]["mean"], None)
            if stats["engagement"]["tweet_likes"]["count"] else (None, "no record has tweet_likes")
        ),
        "min_mean_reply_likes": (
            (stats["engagement"]["reply_likes"]["mean"], None)
            if stats["engagement"]["reply_likes"]["count"] else (None, "no record has reply_likes")
        ),
    }
    results: dict[str, Any] = {}
    for key, limit in as_dict(thresholds).items():
        if limit is None:
            continue
        value, reason = values[key]
        entry: dict[str, Any] = {"value": value, "limit": limit, "description": THRESHOLDS[key]}
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            entry["status"] = "unmeasured"
            entry["reason"] = reason
        else:
            entry["status"] = "pass" if value >= limit else "fail"
        results[key] = entry
    return results


def _validation_summary(path: str) -> dict[str, Any]:
    """What the validation report at `path` says about lines read, kept and rejected."""
    report = read_json(path)
    totals = report["totals"]
    return {
        "report": str(path),
        "lines_read": totals["lines_read"],
        "kept": totals["kept"],
        "rejected": totals["rejected"],
        "blank": totals["blank"],
        "used_as_tweet": totals.get("used_as_tweet", 0),
        "rejected_fraction": report["rejected_fraction"],
        "worst_reasons": report["worst_reasons"],
        "formats": {entry["file"]: entry.get("source_format", "raw")
                    for entry in report["files"]},
    }


def _markdown(result: dict[str, Any]) -> str:
    """The collection report as Markdown: validation, thresholds, counts, distributions, dates."""
    stats = result["statistics"]
    lines = [
        "# Collection report",
        "",
        f"Source: `{result['validated']}`",
        "",
    ]
    lines += _validation_lines(result.get("validation"))
    lines += _threshold_lines(result)
    lines += _count_lines(stats)
    lines += _distribution_lines(stats)
    lines += _date_lines(stats)
    return "\n".join(lines) + "\n"


def _table_head(title: str, columns: list[str]) -> list[str]:
    """A Markdown section title followed by the header rows of its table."""
    return [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _validation_lines(validation: dict[str, Any] | None) -> list[str]:
    """What validation read, kept and rejected (nothing without a validation summary)."""
    if not validation:
        return []
    reasons = ", ".join(f"{w['reason']} ({w['count']})" for w in validation["worst_reasons"])
    return [
        f"Validation: {validation['lines_read']} lines read, {validation['kept']} kept, "
        f"{validation['rejected']} rejected ({100 * validation['rejected_fraction']:.2f}%), "
        f"{validation['blank']} blank, {validation['used_as_tweet']} used as the tweet of a "
        f"pair. Most frequent reasons: {reasons or 'none'}.",
        "",
    ]


def _threshold_lines(result: dict[str, Any]) -> list[str]:
    """The threshold table and the overall verdict."""
    lines = _table_head("Thresholds", ["threshold", "what", "value", "limit", "status"])
    for key, entry in result["thresholds"].items():
        status = entry["status"].upper() if entry["status"] != "pass" else "pass"
        value = entry["value"] if entry["value"] is not None else f"n/a ({entry.get('reason')})"
        lines.append(f"| {key} | {entry['description']} | {value} | {entry['limit']} | {status} |")
    return lines + [
        "",
        f"Overall: **{'all thresholds pass' if result['passed'] else 'some thresholds fail'}**"
        f" (strict = {result['strict']}).",
        "",
    ]


def _count_lines(stats: dict[str, Any]) -> list[str]:
    """The counts section: pairs, distinct tweets and replies, replies per tweet, authors."""
    per_tweet = stats["replies_per_tweet"]
    authors = stats["authors"]
    return [
        "## Counts",
        "",
        f"- pairs: {stats['pairs']}",
        f"- distinct tweets: {stats['unique_tweets']} ({stats['unique_tweet_texts']} distinct "
        "texts)",
        f"- distinct replies: {stats['unique_replies']} ({stats['unique_reply_texts']} distinct "
        "texts)",
        f"- replies per tweet: mean {per_tweet['mean']}, median {per_tweet['median']}, "
        f"min {per_tweet['min']}, max {per_tweet['max']}",
        f"- tweet authors: {authors['tweet_authors']}; reply authors: {authors['reply_authors']} "
        f"(most active wrote {authors['max_replies_by_one_author']} replies; "
        f"{authors['records_without_reply_author']} pairs without reply_author)",
        "",
    ]


def _distribution_lines(stats: dict[str, Any]) -> list[str]:
    """The distributions table: engagement and lengths."""
    lines = _table_head("Distributions",
                        ["quantity", "count", "mean", "median", "p10", "p90", "min", "max"])
    rows = {**stats["engagement"],
            "reply length (chars)": stats["reply_length"]["chars"],
            "reply length (words)": stats["reply_length"]["words"],
            "tweet length (words)": stats["tweet_length_words"]}
    for name, dist in rows.items():
        cells = [dist[key] if dist[key] is not None else "-"
                 for key in ("count", "mean", "median", "p10", "p90", "min", "max")]
        lines.append(f"| {name} | " + " | ".join(str(cell) for cell in cells) + " |")
    return lines + ["", f"({stats['engagement_note']})", ""]


def _date_lines(stats: dict[str, Any]) -> list[str]:
    """The dates table: first and last value of each date field."""
    lines = _table_head("Dates", ["field", "first", "last", "count"])
    for field, span in stats["date_range"].items():
        lines.append(f"| {field} | {span['first'] or '-'} | {span['last'] or '-'} | "
                     f"{span['count']} |")
    return lines


def verify_collection(
    validated: str,
    report_json: str,
    report_md: str,
    thresholds: Thresholds,
    strict: bool,
    validation_report: str | None = None,
) -> dict[str, Any]:
    """Write the collection report (JSON and Markdown) of `validated`; return the JSON content.

    A failed or unmeasured threshold logs a warning; with `strict` it raises ValueError (after
    the reports are written). `validation_report` (optional) adds what validation read.
    """
    records = read_jsonl(validated)
    stats = collection_statistics(records)
    checked = evaluate_thresholds(stats, thresholds)
    failed = {key: entry for key, entry in checked.items() if entry["status"] != "pass"}
    result: dict[str, Any] = {
        "validated": str(validated),
        "validation": _validation_summary(validation_report) if validation_report else None,
        "statistics": stats,
        "thresholds": checked,
        "passed": not failed,
        "strict": bool(strict),
    }
    write_json(report_json, result)
    Path(report_md).parent.mkdir(parents=True, exist_ok=True)
    Path(report_md).write_text(_markdown(result), encoding="utf-8")
    for key, entry in failed.items():
        log.warning("collection threshold %s %s: value %s, limit %s%s", key,
                    entry["status"].upper(), entry["value"], entry["limit"],
                    f" ({entry['reason']})" if entry.get("reason") else "")
    if failed and strict:
        named = "; ".join(f"{key}: {entry['value']} < {entry['limit']}"
                          if entry["status"] == "fail" else f"{key}: {entry.get('reason')}"
                          for key, entry in failed.items())
        raise ValueError(f"collection fails {len(failed)} threshold(s) (strict): {named}")
    log.info("collection: %d pairs, %d tweets, %d reply authors; thresholds %s", stats["pairs"],
             stats["unique_tweets"], stats["authors"]["reply_authors"],
             "pass" if not failed else f"{len(failed)} not passed")
    return result


def sample_for_review(validated: str, output: str, n: int, seed: int) -> None:
    """Write `n` random pairs (numpy default_rng(seed), no repeats, file order) as plain text."""
    records = read_jsonl(validated)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    size = min(int(n), len(records))
    picked = np.sort(np.random.default_rng(seed).choice(len(records), size=size, replace=False))
    lines = [
        f"# {size} random tweet -> reply pairs of {len(records)} (seed {seed}) from {validated}",
        "# Read them: are these the replies the study should learn from?",
        "",
    ]
    for number, index in enumerate(picked.tolist(), start=1):
        record = records[index]
        where = f"{record.get('source_file', '?')}:{record.get('source_line', '?')}"
        lines += [
            f"=== {number}/{size}  tweet {record['tweet_id']}  reply {record['reply_id']}  "
            f"({where})",
            f"TWEET by @{record.get('tweet_author') or '?'} "
            f"[likes {record.get('tweet_likes', '?')}, "
            f"retweets {record.get('tweet_retweets', '?')}]",
            f"  {record['tweet']}",
            f"REPLY by @{record.get('reply_author') or '?'} "
            f"[likes {record.get('reply_likes', '?')}, retweets {record.get('reply_retweets', '?')}"
            f", followers {record.get('reply_author_followers', '?')}]",
            f"  {record['reply']}",
            "",
        ]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text("\n".join(lines), encoding="utf-8")
    log.info("wrote %d review samples to %s", size, output)
