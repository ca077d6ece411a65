"""Sampling variants: `<system>@t<temperature>` and `<system>@t1.6m0.1` names, their expansion,
their validation and their jobs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from polychromic.config import load_settings
from polychromic.reporting.groups import split_systems
from polychromic.settings import ConfigError, as_dict, schema
from polychromic.systems import (
    KEYS,
    Overrides,
    System,
    expand_systems,
    format_temperature,
    format_value,
    is_variant,
    parse_system,
    temperature_system,
    variant_system,
)

from conftest import REPO

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


@pytest.mark.parametrize(
    ("system", "temperature", "name"),
    [
        ("baseline_lora", 1.3, "baseline_lora@t1.3"),
        ("baseline_lora", 0.7, "baseline_lora@t0.7"),
        ("baseline_lora", 1, "baseline_lora@t1.0"),
        ("polychromic_l3_lora", 0.25, "polychromic_l3_lora@t0.25"),
        ("few-shot.v2", 2.0, "few-shot.v2@t2.0"),
    ],
)
def test_name_round_trip(system: str, temperature: float, name: str) -> None:
    assert temperature_system(system, temperature) == name
    assert parse_system(name) == (system, Overrides(temperature=float(temperature)))
    base, overrides = parse_system(name)
    assert temperature_system(base, overrides.temperature) == name
    assert variant_system(base, overrides) == name
    assert is_variant(name)


@pytest.mark.parametrize(
    ("system", "overrides", "name"),
    [
        ("baseline_lora", {"temperature": 1.6, "min_p": 0.1}, "baseline_lora@t1.6m0.1"),
        ("baseline_lora", {"min_p": 0.05}, "baseline_lora@m0.05"),
        ("baseline_lora", {"top_p": 1.0, "temperature": 1.3}, "baseline_lora@t1.3p1.0"),
        ("baseline_lora", {"top_k": 20}, "baseline_lora@k20"),
        ("baseline_lora", {"top_p": 0.9}, "baseline_lora@p0.9"),
        ("few-shot.v2", {"min_p": 0.2, "top_k": 0, "top_p": 0.95, "temperature": 2},
         "few-shot.v2@t2.0p0.95k0m0.2"),
        ("x", {"min_p": 0.0}, "x@m0.0"),
        ("x", {"min_p": 1e-05}, "x@m0.00001"),
    ],
)
def test_variant_name_round_trip(system: str, overrides: dict, name: str) -> None:
    """Every key, alone and together, in the fixed order t, p, k, m whatever the entry's."""
    assert variant_system(system, overrides) == name
    parsed = parse_system(name)
    assert parsed.base == system and parsed.is_variant and is_variant(name)
    assert parsed.overrides.items() == {key: overrides[key] for key in KEYS if key in overrides}
    assert list(parsed.overrides.items()) == [key for key in KEYS if key in overrides]
    assert isinstance(parsed.overrides.items().get("top_k", 0), int)
    assert variant_system(*parsed) == name


def test_plain_names_parse_to_no_overrides() -> None:
    for name in ("baseline_lora", "zero_shot", "a@b", "x@t", "x@tfast", "x@", "x@m", "x@k1.5",
                 "x@m0.1t1.0", "x@q1.0", "x@t1.3z"):
        assert parse_system(name) == (name, Overrides())
        assert not is_variant(name) and not parse_system(name).overrides.items()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_temperatures_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        format_temperature(bad)


@pytest.mark.parametrize(
    ("system", "overrides", "needle"),
    [
        ("x", {}, "at least one"),
        ("x@t1.0", {"min_p": 0.1}, "already holds"),
        ("x", {"seed": 1}, "unknown sampling key"),
        ("x", {"min_p": -0.1}, "non-negative"),
        ("x", {"top_p": float("nan")}, "non-negative"),
        ("x", {"top_k": 2.5}, "top_k"),
        ("x", {"min_p": 1e-12}, "exactly"),
    ],
)
def test_variant_names_refuse_what_they_cannot_write(system: str, overrides: dict,
                                                    needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        variant_system(system, overrides)
    with pytest.raises(ValueError):
        format_value(-1)


def test_expand_systems_adds_variants_after_their_system() -> None:
    systems = {"zero_shot": {"prompt": "zero_shot", "temperatures": []},
               "baseline_lora": {"prompt": "lora", "experiment": "baseline",
                                 "temperatures": [0.7, 1.3]}}
    expanded = expand_systems(systems)
    assert list(expanded) == ["zero_shot", "baseline_lora", "baseline_lora@t0.7",
                              "baseline_lora@t1.3"]
    # the plain system's settings are those configured, less `temperatures`: adding
    # temperatures leaves its jobs (params) unchanged
    assert expanded["baseline_lora"] == {"prompt": "lora", "experiment": "baseline"}
    assert expanded["baseline_lora@t1.3"] == {"prompt": "lora", "experiment": "baseline",
                                              "temperature": 1.3, "base_system": "baseline_lora"}


def test_variants_expand_in_config_order_after_the_temperatures() -> None:
    systems = {"baseline_lora": {"prompt": "lora", "experiment": "baseline",
                                 "temperatures": [1.3],
                                 "variants": [{"min_p": 0.1, "temperature": 1.6},
                                              {"min_p": 0.05}, {"top_k": 20}]}}
    expanded = expand_systems(systems)
    assert list(expanded) == ["baseline_lora", "baseline_lora@t1.3", "baseline_lora@t1.6m0.1",
                              "baseline_lora@m0.05", "baseline_lora@k20"]
    assert expanded["baseline_lora"] == {"prompt": "lora", "experiment": "baseline"}
    assert expanded["baseline_lora@t1.6m0.1"] == {
        "prompt": "lora", "experiment": "baseline", "temperature": 1.6, "min_p": 0.1,
        "base_system": "baseline_lora"}
    assert expanded["baseline_lora@k20"]["top_k"] == 20
    typed = System.from_config("baseline_lora@t1.6m0.1", expanded["baseline_lora@t1.6m0.1"])
    assert typed.overrides == Overrides(temperature=1.6, min_p=0.1)
    assert (typed.temperature, typed.top_p, typed.top_k, typed.min_p) == (1.6, None, None, 0.1)
    assert typed.base_system == "baseline_lora" and typed.experiment == "baseline"
    assert System(**as_dict(typed)) == typed  # the generate rule's params round trip


def test_temperatures_are_shorthand_for_temperature_variants() -> None:
    """`temperatures: [1.3]` gives exactly the entry and name it gave before variants existed,
    and `variants: [{temperature: 1.3}]` gives the same."""
    base = {"prompt": "lora", "experiment": "baseline"}
    short = expand_systems({"baseline_lora": {**base, "temperatures": [1.3]}})
    long = expand_systems({"baseline_lora": {**base, "variants": [{"temperature": 1.3}]}})
    before = {"baseline_lora": base,
              "baseline_lora@t1.3": {**base, "temperature": 1.3, "base_system": "baseline_lora"}}
    assert short == long == before
    assert list(short) == list(long) == list(before)
    assert System.from_config("baseline_lora@t1.3", short["baseline_lora@t1.3"]) == System(
        "baseline_lora@t1.3", "lora", 0, "baseline", 1.3, "baseline_lora")


def test_a_name_given_twice_names_the_key() -> None:
    base = {"prompt": "lora", "experiment": "baseline"}
    twice = {"baseline_lora": {**base, "temperatures": [1.3], "variants": [{"temperature": 1.3}]}}
    with pytest.raises(ValueError, match=r"systems\.baseline_lora\.variants\.0: "
                                         r"'baseline_lora@t1\.3' is listed twice"):
        expand_systems(twice)
    taken = {"a": {"prompt": "zero_shot", "variants": [{"min_p": 0.1}]},
             "a@m0.1": {"prompt": "zero_shot"}}
    with pytest.raises(ValueError, match=r"systems\.a\.variants\.0: 'a@m0\.1' is listed"):
        expand_systems(taken)
    with pytest.raises(ValueError, match=r"systems\.a\.variants\.0: .*at least one"):
        expand_systems({"a": {"prompt": "zero_shot", "variants": [{}]}})


def test_variant_bounds_are_generation_bounds() -> None:
    """A variant's keys take the bounds of generation's keys (the schema writes them twice)."""
    root = schema()["properties"]
    item = root["systems"]["additionalProperties"]["properties"]["variants"]["items"]
    assert set(item["properties"]) == set(KEYS)
    for key in KEYS:
        bounds = {k: v for k, v in root["generation"]["properties"][key].items()
                  if k not in ("description", "default")}
        assert {k: v for k, v in item["properties"][key].items()
                if k != "description"} == bounds, key


def default_config() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, SCHEMA)
    return config


def test_schema_default_is_no_variant() -> None:
    config = default_config()
    assert config["systems"]["baseline_lora"]["temperatures"] == []
    assert config["systems"]["baseline_lora"]["variants"] == []
    assert config["generation"]["min_p"] == 0.0
    assert list(expand_systems(config["systems"])) == list(config["systems"])


def _variants(*entries: dict):
    return lambda c: c["systems"]["baseline_lora"].update(variants=list(entries))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c["systems"]["baseline_lora"].update(temperatures=[1.0]),
         r"systems\.baseline_lora\.temperatures\.0: .*baseline_lora itself"),
        (lambda c: c["systems"].update({"b@t2.0": {"prompt": "zero_shot"}}), r"'b@t2\.0'"),
        (_variants({"min_p": 1.0}), r"systems\.baseline_lora\.variants\.0\.min_p"),
        (_variants({"temperature": 1.6}, {"min_p": -0.1}),
         r"systems\.baseline_lora\.variants\.1\.min_p"),
        (_variants({"top_p": 0}), r"systems\.baseline_lora\.variants\.0\.top_p"),
        (_variants({"top_p": 1.5}), r"systems\.baseline_lora\.variants\.0\.top_p"),
        (_variants({"top_k": -1}), r"systems\.baseline_lora\.variants\.0\.top_k"),
        (_variants({"top_k": 2.5}), r"systems\.baseline_lora\.variants\.0\.top_k"),
        (_variants({"temperature": 0}), r"systems\.baseline_lora\.variants\.0\.temperature"),
        (_variants({}), r"systems\.baseline_lora\.variants\.0"),
        (_variants({"seed": 3}), r"systems\.baseline_lora\.variants\.0: .*seed"),
        (_variants({"min_p": 0.1}, {"min_p": 0.1}),
         r"systems\.baseline_lora\.variants\.1: 'baseline_lora@m0\.1' is listed twice"),
        (_variants({"min_p": 0.0}),
         r"systems\.baseline_lora\.variants\.0: 'baseline_lora@m0\.0' samples exactly as "
         r"baseline_lora itself"),
        (_variants({"temperature": 1.6}, {"temperature": 1.6, "top_p": 0.95}),
         r"systems\.baseline_lora\.variants\.1: 'baseline_lora@t1\.6p0\.95' samples exactly "
         r"as 'baseline_lora@t1\.6'"),
        (lambda c: c["generation"].update(min_p=1.0), r"generation\.min_p"),
        (lambda c: c["generation"].update(min_p=-0.5), r"generation\.min_p"),
    ],
)
def test_config_checks_variants(mutate, needle) -> None:
    config = default_config()
    mutate(config)
    with pytest.raises(ConfigError, match=needle):
        load_settings(config)


def test_sampling_variants_are_ablations() -> None:
    config = default_config()
    config["systems"]["baseline_lora"]["temperatures"] = [0.7, 1.3]
    config["systems"]["baseline_lora"]["variants"] = [{"temperature": 1.6, "min_p": 0.1}]
    config["systems"]["polychromic_lora"]["temperatures"] = [0.7]
    config["systems"]["zero_shot"]["variants"] = [{"min_p": 0.05}]
    settings = load_settings(config)
    assert settings.systems["baseline_lora@t1.6m0.1"].overrides.items() == {
        "temperature": 1.6, "min_p": 0.1}
    groups = split_systems(settings.systems, settings.experiments, "polychromic_lora")
    assert groups["main"] == ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora"]
    assert groups["ablation"] == ["zero_shot@m0.05", "baseline_lora@t0.7",
                                  "baseline_lora@t1.3", "baseline_lora@t1.6m0.1",
                                  "polychromic_lora@t0.7"]
    assert groups["main_lora"] == ["baseline_lora", "polychromic_lora"]


@pytest.mark.slow
def test_dry_run_has_a_generate_job_per_temperature(tmp_path) -> None:
    config = default_config()
    config["seeds"] = [42]
    config["systems"]["baseline_lora"]["temperatures"] = [0.7, 1.3]
    config["systems"]["baseline_lora"]["variants"] = [{"temperature": 1.6, "min_p": 0.1}]
    config["data"]["raw"] = [str(REPO / "resources" / "demo" / "raw.jsonl")]
    path = tmp_path / "temperatures.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path),
         "-d", str(tmp_path), "-s", str(REPO / "Snakefile")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for system in ("baseline_lora@t0.7", "baseline_lora@t1.3", "baseline_lora@t1.6m0.1",
                   "baseline_lora"):
        assert f"results/generations/seed_42/{system}.jsonl" in out
    assert out.count("rule generate:") == 7
    assert "results/figures/frontier.png" in out


def test_study_config_is_valid_and_runs_every_objective_under_one_protocol() -> None:
    config = yaml.safe_load((REPO / "config" / "study_demo.yaml").read_text())
    validate(config, SCHEMA)
    settings = load_settings(config)
    systems = settings.systems
    from polychromic import objectives

    used = {experiment.objective for experiment in settings.experiments.values()}
    assert used == set(objectives.OBJECTIVES)  # every registered objective
    assert not any(is_variant(name) for name in systems)  # no test-split sweep of its own
    search = settings.evaluation.selection.search
    assert search is not None and search.parameter == "temperature"
    assert settings.evaluation.selection.num_samples >= 2 * 10  # validation pass@10: n >= 2k
    assert settings.training.checkpoint_selection == "last"
    groups = split_systems(systems, settings.experiments, "polychromic_lora")
    # the first system of each objective is main (the baselines of the objective too); the
    # pure set-RL system is a second polychromic experiment, so an ablation
    assert groups["main"] == ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora",
                              "diversity_bonus_lora", "passk_training_lora", "quality_rl_lora"]
    assert "polychromic_setrl_lora" in groups["ablation"]
