"""The demo corpus: determinism, stance design, noise, and the whole data chain on it."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from polychromic.data.collection import verify_collection
from polychromic.data.curate import curate
from polychromic.data.demo import STANCES, TOPICS, generate_demo, is_demo_corpus, main
from polychromic.data.split import split_dataset
from polychromic.data.validate import validate_raw
from polychromic.io import read_jsonl
from polychromic.settings import section

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "resources" / "demo" / "raw.jsonl"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    path = tmp_path_factory.mktemp("demo") / "raw.jsonl"
    stats = generate_demo(path)
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return path, stats, records


def test_same_seed_same_bytes_and_committed_file_is_current(demo, tmp_path):
    path, stats, _ = demo
    again = tmp_path / "again.jsonl"
    assert generate_demo(again) == stats
    assert again.read_bytes() == path.read_bytes()
    assert COMMITTED.read_bytes() == path.read_bytes(), (
        "resources/demo/raw.jsonl is stale: run python -m polychromic.data.demo")
    other = tmp_path / "other.jsonl"
    generate_demo(other, seed=1)
    assert other.read_bytes() != path.read_bytes()


def test_cli_writes_the_same_file(demo, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    assert main(["--out", str(out), "--n-tweets", "400", "--seed", "0"]) == 0
    assert out.read_bytes() == demo[0].read_bytes()
    assert json.loads(capsys.readouterr().out)["tweets"] == 400


def test_stance_design(demo):
    _, stats, records = demo
    clean = [r for r in records if r.get("stance") in STANCES]
    shares = Counter(r["stance"] for r in clean)
    assert 0.55 <= shares["agree"] / len(clean) <= 0.65
    assert all(shares[s] > 0.08 * len(clean) for s in STANCES)
    by_tweet: dict[str, list[dict]] = defaultdict(list)
    for record in clean:
        by_tweet[record["tweet_id"]].append(record)
    assert len(by_tweet) == 400 == stats["tweets"]
    kinds = Counter(len({r["stance"] for r in replies}) for replies in by_tweet.values())
    assert set(kinds) == {1, 2} and min(kinds.values()) > 100
    assert all(3 <= len(replies) <= 6 for replies in by_tweet.values())
    tweets_per_topic = Counter(replies[0]["topic"] for replies in by_tweet.values())
    assert set(tweets_per_topic) == set(TOPICS) and min(tweets_per_topic.values()) >= 8
    for replies in by_tweet.values():
        assert len({r["tweet"] for r in replies}) == 1 and len({r["topic"] for r in replies}) == 1
        assert len({r["reply"] for r in replies}) == len(replies)  # no duplicate inside a tweet
    # tweets do not tell the stance: the same tweet templates serve every stance set
    for record in clean:
        name = TOPICS[record["topic"]][0]
        assert name in record["tweet"].lower() and name in record["reply"].lower()
        assert 8 <= len(record["reply"].split()) <= 25


def test_noise_and_authors(demo):
    _, stats, records = demo
    noise = [r for r in records if r.get("stance") == "noise"]
    # 72-78 noise records plus 2 parseable malformed ones
    assert 0.03 <= stats["noise_fraction"] <= 0.05
    assert len(noise) == stats["noise_records"] + 2
    assert all(stats["noise_by_kind"][kind] > 0 for kind in stats["noise_by_kind"])
    assert stats["malformed_lines"] == 3
    assert 60 <= stats["tweet_authors"] <= 80 and 200 <= stats["reply_authors"] <= 300


def test_whole_data_chain_on_demo(demo, tmp_path):
    path, stats, _ = demo
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    out = tmp_path
    report = validate_raw([str(path)], str(out / "v.jsonl"), str(out / "rej.jsonl"),
                          str(out / "val.json"), config["data"]["max_rejected_fraction"])
    assert report["totals"]["rejected"] == 3 and report["totals"]["lines_read"] == stats["lines"]
    assert set(report["totals"]["reasons"]) == {"not JSON", "missing required field reply",
                                                 "wrong type for tweet_likes"}
    collection = verify_collection(str(out / "v.jsonl"), str(out / "c.json"), str(out / "c.md"),
                                   section("data", config["data"]).thresholds, True)
    assert collection["passed"]
    curated = curate(str(out / "v.jsonl"), str(out / "cur.jsonl"), str(out / "cur.json"),
                     section("curation", config["curation"]), None)
    kept = read_jsonl(out / "cur.jsonl")
    assert curated["output"] == stats["replies"]
    assert {r["stance"] for r in kept} == set(STANCES)  # every noise record dropped, no clean one
    assert curated["dropped_total"] == stats["noise_records"] == 75
    # the filters added for real collections are on in config.yaml and drop no clean demo reply
    for name in ("too_many_emojis", "all_caps", "repeated_chars", "self_reply", "language"):
        assert curated["settings"][{"too_many_emojis": "max_emojis", "all_caps": "drop_all_caps",
                                    "repeated_chars": "max_repeated_chars",
                                    "self_reply": "drop_self_replies",
                                    "language": "language"}[name]], name
        assert curated["filters"][name]["dropped"] == 0, name
    for name in ("too_short", "url", "too_many_hashtags", "spam", "generic", "exact_duplicate"):
        assert curated["filters"][name]["dropped"] > 0, name
    split_cfg = config["split"]
    result = split_dataset(str(out / "cur.jsonl"), str(out / "train.jsonl"),
                           str(out / "val.jsonl"), str(out / "test.jsonl"), str(out / "s.json"),
                           str(out / "m.json"),
                           {name: split_cfg[name] for name in ("train", "val", "test")},
                           split_cfg["seed"], split_cfg["group_by"],
                           min_tweets=split_cfg["min_tweets"])
    assert result["test_topics_missing_from_train"]["count"] == 0
    assert result["splits"]["test"]["tweets"] >= 30


def test_the_demo_corpus_is_recognised_and_no_other(demo) -> None:
    from conftest import toy_records

    _, _, records = demo
    assert is_demo_corpus(records)
    assert not is_demo_corpus(toy_records())  # stances, but not the demo's topics
    assert not is_demo_corpus([{**records[0], "topic": "cars"}, *records[1:]])
    assert not is_demo_corpus([])
