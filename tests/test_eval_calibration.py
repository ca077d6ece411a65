"""The judge's calibration on validation, and the metrics that only count good samples."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import sacrebleu

from polychromic.evaluation import diversity as div
from polychromic.evaluation.calibration import (
    MIN_POSITIVE_PAIRS,
    PAIRING,
    calibrate_judge,
    calibration_warnings,
    judge_description,
    pooled,
    scores,
    summary,
    thresholds,
    youden_threshold,
)
from polychromic.evaluation.registry import useful_diversity
from polychromic.evaluation.view import SystemView
from polychromic.io import read_jsonl
from polychromic.settings import section


def settings(**passk):
    return section("evaluation", {"reference_system": "a", "judge": "all-MiniLM-L6-v2",
                                  "judge_precision": "float32", "bertscore_layer": 6,
                                  "passk": {"k": [1], "criterion": "semantic", **passk}})


def test_youden_threshold_by_hand_with_ties_to_the_lower_cut() -> None:
    # cut 0.45: TPR 1, FPR 1/3; cut 0.775: TPR 2/3, FPR 0; both J = 2/3: the lower wins
    got = youden_threshold(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.75, 0.2]))
    assert got["threshold"] == pytest.approx(0.45)
    assert (got["tpr"], got["fpr"]) == (1.0, pytest.approx(1 / 3))
    assert got["youden_j"] == pytest.approx(2 / 3)
    separated = youden_threshold(np.array([0.8, 0.9]), np.array([0.2, 0.3]))
    assert separated["threshold"] == pytest.approx(0.55) and separated["youden_j"] == 1.0
    with pytest.raises(ValueError, match="too few references"):
        youden_threshold(np.array([0.5]), np.array([]))


def test_youden_threshold_counts_like_the_definition_on_random_scores() -> None:
    rng = np.random.default_rng(5)
    positives, negatives = rng.integers(0, 20, 60) / 20.0, rng.integers(0, 20, 45) / 20.0
    got = youden_threshold(positives, negatives)
    scores_ = np.unique(np.concatenate([positives, negatives]))
    cuts = np.concatenate([[scores_[0] - 1e-9], (scores_[1:] + scores_[:-1]) / 2.0,
                           [scores_[-1] + 1e-9]])
    j = [(positives >= c).mean() - (negatives >= c).mean() for c in cuts]
    assert got["threshold"] == cuts[int(np.argmax(j))]
    assert got["youden_j"] == pytest.approx(max(j))


def overlap(texts, candidates):  # words in common with the best-matching candidate
    return [max(len(set(t.split()) & set(c.split())) for c in candidates) for t in texts]


def _groups(stances: bool) -> dict[str, list[dict]]:
    replies = {"t1": ["a b", "a c", "  ", "x q"], "t2": ["p q", "p q r"], "t3": [""]}
    labels = iter(["agree", "agree", "agree", "question", "agree", "deny", "agree"])
    return {tweet: [{"reply": r, **({"stance": next(labels)} if stances else {})} for r in refs]
            for tweet, refs in replies.items()}


def test_held_out_best_match_scores_by_hand_with_or_without_stances() -> None:
    # t1 (empty reply dropped): "a b" -> best other of t1 "a c": 1; t2 has no "a": 0
    # "x q" -> nothing in t1: 0; "q" in t2: 1. t2: "p q" <-> "p q r": 2 both ways; against
    # t1 only "x q" shares "q": 1 each. t3 has no non-empty reply: not scored, never drawn
    expected = [([1, 1, 0], [0, 0, 1]), ([2, 2], [1, 1])]
    for stances in (True, False):
        got = scores(_groups(stances), overlap, seed=0)
        assert [(list(pos), list(neg)) for pos, neg in got] == expected
    positives, negatives = pooled(scores(_groups(True), overlap, seed=0))
    assert list(positives) == [1, 1, 0, 2, 2] and list(negatives) == [0, 0, 1, 1, 1]
    twice_t2 = pooled(scores(_groups(False), overlap, seed=0), np.array([0, 2]))
    assert [list(side) for side in twice_t2] == [[2, 2, 2, 2], [1, 1, 1, 1]]
    assert summary(scores(_groups(True), overlap, 0), 0)["pairing"] == PAIRING


def test_the_negative_is_the_best_match_within_one_random_other_tweet() -> None:
    groups = {"t1": [{"reply": "a"}, {"reply": "a"}], "t2": [{"reply": "a b"}],
              "t3": [{"reply": "c"}]}  # t1's negatives: 1 against t2, 0 against t3
    draws = {tuple(scores(groups, overlap, seed)[0][1]) for seed in range(20)}
    assert draws == {(1, 1), (1, 0), (0, 1), (0, 0)}
    assert scores(groups, overlap, 3)[0][1].tolist() == scores(groups, overlap, 3)[0][1].tolist()


def _synthetic(tweets: int, per_tweet: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(0.6, 0.15, per_tweet), rng.normal(0.3, 0.15, per_tweet))
            for _ in range(tweets)]


def test_threshold_ci_brackets_the_threshold_and_is_fixed_by_the_seed() -> None:
    data = _synthetic(40, 5)
    record = summary(data, seed=7)
    low, high = record["threshold_ci"]
    assert low < record["threshold"] < high and high - low < 0.3
    assert summary(data, seed=7)["threshold_ci"] == [low, high]
    assert summary(data, seed=8)["threshold_ci"] != [low, high]
    assert record["bootstrap"] == {"samples": 1000, "unit": "validation tweets", "ci": 0.95}
    assert (record["positives"], record["negatives"]) == (200, 200)
    # the tweet is the unit: one tweet resampled is always the same data, a pair bootstrap
    # would move
    one = summary(_synthetic(1, 30), seed=7)
    assert one["threshold_ci"] == [one["threshold"], one["threshold"]]


def test_few_pairs_below_the_minimum_of_positive_pairs() -> None:
    assert MIN_POSITIVE_PAIRS == 100
    assert summary(_synthetic(33, 3), seed=0)["few_pairs"] is True  # 99 positives
    enough = summary(_synthetic(50, 2), seed=0)
    assert enough["positives"] == 100 and enough["few_pairs"] is False


def test_calibration_warnings_word_the_pass_criterion_with_few_pairs() -> None:
    few = {"positives": 37, "few_pairs": True, "threshold_ci": [0.1812, 0.314],
           "bootstrap": {"samples": 1000, "unit": "validation tweets", "ci": 0.95}}
    calibration = {"criterion": "semantic", "semantic": few,
                   "rougeL": {**few, "few_pairs": False}}
    assert calibration_warnings(calibration) == [
        "the pass threshold (semantic) rests on only 37 positive validation pairs (fewer than "
        "100): its 95 % bootstrap interval is [0.18, 0.31], so pass@k moves with it"]
    assert calibration_warnings({**calibration, "criterion": "rougeL"}) == []
    with pytest.raises(ValueError, match="calibrate rule again"):
        calibration_warnings({"semantic": few})


def test_thresholds_come_from_config_when_set_else_from_validation() -> None:
    calibration = {"semantic": {"threshold": 0.61}, "rougeL": {"threshold": 0.4}}
    assert thresholds(settings(threshold=None, lexical_threshold=None), calibration) == (
        0.61, 0.4, {"threshold": "validation", "lexical_threshold": "validation"})
    assert thresholds(settings(threshold=0.8, lexical_threshold=None), calibration) == (
        0.8, 0.4, {"threshold": "config", "lexical_threshold": "validation"})
    with pytest.raises(ValueError, match="no calibration"):
        thresholds(settings(threshold=None, lexical_threshold=0.3), None)


def test_calibrate_judge_writes_every_criterion_and_fixes_the_precision(toy_splits,
                                                                         tmp_path) -> None:
    output = tmp_path / "judge_calibration.json"
    result = calibrate_judge(toy_splits["val"], str(output),
                             settings(threshold=None, lexical_threshold=None))
    assert set(result) >= {"judge", "rule", "tweets", "criterion", "semantic", "rougeL"}
    assert result["criterion"] == "semantic"
    assert result["judge"]["name"].endswith("all-MiniLM-L6-v2")
    assert result["judge"]["precision"] == "float32"
    per_tweet = Counter(r["tweet_id"] for r in read_jsonl(toy_splits["val"])
                        if r["reply"].strip())
    scored = sum(n for n in per_tweet.values() if n >= 2)  # every reference of such a tweet
    for criterion in ("semantic", "rougeL"):
        entry = result[criterion]
        assert entry["pairing"] == PAIRING  # the toy replies carry stances: not used
        assert entry["positives"] == scored == entry["negatives"]
        assert entry["few_pairs"] is (scored < 100)
        assert -0.01 <= entry["threshold"] <= 1.01 and 0 <= entry["youden_j"] <= 1
        low, high = entry["threshold_ci"]
        assert low <= high and entry["bootstrap"]["samples"] == 1000
    # the evaluation embeds at the calibration's precision, not at its own resolution
    auto = section("evaluation", {"reference_system": "a", "judge": "all-MiniLM-L6-v2",
                                  "judge_precision": "auto", "bertscore_layer": 6})
    assert judge_description(auto, result)["precision"] == "float32"
    with pytest.raises(ValueError, match="calibrate rule again"):
        judge_description(settings(), {**result, "judge": {"name": "other-encoder"}})


def _view(embeddings: list[np.ndarray], similarities: list[list[float]],
          samples: list[list[str]], references: np.ndarray, owners: list[int]) -> SystemView:
    records = [{"samples": s, "references": ["r"], "greedy": "g"} for s in samples]
    return SystemView(records, embeddings, [references[:1]] * len(samples), [0.0] * len(samples),
                      [np.array(s) for s in similarities], [[0]] * len(samples), 0.5,
                      [np.zeros(len(s)) for s in samples], 0.5, references, np.array(owners),
                      0.5)


def test_useful_diversity_counts_passing_samples_and_off_topic_the_swapped_ones() -> None:
    e = np.eye(3, dtype=np.float32)
    samples = [["good one", "good two", "junk", ""], ["a", "b", "c", "d"]]
    embeddings = [np.stack([e[0], e[1], e[2], e[2]]), np.stack([e[0], e[0], e[2], e[1]])]
    similarities = [[0.9, 0.8, 0.1, 0.0], [0.9, 0.1, 0.2, 0.3]]
    references = np.stack([e[0], e[1], e[2]])  # rows 0, 1 belong to prompt 0, row 2 to prompt 1
    view = _view(embeddings, similarities, samples, references, owners=[0, 0, 1])
    values = useful_diversity(view)
    assert values[0] == pytest.approx(1.0)  # only the two passing, orthogonal samples count
    assert math.isnan(values[1])  # one passing sample: undefined, not 0
    # prompt 0: of 3 non-empty samples, "junk" fails for prompt 0 and passes for prompt 1
    # prompt 1: samples e0, e0, e1 fail for prompt 1 (row 2) and pass for prompt 0 (rows 0, 1)
    assert view.off_topic == [pytest.approx(1 / 3), pytest.approx(3 / 4)]


@pytest.mark.parametrize("seed", range(4))
def test_self_bleu_count_algebra_equals_sacrebleu_on_hostile_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "mat", "again", "no"]
    samples = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(7)]
    samples += ["", samples[0], samples[1], "the the the the", "cat"]  # empty, duplicates, repeats
    expected = []
    for i, sample in enumerate(samples):
        others = samples[:i] + samples[i + 1:]
        expected.append(sacrebleu.sentence_bleu(sample, others).score / 100.0)
    assert div.self_bleu(samples) == pytest.approx(float(np.mean(expected)), abs=1e-9)
