"""LaTeX escaping and the results table: specials, injection, ties, nulls, one seed, hostile
names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import numpy as np
import pytest

from polychromic.evaluation.registry import get_metric
from polychromic.reporting.latex import (
    Latex,
    ablation_table,
    best_systems,
    default_metrics,
    escape_latex,
    make_environment,
    results_table,
)
from test_report_helpers import HOSTILE, TEMPLATES

SPECIALS = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
}


@pytest.mark.parametrize("char", sorted(SPECIALS))
def test_each_special_is_escaped(char: str) -> None:
    assert escape_latex(f"a{char}b") == f"a{SPECIALS[char]}b"


def test_all_specials_at_once_single_pass() -> None:
    text = "".join(SPECIALS)
    assert escape_latex(text) == "".join(SPECIALS.values())
    # the braces produced for the backslash are not escaped a second time
    assert escape_latex("\\{") == r"\textbackslash{}\{"


def test_input_command_cannot_execute() -> None:
    out = escape_latex(r"\input{/etc/passwd}")
    assert out == r"\textbackslash{}input\{/etc/passwd\}"
    assert not re.search(r"(?<!textbackslash{})\\input", out)
    assert r"\input{" not in out


def test_control_characters_and_brackets() -> None:
    assert escape_latex("a\nb\tc") == "a b c"
    assert escape_latex("[x]") == "{[}x{]}"


def _entry(values: list[float | None], higher: bool = True) -> dict:
    counted = [v for v in values if v is not None]
    return {"mean": float(np.mean(counted)) if counted else None,
            "std": float(np.std(counted, ddof=1)) if len(counted) > 1 else None,
            "values": values, "n_seeds": len(counted), "higher_is_better": higher}


def _aggregate(systems: dict[str, dict[str, list]], seeds: list[int]) -> dict:
    metrics: list[str] = []
    for block in systems.values():
        metrics += [m for m in block if m not in metrics]
    return {"systems": {s: {m: _entry(v, get_metric(m).higher_is_better) for m, v in b.items()}
                        for s, b in systems.items()},
            "seeds": seeds, "system_order": list(systems), "metric_order": metrics}


def _row(table: str, label: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(label))


def test_table_bolds_ties_and_direction() -> None:
    agg = _aggregate({
        "x": {"rougeL": [0.5, 0.5], "self_bleu": [0.3, 0.3]},
        "y": {"rougeL": [0.5, 0.5], "self_bleu": [0.2, 0.2]},
        "z": {"rougeL": [0.1, 0.1], "self_bleu": [0.9, 0.9]},
    }, [1, 2])
    table = results_table(agg, TEMPLATES)
    rouge = _row(table, "ROUGE-L")
    assert rouge.count(r"\textbf{") == 2
    assert r"\textbf{0.500$\pm$0.000}" in rouge and r"\textbf{0.100" not in rouge
    bleu = _row(table, "Self-BLEU")  # lower is better: 0.2 wins
    assert bleu.count(r"\textbf{") == 1 and r"\textbf{0.200$\pm$0.000}" in bleu
    assert best_systems(agg, "self_bleu", ["x", "y", "z"]) == {"y"}


def test_table_one_seed_null_and_hostile_names() -> None:
    agg = _aggregate({
        HOSTILE: {"rougeL": [0.4]},
        r"\input{/etc/passwd}": {"rougeL": [None]},
    }, [42])
    table = results_table(agg, TEMPLATES)
    header = _row(table, "Metric")
    assert r"a\_b \& c\%" in header
    assert r"\textbackslash{}input\{/etc/passwd\}" in header
    assert r"\input{/etc" not in table
    row = _row(table, "ROUGE-L")
    assert r"\textbf{0.400$\pm$--}" in row  # one seed: no spread
    assert "n/a" in row  # null mean
    assert "single seed (42)" in table
    assert "None" not in table and "nan" not in table.lower()


def test_table_nan_mean_is_not_a_number_and_not_bold() -> None:
    agg = _aggregate({"x": {"rougeL": [0.4, 0.5]}, "y": {"rougeL": [0.1, 0.2]}}, [1, 2])
    agg["systems"]["x"]["rougeL"]["mean"] = float("nan")
    row = _row(results_table(agg, TEMPLATES), "ROUGE-L")
    assert "n/a" in row and r"\textbf{0.150" in row


def test_table_fewer_seeds_marked_and_caption_names_seeds() -> None:
    agg = _aggregate({"x": {"rougeL": [0.4, None, 0.6]}, "y": {"rougeL": [0.1, 0.2, 0.3]}},
                     [42, 123, 456])
    table = results_table(agg, TEMPLATES)
    assert r"$^{\S}$" in _row(table, "ROUGE-L") and r"\dagger" not in table
    assert r"$^{\S}$Fewer seeds" in table
    assert "42, 123, 456" in table and "standard deviation" in table


def test_default_metrics_order_and_skip_missing() -> None:
    agg = _aggregate({"x": {"self_bleu": [1.0], "pass@5": [0.1], "rougeL": [0.3],
                            "pass@1": [0.1], "distinct_1": [0.2]}}, [1])
    assert default_metrics(agg) == ["pass@1", "pass@5", "self_bleu", "rougeL"]  # registry order


def test_environment_escapes_every_value_unless_marked(tmp_path: Path) -> None:
    (tmp_path / "t.tex.j2").write_text(r"\VAR{a} \VAR{b} \VAR{c} {% x %} {{ y }}",
                                       encoding="utf-8")
    env = make_environment(str(tmp_path))
    out = env.get_template("t.tex.j2").render(a="50% & $x$", b=Latex(r"\textbf{ok}"), c=None)
    assert out == r"50\% \& \$x\$ \textbf{ok} -- {% x %} {{ y }}"
    (tmp_path / "u.tex.j2").write_text(r"\VAR{missing}", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("u.tex.j2").render()


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not on PATH (Debian: texlive-latex-recommended)")
def test_table_compiles(tmp_path: Path) -> None:
    agg = _aggregate({
        HOSTILE: {"rougeL": [0.4, 0.5], "self_bleu": [0.3, None], "pass@1": [0.2, 0.2]},
        r"\input{/etc/passwd} ~^#": {"rougeL": [0.4, 0.5], "self_bleu": [None, None],
                                       "pass@1": [0.1, 0.3]},
    }, [1, 2])
    (tmp_path / "table.tex").write_text(results_table(agg, TEMPLATES), encoding="utf-8")
    _compile_table(tmp_path)
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    assert "root:" not in (tmp_path / "doc.log").read_text(errors="replace")


def _compile_table(folder: Path) -> None:
    """pdflatex a one-page document that inputs `folder`/table.tex (shell escape off)."""
    (folder / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
        "\\begin{document}\n\\input{table}\n\\end{document}\n", encoding="utf-8")
    done = subprocess.run(["pdflatex", "-no-shell-escape", "-interaction=nonstopmode",
                           "-halt-on-error", "doc.tex"], cwd=folder, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def test_variant_names_print_as_they_are() -> None:
    """A sampling variant's `@` and `.` are plain text in LaTeX: only the `_` is escaped, in
    the ablation table (where variants go) as in the main table."""
    agg = _aggregate({"baseline_lora": {"rougeL": [0.5, 0.5]},
                      "baseline_lora@t1.6m0.1": {"rougeL": [0.4, 0.4]},
                      "baseline_lora@t1.3p1.0k20": {"rougeL": [0.3, 0.3]}}, [1, 2])
    agg.update(main_lora_systems=["baseline_lora"],
               ablation_systems=["baseline_lora@t1.6m0.1", "baseline_lora@t1.3p1.0k20"])
    table = ablation_table(agg, TEMPLATES, metrics=["rougeL"])
    assert _row(table, r"baseline\_lora@t1.6m0.1").count("0.400") == 1
    assert r"baseline\_lora@t1.3p1.0k20 " in table
    assert escape_latex("baseline_lora@t1.6m0.1") == r"baseline\_lora@t1.6m0.1"


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not on PATH (Debian: texlive-latex-recommended)")
def test_ablation_table_of_variants_compiles(tmp_path: Path) -> None:
    names = ["baseline_lora", "baseline_lora@t1.6m0.1", "baseline_lora@t1.3p0.95k20m0.05"]
    agg = _aggregate({name: {"rougeL": [0.4, 0.5], "pass@1": [0.2, 0.3]} for name in names},
                     [1, 2])
    agg.update(main_lora_systems=names[:1], ablation_systems=names[1:])
    (tmp_path / "table.tex").write_text(ablation_table(agg, TEMPLATES), encoding="utf-8")
    _compile_table(tmp_path)
    assert "Missing character" not in (tmp_path / "doc.log").read_text(errors="replace")
