"""The sampling choice on the validation split, for every system alike: candidates, the rule, the
generate step at the chosen setting, and the whole protocol through the real workflow."""

from __future__ import annotations

import json

import pytest
import yaml

from polychromic.config import load_settings
from polychromic.evaluation.selection import choose
from polychromic.io import read_json, read_jsonl
from polychromic.systems import chosen_system, selection_candidates

from conftest import REPO, SNAKEMAKE, snakemake

GRID = [{"temperature": 0.7}, {"temperature": 1.6, "min_p": 0.1}]


def settings(grid: list | None = None):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["systems"]["baseline_lora"]["temperatures"] = [1.3]
    config["evaluation"]["selection"] = {"grid": GRID if grid is None else grid}
    return load_settings(config)


def test_every_configured_system_gets_the_same_grid_and_variants_get_none():
    options = selection_candidates(settings().systems, GRID)
    assert list(options) == [
        "zero_shot", "zero_shot@t0.7", "zero_shot@t1.6m0.1",
        "few_shot", "few_shot@t0.7", "few_shot@t1.6m0.1",
        "baseline_lora", "baseline_lora@t0.7", "baseline_lora@t1.6m0.1",
        "polychromic_lora", "polychromic_lora@t0.7", "polychromic_lora@t1.6m0.1"]
    hot = options["polychromic_lora@t1.6m0.1"]
    assert (hot.temperature, hot.min_p, hot.top_p, hot.experiment, hot.base_system) == (
        1.6, 0.1, None, "polychromic", "polychromic_lora")
    assert "baseline_lora@t1.3" not in options  # a configured variant is not a candidate


def test_each_system_takes_the_candidate_closest_to_the_baselines_pass_at_1():
    options = selection_candidates(settings().systems, GRID)
    pass1 = {name: 0.5 for name in options}
    pass1.update({"baseline_lora": 0.60, "baseline_lora@t0.7": 0.70,
                  "polychromic_lora": 0.75, "polychromic_lora@t0.7": 0.80,
                  "polychromic_lora@t1.6m0.1": 0.62,
                  "zero_shot": 0.55, "zero_shot@t0.7": 0.65})  # a tie at 0.05: the first
    target, chosen = choose(pass1, options, "baseline_lora")
    assert target == 0.60
    assert chosen == {"zero_shot": "zero_shot", "few_shot": "few_shot",
                      "baseline_lora": "baseline_lora",
                      "polychromic_lora": "polychromic_lora@t1.6m0.1"}
    with pytest.raises(ValueError, match="baseline system 'nope'"):
        choose(pass1, options, "nope")


def test_the_chosen_sampling_is_what_the_test_split_is_generated_with():
    systems = settings().systems
    selection = {"systems": {"polychromic_lora": {"overrides": {"temperature": 1.6,
                                                                "min_p": 0.1}}}}
    hot = chosen_system(systems["polychromic_lora"], selection)
    assert (hot.name, hot.temperature, hot.min_p) == ("polychromic_lora", 1.6, 0.1)
    assert chosen_system(systems["baseline_lora@t1.3"], selection) == systems[
        "baseline_lora@t1.3"]  # a configured variant keeps its own sampling
    assert chosen_system(systems["zero_shot"], None) == systems["zero_shot"]
    with pytest.raises(ValueError, match="no choice for system 'zero_shot'"):
        chosen_system(systems["zero_shot"], selection)


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_the_protocol_runs_through_the_workflow(tmp_path):
    """A grid on the small demo: every system sampled on validation at each setting, one
    selection.json (selected_on: val) read by the test generations and copied into the
    aggregate; the choice reads no test file."""
    from test_end_to_end import small_config

    config = small_config(str(REPO / "resources" / "demo" / "raw.jsonl"))
    config["evaluation"]["selection"] = {"grid": [{"temperature": 0.5}, {"temperature": 2.5}],
                                         "num_samples": 4, "max_prompts": 8}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    dry = snakemake(tmp_path, "-n", "-p", "results/selection/selection.json")
    block = dry.split("rule select_sampling:", 1)[1].split("output:", 1)[0]
    assert "results/selection/seed_42/" in block
    assert "test.jsonl" not in block and "results/generations" not in block
    snakemake(tmp_path, "--cores", "2", "results/evaluation/aggregated_results.json")
    selection = read_json(tmp_path / "results" / "selection" / "selection.json")
    assert selection["selected_on"] == "val" and selection["n_prompts"] == 8
    assert set(selection["systems"]) == {"zero_shot", "few_shot", "baseline_lora",
                                         "polychromic_lora"}
    target = selection["target_pass@1"]
    for name, entry in selection["systems"].items():
        pass1 = [candidate["pass@1"] for candidate in entry["candidates"].values()]
        best = min(pass1, key=lambda v: abs(v - target))
        assert abs(entry["val_pass@1"] - target) == pytest.approx(abs(best - target))
        for candidate in entry["candidates"].values():  # the validation frontier's points
            assert candidate["pass@2"] >= candidate["pass@1"] and "pass@3" not in candidate
        records = read_jsonl(tmp_path / "results" / "generations" / "seed_42" / f"{name}.jsonl")
        assert records[0]["settings"]["temperature"] == entry["sampling"]["temperature"]
    val = read_jsonl(tmp_path / "results" / "selection" / "seed_42" / "baseline_lora@t2.5.jsonl")
    assert len(val) == 8 and len(val[0]["samples"]) == 4
    aggregated = json.loads((tmp_path / "results" / "evaluation" /
                             "aggregated_results.json").read_text(encoding="utf-8"))
    assert aggregated["selection"] == selection
