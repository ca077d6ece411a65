"""The config is validated before any job runs, with messages that name the offending key, and
becomes typed settings whose defaults live in one place."""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
import sys
import typing

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from polychromic import objectives
from polychromic.config import command_line_seeds, load_settings
from polychromic.settings import SECTIONS, ConfigError, TrainingSettings, schema, section

from conftest import REPO

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def default_config() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, SCHEMA)
    return config


def test_default_config_is_valid_and_filled():
    config = default_config()
    settings = load_settings(config)
    assert config["training"]["early_stopping_patience"] == 0  # filled from the schema default
    assert settings.training.early_stopping_patience == 0
    assert settings.experiments["polychromic"].settings.lambda_ == 10.0
    assert settings.experiments["polychromic"].settings.top_k == 0  # the dataclass default


def test_a_judge_equal_to_the_reward_model_needs_an_explicit_yes():
    config = default_config()
    config["evaluation"].update(judge="all-MiniLM-L6-v2", allow_judge_as_reward=True)
    assert load_settings(config).evaluation.judge == "all-MiniLM-L6-v2"
    config["experiments"]["polychromic"]["reward_model"] = "all-mpnet-base-v2"
    config["evaluation"].update(judge="all-mpnet-base-v2", allow_judge_as_reward=False)
    with pytest.raises(ConfigError, match="experiments.polychromic"):
        load_settings(config)


def test_a_folder_is_compared_with_the_known_encoders_without_assembling(tmp_path,
                                                                        monkeypatch):
    from polychromic import encoders

    monkeypatch.setattr(encoders, "assemble_mpnet", lambda: pytest.fail("assembled"))
    minilm = str(encoders.minilm_path())
    assert encoders.same_encoder("all-MiniLM-L6-v2", minilm)
    assert not encoders.same_encoder("all-mpnet-base-v2", minilm)
    assert not encoders.same_encoder("all-mpnet-base-v2", str(tmp_path / "missing"))
    monkeypatch.setenv("POLYCHROMIC_CACHE", str(tmp_path))
    (tmp_path / "all-mpnet-base-v2").mkdir()  # where the judge is (or will be) assembled
    assert encoders.same_encoder(str(tmp_path / "all-mpnet-base-v2"), "all-mpnet-base-v2")


def test_a_copy_of_the_reward_models_folder_is_refused_as_the_judge(tmp_path):
    """The judge is compared by its weights: a copied folder of the reward model is the
    reward model under another path."""
    import shutil

    from test_encoders import fake_encoder

    original = fake_encoder(tmp_path / "reward")
    copy = shutil.copytree(original, tmp_path / "judge")
    config = default_config()
    config["experiments"]["polychromic"]["reward_model"] = str(original)
    config["evaluation"].update(judge=str(copy), bertscore_layer=2)
    with pytest.raises(ConfigError, match="reward_model of experiments.polychromic .*weights"):
        load_settings(config)
    config["evaluation"]["allow_judge_as_reward"] = True
    assert load_settings(config).evaluation.judge == str(copy)
    other = fake_encoder(tmp_path / "other", seed=1)
    config["evaluation"].update(judge=str(other), allow_judge_as_reward=False)
    assert load_settings(config).evaluation.judge == str(other)


def test_a_rouge_reward_is_refused_with_the_rouge_pass_criterion():
    """Training on reward rougeL while pass@k counts ROUGE-L passes would optimise the
    evaluation's own criterion: refused unless allowed, and then the paper says so."""
    from polychromic.config import criterion_is_reward
    from polychromic.reporting.paper_text import limitations

    config = default_config()
    config["experiments"]["polychromic"]["reward"] = "rougeL"
    assert criterion_is_reward(load_settings(config)) == []  # the semantic criterion
    config["evaluation"]["passk"]["criterion"] = "rougeL"
    with pytest.raises(ConfigError, match=r"experiments.polychromic.reward = 'rougeL' and "
                                          r"evaluation.passk.criterion = 'rougeL'"):
        load_settings(config)
    config["evaluation"]["allow_judge_as_reward"] = True
    settings = load_settings(config)
    assert criterion_is_reward(settings) == ["polychromic"]
    items = limitations({"verdict": {}, "criterion_is_reward": ["polychromic"]}, {}, None)
    assert any("ROUGE-L" in item and "polychromic" in item for item in items)
    config["experiments"]["polychromic"]["reward"] = "semantic"
    config["evaluation"]["allow_judge_as_reward"] = False
    assert criterion_is_reward(load_settings(config)) == []


def test_a_system_cannot_take_the_name_of_an_evaluate_input():
    config = default_config()
    config["systems"]["calibration"] = config["systems"]["zero_shot"]
    with pytest.raises(ConfigError, match="systems.calibration: the name is taken"):
        load_settings(config)


def test_sections_and_schema_have_the_same_keys():
    """Every dataclass field is a schema key and vice versa, and the dataclasses declare no
    defaults: the schema is the one place of the sections' defaults."""
    def check(cls, node, where):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(fields) == set(node["properties"]), where
        hints = typing.get_type_hints(cls)
        for name, item in fields.items():
            assert item.default is dataclasses.MISSING, f"{where}.{name} has a default"
            if dataclasses.is_dataclass(hints[name]):
                check(hints[name], node["properties"][name], f"{where}.{name}")

    for name, cls in SECTIONS.items():
        check(cls, schema()["properties"][name], name)


def test_a_partial_section_is_filled_from_the_schema():
    training = section("training", {"max_steps": 3})
    assert isinstance(training, TrainingSettings)
    assert training.max_steps == 3
    assert training.grad_accum == schema()["properties"]["training"]["properties"][
        "grad_accum"]["default"]
    with pytest.raises(ConfigError, match="training: .*max_stpes"):
        section("training", {"max_stpes": 3})


def test_objective_settings_have_help_and_reject_bad_values():
    for entry in objectives.OBJECTIVES.values():
        for item in dataclasses.fields(entry.settings):
            assert item.metadata.get("help"), f"{entry.name}.{item.name} has no help"
            assert item.default is not dataclasses.MISSING
    with pytest.raises(ValueError, match="lamda"):
        objectives.build_settings("polychromic", {"lamda": 1})
    with pytest.raises(ValueError, match="set_size"):
        objectives.build_settings("polychromic", {"num_samples": 2, "set_size": 3})
    with pytest.raises(ValueError, match="every\nadvantage is 0|advantage is 0"):
        objectives.build_settings("polychromic", {"num_samples": 2, "set_size": 2})
    with pytest.raises(ValueError, match="num_samples"):
        objectives.build_settings("polychromic", {"num_samples": 2.5})
    with pytest.raises(ValueError, match="unknown objective 'ppo'"):
        objectives.build_settings("ppo", {})
    assert objectives.build_settings("polychromic", {"lambda": 3}).lambda_ == 3.0
    assert "| `lambda` | `1.0` |" in objectives.markdown()


def test_no_settings_default_outside_the_settings_layer():
    """No `.get(key, default)` on a config section anywhere in the library."""
    sections = "|".join([*SECTIONS, "experiment", "settings", "config", "training", "model"])
    pattern = re.compile(rf"\b({sections})(\[[^]]+\])?\.get\(")
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in (REPO / "src" / "polychromic").rglob("*.py")
             if path.name != "settings.py"
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if pattern.search(line)]
    assert not found, found


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
        (lambda c: c["evaluation"]["passk"].update(k=[1, 30]), "evaluation.passk.k"),
        (lambda c: c["evaluation"].update(judge="all-MiniLM-L6-v2"), "reward_model"),
        (lambda c: c["evaluation"].update(judge="/no/such/folder"), "bertscore_layer"),
        (lambda c: c["experiments"]["polychromic"].update(top_p=0.9), "top_p must be 1"),
        (lambda c: c["split"].update(test=0.3), "split.train"),
        (
            lambda c: c["systems"]["baseline_lora"].update(experiment="nope"),
            "systems.baseline_lora",
        ),
        (lambda c: c["experiments"]["polychromic"].update(set_size=4), "experiments.polychromic"),
        (lambda c: c["evaluation"].update(reference_system="x"), "reference_system"),
        (lambda c: c["evaluation"].update(baseline_system="x"), "baseline_system"),
        (lambda c: c["evaluation"].update(baseline_system="polychromic_lora"), "must differ"),
        (lambda c: c["experiments"]["polychromic"].update(lamda=2), "experiments.polychromic"),
        (lambda c: c["experiments"]["baseline"].update(objective="ppo"), "unknown objective"),
        (lambda c: c["generation"].update(engine="magic"), "generation.engine"),
        (lambda c: (c["experiments"]["polychromic"].update(ce_weight=0.0),
                    c["training"].update(checkpoint_selection="best_val_loss")),
         "experiments.polychromic.ce_weight is 0.*checkpoint_selection"),
        (lambda c: c["experiments"]["polychromic"].update(objective="passk_training", k=9),
         "experiments.polychromic"),
        (lambda c: (c["experiments"]["polychromic"].update(ce_weight=0.0),
                    c["training"].update(checkpoint_selection="last",
                                         early_stopping_patience=3)),
         "early_stopping_patience: 0"),
    ],
)
def test_cross_checks_name_the_key(mutate, needle):
    config = default_config()
    mutate(config)
    with pytest.raises(ConfigError, match=needle):
        load_settings(config)


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


@pytest.mark.parametrize("seeds", [[42.9, 7.5], [True], ["forty-two"], ["42.9"], "42"])
def test_seeds_are_validated_as_integers_before_any_cast(seeds):
    """42.9 used to become 42 and true 1 (an int() before validation); now the schema refuses
    them, naming seeds. Integer literals from `--config seeds=[42]` still become integers."""
    config = default_config()
    config["seeds"] = command_line_seeds(seeds)
    with pytest.raises(ConfigError, match=r"^seeds"):
        load_settings(config)
    with pytest.raises(WorkflowError, match=r"seeds"):
        validate(copy.deepcopy(config), str(REPO / "workflow" / "schemas" /
                                            "config.schema.yaml"))


def test_integer_literals_from_the_command_line_become_seeds():
    config = default_config()
    config["seeds"] = command_line_seeds(["42", " 7", 3])
    assert load_settings(config).seeds == (42, 7, 3)
    config["seeds"] = [42.0]  # an integral float passes the schema as an integer
    assert load_settings(config).seeds == (42,) and isinstance(load_settings(config).seeds[0],
                                                                 int)


def test_the_diversity_ablation_must_be_a_configured_system():
    config = yaml.safe_load(open(REPO / "config.yaml"))
    config["evaluation"]["diversity_ablation"] = "quality_rl_lora"
    with pytest.raises(ConfigError, match="evaluation.diversity_ablation = 'quality_rl_lora'"):
        load_settings(config)
    config["evaluation"]["diversity_ablation"] = "polychromic_lora"
    assert load_settings(config).evaluation.diversity_ablation == "polychromic_lora"
