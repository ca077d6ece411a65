"""The whole Snakefile on a real pretrained model, SmolLM2-135M-Instruct, at tiny sizes: a
40-tweet demo corpus, one seed, a few training steps, a few test prompts x 4 samples.

It checks what the toy model cannot show: every rule runs on a real tokenizer and chat
template, the trained adapter changes the model's replies, the replies decode to text without
template tokens, and the system message of every prompt is the configured one (never
SmolLM2's default). `make test-real-model` runs this file alone; `make test` runs it too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from polychromic.data.demo import generate_demo
from polychromic.io import read_json, read_jsonl
from polychromic.models.prompts import system_message

from conftest import PROMPTS, REPO, SMOLLM2, known_model_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

SYSTEMS = ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora"]
TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|", "assistant\n")


def smollm2_config(raw: str) -> dict:
    """config.yaml with SmolLM2 as the base model and every size cut to a smoke run."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["seeds"] = [42]
    config["data"]["raw"] = [raw]
    config["data"]["thresholds"] = {"min_pairs": 10, "min_authors": 5}
    config["split"]["min_tweets"] = 3
    config["curation"]["decisions"] = "no_decisions.jsonl"
    config["model"].update(name=SMOLLM2, dtype="float32")
    config["lora"]["target_modules"] = "auto"
    config["training"].update(max_steps=4, eval_every=4, batch_size=2, learning_rate=0.002,
                              warmup_steps=0, max_length=64, save_every=0)
    # every sampled reply counts as good: in two sampling steps SmolLM2's replies would rarely
    # reach a calibrated gate, and the adapter would be the baseline's (a void comparison)
    config["experiments"]["polychromic"].update(
        num_samples=3, set_size=2, max_prompts=1, every_n_steps=2, max_new_tokens=8,
        quality_threshold=0.0)
    config["generation"].update(num_samples=4, max_new_tokens=10)
    config["evaluation"]["passk"]["k"] = [1, 2]
    config["evaluation"]["bootstrap_samples"] = 100
    config["evaluation"]["selection"] = {"search": {"enabled": True, "max_candidates": 2},
                                         "num_samples": 2, "max_prompts": 2}
    return config


def snakemake(workdir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--configfile", str(workdir / "config.yaml"), *args],
        capture_output=True, text=True, timeout=900)


def replies_with_and_without_adapter(pointer: str, adapter: str, prompts: list[str]
                                     ) -> tuple[list[list[int]], list[list[int]]]:
    """Greedy replies (token ids) of the base model with the trained adapter, and with it
    switched off, to the same chat prompts."""
    import torch

    from polychromic.models.base import load_model, load_tokenizer
    from polychromic.models.prompts import prompt_tokens

    tokenizer = load_tokenizer(pointer)
    model = load_model(pointer, adapter)
    model.eval()
    replies: tuple[list, list] = ([], [])
    for tweet in prompts:
        ids = torch.tensor([prompt_tokens(tokenizer, PROMPTS, "lora", tweet)])
        for index, adapted in enumerate((True, False)):
            with torch.no_grad():
                if adapted:
                    out = model.generate(ids, max_new_tokens=12, do_sample=False)
                else:
                    with model.disable_adapter():
                        out = model.generate(ids, max_new_tokens=12, do_sample=False)
            replies[index].append(out[0, ids.shape[1]:].tolist())
    return replies


def test_every_rule_runs_on_smollm2(tmp_path):
    known_model_or_skip(SMOLLM2)
    raw = tmp_path / "raw.jsonl"
    generate_demo(raw, n_tweets=40, seed=5)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(smollm2_config(str(raw))))

    run = snakemake(tmp_path, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]
    again = snakemake(tmp_path, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    results = tmp_path / "results"
    pointer = results / "models" / "base" / "base_model.json"
    assert read_json(pointer)["name"] == SMOLLM2
    configured = system_message(PROMPTS)
    assert configured and "SmolLM" not in configured
    for experiment in ("baseline", "polychromic"):
        summary = read_json(results / "models" / experiment / "seed_42" / "run.json")
        assert summary["system_message"] == configured
        assert summary["base_model_info"]["name"] == "SmolLM2-135M-Instruct"
        assert not summary["adapter_is_initial"]
    polychromic = read_json(results / "models" / "polychromic" / "seed_42" / "run.json")
    assert polychromic["quality_gate"]["source"] == "config"
    assert polychromic["zero_term_share"] < 1.0
    baseline = read_json(results / "models" / "baseline" / "seed_42" / "run.json")
    assert polychromic["adapter_sha256"] != baseline["adapter_sha256"]

    for system in SYSTEMS:
        records = read_jsonl(results / "generations" / "seed_42" / f"{system}.jsonl")
        assert records and all(len(r["samples"]) == 4 for r in records)
        assert all(r["settings"]["system_message"] == configured for r in records)
        texts = [r["greedy"] for r in records] + [s for r in records for s in r["samples"]]
        assert any(text.strip() for text in texts), system
        leaked = [t for t in texts if any(token in t for token in TEMPLATE_TOKENS)]
        assert not leaked, (system, leaked[:3])

    tweets = [r["tweet"] for r in read_jsonl(results / "data" / "splits" / "test.jsonl")][:3]
    adapted, plain = replies_with_and_without_adapter(
        str(pointer), str(results / "models" / "baseline" / "seed_42" / "adapter"), tweets)
    assert adapted != plain, "the trained adapter left every greedy reply unchanged"

    aggregated = json.loads((results / "evaluation" / "aggregated_results.json").read_text())
    assert aggregated["verdict"]["available"] and aggregated["verdict"]["verdict"] != "void"
    assert (results / "paper" / "main.tex").is_file()
