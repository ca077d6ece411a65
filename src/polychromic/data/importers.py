"""Importers: exports of common scraping tools -> raw tweet/reply records.

The records follow the raw record schema (`polychromic.data.schema`, docs/file_contract.md).

Why: a real collection rarely arrives as tweet/reply pairs. Scrapers export *tweets*, some of
which are replies to others, and the study needs pairs. This module recognises two export
formats by their content, maps their fields to the raw schema and pairs every reply with the
tweet it answers. Nothing is dropped silently: an item that yields no pair is either the tweet
of at least one pair (``used_as_tweet``) or rejected with a reason.

Formats (``data.format: auto`` detects them per file from its first objects; a file can also be
forced with ``apify``, ``twitter_v2`` or ``raw``):

- ``apify``: an Apify tweet-scraper dataset (JSON array or JSONL), one tweet per item, with
  fields such as ``id``, ``text``/``fullText``, ``likeCount``, ``retweetCount``, ``createdAt``,
  ``author.userName``, ``author.followers``, ``conversationId``, ``inReplyToId``. Recognised by
  an object carrying ``inReplyToId``, ``conversationId`` or an ``author`` object.
- ``twitter_v2``: Twitter/X API v2 search or lookup responses, one response object per file or
  one per line (pages): ``data`` (tweets with ``author_id``, ``created_at``,
  ``conversation_id``, ``referenced_tweets`` and ``public_metrics``) and ``includes.users``
  (``username``, ``public_metrics.followers_count``), optionally ``includes.tweets`` (the
  replied-to tweets, used for pairing only). Recognised by an object with ``data`` and
  ``includes`` (or ``meta``). Each tweet of ``data`` is one item.
- ``raw``: records already in the raw schema (anything else).

Pairing (`pair_tweets`), over all export files of a run together (tweets and their replies may
come from different files):

- a reply is an item with a parent id (``inReplyToId``; else, for Apify, ``conversationId``
  when it differs from the item's own id; for API v2 the ``replied_to`` reference); it is paired
  with its parent when the parent is an item or an ``includes.tweets`` entry, else rejected as
  ``reply whose tweet is missing``;
- an item that is not a reply and is the parent of at least one reply is ``used_as_tweet``; one
  with no reply is rejected as ``tweet without reply``;
- an id seen before (in any export file) is rejected as ``duplicate tweet id``; a retweet is
  rejected as ``retweet, not a reply``; an item without id or text as ``not a tweet``.

The reply text loses its leading ``@mentions`` (Twitter prefixes replies with the handles of the
thread), the original is kept in ``reply_text_original`` when it changed. Counts and dates are
copied as exported; validation coerces them ("1.2K" -> 1200, the Twitter date format -> ISO 8601).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from polychromic.data.schema import parse_datetime

FORMATS: tuple[str, ...] = ("auto", "raw", "apify", "twitter_v2")
EXPORT_FORMATS: tuple[str, ...] = ("apify", "twitter_v2")
DETECT_OBJECTS = 20  # format detection looks at this many parsed objects of a file

REASON_MISSING_TWEET = "reply whose tweet is missing"
REASON_NO_REPLY = "tweet without reply"
REASON_DUPLICATE = "duplicate tweet id"
REASON_RETWEET = "retweet, not a reply"
REASON_NOT_TWEET = "not a tweet"

_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w+)+\s*")


def is_twitter_v2_page(obj: Any) -> bool:
    """An API v2 response: an object with `data` and `includes` (or `meta`)."""
    return isinstance(obj, dict) and "data" in obj and ("includes" in obj or "meta" in obj)


def is_twitter_v2_response(obj: Any) -> bool:
    """Any API v2 response object, including a page without tweets (only `meta`)."""
    return (isinstance(obj, dict) and "reply_id" not in obj
            and any(key in obj for key in ("data", "includes", "meta")))


def is_apify_item(obj: Any) -> bool:
    """An Apify tweet-scraper item: `inReplyToId`, `conversationId` or an `author` object."""
    if not isinstance(obj, dict) or "reply_id" in obj:
        return False
    return ("inReplyToId" in obj or "conversationId" in obj
            or isinstance(obj.get("author"), dict))


def detect_format(objects: Iterable[Any]) -> str:
    """`twitter_v2`, `apify` or `raw`: the format of most of the first parsed objects."""
    votes = {"twitter_v2": 0, "apify": 0, "raw": 0}
    for count, obj in enumerate(objects):
        if count >= DETECT_OBJECTS:
            break
        if is_twitter_v2_page(obj):
            votes["twitter_v2"] += 1
        elif is_apify_item(obj):
            votes["apify"] += 1
        else:
            votes["raw"] += 1
    best = max(votes.values())
    # ties (and a file without any object) read as raw
    return next(name for name in ("raw", "apify", "twitter_v2") if votes[name] == best)


@dataclass
class ExportTweet:
    """One tweet of an export, in the names of the raw schema (None = not in the export)."""

    id: str
    text: str
    file: str
    line: int
    raw: str
    item: int | None = None  # position inside an API v2 page's `data` (1-based)
    author: str | None = None
    author_followers: Any = None
    likes: Any = None
    retweets: Any = None
    created_at: Any = None
    parent_id: str | None = None
    conversation_id: str | None = None
    lang: str | None = None
    paired_by: str | None = None  # how parent_id was found
    is_retweet: bool = False


@dataclass
class ImportReject:
    """An export item that yields no tweet, with where it is and why."""

    file: str
    line: int
    reason: str
    raw: str
    detail: str = ""
    item: int | None = None


@dataclass
class PairedRecord:
    """A raw record built from a reply and its tweet; `file`/`line` are the reply's."""

    record: dict[str, Any]
    file: str
    line: int
    raw: str
    item: int | None = None


@dataclass
class Pairing:
    """What pairing gave: records, rejected items, items used as tweets, and counts."""

    records: list[PairedRecord] = field(default_factory=list)
    rejects: list[ImportReject] = field(default_factory=list)
    used_as_tweet: list[tuple[str, int, int | None]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def _id(value: Any) -> str | None:
    """A tweet id as a string (from a string or an integer), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _text(*values: Any) -> str | None:
    """The first of `values` that is a non-blank string, or None."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return None


def apify_tweet(obj: Any, file: str, line: int, raw: str) -> ExportTweet | ImportReject:
    """Map one Apify tweet-scraper item, or say why it is not a tweet."""
    if not isinstance(obj, dict):
        return ImportReject(file, line, REASON_NOT_TWEET, raw, f"a JSON {type(obj).__name__}")
    tweet_id = _id(obj.get("id") if "id" in obj else obj.get("tweetId"))
    text = _text(obj.get("fullText"), obj.get("full_text"), obj.get("text"))
    if tweet_id is None or text is None:
        missing = "id" if tweet_id is None else "text"
        return ImportReject(file, line, REASON_NOT_TWEET, raw, f"no {missing} in the item")
    author = obj.get("author") if isinstance(obj.get("author"), dict) else {}
    parent = _id(obj.get("inReplyToId") or obj.get("inReplyToStatusId"))
    conversation = _id(obj.get("conversationId"))
    paired_by = "inReplyToId" if parent else None
    if parent is None and conversation and conversation != tweet_id:
        parent, paired_by = conversation, "conversationId"
    followers = author.get("followers")
    if followers is None:
        followers = author.get("followersCount")
    return ExportTweet(
        id=tweet_id, text=text, file=file, line=line, raw=raw,
        author=_text(author.get("userName"), author.get("username"), author.get("screenName")),
        author_followers=followers,
        likes=obj.get("likeCount"), retweets=obj.get("retweetCount"),
        created_at=obj.get("createdAt"), parent_id=parent, conversation_id=conversation,
        lang=obj.get("lang") if isinstance(obj.get("lang"), str) else None,
        paired_by=paired_by,
        is_retweet=bool(obj.get("isRetweet")) or text.startswith("RT @"),
    )


def _v2_tweet(obj: Any, users: dict[str, dict[str, Any]], file: str, line: int, raw: str,
              item: int | None) -> ExportTweet | ImportReject:
    """Map one tweet of an API v2 response (with its author from `users`), or say why not."""
    if not isinstance(obj, dict):
        return ImportReject(file, line, REASON_NOT_TWEET, raw, f"a JSON {type(obj).__name__}",
                            item)
    tweet_id, text = _id(obj.get("id")), _text(obj.get("text"))
    if tweet_id is None or text is None:
        missing = "id" if tweet_id is None else "text"
        return ImportReject(file, line, REASON_NOT_TWEET, raw, f"no {missing} in the tweet",
                            item)
    references = obj.get("referenced_tweets") or []
    kinds = {ref.get("type"): _id(ref.get("id")) for ref in references if isinstance(ref, dict)}
    user = users.get(str(obj.get("author_id")), {})
    user_metrics = user.get("public_metrics")
    user_metrics = user_metrics if isinstance(user_metrics, dict) else {}
    metrics = obj.get("public_metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    return ExportTweet(
        id=tweet_id, text=text, file=file, line=line, raw=raw, item=item,
        author=_text(user.get("username")),
        author_followers=user_metrics.get("followers_count"),
        likes=metrics.get("like_count"), retweets=metrics.get("retweet_count"),
        created_at=obj.get("created_at"), parent_id=kinds.get("replied_to"),
        conversation_id=_id(obj.get("conversation_id")),
        lang=obj.get("lang") if isinstance(obj.get("lang"), str) else None,
        paired_by="referenced_tweets" if kinds.get("replied_to") else None,
        is_retweet="retweeted" in kinds,
    )


def twitter_v2_page(page: dict[str, Any], file: str, line: int
                    ) -> tuple[list[ExportTweet | ImportReject], list[ExportTweet], list[str]]:
    """The items (tweets of `data`), the lookup-only tweets (`includes.tweets`) and notes."""
    includes = page.get("includes") if isinstance(page.get("includes"), dict) else {}
    users = {str(user.get("id")): user for user in includes.get("users") or []
             if isinstance(user, dict)}
    data = page.get("data")
    if isinstance(data, dict):  # a single-tweet lookup response
        data = [data]
    notes: list[str] = []
    if page.get("errors"):
        notes.append(f"line {line}: the response carries {len(page['errors'])} API error(s)")
    items: list[ExportTweet | ImportReject] = []
    for number, obj in enumerate(data or [], start=1):
        raw = json.dumps(obj, ensure_ascii=False)
        items.append(_v2_tweet(obj, users, file, line, raw, number))
    lookups = []
    for obj in includes.get("tweets") or []:
        tweet = _v2_tweet(obj, users, file, line, "", None)
        if isinstance(tweet, ExportTweet):
            lookups.append(tweet)
    return items, lookups, notes


def strip_leading_mentions(text: str) -> str:
    """"@a @b thanks!" -> "thanks!" (the handles Twitter puts in front of a reply)."""
    return _LEADING_MENTIONS.sub("", text, count=1)


def _time_diff(tweet: ExportTweet, reply: ExportTweet) -> int | float | None:
    """Seconds from the tweet to the reply; None when a date is missing or the order is wrong."""
    try:
        seconds = (parse_datetime(reply.created_at) - parse_datetime(tweet.created_at)
                   ).total_seconds()
    except ValueError:
        return None
    if seconds < 0:
        return None
    return int(seconds) if float(seconds).is_integer() else seconds


def make_record(tweet: ExportTweet, reply: ExportTweet, source_format: str) -> dict[str, Any]:
    """The raw record of `reply` answering `tweet`; fields the export lacks are left out."""
    reply_text = strip_leading_mentions(reply.text)
    record: dict[str, Any] = {
        "tweet_id": tweet.id,
        "tweet": tweet.text,
        "tweet_author": tweet.author,
        "tweet_likes": tweet.likes,
        "tweet_retweets": tweet.retweets,
        "tweet_created_at": tweet.created_at,
        "reply_id": reply.id,
        "reply": reply_text,
        "reply_author": reply.author,
        "reply_likes": reply.likes,
        "reply_retweets": reply.retweets,
        "reply_author_followers": reply.author_followers,
        "reply_created_at": reply.created_at,
        "reply_time_diff_seconds": _time_diff(tweet, reply),
        "tweet_author_followers": tweet.author_followers,
        "conversation_id": reply.conversation_id,
        "reply_lang": reply.lang,
        "import_format": source_format,
        "paired_by": reply.paired_by,
    }
    if reply_text != reply.text:
        record["reply_text_original"] = reply.text
    return {key: value for key, value in record.items() if value is not None}


def pair_tweets(
    items: list[tuple[str, ExportTweet | ImportReject]],
    lookups: list[ExportTweet] | None = None,
) -> Pairing:
    """Pair replies with their tweets; every item ends as a record, a tweet used, or a reject.

    `items` are (source format, tweet or reject) in file order; `lookups` are tweets that may be
    parents but are not items themselves (API v2 ``includes.tweets``).
    """
    result = Pairing()
    tweets, by_id = _distinct_tweets(items, result)
    parents = dict(by_id)
    for tweet in lookups or []:
        parents.setdefault(tweet.id, tweet)
    children: dict[str, int] = {}
    for _, tweet in tweets:
        if tweet.parent_id is not None and tweet.parent_id in parents:
            children[tweet.parent_id] = children.get(tweet.parent_id, 0) + 1
    nested = 0
    for source_format, tweet in tweets:
        if tweet.parent_id is not None:
            nested += _pair_reply(source_format, tweet, parents, result)
        elif children.get(tweet.id):
            result.used_as_tweet.append((tweet.file, tweet.line, tweet.item))
        else:
            result.rejects.append(ImportReject(tweet.file, tweet.line, REASON_NO_REPLY, tweet.raw,
                                               f"no input reply answers {tweet.id!r}",
                                               tweet.item))
    result.stats = {
        "items": len(items),
        "pairs": len(result.records),
        "pairs_whose_tweet_is_itself_a_reply": nested,
        "pairs_with_tweet_from_includes": sum(
            1 for paired in result.records if paired.record["tweet_id"] not in by_id),
        "used_as_tweet": len(result.used_as_tweet),
        "rejected": len(result.rejects),
    }
    return result


def _distinct_tweets(items: list[tuple[str, ExportTweet | ImportReject]], result: Pairing
                     ) -> tuple[list[tuple[str, ExportTweet]], dict[str, ExportTweet]]:
    """The tweets that can pair (first of each id, no retweet) and every tweet by id.

    Rejects, repeated ids and retweets go to `result.rejects`; a retweet's id still counts as
    seen, so a later copy is a duplicate.
    """
    tweets: list[tuple[str, ExportTweet]] = []
    by_id: dict[str, ExportTweet] = {}
    for source_format, entry in items:
        if isinstance(entry, ImportReject):
            result.rejects.append(entry)
            continue
        if entry.id in by_id:
            first = by_id[entry.id]
            result.rejects.append(ImportReject(entry.file, entry.line, REASON_DUPLICATE,
                                               entry.raw, f"{entry.id!r} first seen at "
                                               f"{first.file}:{first.line}", entry.item))
            continue
        by_id[entry.id] = entry
        if entry.is_retweet:
            result.rejects.append(ImportReject(entry.file, entry.line, REASON_RETWEET, entry.raw,
                                               "", entry.item))
            continue
        tweets.append((source_format, entry))
    return tweets, by_id


def _pair_reply(source_format: str, reply: ExportTweet, parents: dict[str, ExportTweet],
                result: Pairing) -> bool:
    """Pair `reply` with its parent, or reject it; True when that parent is itself a reply."""
    parent = parents.get(reply.parent_id) if reply.parent_id is not None else None
    if parent is None:
        result.rejects.append(ImportReject(
            reply.file, reply.line, REASON_MISSING_TWEET, reply.raw,
            f"replies to {reply.parent_id!r}, which is in no input file", reply.item))
        return False
    result.records.append(PairedRecord(make_record(parent, reply, source_format),
                                       reply.file, reply.line, reply.raw, reply.item))
    return parent.parent_id is not None
