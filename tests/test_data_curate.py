"""curate: each rule filter (first hit wins), whole-word keywords, duplicates, human decisions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polychromic.data import filters
from polychromic.data.curate import (
    FILTER_ORDER,
    apply_rule_filters,
    curate,
    normalize_text,
    phrase_pattern,
)
from polychromic.data.filters import (
    count_emoji,
    guess_language,
    is_all_caps,
    language_mismatch,
    longest_run,
)
from polychromic.io import read_json, read_jsonl, write_jsonl
from polychromic.settings import ConfigError, CurationSettings, section

RAW = {
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
SETTINGS = section("curation", RAW)


def settings(**changes) -> CurationSettings:
    """The test's curation settings with `changes` (schema defaults fill the rest)."""
    return section("curation", {**RAW, **changes})


def rec(reply_id: str, reply: str, tweet_id: str = "t1", likes: int = 0, **extra) -> dict:
    return {"tweet_id": tweet_id, "tweet": f"tweet {tweet_id}", "reply_id": reply_id,
            "reply": reply, "reply_likes": likes, **extra}


def run(tmp_path: Path, records: list[dict], settings: CurationSettings | None = None,
        decisions: list[dict] | None = None, encode=None) -> tuple[dict, list[str]]:
    write_jsonl(tmp_path / "validated.jsonl", records)
    decisions_path = None
    if decisions is not None:
        decisions_path = str(tmp_path / "decisions.jsonl")
        write_jsonl(decisions_path, decisions)
    report = curate(str(tmp_path / "validated.jsonl"), str(tmp_path / "curated.jsonl"),
                    str(tmp_path / "report.json"), settings or SETTINGS, decisions_path,
                    encode=encode)
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
                       "spam": 2, "generic": 3, "too_many_emojis": 0, "all_caps": 0,
                       "repeated_chars": 0, "self_reply": 0, "low_engagement": 0, "language": 0,
                       "exact_duplicate": 0, "near_duplicate": 0, "human_discard": 0,
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
    _, kept = run(tmp_path, records, settings(drop_exact_duplicates=False))
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

    report, kept = run(tmp_path, records, settings(undecided="drop"), decisions)
    assert kept == ["r1"]
    assert report["filters"]["undecided_dropped"]["dropped"] == 3  # r2 (skip), r3, r4


def test_missing_decisions_file_means_undecided(tmp_path):
    records = [rec("r0", "A fine reply about beans.")]
    write_jsonl(tmp_path / "validated.jsonl", records)
    report = curate(str(tmp_path / "validated.jsonl"), str(tmp_path / "c.jsonl"),
                    str(tmp_path / "rep.json"), settings(undecided="drop"),
                    str(tmp_path / "absent.jsonl"))
    assert report["output"] == 0 and report["decisions"]["found"] is False


def test_bad_settings_and_decisions_raise(tmp_path):
    write_jsonl(tmp_path / "validated.jsonl", [rec("r0", "A fine reply about beans.")])
    with pytest.raises(ConfigError, match="curation.undecided"):
        settings(undecided="maybe")
    with pytest.raises(ConfigError, match="curation: .*min_chars"):
        settings(min_chars=3)
    (tmp_path / "bad.jsonl").write_text(json.dumps({"reply_id": "r0", "decision": "nah"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        curate(str(tmp_path / "validated.jsonl"), str(tmp_path / "c.jsonl"),
               str(tmp_path / "rep.json"), SETTINGS, str(tmp_path / "bad.jsonl"))


def test_style_filters(tmp_path):
    records = [
        rec("ok", "A calm reply about espresso 🙂 with one emoji."),
        rec("emoji", "Love this so much 😂😂😂😂 really"),
        rec("caps", "THIS IS THE BEST ESPRESSO EVER MADE"),
        rec("acronym", "NASA and ESA both drink espresso, apparently."),
        rec("repeat", "Sooooo good, thanks for sharing this"),
        rec("bang", "Great point about the beans!!!!!"),
        rec("digits", "We sold 1000000 cups of coffee this year"),
    ]
    report, kept = run(tmp_path, records)
    assert kept == ["ok", "acronym", "digits"]
    counts = {name: report["filters"][name]["dropped"] for name in
              ("too_many_emojis", "all_caps", "repeated_chars")}
    assert counts == {"too_many_emojis": 1, "all_caps": 1, "repeated_chars": 2}
    _, kept = run(tmp_path, records, settings(max_emojis=None, drop_all_caps=False,
                                      max_repeated_chars=None))
    assert len(kept) == len(records)


def test_text_heuristics():
    assert count_emoji("hi 👍🏽 ok 🇫🇷 ☕") == 4  # thumbs (modifier not counted), flag = 2, cup
    assert count_emoji("plain text, © 2024") == 0
    assert is_all_caps("STOP DOING THIS") and not is_all_caps("LOL!!") and not is_all_caps(
        "Stop doing this")
    assert longest_run("hmm... sooooo") == 5 and longest_run("1000000 ok") == 1


def test_self_replies_and_engagement(tmp_path):
    records = [
        rec("self", "Adding more to my own thread here.", tweet_author="Alice",
            reply_author="@alice"),
        rec("other", "A reply from someone else entirely.", tweet_author="alice",
            reply_author="bob", likes=5, tweet_likes=50, reply_author_followers=10),
        rec("few_likes", "A reply nobody liked at all, sadly.", likes=0, tweet_likes=50),
        rec("cold_tweet", "A reply to a tweet nobody liked.", likes=9, tweet_likes=1),
        rec("unknown", "A reply without any engagement fields.", likes=None),
    ]
    report, kept = run(tmp_path, records, settings(min_reply_likes=1, min_tweet_likes=10,
                                                   min_reply_author_followers=5))
    assert kept == ["other", "unknown"]
    assert report["filters"]["self_reply"]["dropped"] == 1
    assert report["filters"]["low_engagement"]["dropped"] == 2
    example = report["filters"]["low_engagement"]["examples"][0]
    assert (example["field"], example["value"], example["minimum"]) == ("reply_likes", 0, 1)
    assert report["engagement_unmeasured"] == {"tweet_likes": 2, "reply_likes": 1,
                                               "reply_author_followers": 4}
    _, kept = run(tmp_path, records, settings(drop_self_replies=False))
    assert "self" in kept


def test_language_filter(tmp_path):
    records = [
        rec("en", "I think the beans are the best part of it."),
        rec("es", "Pero el café de la mañana es muy bueno para todos."),
        rec("de", "Ich finde das nicht so gut, aber der Kaffee ist stark."),
        rec("fr", "Je pense que le café est très bon pour nous."),
        rec("ja", "コーヒーはとても美味しいです、毎朝飲みます"),
        rec("short", "Gracias amigo, great point."),  # too little to be sure: kept
        rec("mixed", "The café in Paris was lovely, merci!"),
    ]
    report, kept = run(tmp_path, records)
    assert kept == ["en", "short", "mixed"]
    guessed = {e["reply_id"]: e["guessed"] for e in report["filters"]["language"]["examples"]}
    assert guessed == {"es": "es", "de": "de", "fr": "fr", "ja": "non-latin"}
    _, kept = run(tmp_path, records, settings(language="es"))
    assert "es" in kept and "en" not in kept and "ja" not in kept
    _, kept = run(tmp_path, records, settings(language=None))
    assert len(kept) == len(records)
    assert guess_language("the cat and the dog") == "en" and guess_language("ok") is None
    assert language_mismatch("the weather is nice today", "en") is None


def fake_encoder(texts: list[str]) -> np.ndarray:
    """Unit vectors from the first word: texts sharing it are identical (cosine 1), others
    are orthogonal-ish; a trailing "!" tilts the vector a little (cosine ~0.98)."""
    vectors = []
    for text in texts:
        seed = sum(map(ord, text.split()[0]))
        vector = np.random.default_rng(seed).normal(size=32)
        if text.endswith("!"):
            vector = vector + 0.2 * np.random.default_rng(seed + 1).normal(size=32)
        vectors.append(vector / np.linalg.norm(vector))
    return np.asarray(vectors, dtype=np.float32)


def test_near_duplicates_keep_the_most_liked(tmp_path):
    records = [
        rec("a1", "Espresso is how I start every single day", likes=1),
        rec("a2", "Espresso really is the best start to a day", likes=7),
        rec("a3", "Espresso is the best way to start the day!", likes=3),
        rec("b1", "Running in the rain is underrated honestly", likes=2),
        rec("c1", "Espresso tastes burnt to me every single time", tweet_id="t2", likes=0),
    ]
    report, kept = run(tmp_path, records, settings(near_duplicate_threshold=0.9),
                       encode=fake_encoder)
    assert kept == ["a2", "b1"]  # a2 is the most-liked "Espresso ..." reply of the corpus
    examples = report["filters"]["near_duplicate"]["examples"]
    assert {e["reply_id"]: e["kept_reply_id"] for e in examples} == {
        "a1": "a2", "a3": "a2", "c1": "a2"}
    assert all(e["cosine"] >= 0.9 for e in examples)
    assert report["near_duplicate"]["scope"] == "corpus"
    assert report["near_duplicate"]["encoded_texts"] == 5
    # within each tweet only: c1 (another tweet) stays; a threshold above ~0.98 keeps a3
    _, kept = run(tmp_path, records, settings(near_duplicate_threshold=0.9,
                                      near_duplicate_scope="tweet"), encode=fake_encoder)
    assert kept == ["a2", "b1", "c1"]
    _, kept = run(tmp_path, records, settings(near_duplicate_threshold=0.999),
                  encode=fake_encoder)
    assert kept == ["a2", "a3", "b1"]


def test_near_duplicates_blocked_equals_brute_force(monkeypatch):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(40, 16))
    vectors = centers[rng.integers(0, 40, size=300)] + 0.15 * rng.normal(size=(300, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"text {i}" for i in range(300)]
    table = dict(zip(texts, vectors, strict=True))
    likes = rng.integers(0, 20, size=300).tolist()

    def encode(batch: list[str]) -> np.ndarray:
        return np.asarray([table[text] for text in batch], dtype=np.float32)

    # brute force: the same greedy rule with the full matrix
    order = sorted(range(300), key=lambda i: (-likes[i], i))
    full = vectors @ vectors.T
    kept: list[int] = []
    expected = {}
    for index in order:
        best = max(kept, key=lambda k: full[index, k], default=None)
        if best is not None and full[index, best] >= 0.9:
            expected[index] = best
        else:
            kept.append(index)
    monkeypatch.setattr(filters, "BLOCK", 7)  # many blocks and kept blocks
    monkeypatch.setattr(filters, "KEPT_BLOCK", 11)
    found, info = filters.near_duplicates(texts, likes, 0.9, encode)
    assert {i: k for i, (k, _) in found.items()} == expected
    assert 0 < len(found) < 300 and info["compared"] == 300


def test_rule_filters_share_one_order():
    verdicts, _, _ = apply_rule_filters([rec("x", "ok")], SETTINGS)
    assert verdicts == ["too_short"]
    assert FILTER_ORDER[-2:] == ("human_discard", "undecided_dropped")


def test_bad_new_settings_raise():
    for key, value, match in [("language", "xx", "language"),
                              ("near_duplicate_threshold", 1.5, "near_duplicate_threshold"),
                              ("near_duplicate_scope", "world", "near_duplicate_scope"),
                              ("max_emojis", -1, "max_emojis")]:
        with pytest.raises(ConfigError, match=f"curation.{match}"):
            settings(**{key: value})

