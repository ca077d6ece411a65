"""The pilot-based power calculation that sized config/study_demo.yaml."""

from __future__ import annotations

import pytest

from polychromic.reporting.power import paired_sd, prompts_needed, study_power


def test_prompts_needed_reaches_the_power_and_grows_with_the_family() -> None:
    n = prompts_needed(0.237, 0.05, family=3, seeds=3)
    assert study_power(n, 0.237, 0.05, 3, 3) >= 0.8 > study_power(n - 5, 0.237, 0.05, 3, 3)
    assert prompts_needed(0.237, 0.05, 135, 3) > n > prompts_needed(0.237, 0.05, 3, 1)
    # one test, one seed: the textbook paired z-test, ((1.96 + 0.84) sigma / delta)^2
    assert prompts_needed(0.25, 0.05, 1, 1) == pytest.approx(197, abs=1)


def test_paired_sd_pools_seeds() -> None:
    doc = {"systems": {"polychromic_lora": {"pass@10": {"per_prompt": [1.0, 1.0, None]}},
                       "baseline_lora": {"pass@10": {"per_prompt": [1.0, 0.0, 0.0]}}}}
    sd, count = paired_sd([doc, doc])
    assert count == 4 and sd == pytest.approx(0.57735, abs=1e-4)
