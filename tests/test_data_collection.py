"""verify_collection (counts, distributions, thresholds) and sample_for_review."""

from __future__ import annotations

import json
import logging

import pytest

from polychromic.data.collection import sample_for_review, verify_collection
from polychromic.data.validate import validate_raw
from polychromic.io import read_json, write_jsonl
from polychromic.settings import ConfigError, Thresholds, section

OFF = dict.fromkeys(("min_pairs", "min_tweets", "min_unique_tweet_fraction", "min_authors",
                     "min_mean_tweet_likes", "min_mean_reply_likes"))


def limits(**given) -> Thresholds:
    """The given thresholds, every other one off (null)."""
    return section("data", {"thresholds": {**OFF, **given}}).thresholds


THRESHOLDS = limits(min_pairs=6, min_unique_tweet_fraction=0.8, min_authors=3,
                    min_mean_tweet_likes=5)


def records() -> list[dict]:
    out = []
    tweets = {"t1": ("Coffee time", 10), "t2": ("coffee   TIME", 20), "t3": ("Running", 30)}
    for number in range(6):
        tweet_id = ["t1", "t1", "t1", "t2", "t3", "t3"][number]
        text, likes = tweets[tweet_id]
        out.append({"tweet_id": tweet_id, "tweet": text, "reply_id": f"r{number}",
                    "reply": "word " * (number + 1), "tweet_author": "a",
                    "reply_author": f"u{number % 4}", "tweet_likes": likes, "reply_likes": number,
                    "tweet_created_at": f"2024-01-0{number + 1}T00:00:00Z"})
    return out


def run(tmp_path, thresholds, strict=False, data=None):
    write_jsonl(tmp_path / "validated.jsonl", data if data is not None else records())
    return verify_collection(str(tmp_path / "validated.jsonl"), str(tmp_path / "c.json"),
                             str(tmp_path / "c.md"), thresholds, strict)


def test_statistics_and_thresholds(tmp_path):
    result = run(tmp_path, THRESHOLDS)
    stats = result["statistics"]
    assert stats["pairs"] == 6 and stats["unique_tweets"] == 3
    assert stats["unique_tweet_texts"] == 2  # "Coffee time" and "coffee   TIME" fold together
    assert stats["replies_per_tweet"] == {"mean": 2.0, "median": 2.0, "min": 1, "max": 3}
    assert stats["authors"]["reply_authors"] == 4
    assert stats["engagement"]["tweet_likes"]["mean"] == 20.0  # over distinct tweets
    assert stats["reply_length"]["words"]["median"] == 3.5
    assert stats["date_range"]["tweet_created_at"]["first"].startswith("2024-01-01")
    checks = result["thresholds"]
    assert checks["min_pairs"]["status"] == "pass"
    assert checks["min_unique_tweet_fraction"] == {
        "value": pytest.approx(2 / 3, abs=1e-6), "limit": 0.8, "status": "fail",
        "description": checks["min_unique_tweet_fraction"]["description"]}
    assert checks["min_authors"]["status"] == "pass"
    assert checks["min_mean_tweet_likes"]["status"] == "pass"
    assert result["passed"] is False
    markdown = (tmp_path / "c.md").read_text()
    assert "min_unique_tweet_fraction" in markdown and "FAIL" in markdown


def test_failed_threshold_warns_or_raises(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        run(tmp_path, limits(min_pairs=100))
    assert "min_pairs" in caplog.text
    with pytest.raises(ValueError, match="min_pairs: 6 < 100"):
        run(tmp_path, limits(min_pairs=100), strict=True)
    assert run(tmp_path, limits(min_pairs=6), strict=True)["passed"] is True


def test_unmeasured_and_unknown_thresholds(tmp_path):
    data = [{k: v for k, v in r.items() if k not in ("tweet_likes", "reply_author")}
            for r in records()]
    result = run(tmp_path, limits(min_authors=1, min_mean_tweet_likes=1), data=data)
    assert result["thresholds"]["min_authors"]["status"] == "unmeasured"
    assert result["thresholds"]["min_mean_tweet_likes"]["value"] is None
    with pytest.raises(ConfigError, match="data.thresholds: .*min_pair"):
        limits(min_pair=1)


def test_sample_for_review_is_seeded(tmp_path):
    write_jsonl(tmp_path / "validated.jsonl", records())
    out = [tmp_path / f"s{i}.txt" for i in range(3)]
    sample_for_review(str(tmp_path / "validated.jsonl"), str(out[0]), 3, 7)
    sample_for_review(str(tmp_path / "validated.jsonl"), str(out[1]), 3, 7)
    sample_for_review(str(tmp_path / "validated.jsonl"), str(out[2]), 50, 7)
    first = out[0].read_text()
    assert first == out[1].read_text()
    assert first.count("=== ") == 3 and "TWEET by @a" in first and "REPLY by @u" in first
    assert out[2].read_text().count("=== ") == 6  # n larger than the data: all pairs


def test_more_thresholds_and_validation_summary(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(json.dumps(r) for r in records()) + "\n{oops\n",
                   encoding="utf-8")
    validate_raw([str(raw)], str(tmp_path / "validated.jsonl"), str(tmp_path / "rej.jsonl"),
                 str(tmp_path / "val.json"), 0.5)
    result = verify_collection(str(tmp_path / "validated.jsonl"), str(tmp_path / "c.json"),
                               str(tmp_path / "c.md"),
                               limits(min_tweets=4, min_mean_reply_likes=2),
                               False, str(tmp_path / "val.json"))
    checks = result["thresholds"]
    assert checks["min_tweets"]["value"] == 3 and checks["min_tweets"]["status"] == "fail"
    assert checks["min_mean_reply_likes"]["value"] == 2.5
    assert checks["min_mean_reply_likes"]["status"] == "pass"
    assert "min_pairs" not in checks  # null: not checked
    validation = result["validation"]
    assert (validation["lines_read"], validation["kept"], validation["rejected"]) == (7, 6, 1)
    assert validation["worst_reasons"] == [{"reason": "not JSON", "count": 1}]
    assert read_json(tmp_path / "c.json") == result
    markdown = (tmp_path / "c.md").read_text()
    assert "7 lines read, 6 kept, 1 rejected" in markdown and "not JSON (1)" in markdown
