"""The config is validated before any job runs, with messages that name the offending key."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from polychromic.config import ConfigError, check_config

from conftest import REPO

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def default_config() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, SCHEMA)
    return config


def test_default_config_is_valid_and_filled():
    config = default_config()
    check_config(config)
    assert config["training"]["early_stopping_patience"] == 0  # filled from the schema default


def test_every_schema_key_has_description_and_default():
    schema = yaml.safe_load(open(SCHEMA))
    missing = []

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            where = f"{path}.{key}".lstrip(".")
            if "description" not in sub:
                missing.append(f"{where}: description")
            in_experiment = path.startswith("experiments")
            if (
                "default" not in sub
                and not in_experiment
                and where
                not in {"systems.*.experiment", "experiments.*.objective", "systems.*.prompt"}
            ):
                missing.append(f"{where}: default")
            walk(sub, where)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}.*")

    walk(schema, "")
    assert not missing, missing


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c["training"].update(max_stpes=3), "max_stpes"),
        (lambda c: c["training"].update(max_steps="many"), "many"),
        (lambda c: c.update(seed=[1]), "seed"),
        (lambda c: c["experiments"]["polychromic"].update(lamda=2), "lamda"),
        (lambda c: c["evaluation"]["passk"].update(criterion="bleu"), "bleu"),
    ],
)
def test_schema_rejects_wrong_keys_and_types(mutate, needle):
    config = default_config()
    mutate(config)
    with pytest.raises(WorkflowError, match=needle):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c["evaluation"]["passk"].update(k=[1, 20]), "evaluation.passk.k"),
        (lambda c: c["split"].update(test=0.3), "split.train"),
        (
            lambda c: c["systems"]["baseline_lora"].update(experiment="nope"),
            "systems.baseline_lora",
        ),
        (lambda c: c["experiments"]["polychromic"].update(set_size=4), "experiments.polychromic"),
        (lambda c: c["evaluation"].update(reference_system="x"), "reference_system"),
    ],
)
def test_cross_checks_name_the_key(mutate, needle):
    config = default_config()
    mutate(config)
    with pytest.raises(ConfigError, match=needle):
        check_config(config)


@pytest.mark.slow
def test_snakemake_stops_before_any_job_on_a_bad_key(tmp_path):
    bad = default_config()
    bad["trainin"] = copy.deepcopy(bad["training"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--configfile",
            str(path),
            "-d",
            str(tmp_path),
            "-s",
            str(REPO / "Snakefile"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "trainin" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_an_extra_experiment_is_a_config_entry(tmp_path):
    """A lambda sweep needs no code change: the DAG expands over experiments and systems."""
    config = default_config()
    config["experiments"]["polychromic_l3"] = {"objective": "polychromic", "lambda": 3.0}
    config["systems"]["polychromic_l3_lora"] = {"prompt": "lora", "experiment": "polychromic_l3"}
    config["data"]["raw"] = [str(REPO / "resources" / "demo" / "raw.jsonl")]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", str(path),
         "-d", str(tmp_path), "-s", str(REPO / "Snakefile")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    counts = dict(
        line.split()[:2] for line in result.stdout.splitlines() if line.strip()[:1].isalpha()
        and len(line.split()) == 2 and line.split()[1].isdigit()
    )  # fmt: skip
    assert counts["train"] == str(3 * 3) and counts["generate"] == str(3 * 5)
