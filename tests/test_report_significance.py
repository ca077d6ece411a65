"""The primary rule: the mean difference over seeds and tweets, seeds and tweets as crossed
random factors, Holm; the tweets-only reading (seeds fixed) kept next to it."""

from __future__ import annotations

import numpy as np
import pytest

from polychromic.evaluation.stats import crossed_t_test, sign_flip_p
from polychromic.reporting.significance import adjust, pooled_test, seed_means_per_prompt
from polychromic.settings import section


def doc(seed: int, ref: list, other: list, ids: list[str] | None = None) -> dict:
    return {"seed": seed, "prompt_ids": ids or [f"t{i}" for i in range(len(ref))],
            "systems": {"a": {"pass@10": {"per_prompt": ref}},
                        "b": {"pass@10": {"per_prompt": other}}}}


SETTINGS = section("evaluation", {"bootstrap_samples": 500, "permutation_samples": 5000})


def test_pooled_test_is_the_crossed_t_with_the_tweets_only_reading_kept() -> None:
    rng = np.random.default_rng(3)
    ref = rng.uniform(0, 1, (3, 30))
    other = np.clip(ref - 0.1 + rng.normal(0, 0.2, (3, 30)), 0, 1)
    docs = [doc(s, ref[i].tolist(), other[i].tolist()) for i, s in enumerate([1, 2, 3])]
    result = pooled_test(docs, "pass@10", "a", "b", SETTINGS)
    low, high, p = crossed_t_test(ref - other)
    assert (result["ci_low"], result["ci_high"], result["p"]) == pytest.approx((low, high, p))
    assert result["p_tweets"] == pytest.approx(sign_flip_p(ref.mean(0) - other.mean(0), 5000, 0))
    assert result["mean_diff"] == pytest.approx((ref.mean(0) - other.mean(0)).mean())
    assert result["ci_low"] < result["mean_diff"] < result["ci_high"]
    assert result["ci_low_tweets"] < result["mean_diff"] < result["ci_high_tweets"]
    assert result["seed_diffs"] == pytest.approx((ref - other).mean(axis=1).tolist())
    assert result["n_prompts"] == 30 and result["n_seeds"] == 3 and result["n_left_out"] == 0
    assert result["uncertainty"].startswith("seeds and test tweets as crossed random factors")


def test_a_tweet_with_a_null_in_any_seed_is_left_out_and_counted() -> None:
    docs = [doc(1, [0.5, 0.9, None], [0.4, 0.1, 0.2]), doc(2, [0.5, 0.9, 0.3], [0.4, None, 0.2])]
    result = pooled_test(docs, "pass@10", "a", "b", SETTINGS)
    assert result["n_prompts"] == 1 and result["n_left_out"] == 2
    assert result["mean_diff"] == pytest.approx(0.1)


def test_seeds_on_different_test_tweets_cannot_be_pooled() -> None:
    docs = [doc(1, [0.5, 0.9], [0.4, 0.1]), doc(2, [0.5, 0.9], [0.4, 0.1], ids=["t0", "x"])]
    with pytest.raises(ValueError, match="seed 2 was evaluated on other test tweets"):
        seed_means_per_prompt(docs, "a", "pass@10")
    with pytest.raises(KeyError, match="no per-prompt pass@10 of c"):
        seed_means_per_prompt(docs[:1], "c", "pass@10")


def test_adjust_is_holm_over_the_family_and_wants_agreeing_seeds() -> None:
    results = [{"p": 0.01, "mean_diff": 0.1, "seed_diffs": [0.1, 0.2]},
               {"p": 0.02, "mean_diff": -0.1, "seed_diffs": [-0.1, -0.05]},
               {"p": 0.001, "mean_diff": 0.1, "seed_diffs": [0.3, -0.1]},
               {"p": 0.04, "mean_diff": 0.1, "seed_diffs": [0.1, 0.1]}]
    adjust(results, alpha=0.05)
    assert [r["p_holm"] for r in results] == pytest.approx([0.03, 0.04, 0.004, 0.04])
    assert [r["detectable"] for r in results] == [True, True, False, True]
    assert [r["seeds_agree"] for r in results] == [True, True, False, True]
    zero = adjust([{"p": 1.0, "mean_diff": 0.0, "seed_diffs": [0.0]}], 0.05)[0]
    assert not zero["detectable"] and not zero["seeds_agree"]


def test_one_seed_and_one_tweet_with_values_is_untested_not_an_error() -> None:
    """A real corpus can leave a metric defined on one tweet of one seed (useful diversity
    needs two passing replies): the rule marks it untested instead of failing the step."""
    docs = [doc(1, [0.5, None, None], [0.4, 0.1, 0.2])]
    result = pooled_test(docs, "pass@10", "a", "b", SETTINGS)
    assert result["p"] is None and result["ci_low"] is None and result["n_prompts"] == 1
    assert "nothing to test" in result["notes"][-1]
    (row,) = adjust([result], 0.05)
    assert row["detectable"] is None


def test_equivalence_needs_two_cells() -> None:
    from polychromic.evaluation.equivalence import describe, tost

    block = tost(np.array([[0.01]]), 0.02)
    assert block["interval"] is None and not block["holds"]
    assert "fewer than two seed x tweet cells" in describe(block)
