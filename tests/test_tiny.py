"""The tiny base model's pretraining data: every tweet, a stance-balanced subset of replies."""

from __future__ import annotations

from collections import Counter

from polychromic.models.tiny import balanced_reply_ids


def records(stances: list[str | None]) -> list[dict]:
    return [{"tweet_id": f"t{i // 3}", "reply_id": f"r{i}", "stance": stance}
            for i, stance in enumerate(stances)]


def test_every_stance_is_cut_to_the_rarest_and_the_cut_is_seeded():
    data = records(["agree"] * 6 + ["question"] * 2 + ["anecdote"] * 3)
    kept = balanced_reply_ids(data, seed=0)
    by_stance = Counter(r["stance"] for r in data if r["reply_id"] in kept)
    assert by_stance == {"agree": 2, "question": 2, "anecdote": 2}
    assert kept == balanced_reply_ids(data, seed=0)
    assert any(balanced_reply_ids(data, seed=s) != kept for s in range(1, 20))
    assert {r["reply_id"] for r in data if r["stance"] == "question"} <= kept  # the rarest: all


def test_without_stances_every_reply_is_kept():
    assert balanced_reply_ids(records(["agree", None, "question"]), seed=0) is None
    assert balanced_reply_ids([], seed=0) is None
