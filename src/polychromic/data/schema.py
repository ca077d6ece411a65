"""The raw record schema: required and expected fields, types, coercion.

Why: every later stage reads `validated.jsonl` and must be able to trust it. This module says
what a usable tweet -> reply record is, and turns the formats that scrapers and exports really
produce into one: counts such as ``"1.2K"``, ``"3,400"`` or ``"17"`` become integers, datetimes
in RFC 2822 or in the Twitter API's ``"Wed Oct 10 20:19:24 +0000 2018"`` form become ISO 8601
(an ISO 8601 string is kept as written). Integer ids become strings; ids and author names are
stripped of surrounding white space before any check (`"t0001 "` is `"t0001"`).

Besides the raw fields documented in docs/file_contract.md, `tweet_author_followers` (filled by
the importers of scraper exports) is checked and coerced like the other counts.

`check_record` gives the reason a record is unusable (or None); `normalize_record` returns the
coerced record or raises `SchemaError` with a short `reason` (counted in reports) and a
`detail` (the offending value). Unknown fields are kept untouched.
"""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime
from typing import Any

REQUIRED_FIELDS: tuple[str, ...] = ("tweet_id", "tweet", "reply_id", "reply")
ID_FIELDS: tuple[str, ...] = ("tweet_id", "reply_id")
AUTHOR_FIELDS: tuple[str, ...] = ("tweet_author", "reply_author")
COUNT_FIELDS: tuple[str, ...] = (
    "tweet_likes",
    "tweet_retweets",
    "reply_likes",
    "reply_retweets",
    "reply_author_followers",
    "tweet_author_followers",
)
NUMBER_FIELDS: tuple[str, ...] = ("reply_time_diff_seconds",)
DATETIME_FIELDS: tuple[str, ...] = ("tweet_created_at", "reply_created_at", "collected_at")
EXPECTED_FIELDS: tuple[str, ...] = AUTHOR_FIELDS + COUNT_FIELDS + NUMBER_FIELDS + DATETIME_FIELDS

#: Human-readable type of each known field, for reports and error details.
FIELD_TYPES: dict[str, str] = {
    **{name: "non-empty string" for name in REQUIRED_FIELDS},
    **{name: "string" for name in AUTHOR_FIELDS},
    **{name: "non-negative integer" for name in COUNT_FIELDS},
    **{name: "number" for name in NUMBER_FIELDS},
    **{name: "RFC 2822 or ISO 8601 datetime" for name in DATETIME_FIELDS},
}

_SUFFIXES = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_ABBREVIATED = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmb])$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_PLAIN = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_TWITTER_FORMAT = "%a %b %d %H:%M:%S %z %Y"


class SchemaError(ValueError):
    """A record that does not fit the schema: `reason` is short and countable, `detail` says why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        """An error with a countable `reason` and the `detail` of the offending value."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def coerce_count(value: Any) -> int:
    """A non-negative integer from an int, an integral float or a string such as "1.2K", "3,400".

    Raises ValueError for anything else (booleans, negatives, fractions, words).
    """
    if isinstance(value, bool):
        raise ValueError(f"boolean {value!r} is not a count")
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        number = value
    elif isinstance(value, str):
        text = value.strip()
        abbreviated = _ABBREVIATED.match(text)
        if abbreviated:
            number = round(float(abbreviated.group(1)) * _SUFFIXES[abbreviated.group(2).lower()])
        elif _THOUSANDS.match(text):
            number = int(text.replace(",", ""))
        elif _PLAIN.match(text):
            number = float(text)
            if not math.isfinite(number) or not number.is_integer():
                raise ValueError(f"{value!r} is not a whole number")
        else:
            raise ValueError(f"{value!r} is not a number")
    else:
        raise ValueError(f"{type(value).__name__} is not a count")
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return int(number)


def coerce_number(value: Any) -> int | float:
    """A finite number from an int, a float or a numeric string ("12", "3.5", "3,400", "1.2K")."""
    if isinstance(value, bool):
        raise ValueError(f"boolean {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not finite")
        return value
    if isinstance(value, str):
        text = value.strip()
        if _PLAIN.match(text):
            number = float(text)
            if not math.isfinite(number):
                raise ValueError(f"{value!r} is not finite")
            return int(number) if number.is_integer() and "." not in text else number
        if _THOUSANDS.match(text) or _ABBREVIATED.match(text):
            return coerce_count(text)
        raise ValueError(f"{value!r} is not a number")
    raise ValueError(f"{type(value).__name__} is not a number")


def parse_datetime(value: Any) -> datetime:
    """Parse ISO 8601, RFC 2822 or the Twitter API format; naive values are taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a datetime string")
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, _TWITTER_FORMAT)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                parsed = None
    if parsed is None:
        raise ValueError(f"{value!r} is neither RFC 2822 nor ISO 8601")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _is_iso(text: str) -> bool:
    """True when `text` is an ISO 8601 datetime (then it is kept as written)."""
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def normalize_record(obj: Any) -> dict[str, Any]:
    """Return a checked copy of `obj` with coerced values, or raise `SchemaError`.

    Order of checks (the first failing one is the reason): not an object, missing required
    field, wrong type of a required field, empty required field, wrong type of an expected field.
    A present expected field whose value is null is kept as null (treated as absent).
    """
    if not isinstance(obj, dict):
        raise SchemaError("not an object", f"a JSON {type(obj).__name__}")
    record = dict(obj)
    for name in REQUIRED_FIELDS:
        if name not in record or record[name] is None:
            raise SchemaError(f"missing required field {name}")
    for name in REQUIRED_FIELDS:
        value = record[name]
        if name in ID_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            record[name] = str(value)
            continue
        if not isinstance(value, str):
            raise SchemaError(
                f"wrong type for {name}", f"expected a string, got {type(value).__name__}"
            )
    for name in ID_FIELDS:  # "t0001 " and "t0001" are one tweet: ids compare stripped
        record[name] = record[name].strip()
    for name in REQUIRED_FIELDS:
        if not record[name].strip():
            raise SchemaError(f"empty required field {name}")
    for name in EXPECTED_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        try:
            if name in AUTHOR_FIELDS:
                if isinstance(value, int) and not isinstance(value, bool):
                    record[name] = str(value)
                elif not isinstance(value, str):
                    raise ValueError(f"{type(value).__name__} is not a string")
                else:
                    record[name] = value.strip()
            elif name in COUNT_FIELDS:
                record[name] = coerce_count(value)
            elif name in NUMBER_FIELDS:
                record[name] = coerce_number(value)
            elif name in DATETIME_FIELDS:
                parsed = parse_datetime(value)
                if not _is_iso(value):
                    record[name] = parsed.isoformat()
        except ValueError as error:
            raise SchemaError(
                f"wrong type for {name}", f"expected {FIELD_TYPES[name]}: {error}"
            ) from error
    return record


def check_record(obj: Any) -> str | None:
    """The reason `obj` is not a usable raw record, or None when it is (after coercion)."""
    try:
        normalize_record(obj)
    except SchemaError as error:
        return error.reason
    return None
