"""The pilot-based power calculation that sized config/study_demo.yaml."""

from __future__ import annotations

import pytest

from polychromic.reporting.power import (
    describe_power,
    detectable_delta,
    final_test_power,
    main,
    paired_sd,
    pooled_sd,
    primary_delta,
    primary_power,
    primary_sd,
    prompts_needed,
    prompts_needed_primary,
    seed_variance,
    seeds_needed_primary,
    study_power,
)

from conftest import REPO

REF, BASE = "polychromic_lora", "baseline_lora"


def test_prompts_needed_reaches_the_power_and_grows_with_the_family() -> None:
    n = prompts_needed(0.237, 0.05, family=3, seeds=3)
    assert study_power(n, 0.237, 0.05, 3, 3) >= 0.8 > study_power(n - 5, 0.237, 0.05, 3, 3)
    assert prompts_needed(0.237, 0.05, 135, 3) > n > prompts_needed(0.237, 0.05, 3, 1)
    # one test, one seed: the textbook paired z-test, ((1.96 + 0.84) sigma / delta)^2
    assert prompts_needed(0.25, 0.05, 1, 1) == pytest.approx(197, abs=1)


def test_paired_sd_pools_seeds() -> None:
    doc = {"systems": {"polychromic_lora": {"pass@10": {"per_prompt": [1.0, 1.0, None]}},
                       "baseline_lora": {"pass@10": {"per_prompt": [1.0, 0.0, 0.0]}}}}
    sd, count = paired_sd([doc, doc], REF, BASE)
    assert count == 4 and sd == pytest.approx(0.57735, abs=1e-4)


def test_pooled_sd_is_the_std_of_seed_mean_differences() -> None:
    def doc(ref: list, other: list) -> dict:
        return {"prompt_ids": ["a", "b", "c"],
                "systems": {"polychromic_lora": {"pass@10": {"per_prompt": ref}},
                            "baseline_lora": {"pass@10": {"per_prompt": other}}}}
    pilot = [doc([1.0, 0.0, 1.0], [0.0, 0.0, None]), doc([1.0, 1.0, 1.0], [1.0, 0.0, 1.0])]
    sd, prompts = pooled_sd(pilot, REF, BASE)  # seed-mean diffs 0.5, 0.5; prompt c left out
    assert prompts == 2 and sd == pytest.approx(0.0)
    pilot[1]["systems"]["polychromic_lora"]["pass@10"]["per_prompt"] = [1.0, 0.0, 1.0]
    sd, _ = pooled_sd(pilot, REF, BASE)  # 0.5, 0.0
    assert sd == pytest.approx(0.35355, abs=1e-4)


def test_detectable_delta_inverts_prompts_needed() -> None:
    n = prompts_needed(0.09, 0.05, family=3, seeds=1)
    assert detectable_delta(n, 0.09, 3, 1) <= 0.05 < detectable_delta(n - 1, 0.09, 3, 1)


def test_main_prints_both_rules(tmp_path, capsys) -> None:
    import json
    from pathlib import Path

    def doc(seed: int, shift: float) -> dict:
        ref = [min(1.0, 0.5 + shift + 0.1 * (i % 3)) for i in range(20)]
        return {"seed": seed, "prompt_ids": [f"t{i}" for i in range(20)],
                "systems": {"polychromic_lora": {"pass@10": {"per_prompt": ref}},
                            "baseline_lora": {"pass@10": {"per_prompt": [0.5] * 20}}}}
    paths = []
    for seed, shift in ((1, 0.0), (2, 0.1)):
        path = tmp_path / f"{seed}.json"
        path.write_text(json.dumps(doc(seed, shift)))
        paths.append(str(path))
    assert main(paths + ["--prompts", "150", "--config", str(REPO / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "2 seeds, 20 test prompts" in out and "power at 150 prompts" in out
    assert out.count("every-seed") == 4
    pilot = [json.loads(Path(path).read_text()) for path in paths]
    sigma = primary_sd(pilot, REF, BASE)
    assert sigma == pytest.approx(max(pooled_sd(pilot, REF, BASE)[0],
                                      paired_sd(pilot, REF, BASE)[0] / 2 ** 0.5))
    tau2 = seed_variance(pilot, REF, BASE)
    primary = [line.split() for line in out.splitlines() if line.startswith("primary")]
    assert [row[1] for row in primary] == ["1", "3"]
    needed = prompts_needed_primary(2, sigma, tau2, 0.05, 3)
    assert primary[1][2] == (str(needed) if needed is not None else "more")
    assert float(primary[1][-1]) == pytest.approx(primary_delta(150, 2, sigma, tau2, 3),
                                                  abs=1e-3)


def test_the_seed_spread_bounds_what_more_tweets_can_give() -> None:
    """tau^2 = the seed means' variance beyond the tweets' noise; with tau > 0 the power is
    capped by the seeds, and prompts_needed_primary says so."""
    def doc(shift: float) -> dict:
        ref = [0.5 + shift + 0.02 * ((i * 7) % 5 - 2) for i in range(40)]
        return {"prompt_ids": [f"t{i}" for i in range(40)],
                "systems": {"polychromic_lora": {"pass@10": {"per_prompt": ref}},
                            "baseline_lora": {"pass@10": {"per_prompt": [0.5] * 40}}}}
    same = [doc(0.05), doc(0.05), doc(0.05)]
    assert seed_variance(same, REF, BASE) == pytest.approx(0.0, abs=1e-12)
    spread = [doc(0.0), doc(0.05), doc(0.10)]  # seed means 0, 0.05, 0.10: variance 0.0025
    tau2 = seed_variance(spread, REF, BASE)
    assert tau2 == pytest.approx(0.0025, rel=1e-6)  # the tweet pattern is common to the seeds
    assert prompts_needed_primary(3, 0.1, tau2, 0.05, 3) is None  # 3 seeds cannot do it
    assert primary_power(10**6, 3, 0.1, tau2, 0.05, 3) < 0.8
    n = prompts_needed_primary(3, 0.1, 0.0, 0.05, 3)
    assert primary_power(n, 3, 0.1, 0.0, 0.05, 3) >= 0.8 > primary_power(n - 3, 3, 0.1, 0.0,
                                                                          0.05, 3)
    # without a seed spread it is the textbook paired z-test
    assert n == prompts_needed(0.1, 0.05, 3, 1)


def test_the_final_tests_power_is_redone_on_the_studys_own_numbers() -> None:
    """final_test_power reads a finished run's per-seed pass@k: the sigmas, the difference it
    could detect, its power, and the tweets or seeds a target would need (None when the seeds'
    spread, or the tweets' noise, makes that way impossible)."""
    def doc(shift: float) -> dict:
        ref = [0.5 + shift + 0.05 * ((i * 7) % 5 - 2) for i in range(60)]
        return {"prompt_ids": [f"t{i}" for i in range(60)],
                "systems": {REF: {"pass@10": {"per_prompt": ref}},
                            BASE: {"pass@10": {"per_prompt": [0.5] * 60}}}}
    runs = [doc(0.0), doc(0.02), doc(0.04)]
    result = final_test_power(runs, REF, BASE, "pass@10")
    sigma, tau2 = primary_sd(runs, REF, BASE), seed_variance(runs, REF, BASE)
    assert (result["seeds"], result["prompts"]) == (3, 60)
    assert result["sigma"] == pytest.approx(sigma) and result["tau"] ** 2 == pytest.approx(tau2)
    assert result["detectable_delta"] == pytest.approx(primary_delta(60, 3, sigma, tau2, 3))
    assert result["power"] == pytest.approx(primary_power(60, 3, sigma, tau2, 0.05, 3))
    assert result["prompts_needed"] == prompts_needed_primary(3, sigma, tau2, 0.05, 3)
    seeds = result["seeds_needed"]
    assert seeds is not None and primary_power(60, seeds, sigma, tau2, 0.05, 3) >= 0.8
    assert primary_power(60, seeds - 1, sigma, tau2, 0.05, 3) < 0.8 or seeds == 2
    text = describe_power(result)
    assert f"{result['detectable_delta']:.3f}" in text and "3 seeds x 60 test tweets" in text
    assert seeds_needed_primary(10, 1.0, 0.0, 0.05, 3) is None  # the tweets' noise alone
