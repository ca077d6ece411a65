"""Temperature systems: `<system>@t<temperature>` names, their expansion and their jobs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from polychromic.config import load_settings
from polychromic.reporting.groups import split_systems
from polychromic.settings import ConfigError
from polychromic.systems import (
    expand_systems,
    format_temperature,
    is_temperature_system,
    parse_system,
    temperature_system,
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
    assert parse_system(name) == (system, float(temperature))
    assert temperature_system(*parse_system(name)) == name
    assert is_temperature_system(name)


def test_plain_names_parse_to_no_temperature() -> None:
    for name in ("baseline_lora", "zero_shot", "a@b", "x@t", "x@tfast"):
        assert parse_system(name) == (name, None)
        assert not is_temperature_system(name)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_temperatures_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        format_temperature(bad)


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


def default_config() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, SCHEMA)
    return config


def test_schema_default_is_no_temperature() -> None:
    config = default_config()
    assert config["systems"]["baseline_lora"]["temperatures"] == []
    assert list(expand_systems(config["systems"])) == list(config["systems"])


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c["systems"]["baseline_lora"].update(temperatures=[1.0]),
         "systems.baseline_lora.temperatures"),
        (lambda c: c["systems"].update({"b@t2.0": {"prompt": "zero_shot"}}), r"'b@t2\.0'"),
    ],
)
def test_config_checks_temperatures(mutate, needle) -> None:
    config = default_config()
    mutate(config)
    with pytest.raises(ConfigError, match=needle):
        load_settings(config)


def test_temperature_systems_are_ablations() -> None:
    config = default_config()
    config["systems"]["baseline_lora"]["temperatures"] = [0.7, 1.3]
    config["systems"]["polychromic_lora"]["temperatures"] = [0.7]
    settings = load_settings(config)
    groups = split_systems(settings.systems, settings.experiments, "polychromic_lora")
    assert groups["main"] == ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora"]
    assert groups["ablation"] == ["baseline_lora@t0.7", "baseline_lora@t1.3",
                                  "polychromic_lora@t0.7"]


@pytest.mark.slow
def test_dry_run_has_a_generate_job_per_temperature(tmp_path) -> None:
    config = default_config()
    config["seeds"] = [42]
    config["systems"]["baseline_lora"]["temperatures"] = [0.7, 1.3]
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
    for system in ("baseline_lora@t0.7", "baseline_lora@t1.3", "baseline_lora"):
        assert f"results/generations/seed_42/{system}.jsonl" in out
    assert out.count("rule generate:") == 6
    assert "results/figures/frontier.png" in out


def test_study_config_is_valid_and_has_the_sweeps() -> None:
    config = yaml.safe_load((REPO / "config" / "study_demo.yaml").read_text())
    validate(config, SCHEMA)
    settings = load_settings(config)
    systems = settings.systems
    assert {"baseline_lora@t0.7", "baseline_lora@t1.3", "polychromic_l1_lora",
            "polychromic_l3_lora", "polychromic_n3_lora"} <= set(systems)
    lambdas = {e.get("lambda") for e in config["experiments"].values()
               if e["objective"] == "polychromic"}
    assert lambdas == {1.0, 3.0, 10.0}
    groups = split_systems(systems, settings.experiments, "polychromic_lora")
    assert groups["main"] == ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora"]
