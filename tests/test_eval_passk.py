"""pass@k: the unbiased estimator against exact binomials, and the pass rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polychromic.evaluation.passk import (
    best_reference_similarities,
    pass_at_k,
    pass_counts,
    passk_per_prompt,
)


def exact(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(10, 0, 1), (10, 0, 10), (10, 10, 1), (10, 10, 10), (10, 3, 1), (10, 3, 5),
     (10, 3, 10), (10, 7, 3), (5, 1, 5), (20, 2, 10), (1, 1, 1), (1, 0, 1)],
)
def test_pass_at_k_matches_exact_binomial(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), abs=1e-12)


def test_pass_at_k_edge_values() -> None:
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 1, 10) == 1.0  # k = n: any pass among all samples


def test_pass_at_k_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 0)


def test_pass_counts_threshold_and_empty_samples() -> None:
    sims = [np.array([0.9, 0.7, 0.69, 0.95]), np.array([0.1, 0.2, 0.3, 0.4])]
    samples = [["a", "b", "c", "   "], ["a", "b", "c", "d"]]
    assert pass_counts(sims, samples, 0.7) == [2, 0]  # >= counts, empty never passes
    assert passk_per_prompt([2, 0], 4, 2) == pytest.approx([exact(4, 2, 2), 0.0])


def test_similarity_uses_the_closest_reference() -> None:
    refs = np.eye(3, dtype=np.float32)[:2]
    samples = np.array([[0.0, 1.0, 0.0], [0.6, 0.0, 0.8], [0.0, 0.0, 1.0]], dtype=np.float32)
    sims = best_reference_similarities("semantic", [["x", "y", ""]], [["r1", "r2"]],
                                       [samples], [refs])
    assert sims[0] == pytest.approx([1.0, 0.6, 0.0])  # empty sample -> 0
    rouge = best_reference_similarities("rougeL", [["the cat sat", ""]],
                                        [["dogs bark loudly", "the cat sat"]])
    assert rouge[0] == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match="unknown pass@k criterion"):
        best_reference_similarities("bleu", [["x"]], [["y"]])


def test_bertscore_criterion_scores_each_sample_against_its_prompts_references() -> None:
    from polychromic.encoders import minilm_path as default_model_path

    samples = [["Coffee, always coffee.", ""], ["Too expensive for me.", "Coffee, always coffee."]]
    refs = [["Coffee, always coffee."], ["Too expensive for me.", "I love the camera."]]
    sims = best_reference_similarities("bertscore", samples, refs,
                                       model_path=str(default_model_path()), bertscore_layer=6)
    assert [len(s) for s in sims] == [2, 2]
    assert sims[0][0] == pytest.approx(1.0, abs=1e-4) and sims[0][1] == 0.0
    assert sims[1][0] == pytest.approx(1.0, abs=1e-4)
    assert sims[1][1] < 0.99  # scored against prompt 2's references, not prompt 1's
