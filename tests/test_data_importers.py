"""Importers: Apify and Twitter API v2 exports -> paired raw records, nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polychromic.data.importers import (
    ExportTweet,
    detect_format,
    pair_tweets,
    strip_leading_mentions,
)
from polychromic.data.validate import validate_raw
from polychromic.io import read_jsonl

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(tmp_path: Path, names: list[str], input_format: str = "auto"
        ) -> tuple[dict, list[dict], list[dict]]:
    files = []
    for name in names:  # copies: paths in the outputs are then short and predictable
        shutil.copy(FIXTURES / name, tmp_path / name)
        files.append(str(tmp_path / name))
    report = validate_raw(files, str(tmp_path / "v.jsonl"), str(tmp_path / "r.jsonl"),
                          str(tmp_path / "rep.json"), 1.0, input_format)
    totals = report["totals"]
    assert (totals["kept"] + totals["rejected"] + totals["blank"] + totals["used_as_tweet"]
            == totals["lines_read"])
    assert report["identity"]["holds"]
    assert all(entry["identity"]["holds"] for entry in report["files"])
    return report, read_jsonl(tmp_path / "v.jsonl"), read_jsonl(tmp_path / "r.jsonl")


def test_apify_dataset_pairs_and_reports_every_item(tmp_path):
    report, kept, rejected = run(tmp_path, ["apify_dataset.json"])
    entry = report["files"][0]
    assert (entry["source_format"], entry["format"], entry["lines_read"]) == (
        "apify", "json-array", 9)
    assert [(r["tweet_id"], r["reply_id"]) for r in kept] == [
        ("1001", "1002"), ("1001", "1003"), ("1002", "1004")]
    first = kept[0]
    # fields mapped and coerced: "1.2K" likes, "1,024" retweets, "3,400" followers, Twitter dates
    assert first["tweet_likes"] == 1200 and first["tweet_retweets"] == 1024
    assert first["reply_author_followers"] == 3400 and first["tweet_author_followers"] == 5400
    assert first["tweet_author"] == "alice_brews" and first["reply_author"] == "bob_reads"
    assert first["tweet_created_at"] == "2024-03-05T08:00:00+00:00"
    assert first["reply_time_diff_seconds"] == 330
    assert first["reply"].startswith("Pour-over") and first["reply_text_original"].startswith(
        "@alice_brews")
    assert (first["source_line"], first["import_format"]) == (2, "apify")
    assert kept[1]["paired_by"] == "conversationId"  # no inReplyToId: the conversation root
    assert kept[2]["tweet"].startswith("@alice_brews Pour-over")  # a reply to a reply
    assert entry["used_as_tweet"] == 1  # 1001: the tweet of two pairs, not a pair itself
    assert {(r["line"], r["reason"]) for r in rejected} == {
        (5, "tweet without reply"),
        (6, "reply whose tweet is missing"),
        (7, "duplicate tweet id"),
        (8, "retweet, not a reply"),
        (9, "not a tweet"),
    }
    assert report["pairing"]["pairs_whose_tweet_is_itself_a_reply"] == 1


def test_apify_jsonl_pairs_across_files_and_reports_the_cut_line(tmp_path):
    report, kept, rejected = run(tmp_path, ["apify_tweets.jsonl", "apify_replies.jsonl"])
    tweets_file, replies_file = report["files"]
    assert tweets_file["used_as_tweet"] == 1 and tweets_file["kept"] == 0
    assert replies_file["kept"] == 2 and replies_file["lines_read"] == 3
    assert [r["reply_id"] for r in kept] == ["5002", "5003"]
    assert kept[1]["reply_author_followers"] == 2500  # "2.5K"
    assert all(r["source_file"].endswith("apify_replies.jsonl") for r in kept)
    assert rejected == [{**rejected[0], "line": 3, "reason": "truncated last line"}]


def test_twitter_v2_search_response(tmp_path):
    report, kept, rejected = run(tmp_path, ["twitter_v2_search.json"])
    entry = report["files"][0]
    assert (entry["source_format"], entry["format"], entry["unit"]) == (
        "twitter_v2", "json-object", "tweet")
    assert [(r["tweet_id"], r["reply_id"]) for r in kept] == [("9001", "9002"), ("9001", "9003")]
    reply = kept[0]
    # the tweet comes from includes.tweets, the authors from includes.users
    assert reply["tweet"].startswith("First sourdough") and reply["tweet_likes"] == 230
    assert reply["tweet_author"] == "maya_bakes" and reply["reply_author"] == "noor_eats"
    assert reply["reply_author_followers"] == 140 and reply["reply_likes"] == 14
    assert reply["reply"] == "The crust is everything. Give it ten more minutes."
    assert (reply["source_line"], reply["source_item"]) == (1, 1)
    assert report["pairing"]["pairs_with_tweet_from_includes"] == 2
    assert {(r["item"], r["reason"]) for r in rejected} == {
        (3, "tweet without reply"), (4, "reply whose tweet is missing")}


def test_twitter_v2_pages_jsonl_with_an_empty_page(tmp_path):
    report, kept, rejected = run(tmp_path, ["twitter_v2_pages.jsonl"])
    entry = report["files"][0]
    assert (entry["lines_read"], entry["kept"], entry["used_as_tweet"], entry["blank"]) == (
        5, 3, 1, 1)
    assert not rejected
    assert [r["reply_id"] for r in kept] == ["8002", "8003", "8004"]
    assert kept[2]["tweet_id"] == "8002" and kept[2]["tweet_author"] == "sol_walks"
    assert kept[0]["tweet_author_followers"] == 1100  # "1.1K"


def test_detection_and_explicit_format(tmp_path):
    assert detect_format([{"data": [], "includes": {}}]) == "twitter_v2"
    assert detect_format([{"id": "1", "text": "x", "author": {"userName": "a"}}]) == "apify"
    assert detect_format([{"tweet_id": "1", "tweet": "x", "reply_id": "2", "reply": "y"}]) == (
        "raw")
    assert detect_format([]) == "raw"
    # forcing raw on an Apify file: every item is checked as a raw record, and rejected
    shutil.copy(FIXTURES / "apify_dataset.json", tmp_path / "apify_dataset.json")
    with pytest.raises(ValueError, match="no valid record"):
        validate_raw([str(tmp_path / "apify_dataset.json")], str(tmp_path / "v.jsonl"),
                     str(tmp_path / "r.jsonl"), str(tmp_path / "rep.json"), 1.0, "raw")
    assert len(read_jsonl(tmp_path / "r.jsonl")) == 9
    assert read_jsonl(tmp_path / "r.jsonl")[0]["reason"] == "missing required field tweet_id"
    with pytest.raises(ValueError, match="data.format"):
        validate_raw([str(tmp_path / "apify_dataset.json")], str(tmp_path / "v.jsonl"),
                     str(tmp_path / "r.jsonl"), str(tmp_path / "rep.json"), 1.0, "csv")


def test_raw_and_export_files_together(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text(json.dumps({"tweet_id": "t1", "tweet": "A tweet", "reply_id": "r1",
                               "reply": "A reply"}) + "\n", encoding="utf-8")
    shutil.copy(FIXTURES / "twitter_v2_pages.jsonl", tmp_path / "pages.jsonl")
    report = validate_raw([str(raw), str(tmp_path / "pages.jsonl")], str(tmp_path / "v.jsonl"),
                          str(tmp_path / "r.jsonl"), str(tmp_path / "rep.json"), 1.0)
    assert [r["reply_id"] for r in read_jsonl(tmp_path / "v.jsonl")] == [
        "r1", "8002", "8003", "8004"]
    assert [f["source_format"] for f in report["files"]] == ["raw", "twitter_v2"]
    assert report["identity"]["holds"]


def test_pair_tweets_unit():
    def tweet(tid, parent=None, line=1):
        return ExportTweet(id=tid, text=f"text {tid}", file="f", line=line, raw="{}",
                           parent_id=parent, author=f"user{tid}", created_at=None)

    items = [("apify", tweet("a", line=1)), ("apify", tweet("b", "a", line=2)),
             ("apify", tweet("c", "b", line=3)), ("apify", tweet("d", "zz", line=4)),
             ("apify", tweet("e", line=5))]
    result = pair_tweets(items)
    assert [(p.record["tweet_id"], p.record["reply_id"]) for p in result.records] == [
        ("a", "b"), ("b", "c")]
    assert result.used_as_tweet == [("f", 1, None)]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (4, "reply whose tweet is missing"), (5, "tweet without reply")]
    assert len(result.records) + len(result.used_as_tweet) + len(result.rejects) == len(items)
    assert "reply_time_diff_seconds" not in result.records[0].record  # no dates, no field


def test_strip_leading_mentions():
    assert strip_leading_mentions("@a @b_c thanks!") == "thanks!"
    assert strip_leading_mentions("thanks @a") == "thanks @a"
    assert strip_leading_mentions("@a") == ""
