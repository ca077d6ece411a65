"""Significance marks and the ablation table: crafted tests (every seed significant, one seed
not, signs that disagree, a missing seed, one seed, a metric without tests, alpha), the split
of systems into main comparison and ablations, and compilation with hostile names."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from polychromic.config import Experiment
from polychromic.evaluation.registry import get_metric
from polychromic.reporting.groups import split_systems
from polychromic.reporting.latex import NO_ABLATION, ablation_table, results_table
from polychromic.reporting.paper import comparison
from polychromic.reporting.significance import Evidence, alpha_of, detect
from polychromic.systems import System
from test_report_helpers import HOSTILE, SEEDS, SYSTEMS, TEMPLATES, build_evaluation, run_aggregate

REF = "polychromic_lora"
EVIL = r"\input{/etc/passwd} ~^#"


def _entry(values: list[float | None], metric: str) -> dict:
    counted = [v for v in values if v is not None]
    return {"mean": float(np.mean(counted)) if counted else None,
            "std": float(np.std(counted, ddof=1)) if len(counted) > 1 else None,
            "values": values, "n_seeds": len(counted),
            "higher_is_better": get_metric(metric).higher_is_better}


def _aggregate(systems: dict[str, dict[str, list]], seeds: list[int],
               ablations: list[str] | None = None) -> dict:
    ablations = ablations or []
    metrics: list[str] = []
    for block in systems.values():
        metrics += [m for m in block if m not in metrics]
    return {"systems": {s: {m: _entry(v, m) for m, v in b.items()} for s, b in systems.items()},
            "seeds": seeds, "system_order": list(systems), "metric_order": metrics,
            "main_systems": [s for s in systems if s not in ablations],
            "ablation_systems": ablations,
            "main_lora_systems": [s for s in ("baseline_lora", REF) if s in systems],
            "reference_system": REF}


def _statistics(seeds: list[int], tests: dict[tuple[str, str], list], alpha=None) -> list:
    """Per-seed documents; tests[(metric, other)] = [(p_holm, ref - other) or None per seed]."""
    docs = []
    for i, seed in enumerate(seeds):
        rows = []
        for (metric, other), per_seed in tests.items():
            if per_seed[i] is None:
                continue
            p_holm, diff = per_seed[i]
            rows.append({"metric": metric, "system": REF, "other": other,
                         "mean_diff": diff, "p_holm": p_holm})
        settings = {"reference_system": REF} | ({"alpha": alpha} if alpha else {})
        docs.append({"seed": seed, "settings": settings, "tests": rows})
    return docs


def _row(table: str, label: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(label))


def _cells(table: str, label: str) -> list[str]:
    return [cell.strip() for cell in _row(table, label).rstrip("\\ ").split("&")[1:]]


SEEDS3 = [1, 2, 3]
THREE = {"baseline_lora": {"rougeL": [0.6, 0.62, 0.61], "self_bleu": [0.8, 0.82, 0.81],
                           "pass@1": [0.5, 0.5, 0.5]},
         "zero_shot": {"rougeL": [0.3, 0.3, 0.3], "self_bleu": [0.7, 0.7, 0.7],
                       "pass@1": [0.3, 0.3, 0.3]},
         REF: {"rougeL": [0.4, 0.45, 0.41], "self_bleu": [0.6, 0.61, 0.62],
               "pass@1": [0.48, 0.5, 0.52]}}


def test_dagger_needs_every_seed_significant_with_one_sign() -> None:
    agg = _aggregate(THREE, SEEDS3)
    stats = _statistics(SEEDS3, {
        ("rougeL", "baseline_lora"): [(0.001, -0.2), (0.01, -0.17), (0.04, -0.2)],  # all
        ("rougeL", "zero_shot"): [(0.001, 0.1), (0.2, 0.15), (0.001, 0.11)],       # one not
        ("self_bleu", "baseline_lora"): [(0.001, -0.2), (0.001, 0.2), (0.001, -0.2)],  # sign
        ("self_bleu", "zero_shot"): [(0.001, -0.1), None, (0.001, -0.08)],         # missing
        ("pass@1", "baseline_lora"): [(0.01, -0.02), (0.01, 0.0), (0.01, 0.02)],   # diff 0
    })
    table = results_table(agg, TEMPLATES, statistics=stats)
    base, zero, ref = _cells(table, "ROUGE-L")
    assert base == r"\textbf{0.610$\pm$0.010}$^{\dagger}$"
    assert r"\dagger" not in zero and r"\dagger" not in ref
    assert all(r"\dagger" not in cell for cell in _cells(table, "Self-BLEU"))
    assert all(r"\dagger" not in cell for cell in _cells(table, "pass@1"))
    assert (r"$^{\dagger}$Differs detectably from \texttt{polychromic\_lora}: Holm-adjusted "
            r"paired permutation $p<0.05$ over the test tweets in each of the 3 seeds") in table
    assert "t$-test" not in table


def test_table_marks_agree_with_the_paper_verdict() -> None:
    """One rule: the paper's sentence says 'detectably' exactly where the table has a dagger."""
    agg = _aggregate(THREE, SEEDS3)
    stats = _statistics(SEEDS3, {
        ("rougeL", "baseline_lora"): [(0.001, -0.2), (0.01, -0.17), (0.04, -0.2)],
        ("self_bleu", "baseline_lora"): [(0.001, -0.2), (0.06, -0.2), (0.001, -0.2)],
    })
    table = results_table(agg, TEMPLATES, statistics=stats)
    evidence = Evidence(agg, stats)
    for metric, label in (("rougeL", "ROUGE-L"), ("self_bleu", "Self-BLEU")):
        sentence = comparison(evidence, metric, REF, "baseline_lora")
        marked = r"\dagger" in _cells(table, label)[0]
        assert marked == (sentence["direction"] in ("better", "worse")), metric
    found = detect(evidence, ["rougeL"], REF, "baseline_lora", "every_seed")[0]
    assert found["detectable"] and found["direction"] == "worse"


def test_untested_metric_and_alpha_from_the_tests() -> None:
    agg = _aggregate(THREE, SEEDS3)
    stats = _statistics(SEEDS3, {("rougeL", "baseline_lora"): [(0.03, -0.2)] * 3}, alpha=0.01)
    assert alpha_of(stats) == 0.01
    table = results_table(agg, TEMPLATES, statistics=stats)
    assert r"\dagger" not in _cells(table, "ROUGE-L")[0]  # 0.03 is not < 0.01
    # pass@1 has no per-tweet test here: it is untested, never marked
    assert all(r"\dagger" not in cell for cell in _cells(table, "pass@1"))
    found = detect(Evidence(agg, stats), ["pass@1"], REF, "zero_shot", "every_seed")[0]
    assert found["detectable"] is None and found["direction"] == "untested"
    assert "$p<0.01$" in table and "t$-test" not in table


def test_one_seed_and_no_statistics() -> None:
    one = {s: {m: v[:1] for m, v in block.items()} for s, block in THREE.items()}
    agg = _aggregate(one, [7])
    stats = _statistics([7], {("rougeL", "baseline_lora"): [(0.001, -0.2)]})
    table = results_table(agg, TEMPLATES, statistics=stats)
    assert _cells(table, "ROUGE-L")[0] == r"\textbf{0.600$\pm$--}$^{\dagger}$"
    assert "in the single seed" in table and "single seed (7)" in table
    bare = results_table(agg, TEMPLATES)
    assert r"\dagger" not in bare and "Differs detectably" not in bare


def test_dagger_and_fewer_seeds_share_one_superscript() -> None:
    systems = {"baseline_lora": {"rougeL": [0.6, None, 0.62]}, REF: {"rougeL": [0.4, 0.4, 0.4]}}
    agg = _aggregate(systems, SEEDS3)
    stats = _statistics(SEEDS3, {("rougeL", "baseline_lora"): [(0.001, -0.2)] * 3})
    cell = _cells(results_table(agg, TEMPLATES, statistics=stats), "ROUGE-L")[0]
    assert cell.endswith(r"$^{\dagger\S}$")


@pytest.mark.parametrize("systems,reference,ablation", [
    # the default study: nothing is an ablation
    ({"zero_shot": None, "few_shot": None, "baseline_lora": "baseline",
      "polychromic_lora": "polychromic"}, "polychromic_lora", []),
    # a lambda sweep: the second polychromic system is an ablation
    ({"zero_shot": None, "baseline_lora": "baseline", "polychromic_lora": "polychromic",
      "polychromic_l3_lora": "polychromic_l3"}, "polychromic_lora", ["polychromic_l3_lora"]),
    # the reference counts even when a sibling comes first in config order
    ({"polychromic_l3_lora": "polychromic_l3", "baseline_lora": "baseline",
      "polychromic_lora": "polychromic", "baseline_t07_lora": "baseline_t07"},
     "polychromic_lora", ["polychromic_l3_lora", "baseline_t07_lora"]),
    # without a LoRA reference: the first system of each objective is main
    ({"zero_shot": None, "baseline_lora": "baseline", "b2": "baseline_t07"}, "zero_shot",
     ["b2"]),
])
def test_split_systems(systems: dict, reference: str, ablation: list) -> None:
    experiments = {"baseline": {"objective": "sft"}, "baseline_t07": {"objective": "sft"},
                   "polychromic": {"objective": "polychromic"},
                   "polychromic_l3": {"objective": "polychromic", "lambda": 3.0}}
    config = {name: ({"prompt": "lora", "experiment": e} if e else {"prompt": "zero_shot"})
              for name, e in systems.items()}
    groups = split_systems({name: System.from_config(name, values)
                            for name, values in config.items()},
                           {name: Experiment.from_config(name, values)
                            for name, values in experiments.items()}, reference)
    assert groups["ablation"] == ablation
    assert groups["main"] == [s for s in systems if s not in ablation]
    assert set(groups["main_lora"]) == {s for s in groups["main"] if systems[s]}


def test_ablation_table_without_and_with_ablations() -> None:
    assert ablation_table(_aggregate(THREE, SEEDS3), TEMPLATES) == NO_ABLATION
    assert all(line.startswith("%") for line in NO_ABLATION.splitlines())
    systems = dict(THREE) | {EVIL: {"rougeL": [0.5, 0.5, 0.5], "self_bleu": [0.5, 0.5, 0.5],
                                    "pass@1": [0.9, 0.9, 0.9]}}
    agg = _aggregate(systems, SEEDS3, ablations=[EVIL])
    stats = _statistics(SEEDS3, {("pass@1", EVIL): [(0.001, -0.4)] * 3})
    table = ablation_table(agg, TEMPLATES, stats)
    # transposed: one row per system, one column per headline metric present
    assert _cells(table, "System") == ["pass@1 $\\uparrow$", "Self-BLEU $\\downarrow$",
                                       "ROUGE-L $\\uparrow$"]
    evil = r"\textbackslash{}input\{/etc/passwd\} \textasciitilde{}\textasciicircum{}\#"
    rows = [line.split("&")[0].strip() for line in table.splitlines() if " & " in line][1:]
    assert rows == ["baseline\\_lora", "polychromic\\_lora", evil]
    assert r"\label{tab:ablation}" in table and r"\input{/etc" not in table
    assert "Ablations: the LoRA systems beyond the main comparison" in table
    assert _cells(table, evil)[0] == r"\textbf{0.900$\pm$0.000}$^{\dagger}$"
    assert _cells(table, "polychromic\\_lora")[0] == "0.500$\\pm$0.020"
    main = results_table(agg, TEMPLATES, statistics=stats)
    assert "passwd" not in main and r"\label{tab:results}" in main


def test_aggregate_writes_groups_experiments_and_ablation_table(tmp_path: Path) -> None:
    dirs = build_evaluation(tmp_path / "evaluation")
    systems_config = {s: {"prompt": "zero_shot"} for s in SYSTEMS[:2]}
    systems_config |= {"baseline_lora": {"prompt": "lora", "experiment": "baseline"},
                       REF: {"prompt": "lora", "experiment": "polychromic"},
                       HOSTILE: {"prompt": "lora", "experiment": "poly & 3"}}
    experiments = {"baseline": {"objective": "sft"}, "polychromic": {"objective": "polychromic"},
                   "poly & 3": {"objective": "polychromic"}}
    runs = {}
    for experiment in experiments:
        runs[experiment] = {}
        for seed in SEEDS[:2]:  # the third seed's run.json is missing: null, not an error
            path = tmp_path / "models" / experiment / f"seed_{seed}" / "run.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"objective": experiments[experiment]["objective"],
                                        "best_val_loss": 0.3 + seed / 1000, "best_step": 50,
                                        "steps_run": 150, "wall_seconds": 10.0 + seed,
                                        "saved_step": 0 if experiment == "polychromic" else 50,
                                        "adapter_is_initial": experiment == "polychromic"}))
            runs[experiment][seed] = str(path)
    out = tmp_path / "out"
    result = run_aggregate(dirs, out, systems_config=systems_config, experiments=experiments,
                           runs=runs, ablation_table=True)
    assert result["ablation_systems"] == [HOSTILE]
    assert result["main_systems"] == SYSTEMS[:-1]
    assert result["main_lora_systems"] == ["baseline_lora", REF]
    loss = result["experiments"]["poly & 3"]["best_val_loss"]
    assert loss["values"][:2] == pytest.approx([0.342, 0.423]) and loss["values"][2] is None
    assert loss["n_seeds"] == 2
    assert loss["mean"] == pytest.approx(0.3825) and loss["higher_is_better"] is False
    assert result["experiments"]["baseline"]["systems"] == ["baseline_lora"]
    assert "wall_seconds" not in result["experiments"]["baseline"]  # not reproducible
    assert result["experiments"]["polychromic"]["initial_adapter_seeds"] == SEEDS[:2]
    assert result["experiments"]["baseline"]["initial_adapter_seeds"] == []
    assert result["experiments"]["baseline"]["saved_step"]["mean"] == 50
    main = (out / "results_table.tex").read_text(encoding="utf-8")
    ablations = (out / "ablation_table.tex").read_text(encoding="utf-8")
    assert r"a\_b \& c\%" not in main and r"a\_b \& c\%" in ablations
    written = (out / "aggregated_results.json").read_text(encoding="utf-8")
    assert json.loads(written) == result


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not on PATH: the tables were not compiled "
                    "(Debian: texlive-latex-recommended)")
def test_tables_with_marks_and_hostile_names_compile(tmp_path: Path) -> None:
    systems = dict(THREE) | {EVIL: {"rougeL": [0.5, None, 0.5], "self_bleu": [0.5, 0.5, 0.5],
                                    "pass@1": [0.9, 0.9, 0.9]},
                             "a_b & c%": {"rougeL": [None] * 3, "self_bleu": [0.1, 0.1, 0.1],
                                          "pass@1": [0.1, 0.2, 0.3]}}
    agg = _aggregate(systems, SEEDS3, ablations=[EVIL, "a_b & c%"])
    stats = _statistics(SEEDS3, {("pass@1", EVIL): [(0.001, -0.4)] * 3,
                                 ("rougeL", EVIL): [(0.001, -0.1)] * 3,
                                 ("rougeL", "baseline_lora"): [(0.001, -0.2)] * 3})
    (tmp_path / "main.tex").write_text(results_table(agg, TEMPLATES, statistics=stats))
    (tmp_path / "ablation.tex").write_text(ablation_table(agg, TEMPLATES, stats))
    (tmp_path / "none.tex").write_text(NO_ABLATION)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
        "\\input{main}\n\\input{ablation}\n\\input{none}\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-no-shell-escape", "-interaction=nonstopmode",
                           "-halt-on-error", "doc.tex"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "root:" not in log and "(/etc/passwd" not in log  # never read as a file
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
