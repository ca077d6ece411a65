"""The docs writer: every number of the result pages comes from the results folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from polychromic.reporting.docs import BEGIN, END, main
from test_report_helpers import build_evaluation, run_aggregate


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    dirs = build_evaluation(folder / "evaluation")
    run_aggregate(dirs, folder / "evaluation")
    bench = folder / "benchmarks" / "train"
    bench.mkdir(parents=True)
    for name, seconds in (("a", 60.0), ("b", 120.0)):
        (bench / f"{name}.tsv").write_text(f"s\th:m:s\n{seconds}\t0:01:00\n", encoding="utf-8")
    (folder / "figures").mkdir()
    (folder / "figures" / "frontier.png").write_bytes(b"\x89PNG fake")
    return folder


def test_page_and_readme_block_are_written_from_the_results(results: Path, tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nstale 0.999\n{END}\noutro\n", encoding="utf-8")
    page = tmp_path / "docs" / "results.md"
    aggregated = json.loads((results / "evaluation" / "aggregated_results.json").read_text())
    other = tmp_path / "other.json"
    shifted = json.loads(json.dumps(aggregated))
    shifted["systems"]["baseline_lora"]["pass@1"]["mean"] += 0.0123
    other.write_text(json.dumps(shifted), encoding="utf-8")
    assert main([str(results), "--out", str(page), "--readme", str(readme),
                 "--compare", str(other), "--compare-label", "a run on 1 core"]) == 0
    text = page.read_text(encoding="utf-8")
    zero = aggregated["systems"]["zero_shot"]["rougeL"]
    row = next(line for line in text.splitlines() if line.startswith("| ROUGE-L ↑ |"))
    assert row.split("|")[2].strip().strip("*") == f"{zero['mean']:.3f} ± {zero['std']:.3f}"
    assert f"**Verdict: {aggregated['verdict']['verdict']}.**" in text
    assert "train 2 job(s), 3.0 min" in text
    assert "Against a run on 1 core of the same config" in text
    assert "differ by at most 0.012 (pass@1 of baseline_lora)" in text
    assert "![frontier](figures/results/frontier.png)" in text
    assert "passk_curves" not in text  # no such figure in the folder: not linked
    assert (tmp_path / "docs" / "figures" / "results" / "frontier.png").is_file()
    updated = readme.read_text(encoding="utf-8")
    assert updated.startswith("intro\n" + BEGIN) and updated.endswith(END + "\noutro\n")
    assert "stale" not in updated
    row = re.search(r"\| baseline_lora \| ([0-9.]+) \|", updated)
    assert row and float(row[1]) == pytest.approx(
        aggregated["systems"]["baseline_lora"]["pass@1"]["mean"], abs=5e-4)


def test_an_identical_run_is_called_identical(results: Path, tmp_path: Path):
    page = tmp_path / "results.md"
    same = results / "evaluation" / "aggregated_results.json"
    assert main([str(results), "--out", str(page), "--compare", str(same)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "every metric of every system is the same number" in text
    assert "differ by at most" not in text


def test_readme_without_a_block_is_an_error(results: Path, tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="results:begin"):
        main([str(results), "--out", str(tmp_path / "r.md"), "--readme", str(readme)])


def test_the_paper_section_shows_page_one_and_the_checklist(results: Path, tmp_path: Path):
    from matplotlib.figure import Figure

    page = tmp_path / "docs" / "results.md"
    assert main([str(results), "--out", str(page)]) == 0
    assert "No `paper/main.pdf`" in page.read_text(encoding="utf-8")
    (results / "paper").mkdir()
    figure = Figure(figsize=(8.5, 11))
    figure.text(0.5, 0.9, "Title of the paper", ha="center")
    figure.savefig(results / "paper" / "main.pdf")
    (results / "submission").mkdir()
    (results / "submission" / "checklist.md").write_text(
        "# Pre-submission checklist\n\nintro\n\n- [x] **All seeds run**: 3 of 3\n"
        "- [ ] **Page count**: 12 pages\n", encoding="utf-8")
    assert main([str(results), "--out", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "![Page 1 of the paper](figures/results/paper_page1.png)" in text
    assert "- [ ] **Page count**: 12 pages" in text and "# Pre-submission" not in text
    png = tmp_path / "docs" / "figures" / "results" / "paper_page1.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 1000


def test_the_training_table_names_the_gate_and_the_steps_without_a_policy_term():
    from polychromic.reporting.docs import training_summary

    loss = {"mean": 2.5, "std": 0.1}
    aggregated = {"experiments": {
        "baseline": {"objective": "sft", "best_val_loss": loss, "saved_step": {"values": [20]}},
        "polychromic": {"objective": "polychromic", "best_val_loss": loss,
                        "saved_step": {"values": [20, 20]},
                        "quality_gate": {"thresholds": [0.14873, 0.14871], "source": "validation"},
                        "zero_term": {"sampling_steps": 30, "zero_term_steps": 4}}}}
    rows = training_summary(aggregated).splitlines()
    assert rows[2].endswith("| none | - | - |")
    assert rows[3].endswith("| none | 0.149 (validation) | 4 of 30 |")
