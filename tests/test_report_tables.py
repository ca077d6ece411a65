"""Significance marks and the ablation table: the daggers read the aggregate's `comparisons`
(the primary rule: the verdict's cells from the verdict, the others in one Holm family), the
paper's sentences read the same records, the split of systems into main comparison and
ablations, and compilation with hostile names."""

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
from polychromic.reporting.significance import Evidence, table_family
from polychromic.settings import section
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


def _comparisons(marks: dict[tuple[str, str], bool | None]) -> list[dict]:
    """Records of the aggregate's `comparisons`: marks[(metric, other)] = detectable (None:
    not tested), reference minus other, all in the tables' family."""
    return [{"metric": metric, "system": REF, "other": other, "diff": -0.1, "ci_low": -0.2,
             "ci_high": 0.0, "p": 0.01, "p_holm": None if detectable is None else 0.01,
             "detectable": detectable,
             "direction": "untested" if detectable is None else
             ("worse" if detectable else "none"),
             "family": "table", "family_size": len(marks)}
            for (metric, other), detectable in marks.items()]


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


def test_daggers_are_the_comparisons_records() -> None:
    agg = _aggregate(THREE, SEEDS3) | {"comparisons": _comparisons({
        ("rougeL", "baseline_lora"): True, ("rougeL", "zero_shot"): False,
        ("self_bleu", "baseline_lora"): None})}
    table = results_table(agg, TEMPLATES)
    base, zero, ref = _cells(table, "ROUGE-L")
    assert base == r"\textbf{0.610$\pm$0.010}$^{\dagger}$"
    assert r"\dagger" not in zero and r"\dagger" not in ref
    assert all(r"\dagger" not in cell for cell in _cells(table, "Self-BLEU"))
    assert all(r"\dagger" not in cell for cell in _cells(table, "pass@1"))
    assert (r"$^{\dagger}$Differs detectably from \texttt{polychromic\_lora} by the primary "
            "rule") in table
    assert "every other cell within one family of 3 comparisons" in table


def seed_documents(values: dict[str, dict[str, list[list[float]]]]) -> list[dict]:
    """Per seed {group: document} from values[system][metric] = seeds x tweets."""
    first = next(iter(values.values()))
    seeds, tweets = np.array(next(iter(first.values()))).shape
    docs = []
    for s in range(seeds):
        by_group: dict[str, dict] = {}
        for system, metrics in values.items():
            for metric, table in metrics.items():
                group = get_metric(metric).group
                doc = by_group.setdefault(group, {"seed": SEEDS3[s], "systems": {},
                                                  "prompt_ids": [f"t{i}" for i in range(tweets)]})
                doc["systems"].setdefault(system, {})[metric] = {"per_prompt": list(table[s])}
        docs.append(by_group)
    return docs


def test_the_table_family_takes_the_verdicts_cells_and_holms_the_rest() -> None:
    """ROUGE-L and Self-BLEU against two systems, pass@1 against the baseline from the
    verdict: the verdict's record is copied (its p_holm, its family), the four others form
    one Holm family of their own, and the paper's sentences read the same records."""
    rng = np.random.default_rng(0)
    shared = rng.uniform(0.2, 0.8, (3, 30))
    values = {REF: {"rougeL": shared - 0.1, "self_bleu": shared, "pass@1": shared},
              "baseline_lora": {"rougeL": shared, "self_bleu": shared + rng.normal(0, .3, (3, 30)),
                                "pass@1": shared},
              "zero_shot": {"rougeL": shared - 0.1 + rng.normal(0, 0.01, (3, 30)),
                            "self_bleu": shared, "pass@1": shared - 0.2}}
    agg = _aggregate({s: {m: v.mean(axis=1).tolist() for m, v in b.items()}
                      for s, b in values.items()}, SEEDS3)
    evidence = Evidence(agg, [], seed_documents(values),
                        section("evaluation", {"bootstrap_samples": 200,
                                               "permutation_samples": 200}))
    verdict = {"available": True, "reference": REF, "matched": "baseline_lora", "family": 3,
               "rows": [{"metric": "pass@1", "diff": 0.0, "ci_low": -0.01, "ci_high": 0.01,
                         "p": 0.9, "p_holm": 0.97, "detectable": False, "direction": "none",
                         "seed_diffs": [0.0] * 3}]}
    rows = table_family(evidence, ["rougeL", "self_bleu", "pass@1"], REF,
                        ["baseline_lora", "zero_shot"], verdict)
    found = {(r["metric"], r["other"]): r for r in rows}
    assert found[("pass@1", "baseline_lora")]["family"] == "verdict"
    assert found[("pass@1", "baseline_lora")]["p_holm"] == 0.97
    table_rows = [r for r in rows if r["family"] == "table"]
    assert len(table_rows) == 5 and {r["family_size"] for r in table_rows} == {5}
    ps = sorted(r["p"] for r in table_rows)
    assert min(r["p_holm"] for r in table_rows) == pytest.approx(min(1.0, 5 * ps[0]))
    assert found[("rougeL", "baseline_lora")]["detectable"]  # -0.1 on every tweet
    assert found[("pass@1", "zero_shot")]["direction"] == "better"
    agg["comparisons"] = rows
    table = results_table(agg, TEMPLATES)
    for metric, label in (("rougeL", "ROUGE-L"), ("self_bleu", "Self-BLEU")):
        sentence = comparison(agg, metric, REF, "baseline_lora")
        marked = r"\dagger" in _cells(table, label)[1]  # columns: REF, baseline, zero-shot
        assert marked == (sentence["direction"] in ("better", "worse")), metric
        assert sentence["family"] == "table" and sentence["family_size"] == 5


def test_one_seed_and_no_comparisons() -> None:
    one = {s: {m: v[:1] for m, v in block.items()} for s, block in THREE.items()}
    agg = _aggregate(one, [7]) | {"comparisons": _comparisons({("rougeL", "baseline_lora"): True})}
    table = results_table(agg, TEMPLATES)
    assert _cells(table, "ROUGE-L")[0] == r"\textbf{0.600$\pm$--}$^{\dagger}$"
    assert "single seed (7)" in table
    bare = results_table(_aggregate(one, [7]), TEMPLATES)
    assert r"\dagger" not in bare and "Differs detectably" not in bare


def test_dagger_and_fewer_seeds_share_one_superscript() -> None:
    systems = {"baseline_lora": {"rougeL": [0.6, None, 0.62]}, REF: {"rougeL": [0.4, 0.4, 0.4]}}
    agg = _aggregate(systems, SEEDS3) | {
        "comparisons": _comparisons({("rougeL", "baseline_lora"): True})}
    cell = _cells(results_table(agg, TEMPLATES), "ROUGE-L")[0]
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
    agg = _aggregate(systems, SEEDS3, ablations=[EVIL]) | {
        "comparisons": _comparisons({("pass@1", EVIL): True})}
    table = ablation_table(agg, TEMPLATES)
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
    main = results_table(agg, TEMPLATES)
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
    agg = _aggregate(systems, SEEDS3, ablations=[EVIL, "a_b & c%"]) | {
        "comparisons": _comparisons({("pass@1", EVIL): True, ("rougeL", EVIL): True,
                                     ("rougeL", "baseline_lora"): True})}
    (tmp_path / "main.tex").write_text(results_table(agg, TEMPLATES))
    (tmp_path / "ablation.tex").write_text(ablation_table(agg, TEMPLATES))
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
