"""The three seams take a new entry without touching their callers: a toy objective trained by
the real training loop, a toy sampling engine driven by the real `generate` step, and a toy
metric computed by the real evaluation and shown in the real results table (docs/extending.md
walks through the same three examples)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polychromic import objectives, sampling
from polychromic.config import load_settings
from polychromic.contract import SEED_FILES
from polychromic.evaluation import registry
from polychromic.evaluation.evaluate import evaluate_seed
from polychromic.evaluation.generate import generate_system
from polychromic.io import read_jsonl, write_jsonl
from polychromic.objectives import setting
from polychromic.reporting.aggregate import build_aggregate, load_seed
from polychromic.reporting.latex import results_table
from polychromic.settings import ConfigError, section
from polychromic.systems import System
from polychromic.training.objective import ExtraLoss
from polychromic.training.train import train_from_spec

from conftest import PROMPTS, REPO

TEMPLATES = str(REPO / "resources" / "latex")


@dataclasses.dataclass(frozen=True)
class L2Settings:
    """A toy objective: an L2 penalty on the LoRA weights."""

    weight: float = setting(0.1, "Weight of the penalty (0 = the baseline).", minimum=0)


class L2Penalty:
    """weight * sum of squared LoRA parameters, logged as `l2`."""

    log_fields = ("l2",)

    def __init__(self, settings: L2Settings, context: object) -> None:
        self.settings = settings

    def extra_loss(self, model, batch, step) -> ExtraLoss:
        # every process adds the term and the loop sums the gradients: 1/world each
        l2 = sum((p ** 2).sum() for p in model.parameters() if p.requires_grad)
        l2 = l2 / step.parallel.world
        value = step.parallel.global_sum(float(l2.detach()))
        return ExtraLoss(self.settings.weight * l2, self.settings.weight * value,
                         {"l2": value})

    def summary(self) -> dict:
        return {}


@pytest.fixture
def l2_objective():
    objectives.register("l2", L2Settings, "test_registries:L2Penalty", "a toy L2 penalty")
    yield
    objectives.unregister("l2")


def _train(tiny_base, toy_splits, folder: Path, experiment: dict) -> dict:
    train_from_spec({
        "job": {"train": toy_splits["train"], "val": toy_splits["val"], "base": tiny_base,
                "prompts_dir": PROMPTS, "adapter_dir": str(folder / "adapter"),
                "log_csv": str(folder / "log.csv"), "summary": str(folder / "run.json")},
        "experiment": {"name": folder.name, **experiment},
        "training": {"max_steps": 3, "batch_size": 4, "learning_rate": 0.05, "warmup_steps": 1,
                     "eval_every": 3, "max_length": 128},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "seed": 3})
    return load_file(folder / "adapter" / "adapter_model.safetensors")


def test_a_toy_objective_trains_through_the_loop(l2_objective, tiny_base, toy_splits, tmp_path):
    config = {"experiments": {"baseline": {"objective": "sft"},
                              "polychromic": {"objective": "l2", "weight": 2.0}}}
    assert load_settings(config).experiments["polychromic"].settings == L2Settings(weight=2.0)
    config["experiments"]["polychromic"]["weight"] = -1
    with pytest.raises(ConfigError, match="experiments.polychromic: .*-1"):
        load_settings(config)
    sft = _train(tiny_base, toy_splits, tmp_path / "sft", {"objective": "sft"})
    zero = _train(tiny_base, toy_splits, tmp_path / "zero", {"objective": "l2", "weight": 0.0})
    moved = _train(tiny_base, toy_splits, tmp_path / "moved", {"objective": "l2", "weight": 50.0})
    assert all(torch.equal(sft[key], zero[key]) for key in sft)  # weight 0 is the baseline
    assert any(not torch.equal(sft[key], moved[key]) for key in sft)
    header = (tmp_path / "moved" / "log.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "loss", "ce", "l2", "lr", "tokens_per_s", "val_loss"]
    assert "| `weight` | `0.1` |" in objectives.markdown()


class EchoEngine:
    """A toy engine: replies repeat the prompt's length; no model at all."""

    def __init__(self, base: str, adapter: str | None) -> None:
        from polychromic.models.base import load_tokenizer

        self.tokenizer = load_tokenizer(base)

    def seed(self, seed: int, system: str = "") -> None:
        self.offset = seed

    def greedy(self, prompts, max_new_tokens):
        return [f"echo {len(prompt)}" for prompt in prompts]

    def sample(self, prompts, n, sampling):
        return [[f"echo {len(prompt)} {self.offset + i}" for i in range(n)] for prompt in prompts]

    def reference_nll(self, prompt, references):
        return [1.0] * len(references), [1] * len(references)


def test_a_toy_engine_serves_the_generate_step(tiny_base, toy_splits, tmp_path):
    sampling.register("echo", "test_registries:EchoEngine", None, "a toy engine")
    try:
        generation = section("generation", {"engine": "echo", "num_samples": 3})
        assert load_settings({"generation": {"engine": "echo"}}).generation.engine == "echo"
        out = tmp_path / "zero_shot.jsonl"
        generate_system(toy_splits["test"], toy_splits["train"], tiny_base, None, str(out),
                        System("zero_shot", "zero_shot", 0, None, None, None), generation,
                        PROMPTS, 7)
        records = read_jsonl(out)
        assert records and all(r["samples"][2].endswith(" 9") for r in records)
        assert {r["settings"]["engine"] for r in records} == {"echo"}
        with pytest.raises(ValueError, match="offers no sampler for training"):
            sampling.training_sampler("echo")
    finally:
        sampling.unregister("echo")
    with pytest.raises(ConfigError, match="generation.engine"):
        load_settings({"generation": {"engine": "echo"}})


def _records(system: str, samples: list[str]) -> list[dict]:
    return [{"prompt_id": f"t{i}", "tweet": "Coffee or tea?", "references": ["Coffee, always."],
             "reference_stances": None, "greedy": samples[0], "samples": samples,
             "reference_nll": [3.0], "reference_tokens": [3], "system": system, "seed": 1,
             "settings": {"temperature": 1.0, "top_p": 1.0}} for i in range(4)]


def test_a_toy_metric_is_computed_and_tabled(tmp_path):
    def reply_chars(view) -> list[float]:
        return [sum(len(s) for s in samples) / len(samples) for samples in view.samples]

    registry.register(registry.Metric("reply_chars", "diversity", True, "Reply length",
                                      reply_chars, shown_in=frozenset({"table"}),
                                      definition="mean characters per sampled reply"))
    try:
        paths = {}
        for system, samples in (("polychromic_lora", ["a b c", "dd", "eee e"]),
                                ("baseline_lora", ["x", "x", "x"])):
            paths[system] = str(tmp_path / f"{system}.jsonl")
            write_jsonl(paths[system], _records(system, samples))
        folder = tmp_path / "seed_1"
        outputs = {name: str(folder / file) for name, file in SEED_FILES.items()}
        settings = section("evaluation", {
            "bootstrap_samples": 100, "permutation_samples": 100, "judge": "all-MiniLM-L6-v2",
            "passk": {"k": [1], "threshold": 0.5, "lexical_threshold": 0.5}})
        evaluate_seed(paths, outputs, settings, seed=1)
        diversity = json.loads(Path(outputs["diversity"]).read_text())
        definition = diversity["settings"]["metrics"]["reply_chars"]
        assert definition == "mean characters per sampled reply"
        assert diversity["systems"]["polychromic_lora"]["reply_chars"]["per_prompt"] == [
            pytest.approx(12 / 3)] * 4
        tests = json.loads(Path(outputs["statistics"]).read_text())["tests"]
        assert any(test["metric"] == "reply_chars" for test in tests)
        aggregated = build_aggregate({1: load_seed(folder)}, [1], list(paths))
        table = results_table({**aggregated, "reference_system": "polychromic_lora"}, TEMPLATES)
        assert "Reply length" in table
    finally:
        registry.unregister("reply_chars")
    assert "reply_chars" not in registry.METRICS


def test_the_default_config_names_only_registered_parts():
    settings = load_settings({})
    assert {e.objective for e in settings.experiments.values()} <= set(objectives.OBJECTIVES)
    assert settings.generation.engine in sampling.ENGINES
    assert (REPO / "workflow" / "schemas" / "config.schema.yaml").is_file()


def test_the_objectives_page_is_current():
    page = (REPO / "docs" / "objectives.md").read_text(encoding="utf-8")
    assert page == objectives.page(), "docs/objectives.md is stale: run `make docs`"
