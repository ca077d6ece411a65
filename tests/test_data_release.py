"""The data release: the splits as a datasets DatasetDict in Parquet with a dataset card; no
text by default, every field that is not released named with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from polychromic.data.card import card_origin
from polychromic.data.release import build_release
from polychromic.io import write_json, write_jsonl

SPLITS = ("train", "val", "test")


def record(i: int, split: str) -> dict:
    return {"tweet_id": f"{split}-t{i // 2}", "tweet": f"tweet text {i}", "tweet_author": "amy",
            "tweet_likes": i, "reply_id": f"{split}-r{i}", "reply": f"reply text {i}",
            "reply_author": "bob", "reply_likes": 2 * i, "reply_time_diff_seconds": 30 + i,
            "tweet_created_at": "2024-02-24T03:57:25Z", "stance": "agree" if i % 2 else None,
            "source_file": "/home/me/raw.jsonl", "source_line": i + 1, "scores": [1, 2],
            "tweet_url": f"https://x.com/amy/status/{i}"}


def demo_record(i: int, split: str) -> dict:
    """A record as the demo generator writes them: one of its topics and stances."""
    return {**record(i, split), "topic": "coffee", "stance": "agree" if i % 2 else "question"}


def make_release(root: Path, include_texts: bool = False, rows=record,
                 synthetic: bool | None = None) -> tuple[Path, dict]:
    """A release built from small split files and reports, as the `release` rule does."""
    sizes = {"train": 6, "val": 2, "test": 3}
    paths = {}
    for name in SPLITS:
        paths[name] = str(root / f"{name}.jsonl")
        write_jsonl(paths[name], [rows(i, name) for i in range(sizes[name])])
    write_json(root / "manifest.json", {
        "seed": 42, "group_by": "tweet", "stratify": "none",
        "ratios": {"train": 0.8, "val": 0.1, "test": 0.1},
        "source": {"sha256": "c" * 64, "lines": 11},
        "files": {name: {"sha256": name[0] * 64, "lines": sizes[name]} for name in SPLITS}})
    write_json(root / "split_report.json", {"splits": {name: {"pairs": sizes[name],
                                                               "tweets": sizes[name] // 2 + 1}
                                                        for name in SPLITS}})
    write_json(root / "curation_report.json", {
        "input": 14, "output": 11, "filter_order": ["too_short", "spam"],
        "filters": {"too_short": {"dropped": 2}, "spam": {"dropped": 1}},
        "identity": {"equation": "input = kept + sum(dropped)", "input": 14, "kept": 11,
                     "dropped": 3, "holds": True}})
    out = root / "dataset"
    facts = build_release(paths, str(root / "manifest.json"), str(root / "split_report.json"),
                          str(root / "curation_report.json"), str(out), include_texts, synthetic)
    return out, facts


def test_no_text_by_default_and_everything_left_out_is_named(tmp_path):
    out, facts = make_release(tmp_path)
    assert sorted(p.name for p in (out / "data").iterdir()) == [f"{s}.parquet" for s in
                                                                 ("test", "train", "val")]
    import pyarrow.parquet as pq

    columns = pq.read_table(out / "data" / "test.parquet").column_names
    assert {"tweet_id", "reply_id", "tweet_likes", "reply_likes", "stance"} <= set(columns)
    assert not {"tweet", "reply", "tweet_author", "reply_author", "source_file"} & set(columns)
    assert set(facts["left_out"]) == {"tweet", "reply", "tweet_author", "reply_author",
                                      "source_file", "source_line", "scores", "tweet_url"}
    assert "it may hold text" in facts["left_out"]["tweet_url"]
    card = (out / "README.md").read_text(encoding="utf-8")
    for name, reason in facts["left_out"].items():
        assert f"- `{name}`: {reason}" in card
    assert "tweet text 1" not in card and "reply text 1" not in card
    assert "## Texts and rehydration" in card and "GET /2/tweets" in card
    assert "| too_short | 2 |" in card and "14 = 11 + 3 (holds)" in card
    assert "| test | 3 | 2 |" in card and f"`{'t' * 64}`" in card
    assert "no test tweet is seen in training" in card


def test_texts_on_request_and_the_card_loads_with_datasets_offline(tmp_path, monkeypatch):
    out, facts = make_release(tmp_path, include_texts=True)
    assert {"tweet", "reply", "tweet_author", "reply_author"} <= set(facts["fields"])
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    loaded = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {name: len(part) for name, part in loaded.items()} == {"train": 6, "val": 2,
                                                                  "test": 3}
    row = loaded["train"][3]
    assert row["reply"] == "reply text 3" and row["reply_likes"] == 6
    assert row["reply_time_diff_seconds"] == pytest.approx(33.0)
    assert loaded["train"][0]["stance"] is None  # a missing label stays missing


def test_a_rerun_writes_identical_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = make_release(tmp_path / "a")
    second, _ = make_release(tmp_path / "b")
    for path in sorted(first.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path


def test_the_demo_corpus_is_released_as_synthetic(tmp_path, monkeypatch):
    out, facts = make_release(tmp_path, rows=demo_record)
    assert facts["synthetic"] and facts["demo"]
    assert card_origin(out) == {"synthetic": True, "demo": True}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "# Synthetic tweet replies" in card and "## Origin" in card
    assert "**Synthetic data.**" in card and "python -m polychromic.data.demo" in card
    assert "nothing to rehydrate" in card and "GET /2/tweets" not in card
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # the tags keep the card a valid one
    from datasets import load_dataset

    loaded = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert len(loaded["test"]) == 3


def test_a_collected_corpus_is_not_called_synthetic(tmp_path):
    out, facts = make_release(tmp_path)  # no demo topic: a collected corpus
    assert not facts["synthetic"] and card_origin(out) == {"synthetic": False, "demo": False}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## Origin" not in card and "synthetic" not in card.lower()
    assert card_origin(tmp_path / "no_such_folder") == {"synthetic": False, "demo": False}


def test_the_config_declares_a_corpus_synthetic_or_not(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out, facts = make_release(tmp_path / "a", synthetic=True)
    assert card_origin(out) == {"synthetic": True, "demo": False}
    assert "as the study's config declares" in (out / "README.md").read_text(encoding="utf-8")
    out, facts = make_release(tmp_path / "b", rows=demo_record, synthetic=False)
    assert card_origin(out) == {"synthetic": False, "demo": False}
