"""curate: each rule filter (first hit wins), whole-word keywords, duplicates, human decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polychromic.data.curate import curate, normalize_text, phrase_pattern
from polychromic.io import read_json, read_jsonl, write_jsonl

SETTINGS = {
    "min_reply_chars": 12,
    "max_reply_chars": 80,
    "drop_urls": True,
    "max_hashtags": 2,
    "spam_keywords": ["giveaway", "crypto", "dm me", "user", "ser"],
    "generic_replies": ["agreed!", "so true", "+1"],
    "drop_exact_duplicates": True,
    "decisions": "ignored here",
    "undecided": "keep",
}


def rec(reply_id: str, reply: str, tweet_id: str = "t1", likes: int = 0) -> dict:
    return {"tweet_id": tweet_id, "tweet": f"tweet {tweet_id}", "reply_id": reply_id,
            "reply": reply, "reply_likes": likes}


def run(tmp_path: Path, records: list[dict], settings: dict | None = None,
        decisions: list[dict] | None = None) -> tuple[dict, list[str]]:
    write_jsonl(tmp_path / "validated.jsonl", records)
    decisions_path = None
    if decisions is not None:
        decisions_path = str(tmp_path / "decisions.jsonl")
        write_jsonl(decisions_path, decisions)
    report = curate(str(tmp_path / "validated.jsonl"), str(tmp_path / "curated.jsonl"),
                    str(tmp_path / "report.json"), settings or SETTINGS, decisions_path)
    assert read_json(tmp_path / "report.json") == report
    dropped = sum(entry["dropped"] for entry in report["filters"].values())
    assert report["input"] == report["output"] + dropped
    assert report["identity"]["holds"]
    return report, [r["reply_id"] for r in read_jsonl(tmp_path / "curated.jsonl")]


def test_each_filter_drops_its_case(tmp_path):
    records = [
        rec("ok", "A perfectly fine reply about espresso."),
        rec("short", "ok"),
        rec("long", "word " * 30),
        rec("url1", "Read this https://example.com/x today"),
        rec("url2", "see www.example.org for more"),
        rec("url3", "my post at bit.ly/abc is better"),
        rec("tags", "Love it #a #b #c so much"),
        rec("tags_ok", "Love it #a #b so much, really"),
        rec("spam1", "Huge GIVEAWAY tonight, join us"),
        rec("spam2", "Just DM  me for details, friend"),
        rec("generic1", "So true!!!!!!!!!!"),
        rec("generic2", "   agreed ...... !!!  "),
        rec("generic3", "+1 +1 +1 +1 +1 +1"),
        rec("symbols", "!!!!!!!!!!!!!!!!"),
    ]
    report, kept = run(tmp_path, records)
    assert kept == ["ok", "tags_ok", "generic3"]
    dropped = {name: entry["dropped"] for name, entry in report["filters"].items()}
    assert dropped == {"too_short": 1, "too_long": 1, "url": 3, "too_many_hashtags": 1,
                       "spam": 2, "generic": 3, "exact_duplicate": 0, "human_discard": 0,
                       "undecided_dropped": 0}
    examples = report["filters"]["url"]["examples"]
    assert [e["reply_id"] for e in examples] == ["url1", "url2", "url3"]
    assert examples[0]["reply"] == "Read this https://example.com/x today"
    assert report["decisions"]["counts"]["none"] == 3


def test_first_filter_wins(tmp_path):
    # short AND spam AND generic: counted once, under too_short (the first in the order)
    report, kept = run(tmp_path, [rec("a", "crypto"), rec("b", "so true http://x.com")])
    assert kept == []
    assert report["filters"]["too_short"]["dropped"] == 1
    assert report["filters"]["url"]["dropped"] == 1
    assert report["filters"]["spam"]["dropped"] == 0
    assert report["filters"]["generic"]["dropped"] == 0


def test_keywords_match_whole_words_only(tmp_path):
    records = [
        rec("users", "All the users loved the espresso."),   # "user" and "ser" hit no part of it
        rec("cryptography", "I study cryptography at night."),
        rec("anticrypto", "An anticrypto rally was held."),
        rec("user", "Dear user, this is a message."),
        rec("ser", "Ser, please read this now."),
        rec("crypto", "Buy (crypto) now, trust me friend."),
    ]
    report, kept = run(tmp_path, records)
    assert kept == ["users", "cryptography", "anticrypto"]
    assert report["filters"]["spam"]["dropped"] == 3
    pattern = phrase_pattern(["dm me"])
    assert pattern.search("pls DM me") and not pattern.search("admme") and not pattern.search(
        "dm meeting")


def test_generic_is_the_whole_reply(tmp_path):
    records = [rec("g", "So true!!!!!!!!"), rec("not", "So true, and the beans matter too.")]
    _, kept = run(tmp_path, records)
    assert kept == ["not"]
    assert normalize_text("  So   TRUE!!! ") == "so true"


def test_exact_duplicates_keep_most_liked(tmp_path):
    records = [
        rec("d1", "Great espresso, I agree.", likes=1),
        rec("d2", "great espresso i agree!!", likes=5),   # same after normalisation, more likes
        rec("d3", "Great espresso, I agree.", likes=5),   # tie with d2: the first (d2) is kept
        rec("o1", "Great espresso, I agree.", tweet_id="t2"),  # other tweet: not a duplicate
    ]
    report, kept = run(tmp_path, records)
    assert kept == ["d2", "o1"]
    assert report["filters"]["exact_duplicate"]["dropped"] == 2
    assert {e["kept_reply_id"] for e in report["filters"]["exact_duplicate"]["examples"]} == {"d2"}
    _, kept = run(tmp_path, records, {**SETTINGS, "drop_exact_duplicates": False})
    assert kept == ["d1", "d2", "d3", "o1"]


def test_decisions_applied(tmp_path):
    records = [rec(f"r{i}", f"A fine reply number {i} here.") for i in range(5)]
    records.append(rec("spam", "giveaway for everyone here"))
    decisions = [
        {"reply_id": "r0", "decision": "discard"},
        {"reply_id": "r1", "decision": "discard"},
        {"reply_id": "r1", "decision": "keep", "note": "changed my mind"},  # last one wins
        {"reply_id": "r2", "decision": "skip"},
        {"reply_id": "spam", "decision": "keep"},  # a keep does not rescue a filtered record
        {"reply_id": "nowhere", "decision": "discard"},
    ]
    report, kept = run(tmp_path, records, decisions=decisions)
    assert kept == ["r1", "r2", "r3", "r4"]
    assert report["filters"]["human_discard"]["dropped"] == 1
    assert report["decisions"]["counts"] == {"keep": 1, "discard": 1, "skip": 1, "none": 2}
    assert report["decisions"]["keep_overridden_by_rule_filter"] == 1
    assert report["decisions"]["unmatched_reply_ids"] == 1

    report, kept = run(tmp_path, records, {**SETTINGS, "undecided": "drop"}, decisions)
    assert kept == ["r1"]
    assert report["filters"]["undecided_dropped"]["dropped"] == 3  # r2 (skip), r3, r4


def test_missing_decisions_file_means_undecided(tmp_path):
    records = [rec("r0", "A fine reply about beans.")]
    write_jsonl(tmp_path / "validated.jsonl", records)
    report = curate(str(tmp_path / "validated.jsonl"), str(tmp_path / "c.jsonl"),
                    str(tmp_path / "rep.json"), {**SETTINGS, "undecided": "drop"},
                    str(tmp_path / "absent.jsonl"))
    assert report["output"] == 0 and report["decisions"]["found"] is False


def test_bad_settings_and_decisions_raise(tmp_path):
    records = [rec("r0", "A fine reply about beans.")]
    with pytest.raises(ValueError, match="undecided"):
        run(tmp_path, records, {**SETTINGS, "undecided": "maybe"})
    with pytest.raises(ValueError, match="unknown curation setting"):
        run(tmp_path, records, {**SETTINGS, "min_chars": 3})
    (tmp_path / "bad.jsonl").write_text(json.dumps({"reply_id": "r0", "decision": "nah"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        curate(str(tmp_path / "validated.jsonl"), str(tmp_path / "c.jsonl"),
               str(tmp_path / "rep.json"), SETTINGS, str(tmp_path / "bad.jsonl"))
