"""One end-to-end run of the whole DAG on a small config (one seed, a small demo corpus).

It runs the real Snakefile with the real rules in a temporary working directory and checks the
final files and their numbers, then that a second invocation has nothing to do, and that
re-running the training and everything downstream reproduces the aggregate exactly.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from polychromic.data.demo import generate_demo

from conftest import REPO

pytestmark = pytest.mark.slow

SYSTEMS = ["zero_shot", "few_shot", "baseline_lora", "polychromic_lora"]


def small_config(raw: str) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["seeds"] = [42]
    config["data"]["raw"] = [raw]
    config["data"]["thresholds"] = {"min_pairs": 10, "min_authors": 5}
    config["split"]["min_tweets"] = 5  # a 90-tweet smoke corpus: about 9 test tweets
    config["curation"]["decisions"] = "no_decisions.jsonl"
    config["model"]["tiny"].update(
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=64,
        vocab_size=400,
        pretrain_steps=40,
    )
    config["training"].update(max_steps=8, eval_every=4, batch_size=8)
    config["experiments"]["polychromic"].update(
        num_samples=3, max_prompts=2, every_n_steps=2, max_new_tokens=8
    )
    config["generation"].update(num_samples=4, max_new_tokens=12)
    config["evaluation"]["passk"]["k"] = [1, 2]
    config["evaluation"]["bootstrap_samples"] = 200
    # the sampling search on validation, small: two candidates each, 4 tweets x 2 replies
    config["evaluation"]["selection"] = {"search": {"enabled": True, "max_candidates": 2},
                                         "num_samples": 2,
                                         "max_prompts": 4}
    return config


def snakemake(workdir, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200)


def finite_numbers(node) -> list[float]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int | float):
        return [float(node)]
    if isinstance(node, dict):
        return [x for value in node.values() for x in finite_numbers(value)]
    if isinstance(node, list):
        return [x for value in node for x in finite_numbers(value)]
    return []


def test_whole_study_runs_end_to_end(tmp_path):
    raw = tmp_path / "raw.jsonl"
    generate_demo(raw, n_tweets=90, seed=3)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(small_config(str(raw))))

    run = snakemake(tmp_path, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]

    results = tmp_path / "results"
    aggregated = json.loads((results / "evaluation" / "aggregated_results.json").read_text())
    for system in SYSTEMS:
        metrics = aggregated["systems"][system]
        for name in ["self_bleu", "distinct_1", "distinct_2", "rougeL", "pass@1", "pass@2",
                     "lexical_pass@2", "off_topic_samples"]:
            value = metrics[name]["mean"]
            assert value is not None and math.isfinite(value), (system, name)
            assert metrics[name]["n_seeds"] == 1
        assert 0.0 <= metrics["pass@1"]["mean"] <= metrics["pass@2"]["mean"] <= 1.0
    # the judge is not the reward encoder, and the thresholds come from the validation split
    passk = json.loads((results / "evaluation" / "seed_42" / "passk_results.json").read_text())
    judge = passk["settings"]["judge"]
    assert judge["name"] == "sentence-transformers/all-mpnet-base-v2"
    run = json.loads((results / "models" / "polychromic" / "seed_42" / "run.json").read_text())
    assert run["reward_model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert run["reward_model"]["path"] != judge["path"]
    # what trained it, for the paper's reproducibility appendix
    assert run["environment"]["packages"]["torch"].startswith("2.13.0")
    assert run["environment"]["cpu_count"] >= 1 and isinstance(run["environment"]["gpus"], list)
    calibration = json.loads((results / "evaluation" / "judge_calibration.json").read_text())
    assert passk["settings"]["passk"]["threshold"] == calibration["semantic"]["threshold"]
    assert passk["settings"]["passk"]["threshold_source"]["threshold"] == "validation"
    for name in ["diversity_metrics", "quality_metrics", "passk_results", "statistical_tests"]:
        data = json.loads((results / "evaluation" / "seed_42" / f"{name}.json").read_text())
        assert all(math.isfinite(x) for x in finite_numbers(data))
    # the rule's records, the equivalence test of the verdict and the power of the final test
    # (a simulation of the rule at the run's own components) are in the aggregate
    verdict = aggregated["verdict"]
    assert verdict["equivalence"]["level"] == 0.9 and "holds" in verdict["equivalence"]
    assert {row["family"] for row in aggregated["comparisons"]} <= {"verdict", "table"}
    assert aggregated["power"]["seeds"] == 1 and 0.0 <= aggregated["power"]["power"] <= 1.0
    assert aggregated["selection"]["search"]["max_candidates"] == 2
    table = (results / "evaluation" / "results_table.tex").read_text()
    assert "\\toprule" in table and "polychromic" in table
    for figure in ["diversity_comparison", "passk_curves", "quality_comparison", "pareto"]:
        for ext in ["png", "pdf"]:
            assert (results / "figures" / f"{figure}.{ext}").stat().st_size > 1000
    assert (results / "paper" / "main.tex").is_file()
    assert (results / "submission" / "submission.tar.gz").stat().st_size > 0
    checklist = (results / "submission" / "checklist.md").read_text(encoding="utf-8")
    for item in ("Every citation key and reference resolves", "Sections in the plan's order",
                 "Warnings shown in the limitations", "Abstract generated from the numbers",
                 "No placeholder outside the marked drafts", "All seeds run"):
        assert f"- [x] **{item}**" in checklist, checklist
    # one seed has no std: the checklist says the study is not ready, it does not pretend
    assert "- [ ] **Results aggregated as mean +- std over every seed**" in checklist
    for experiment in ["baseline", "polychromic"]:
        adapter = results / "models" / experiment / "seed_42" / "adapter"
        assert (adapter / "adapter_model.safetensors").is_file()
        assert (adapter / "adapter_config.json").is_file()
    assert (results / "logs" / "train" / "polychromic_seed_42.log").stat().st_size > 0

    again = snakemake(tmp_path, "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    # `make report`: every figure and table with its caption in one HTML file
    report = snakemake(tmp_path, "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-4000:]
    assert (tmp_path / "report.html").stat().st_size > 100_000
    # the smoke corpus is a demo corpus: its card and the paper say it is synthetic
    assert "- [x] **Data origin stated**: a synthetic corpus" in checklist
    assert not (results / "checkpoints").exists()  # completed runs leave no checkpoint folder

    # Same inputs, same seeds: re-training and everything downstream gives the same aggregate.
    first = (results / "evaluation" / "aggregated_results.json").read_bytes()
    rerun = snakemake(tmp_path, "--cores", "2", "--forcerun", "train")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert (results / "evaluation" / "aggregated_results.json").read_bytes() == first
