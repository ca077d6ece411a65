"""The sampling search on validation, for every system alike: the bisection's proposals and
stops, the rounds' state, selection.json with its equivalence test, the generate step at the
chosen setting, and the whole protocol through the real workflow (the search ends before any
test generation exists)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from polychromic.config import load_settings
from polychromic.evaluation import search
from polychromic.evaluation.equivalence import on_validation
from polychromic.evaluation.selection import select_sampling
from polychromic.io import read_json, read_jsonl, write_json
from polychromic.settings import SearchSettings
from polychromic.systems import candidate_pattern, candidate_system, chosen_system

from conftest import REPO, SNAKEMAKE, snakemake

SEARCH = SearchSettings(True, "temperature", 0.5, 2.0, 6, 0.01, 0.02)


def settings(search_block: dict | None = None):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["systems"]["baseline_lora"]["temperatures"] = [1.3]
    if search_block is not None:
        config["evaluation"]["selection"]["search"] = search_block
    return load_settings(config)


def run_search(curve, target: float, bounds: SearchSettings = SEARCH) -> tuple[list, str]:
    """Propose until the search stops on a pass@1 curve of the temperature."""
    tried = [{"temperature": 1.0, "pass@1": curve(1.0)}]
    while True:
        temperature, stop = search.propose(tried, target, bounds)
        if stop is not None:
            return [c["temperature"] for c in tried], stop
        tried.append({"temperature": temperature, "pass@1": curve(temperature)})


def test_the_search_brackets_the_target_and_interpolates_inside_the_bracket() -> None:
    """pass@1 = 0.9 - 0.3 T meets 0.51 at T 1.3: the bound 2.0 first (no bracket yet), then the
    line through the bracket hits the target at once."""
    temperatures, stop = run_search(lambda t: 0.9 - 0.3 * t, 0.51)
    assert temperatures == [1.0, 2.0, 1.3] and stop == search.WITHIN


def test_on_a_curved_pass_at_1_the_illinois_rule_keeps_both_ends_moving() -> None:
    """A steep logistic pass@1 (it falls from 0.84 to 0.0 between T 1.0 and 2.0, as a tiny
    model's does): plain regula falsi would creep from one side; the search reaches the target
    within the budget, every candidate inside the bracket of the ones before it."""
    def curve(t: float) -> float:
        return 0.85 / (1.0 + math.exp((t - 1.35) * 12.0))
    temperatures, stop = run_search(curve, 0.68)
    assert stop == search.WITHIN and len(temperatures) <= 8, temperatures
    assert abs(curve(temperatures[-1]) - 0.68) <= 0.01
    tried = [{"temperature": 1.0, "pass@1": 0.8}, {"temperature": 2.0, "pass@1": 0.0},
             {"temperature": 1.9, "pass@1": 0.3}, {"temperature": 1.8, "pass@1": 0.4}]
    # the last two both below the target: the hot end's gap is halved, the step grows
    low, high = search.illinois(tried, 0.5, (1.0, 0.3), (1.8, -0.1))
    assert (low, high) == (0.15, -0.1)
    assert search.propose(tried, 0.5, SEARCH)[0] == pytest.approx(1.0 + 0.8 * 0.15 / 0.25)


def test_the_search_stops_on_its_budget_or_a_narrow_bracket() -> None:
    curve = lambda t: 0.85 / (1.0 + math.exp((t - 1.35) * 12.0))  # noqa: E731
    temperatures, stop = run_search(curve, 0.68, SearchSettings(True, "temperature", 0.5, 2.0, 3,
                                                                0.001, 0.02))
    assert len(temperatures) == 3 and stop == search.BUDGET
    _, stop = run_search(curve, 0.68, SearchSettings(True, "temperature", 0.5, 2.0, 30, 0.0, 0.2))
    assert stop == search.NARROW


def test_a_target_out_of_reach_tries_the_bound_once_and_stops() -> None:
    temperatures, stop = run_search(lambda t: 0.3 - 0.05 * t, 0.6)  # always below: colder
    assert temperatures == [1.0, 0.5] and stop == search.OUT_OF_REACH
    temperatures, stop = run_search(lambda t: 0.95, 0.6)  # always above: hotter
    assert temperatures == [1.0, 2.0] and stop == search.OUT_OF_REACH


def test_a_curve_that_turns_is_bisected_next_to_its_best_candidate() -> None:
    tried = [{"temperature": 0.5, "pass@1": 0.30}, {"temperature": 1.0, "pass@1": 0.62},
             {"temperature": 1.5, "pass@1": 0.52}, {"temperature": 2.0, "pass@1": 0.40}]
    # two brackets of 0.5: (0.5, 1.0) and (1.5, 2.0); the best candidate is 1.5 (gap 0.02),
    # so the line through (1.5, +0.02) and (2.0, -0.10): 1.5 + 0.5 * 0.02 / 0.12
    assert search.propose(tried, 0.5, SEARCH) == (1.583, None)
    tried[2]["pass@1"], tried[3]["pass@1"] = 0.7, 0.2  # now 1.0 is the best: (0.5, 1.0)
    assert search.propose(tried, 0.5, SEARCH)[0] == pytest.approx(0.5 + 0.5 * 0.2 / 0.32,
                                                                  abs=1e-3)


def measures(pass1: float, shift: float = 0.0) -> dict:
    per_prompt = (np.full((3, 8), pass1) + shift * np.arange(8) / 8).tolist()
    return {"pass@1": float(np.mean(per_prompt)), "pass@2": min(1.0, pass1 + 0.2),
            "per_seed": [pass1] * 3, "per_prompt": per_prompt, "n_prompts": 8}


def test_rounds_carry_the_target_the_proposals_and_why_each_search_stopped() -> None:
    config = settings(SEARCH.__dict__)
    state = search.start(config.systems, config.evaluation, [42, 123, 456])
    assert state["proposals"] == {name: name for name in ("zero_shot", "few_shot",
                                                          "baseline_lora", "polychromic_lora")}
    assert "baseline_lora@t1.3" not in state["systems"]  # a configured variant keeps its own
    round0 = {"zero_shot": measures(0.2), "few_shot": measures(0.1),
              "baseline_lora": measures(0.6), "polychromic_lora": measures(0.605)}
    state = search.advance(state, round0, config.evaluation, config.generation)
    assert state["round"] == 1 and state["target_pass@1"] == pytest.approx(0.6)
    assert state["systems"]["baseline_lora"]["stopped"] == search.TARGET
    assert state["systems"]["polychromic_lora"]["stopped"] == search.WITHIN
    assert state["proposals"] == {"zero_shot": "zero_shot@t0.5", "few_shot": "few_shot@t0.5"}
    tried = state["systems"]["zero_shot"]["tried"][0]
    assert (tried["name"], tried["round"], tried["temperature"]) == ("zero_shot", 0, 1.0)
    with pytest.raises(ValueError, match="no validation measures"):
        search.advance(state, {"zero_shot@t0.5": measures(0.3)}, config.evaluation,
                       config.generation)
    state = search.advance(state, {"zero_shot@t0.5": measures(0.3),
                                   "few_shot@t0.5": measures(0.1)},
                           config.evaluation, config.generation)
    assert state["proposals"] == {}
    assert {n: e["stopped"] for n, e in state["systems"].items()} == {
        "zero_shot": search.OUT_OF_REACH, "few_shot": search.OUT_OF_REACH,
        "baseline_lora": search.TARGET, "polychromic_lora": search.WITHIN}


def test_selection_json_records_the_search_and_an_equivalence_test_per_system(tmp_path) -> None:
    config = settings(SEARCH.__dict__)
    state = search.start(config.systems, config.evaluation, [42, 123, 456])
    state = search.advance(state, {"zero_shot": measures(0.2), "few_shot": measures(0.1),
                                   "baseline_lora": measures(0.6, 0.1),
                                   "polychromic_lora": measures(0.9)},
                           config.evaluation, config.generation)
    state = search.advance(state, {"zero_shot@t0.5": measures(0.3),
                                   "few_shot@t0.5": measures(0.1),
                                   "polychromic_lora@t2.0": measures(0.6, 0.1)},
                           config.evaluation, config.generation)
    assert state["proposals"] == {}
    path = tmp_path / "state.json"
    write_json(path, {**state, "proposals": {"zero_shot": "zero_shot@t0.75"}})
    with pytest.raises(ValueError, match="the search is not finished"):
        select_sampling(str(path), str(tmp_path / "s.json"), config.systems, config.generation,
                        config.evaluation)
    write_json(path, state)
    result = select_sampling(str(path), str(tmp_path / "s.json"), config.systems,
                             config.generation, config.evaluation)
    poly = result["systems"]["polychromic_lora"]
    assert poly["chosen"] == "polychromic_lora@t2.0" and poly["overrides"] == {"temperature": 2.0}
    assert list(poly["candidates"]) == ["polychromic_lora", "polychromic_lora@t2.0"]
    assert poly["candidates"]["polychromic_lora@t2.0"]["round"] == 1
    assert poly["stopped"] == search.WITHIN and "equivalence" not in poly
    tested = on_validation(result, 0.02)["systems"]  # the aggregate's copy
    assert tested["polychromic_lora"]["equivalence"]["interval"] == pytest.approx([0.0, 0.0])
    assert tested["polychromic_lora"]["matched"]
    assert result["systems"]["zero_shot"]["chosen"] == "zero_shot@t0.5"
    assert not tested["zero_shot"]["matched"]
    assert tested["zero_shot"]["equivalence"]["interval"][1] < -0.02
    assert result["selected_on"] == "val" and result["rounds"] == 2
    assert result["search"]["max_candidates"] == 6
    assert read_json(tmp_path / "s.json") == json.loads(json.dumps(result))
    changed = settings({**SEARCH.__dict__, "high": 3.0})
    with pytest.raises(ValueError, match="settings changed"):
        select_sampling(str(path), str(tmp_path / "s.json"), changed.systems,
                        changed.generation, changed.evaluation)


def test_candidates_are_named_and_parsed_like_sampling_variants() -> None:
    systems = settings().systems
    hot = candidate_system(systems, "polychromic_lora@t1.25")
    assert (hot.name, hot.temperature, hot.experiment, hot.base_system) == (
        "polychromic_lora@t1.25", 1.25, "polychromic", "polychromic_lora")
    assert candidate_system(systems, "zero_shot") == systems["zero_shot"]
    with pytest.raises(ValueError, match="not a configured system"):
        candidate_system(systems, "baseline_lora@t1.3@t2.0")
    import re
    pattern = re.compile(candidate_pattern(systems) + "$")
    assert pattern.match("few_shot@t0.5") and pattern.match("baseline_lora")
    assert not pattern.match("nope@t1.0")


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
    """The search on the small demo: selection.json is complete before any test generation
    exists, the test generations read it, and the aggregate copies it."""
    from test_end_to_end import small_config

    config = small_config(str(REPO / "resources" / "demo" / "raw.jsonl"))
    config["evaluation"]["selection"] = {"search": {"enabled": True, "max_candidates": 3},
                                         "num_samples": 4,
                                         "max_prompts": 8}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(tmp_path, "--cores", "2", "results/selection/selection.json")
    results = tmp_path / "results"
    assert not (results / "generations").exists()  # the search read no test generation
    dry = snakemake(tmp_path, "-n", "-p", "results/generations/seed_42/polychromic_lora.jsonl")
    block = dry.split("rule generate:", 1)[1].split("output:", 1)[0]
    assert "results/selection/selection.json" in block
    snakemake(tmp_path, "--cores", "2", "results/evaluation/aggregated_results.json")
    selection = read_json(results / "selection" / "selection.json")
    assert selection["selected_on"] == "val" and selection["n_prompts"] == 8
    assert set(selection["systems"]) == {"zero_shot", "few_shot", "baseline_lora",
                                         "polychromic_lora"}
    target = selection["target_pass@1"]
    for name, entry in selection["systems"].items():
        pass1 = [candidate["pass@1"] for candidate in entry["candidates"].values()]
        best = min(pass1, key=lambda v: abs(v - target))
        assert abs(entry["val_pass@1"] - target) == pytest.approx(abs(best - target))
        assert entry["stopped"] in search.REASONS and len(pass1) <= 3
        for candidate in entry["candidates"].values():  # the validation frontier's points
            assert candidate["pass@2"] >= candidate["pass@1"] and "pass@3" not in candidate
        records = read_jsonl(results / "generations" / "seed_42" / f"{name}.jsonl")
        assert records[0]["settings"]["temperature"] == entry["sampling"]["temperature"]
    aggregated = json.loads((results / "evaluation" / "aggregated_results.json").read_text(
        encoding="utf-8"))
    assert aggregated["selection"] == on_validation(selection, 0.02)
