"""Train / validation / test split by tweet (or by tweet author), deterministic and leak-free.

Why: all replies of a tweet are its references in evaluation, so a tweet must sit in exactly one
split; a tweet posted twice (same text, two ids) must not be in train and test either. Records
are grouped (union of: same `tweet_id`, same normalised tweet text, and with
``group_by="author"`` same `tweet_author`), groups are sorted by their smallest tweet_id and
shuffled with ``numpy.random.default_rng(seed)``, and each group goes to the split where the
middle of its pairs falls on the cumulative ratio line (so splits match the ratios in pairs).
A split with a positive ratio is never left empty when there are enough groups. With
``stratify="engagement"`` the groups are first binned by engagement quartile (mean `tweet_likes`
of the group's tweets; groups without likes form an ``unknown`` stratum) and each stratum is
spread over the splits by the ratios, so every split gets low- and high-engagement tweets.

The leakage check (shared tweet ids or normalised tweet texts between any two splits, and
shared tweet authors with ``group_by="author"``) raises if it finds any. When records carry a
`topic` (the demo data), topics of test missing from train are reported as a warning count.
Outputs keep the order of `curated`; the manifest has the SHA-256 and line count of each file
(and of the curated input), so a paper can cite exactly which data was used.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.data.curate import normalize_text
from polychromic.io import read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
GROUP_BY: tuple[str, ...] = ("tweet", "author")
STRATIFY: tuple[str, ...] = ("none", "engagement")


def check_ratios(ratios: dict[str, Any]) -> dict[str, float]:
    """{train, val, test} as floats >= 0 summing to 1 (within 1e-6); `seed`/`group_by` ignored."""
    unknown = sorted(set(ratios) - set(SPLITS) - {"seed", "group_by", "stratify"})
    missing = [name for name in SPLITS if name not in ratios]
    if unknown or missing:
        raise ValueError(f"split ratios need exactly {list(SPLITS)}; missing {missing}, "
                         f"unknown {unknown}")
    values = {name: float(ratios[name]) for name in SPLITS}
    if any(value < 0 for value in values.values()):
        raise ValueError(f"split ratios must be >= 0, got {values}")
    if abs(sum(values.values()) - 1.0) > 1e-6:
        raise ValueError(f"split ratios must sum to 1 (within 1e-6), got {sum(values.values())}")
    return values


class _UnionFind:
    """Disjoint sets of record indices (union by smallest index, path halving)."""

    def __init__(self, size: int) -> None:
        """`size` singleton sets."""
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        """The representative (smallest index) of the set holding `item`."""
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, left: int, right: int) -> None:
        """Merge the sets holding `left` and `right`."""
        left, right = self.find(left), self.find(right)
        if left != right:
            self.parent[max(left, right)] = min(left, right)


def group_records(records: list[dict[str, Any]], group_by: str) -> list[list[int]]:
    """Indices of records that must share a split, sorted by their smallest tweet_id."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {list(GROUP_BY)}, got {group_by!r}")
    union = _UnionFind(len(records))
    first: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        keys = [("id", record["tweet_id"]), ("text", normalize_text(record["tweet"]))]
        if group_by == "author" and record.get("tweet_author"):
            keys.append(("author", str(record["tweet_author"])))
        for key in keys:
            if key in first:
                union.union(first[key], index)
            else:
                first[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(records)):
        groups.setdefault(union.find(index), []).append(index)
    return sorted(groups.values(), key=lambda members: min(records[i]["tweet_id"] for i in members))


def engagement_strata(records: list[dict[str, Any]], groups: list[list[int]]) -> list[str]:
    """The engagement quartile (``q1``..``q4``) of each group, or ``unknown`` without likes.

    A group's engagement is the mean `tweet_likes` over its distinct tweets; the quartile bounds
    are those of the groups that have one.
    """
    values: list[float | None] = []
    for members in groups:
        likes: dict[str, float] = {}
        for index in members:
            value = records[index].get("tweet_likes")
            if isinstance(value, int | float) and not isinstance(value, bool):
                likes.setdefault(records[index]["tweet_id"], float(value))
        values.append(float(np.mean(list(likes.values()))) if likes else None)
    known = [value for value in values if value is not None]
    if not known:
        return ["unknown"] * len(groups)
    bounds = np.quantile(np.asarray(known), [0.25, 0.5, 0.75])
    return [f"q{int(np.searchsorted(bounds, value, side='left')) + 1}" if value is not None
            else "unknown" for value in values]


def assign_groups(sizes: list[int], ratios: dict[str, float], seed: int,
                  strata: list[str] | None = None) -> list[str]:
    """The split of each group (in the given order) after a seeded shuffle.

    With `strata` (a label per group), each stratum (in sorted label order) is spread over the
    splits by the ratios on its own; one seeded generator serves all strata.
    """
    rng = np.random.default_rng(seed)
    labels = strata if strata is not None else [""] * len(sizes)
    bounds = np.cumsum([ratios[name] for name in SPLITS])
    assigned: list[str] = [""] * len(sizes)
    members: dict[str, list[int]] = {name: [] for name in SPLITS}
    for label in sorted(set(labels)):
        inside = [group for group in range(len(sizes)) if labels[group] == label]
        total = float(sum(sizes[group] for group in inside)) or 1.0
        position = 0.0
        for pick in rng.permutation(len(inside)).tolist():
            group = inside[pick]
            middle = (position + sizes[group] / 2.0) / total
            position += sizes[group]
            split = SPLITS[min(int(np.searchsorted(bounds, middle, side="right")),
                               len(SPLITS) - 1)]
            assigned[group] = split
            members[split].append(group)
    for name in SPLITS:  # no empty split with a positive ratio while another has groups to spare
        if ratios[name] > 0 and not members[name]:
            donor = max(SPLITS, key=lambda other: len(members[other]))
            if len(members[donor]) > 1:
                moved = members[donor].pop()
                members[name].append(moved)
                assigned[moved] = name
    return assigned


def leakage(splits: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Tweet ids, normalised tweet texts and tweet authors shared by each pair of splits."""
    found: dict[str, Any] = {"shared_tweet_ids": {}, "shared_tweet_texts": {},
                             "shared_tweet_authors": {}}
    for left, right in combinations(sorted(splits), 2):
        pair = f"{left}/{right}"
        for key, value in (("shared_tweet_ids", lambda r: r["tweet_id"]),
                           ("shared_tweet_texts", lambda r: normalize_text(r["tweet"])),
                           ("shared_tweet_authors", lambda r: r.get("tweet_author"))):
            shared = ({value(r) for r in splits[left]} & {value(r) for r in splits[right]}) - {None}
            found[key][pair] = len(shared)
    found["tweet_ids_total"] = sum(found["shared_tweet_ids"].values())
    found["tweet_texts_total"] = sum(found["shared_tweet_texts"].values())
    found["tweet_authors_total"] = sum(found["shared_tweet_authors"].values())
    return found


def check_leakage(splits: dict[str, list[dict[str, Any]]], group_by: str = "tweet"
                  ) -> dict[str, Any]:
    """`leakage` of the splits; raises ValueError if any tweet (or, by author, author) is shared."""
    found = leakage(splits)
    problems = found["tweet_ids_total"] + found["tweet_texts_total"]
    if group_by == "author":
        problems += found["tweet_authors_total"]
    found["passed"] = problems == 0
    if problems:
        raise ValueError(
            f"split leakage: shared tweet ids {found['shared_tweet_ids']}, shared tweet texts "
            f"{found['shared_tweet_texts']}"
            + (f", shared tweet authors {found['shared_tweet_authors']}"
               if group_by == "author" else "")
        )
    return found


def _mean_median(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and median of `values`, rounded (None, None when there are none)."""
    if not values:
        return None, None
    return round(float(np.mean(values)), 4), round(float(np.median(values)), 4)


def _numbers(items: Any, field: str) -> list[float]:
    """The numeric values of `field` in `items` (absent, null and boolean values skipped)."""
    return [float(r[field]) for r in items
            if isinstance(r.get(field), int | float) and not isinstance(r.get(field), bool)]


def _summary(records: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """The report of one split: pairs, tweets, authors, engagement, reply length, stances."""
    tweets: dict[str, dict[str, Any]] = {}
    for record in records:
        tweets.setdefault(record["tweet_id"], record)
    likes = _numbers(tweets.values(), "tweet_likes")
    reply_likes = _numbers(records, "reply_likes")
    chars = [float(len(r["reply"])) for r in records]
    words = [float(len(r["reply"].split())) for r in records]
    summary: dict[str, Any] = {
        "pairs": len(records),
        "pair_share": round(len(records) / total, 6) if total else None,
        "tweets": len(tweets),
        "tweet_authors": len({r["tweet_author"] for r in tweets.values() if r.get("tweet_author")}),
        "reply_authors": len({r["reply_author"] for r in records if r.get("reply_author")}),
        "tweet_likes_mean": round(float(np.mean(likes)), 4) if likes else None,
        "tweet_likes_median": _mean_median(likes)[1],
        "reply_likes_mean": _mean_median(reply_likes)[0],
        "reply_likes_median": _mean_median(reply_likes)[1],
        "reply_chars_mean": _mean_median(chars)[0],
        "reply_chars_median": _mean_median(chars)[1],
        "reply_words_mean": _mean_median(words)[0],
        "reply_words_median": _mean_median(words)[1],
    }
    if not likes:
        summary["tweet_likes_reason"] = "no tweet_likes in this split"
    if not reply_likes:
        summary["reply_likes_reason"] = "no reply_likes in this split"
    if any("stance" in r for r in records):
        summary["stances"] = dict(sorted(Counter(str(r.get("stance")) for r in records).items()))
    return summary


def _file_entry(path: str) -> dict[str, Any]:
    """Path, SHA-256 and line count of a file, for the manifest."""
    data = Path(path).read_bytes()
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(),
            "lines": data.count(b"\n")}


def split_dataset(
    curated: str,
    train: str,
    val: str,
    test: str,
    report: str,
    manifest: str,
    ratios: dict[str, Any],
    seed: int,
    group_by: str = "tweet",
    stratify: str = "none",
    min_tweets: int = 1,
) -> dict[str, Any]:
    """Split `curated` into train/val/test JSONL, write report and manifest; return the report.

    Raises ValueError on leakage, an empty input, or a split of fewer than `min_tweets`
    tweets (`split.min_tweets`; nothing is written then).
    """
    values = check_ratios(ratios)
    if stratify not in STRATIFY:
        raise ValueError(f"stratify must be one of {list(STRATIFY)}, got {stratify!r}")
    records = read_jsonl(curated)
    if not records:
        raise ValueError(f"nothing to split: {curated} is empty")
    groups = group_records(records, group_by)
    strata = engagement_strata(records, groups) if stratify == "engagement" else None
    assigned = assign_groups([len(members) for members in groups], values, seed, strata)
    splits = _records_by_split(records, groups, assigned)
    found = check_leakage(splits, group_by)

    result: dict[str, Any] = {
        "input": len(records),
        "group_by": group_by,
        "groups": len(groups),
        "seed": seed,
        "ratios": values,
        "stratify": stratify,
        "splits": {name: _summary(splits[name], len(records)) for name in SPLITS},
        "leakage": found,
    }
    if strata is not None:
        _add_strata_counts(result, strata, assigned)
    _add_topic_coverage(result, records, splits)
    _check_sizes(result, min_tweets, curated)
    paths = {"train": train, "val": val, "test": test}
    for name in SPLITS:
        write_jsonl(paths[name], splits[name])
    write_json(report, result)
    write_json(manifest, {"seed": seed, "group_by": group_by, "stratify": stratify,
                          "ratios": values, "source": _file_entry(curated),
                          "files": {name: _file_entry(paths[name]) for name in SPLITS}})
    log.info("split %d pairs in %d groups: %s", len(records), len(groups),
             ", ".join(f"{name} {len(splits[name])}" for name in SPLITS))
    return result


def _check_sizes(result: dict[str, Any], min_tweets: int, curated: str) -> None:
    """Raise ValueError naming every split of fewer than `min_tweets` tweets: a test or
    validation split that small passes the data stage and fails (or means nothing) only
    after pretraining and every fine-tune."""
    small = {name: entry["tweets"] for name, entry in result["splits"].items()
             if entry["tweets"] < min_tweets}
    if small:
        sizes = ", ".join(f"{name} {count}" for name, count in small.items())
        tweets = sum(entry["tweets"] for entry in result["splits"].values())
        raise ValueError(
            f"too few tweets in split(s) {sizes} (split.min_tweets: {min_tweets}): "
            f"{curated} holds {result['input']} pairs of {tweets} tweets in {result['groups']} "
            f"{result['group_by']} groups, split by {result['ratios']}; collect more, "
            "or change split's ratios or min_tweets")


def _records_by_split(records: list[dict[str, Any]], groups: list[list[int]],
                      assigned: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The records of each split, in the order of `records`."""
    split_of = [""] * len(records)
    for members, name in zip(groups, assigned, strict=True):
        for index in members:
            split_of[index] = name
    return {name: [r for r, s in zip(records, split_of, strict=True) if s == name]
            for name in SPLITS}


def _add_strata_counts(result: dict[str, Any], strata: list[str], assigned: list[str]) -> None:
    """Add to each split of the report how many of its groups fall in each engagement stratum."""
    for name in SPLITS:
        counts = Counter(label for label, split in zip(strata, assigned, strict=True)
                         if split == name)
        result["splits"][name]["engagement_strata_groups"] = dict(sorted(counts.items()))


def _add_topic_coverage(result: dict[str, Any], records: list[dict[str, Any]],
                        splits: dict[str, list[dict[str, Any]]]) -> None:
    """Report (and warn about) test topics missing from train, when records carry a topic."""
    if not any("topic" in r for r in records):
        return
    train_topics = {r.get("topic") for r in splits["train"]}
    missing = sorted({str(r.get("topic")) for r in splits["test"]
                      if r.get("topic") not in train_topics})
    result["test_topics_missing_from_train"] = {"count": len(missing), "topics": missing}
    if missing:
        log.warning("%d test topic(s) missing from train: %s", len(missing), missing)
