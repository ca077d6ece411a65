"""split_dataset: grouping, determinism, ratios, leakage check, topics, manifest."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from polychromic.data.split import check_leakage, check_ratios, split_dataset
from polychromic.io import read_json, read_jsonl, write_jsonl

RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}


def corpus(n_tweets: int = 60, authors: int = 12) -> list[dict]:
    out = []
    for t in range(n_tweets):
        for r in range(1 + t % 3):
            out.append({"tweet_id": f"t{t:03d}", "tweet": f"Tweet {t} about things",
                        "reply_id": f"r{t:03d}_{r}", "reply": f"reply {r} to {t}",
                        "tweet_author": f"a{t % authors}", "tweet_likes": t,
                        "topic": f"topic{t % 5}"})
    return out


def run(tmp_path, records, seed=42, group_by="tweet", ratios=RATIOS, name="out"):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    write_jsonl(folder / "curated.jsonl", records)
    paths = {split: str(folder / f"{split}.jsonl") for split in ("train", "val", "test")}
    report = split_dataset(str(folder / "curated.jsonl"), paths["train"], paths["val"],
                           paths["test"], str(folder / "report.json"),
                           str(folder / "manifest.json"), ratios, seed, group_by)
    splits = {split: read_jsonl(path) for split, path in paths.items()}
    return report, splits, folder


def test_split_is_deterministic_and_complete(tmp_path):
    records = corpus()
    report_a, splits_a, folder_a = run(tmp_path, records, name="a")
    report_b, splits_b, folder_b = run(tmp_path, records, name="b")
    assert splits_a == splits_b
    assert read_json(folder_a / "manifest.json")["files"]["test"]["sha256"] == read_json(
        folder_b / "manifest.json")["files"]["test"]["sha256"]
    _, splits_c, _ = run(tmp_path, records, seed=7, name="c")
    assert splits_c != splits_a  # the seed matters
    ids = sorted(r["reply_id"] for split in splits_a.values() for r in split)
    assert ids == sorted(r["reply_id"] for r in records)
    # pairs follow the ratios (within one group of the largest size, 3 pairs)
    assert abs(len(splits_a["train"]) - 0.8 * len(records)) <= 3
    assert all(splits_a[name] for name in ("train", "val", "test"))
    # input order is kept inside each split
    order = {r["reply_id"]: i for i, r in enumerate(records)}
    for split in splits_a.values():
        positions = [order[r["reply_id"]] for r in split]
        assert positions == sorted(positions)
    assert report_a["splits"]["train"]["pairs"] == len(splits_a["train"])


def test_no_leakage_by_tweet_including_same_text_under_two_ids(tmp_path):
    records = corpus()
    for record in records:  # t001 and t002 carry the same text (modulo case/punctuation)
        if record["tweet_id"] in ("t001", "t002"):
            record["tweet"] = "Same tweet, posted twice!" if record["tweet_id"] == "t001" else (
                "same tweet posted twice")
    for seed in range(5):
        report, splits, _ = run(tmp_path, records, seed=seed, name=f"s{seed}")
        homes = {r["tweet_id"]: name for name, split in splits.items() for r in split}
        assert homes["t001"] == homes["t002"]
        assert report["leakage"]["tweet_ids_total"] == 0
        assert report["leakage"]["tweet_texts_total"] == 0


def test_group_by_author(tmp_path):
    report, splits, _ = run(tmp_path, corpus(), group_by="author")
    authors = [{r["tweet_author"] for r in split} for split in splits.values()]
    assert not (authors[0] & authors[1]) and not (authors[0] & authors[2])
    assert not (authors[1] & authors[2])
    assert report["leakage"]["tweet_authors_total"] == 0 and report["groups"] == 12


def test_leakage_check_fails_on_crafted_leak():
    a = {"tweet_id": "t1", "tweet": "Hello world", "reply_id": "r1", "reply": "x"}
    b = {"tweet_id": "t2", "tweet": "Other", "reply_id": "r2", "reply": "y"}
    with pytest.raises(ValueError, match="shared tweet ids"):
        check_leakage({"train": [a], "val": [b], "test": [dict(a, reply_id="r3")]})
    with pytest.raises(ValueError, match="train/val"):  # same text, other id
        check_leakage({"train": [a], "val": [dict(b, tweet="hello, WORLD!")], "test": []})
    with pytest.raises(ValueError, match="authors"):
        check_leakage({"train": [dict(a, tweet_author="x")], "val": [dict(b, tweet_author="x")],
                       "test": []}, group_by="author")
    clean = check_leakage({"train": [a], "val": [b], "test": []})
    assert clean["passed"] is True


def test_ratios_validated(tmp_path):
    assert check_ratios({"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1, "group_by": "tweet"})
    with pytest.raises(ValueError, match="sum to 1"):
        check_ratios({"train": 0.8, "val": 0.1, "test": 0.2})
    with pytest.raises(ValueError, match="missing"):
        check_ratios({"train": 0.9, "val": 0.1})
    with pytest.raises(ValueError, match=">= 0"):
        check_ratios({"train": 1.2, "val": -0.1, "test": -0.1})


def test_report_topics_and_manifest(tmp_path):
    records = corpus()
    for record in records:
        if record["tweet_id"] == "t000":
            record["topic"] = "only_once"
    report, splits, folder = run(tmp_path, records)
    missing = report["test_topics_missing_from_train"]
    in_test = {r["topic"] for r in splits["test"]}
    in_train = {r["topic"] for r in splits["train"]}
    assert missing["topics"] == sorted(in_test - in_train)
    assert missing["count"] == len(missing["topics"])
    manifest = read_json(folder / "manifest.json")
    for name in ("train", "val", "test"):
        data = (folder / f"{name}.jsonl").read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["files"][name]["lines"] == len(splits[name])
    stats = report["splits"]["test"]
    tweets = {r["tweet_id"]: r["tweet_likes"] for r in splits["test"]}
    assert stats["tweets"] == len(tweets)
    assert stats["tweet_likes_mean"] == pytest.approx(sum(tweets.values()) / len(tweets), abs=1e-3)


def test_tiny_input_keeps_every_split_non_empty(tmp_path):
    _, splits, _ = run(tmp_path, corpus(n_tweets=3))
    assert all(len({r["tweet_id"] for r in split}) == 1 for split in splits.values())


def test_stratified_by_engagement(tmp_path):
    folder = tmp_path / "strat"
    folder.mkdir()
    write_jsonl(folder / "curated.jsonl", corpus(n_tweets=200))
    paths = {split: str(folder / f"{split}.jsonl") for split in ("train", "val", "test")}
    report = split_dataset(str(folder / "curated.jsonl"), paths["train"], paths["val"],
                           paths["test"], str(folder / "report.json"),
                           str(folder / "manifest.json"), RATIOS, 42, "tweet", "engagement")
    again = split_dataset(str(folder / "curated.jsonl"), paths["train"], paths["val"],
                          paths["test"], str(folder / "report2.json"),
                          str(folder / "manifest2.json"), RATIOS, 42, "tweet", "engagement")
    assert report == again  # deterministic
    assert report["stratify"] == "engagement" and report["leakage"]["passed"]
    for name in ("train", "val", "test"):  # every split holds every engagement quartile
        strata = report["splits"][name]["engagement_strata_groups"]
        assert set(strata) == {"q1", "q2", "q3", "q4"}, (name, strata)
    train = report["splits"]["train"]["engagement_strata_groups"]
    assert max(train.values()) - min(train.values()) <= 2
    plain = split_dataset(str(folder / "curated.jsonl"), paths["train"], paths["val"],
                          paths["test"], str(folder / "r3.json"), str(folder / "m3.json"),
                          RATIOS, 42, "tweet")
    assert "engagement_strata_groups" not in plain["splits"]["train"]
    with pytest.raises(ValueError, match="stratify"):
        split_dataset(str(folder / "curated.jsonl"), paths["train"], paths["val"],
                      paths["test"], str(folder / "r4.json"), str(folder / "m4.json"), RATIOS,
                      42, "tweet", "likes")


def test_split_report_statistics_and_manifest_source(tmp_path):
    records = corpus()
    for number, record in enumerate(records):
        record["reply_likes"] = number % 7
        record["reply_author"] = f"u{number % 9}"
    report, splits, folder = run(tmp_path, records)
    test = report["splits"]["test"]
    likes = sorted(r["reply_likes"] for r in splits["test"])
    assert test["reply_likes_median"] == pytest.approx(float(np.median(likes)))
    assert test["reply_likes_mean"] == pytest.approx(float(np.mean(likes)), abs=1e-3)
    assert test["reply_authors"] == len({r["reply_author"] for r in splits["test"]})
    assert test["reply_chars_median"] == pytest.approx(
        float(np.median([len(r["reply"]) for r in splits["test"]])))
    assert report["leakage"]["shared_tweet_ids"] == {"test/train": 0, "test/val": 0,
                                                     "train/val": 0}
    manifest = read_json(folder / "manifest.json")
    curated = (folder / "curated.jsonl").read_bytes()
    assert manifest["source"]["sha256"] == hashlib.sha256(curated).hexdigest()
    assert manifest["ratios"] == RATIOS and manifest["stratify"] == "none"


def test_split_refuses_to_write_a_leak(tmp_path, monkeypatch):
    from polychromic.data import split as split_module

    # a broken grouping (every record alone) puts replies of one tweet in several splits
    monkeypatch.setattr(split_module, "group_records",
                        lambda records, group_by: [[i] for i in range(len(records))])
    with pytest.raises(ValueError, match="split leakage"):
        run(tmp_path, corpus())
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_split_with_too_few_tweets_fails_naming_it(tmp_path):
    """Two tweets used to split into an empty split with only a log warning; the failure came
    at generate, after every fine-tune. Now the split step fails and names the split."""
    folder = tmp_path / "few"
    folder.mkdir()
    write_jsonl(folder / "curated.jsonl", corpus(n_tweets=2))
    paths = [str(folder / f"{name}.jsonl") for name in ("train", "val", "test")]
    with pytest.raises(ValueError, match=r"too few tweets in split\(s\) .*0.*min_tweets: 1"):
        split_dataset(str(folder / "curated.jsonl"), *paths, str(folder / "report.json"),
                      str(folder / "manifest.json"), RATIOS, 42)
    assert not (folder / "test.jsonl").exists()  # nothing written
    write_jsonl(folder / "curated.jsonl", corpus(n_tweets=60))
    with pytest.raises(ValueError) as caught:
        split_dataset(str(folder / "curated.jsonl"), *paths, str(folder / "report.json"),
                      str(folder / "manifest.json"), RATIOS, 42, min_tweets=20)
    message = str(caught.value)
    assert "val 6" in message and "test 6" in message and "train" not in message.split(":")[0]
    assert "of 60 tweets" in message
    report = split_dataset(str(folder / "curated.jsonl"), *paths, str(folder / "report.json"),
                           str(folder / "manifest.json"), RATIOS, 42, min_tweets=6)
    assert min(entry["tweets"] for entry in report["splits"].values()) == 6
