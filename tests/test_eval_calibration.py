"""The judge's calibration on validation, and the metrics that only count good samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu

from polychromic.evaluation import diversity as div
from polychromic.evaluation.calibration import (
    calibrate_judge,
    judge_description,
    scores,
    stance_pairs,
    thresholds,
    youden_threshold,
)
from polychromic.evaluation.registry import useful_diversity
from polychromic.evaluation.view import SystemView
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


def test_stance_pairs_and_the_closest_reference_pairing() -> None:
    groups = {"t1": [{"reply": "a b", "stance": "agree"}, {"reply": "a c", "stance": "agree"},
                     {"reply": "x y", "stance": "question"}],
              "t2": [{"reply": "p q", "stance": "agree"}, {"reply": "r s", "stance": "agree"}]}
    positives, negatives = stance_pairs(groups)
    assert positives == [("t1", 0, 1), ("t2", 0, 1)]
    assert negatives == [("t1", 0, 2), ("t1", 1, 2)]

    def overlap(texts, candidates):  # words in common with the closest candidate
        return [max(len(set(t.split()) & set(c.split())) for c in candidates) for t in texts]

    pos, neg, pairing = scores(groups, overlap, seed=0)
    assert pairing == "stance" and list(pos) == [1, 0] and list(neg) == [0, 0]
    for refs in groups.values():
        for record in refs:
            del record["stance"]
    pos, neg, pairing = scores(groups, overlap, seed=0)
    assert pairing == "closest reference" and pos.size == 5 and neg.size == 5
    assert list(pos) == [1, 1, 0, 0, 0]  # "a b" and "a c" share "a"


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
    assert set(result) >= {"judge", "rule", "tweets", "semantic", "rougeL"}
    assert result["judge"]["name"].endswith("all-MiniLM-L6-v2")
    assert result["judge"]["precision"] == "float32"
    for criterion in ("semantic", "rougeL"):
        entry = result[criterion]
        assert entry["pairing"] == "stance" and entry["positives"] > 0 < entry["negatives"]
        assert -0.01 <= entry["threshold"] <= 1.01 and 0 <= entry["youden_j"] <= 1
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
                      [np.zeros(len(s)) for s in samples], 0.5, references, np.array(owners))


def test_useful_diversity_counts_passing_samples_and_off_topic_their_closest_tweet() -> None:
    e = np.eye(3, dtype=np.float32)
    samples = [["good one", "good two", "junk", ""], ["a", "b", "c", "d"]]
    embeddings = [np.stack([e[0], e[1], e[2], e[2]]), np.stack([e[0], e[0], e[2], e[1]])]
    similarities = [[0.9, 0.8, 0.1, 0.0], [0.9, 0.1, 0.2, 0.3]]
    references = np.stack([e[0], e[1], e[2]])  # rows 0, 1 belong to prompt 0, row 2 to prompt 1
    view = _view(embeddings, similarities, samples, references, owners=[0, 0, 1])
    values = useful_diversity(view)
    assert values[0] == pytest.approx(1.0)  # only the two passing, orthogonal samples count
    assert math.isnan(values[1])  # one passing sample: undefined, not 0
    # prompt 0: of 3 non-empty samples, "junk" is closest to prompt 1's reference
    # prompt 1: samples closest to rows 0, 0, 2, 1: three of four belong to prompt 0
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
