"""Schema: required fields, types, number and datetime coercion."""

from __future__ import annotations

import pytest

from polychromic.data.schema import (
    SchemaError,
    check_record,
    coerce_count,
    coerce_number,
    normalize_record,
    parse_datetime,
)

GOOD = {"tweet_id": "t1", "tweet": "Coffee today?", "reply_id": "r1", "reply": "Always, espresso."}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), (7.0, 7), ("12", 12), (" 12 ", 12), ("1.2K", 1200), ("1.2k", 1200), ("3,400", 3400),
     ("2M", 2_000_000), ("1,234,567", 1234567), ("0", 0), ("4.3K", 4300)],
)
def test_coerce_count_accepts_scraped_formats(value, expected):
    assert coerce_count(value) == expected


@pytest.mark.parametrize(
    "value", ["lots", "", "-3", -1, 1.5, "1.5", True, None, [3], "1,2", "3,40"]
)
def test_coerce_count_rejects(value):
    with pytest.raises(ValueError):
        coerce_count(value)


def test_coerce_number():
    assert coerce_number("3.5") == 3.5
    assert coerce_number("-2") == -2
    assert coerce_number(12) == 12
    with pytest.raises(ValueError):
        coerce_number("soon")
    with pytest.raises(ValueError):
        coerce_number(float("nan"))


def test_parse_datetime_formats():
    iso = parse_datetime("2024-03-05T12:34:56Z")
    rfc = parse_datetime("Tue, 05 Mar 2024 12:34:56 +0000")
    twitter = parse_datetime("Tue Mar 05 12:34:56 +0000 2024")
    naive = parse_datetime("2024-03-05 12:34:56")
    assert iso == rfc == twitter == naive
    with pytest.raises(ValueError):
        parse_datetime("yesterday at noon")
    with pytest.raises(ValueError):
        parse_datetime(1709642096)


def test_check_record_reasons():
    assert check_record(GOOD) is None
    assert check_record([GOOD]) == "not an object"
    assert check_record({k: v for k, v in GOOD.items() if k != "reply"}) == (
        "missing required field reply"
    )
    assert check_record({**GOOD, "reply": None}) == "missing required field reply"
    assert check_record({**GOOD, "tweet": 5}) == "wrong type for tweet"
    assert check_record({**GOOD, "reply": "   "}) == "empty required field reply"
    assert check_record({**GOOD, "tweet_likes": "lots"}) == "wrong type for tweet_likes"
    assert check_record({**GOOD, "reply_likes": -2}) == "wrong type for reply_likes"
    assert check_record({**GOOD, "tweet_likes": True}) == "wrong type for tweet_likes"
    assert check_record({**GOOD, "reply_created_at": "soon"}) == "wrong type for reply_created_at"
    assert check_record({**GOOD, "reply_author": ["a"]}) == "wrong type for reply_author"


def test_normalize_record_coerces_and_keeps_unknown_fields():
    record = normalize_record({**GOOD, "tweet_id": 123, "tweet_likes": "1.2K",
                               "reply_author_followers": "3,400", "tweet_likes_extra": "x",
                               "tweet_created_at": "Tue, 05 Mar 2024 12:34:56 +0000",
                               "reply_created_at": "2024-03-05T13:00:00Z",
                               "reply_time_diff_seconds": "1544", "topic": "coffee",
                               "reply_likes": None})
    assert record["tweet_id"] == "123"
    assert record["tweet_likes"] == 1200
    assert record["reply_author_followers"] == 3400
    assert record["tweet_created_at"] == "2024-03-05T12:34:56+00:00"
    assert record["reply_created_at"] == "2024-03-05T13:00:00Z"  # ISO kept as written
    assert record["reply_time_diff_seconds"] == 1544
    assert record["topic"] == "coffee" and record["tweet_likes_extra"] == "x"
    assert record["reply_likes"] is None


def test_schema_error_carries_detail():
    with pytest.raises(SchemaError) as caught:
        normalize_record({**GOOD, "tweet_likes": "lots"})
    assert caught.value.reason == "wrong type for tweet_likes"
    assert "lots" in caught.value.detail
