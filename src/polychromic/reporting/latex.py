"""LaTeX output: escaping, a LaTeX-safe jinja2 environment and the results table.

Every string that reaches a `.tex` file comes from data (system names, config values), so it is
escaped by default: the jinja2 environment built here runs `escape_latex` on every `\\VAR{...}`
output (its `finalize` hook) unless the value was deliberately marked as LaTeX with `Latex(...)`.
A system called `\\input{/etc/passwd}` is printed, never executed. The delimiters are LaTeX-safe
(`\\BLOCK{...}`, `\\VAR{...}`, `\\#{...}`), so templates stay valid-looking LaTeX and jinja2's
defaults (`{%`, `{{`, `{#`, `#` line statements) cannot be triggered by TeX code.

The results table: booktabs, one column per system, one row per metric shown in "table" (the
metric registry's `shown_in`), `mean$\\pm$std` over seeds, best value per metric in bold in the
metric's direction (from the registry), caption naming the seeds. A dagger marks a cell whose
system differs detectably from the reference system by the study's one rule, the primary rule
of `polychromic.reporting.significance`, as the aggregate's `comparisons` record it (the
verdict's cells as the verdict decided them, the others in one Holm family of the tables): the
paper's sentences read the same records. The same template renders the ablation table
(`ablation_table`), transposed (one row per system, one column per headline metric, since a sweep
has more systems than a page has columns): the LoRA systems beyond the main comparison next to
the main LoRA systems.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import jinja2

from polychromic.evaluation.registry import direction, label, main_passk, shown_in

_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Not special in the strict sense, but wrong or fragile in text mode / after `\\`:
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "[": "{[}",
    "]": "{]}",
}
_TRANSLATION = str.maketrans(_SPECIALS)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

TABLE_TEMPLATE = "results_table.tex.j2"
DECIMALS = 3


class Latex(str):
    """A string that already is LaTeX: the environment's finalize hook leaves it as it is."""


def escape_latex(text: str) -> str:
    """Escape `text` for LaTeX text mode: all ten specials (& % $ # _ { } ~ ^ \\) and more.

    One pass over the characters (`str.translate`), so the braces produced for a backslash are
    never escaped a second time. Control characters (newlines included) become one space.
    """
    return _CONTROL.sub(" ", str(text)).translate(_TRANSLATION)


def _finalize(value: Any) -> Any:
    """Applied to every `\\VAR{...}` output: escape text, keep numbers and `Latex`, show a
    missing value (None) visibly as '--'."""
    if value is None:
        return Latex("--")
    if isinstance(value, Latex):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    return escape_latex(str(value))


def make_environment(templates_dir: str) -> jinja2.Environment:
    """A jinja2 environment for LaTeX: LaTeX-safe delimiters, every printed value escaped."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix=None,
        line_comment_prefix=None,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
    )
    environment.filters["tex"] = escape_latex
    environment.filters["num"] = format_number
    environment.filters["signed"] = format_signed
    return environment


def format_number(value: float | None, decimals: int = DECIMALS) -> Latex:
    """A number for a LaTeX document: fixed decimals, `n/a` when missing or not finite."""
    if value is None or not math.isfinite(float(value)):
        return Latex("n/a")
    return Latex(f"{float(value):.{decimals}f}")


def format_signed(value: float | None) -> Latex:
    """A difference for a LaTeX document: its sign and three decimals, in math mode."""
    if value is None or not math.isfinite(value):
        return Latex("n/a")
    return Latex(f"${value:+.3f}$")


def default_metrics(aggregated: dict[str, Any]) -> list[str]:
    """The metrics of the main table (registry place "table") present in the aggregate."""
    return shown_in("table", _metrics_present(aggregated))


def _metrics_present(aggregated: dict[str, Any]) -> list[str]:
    names = list(aggregated.get("metric_order") or [])
    for metrics in aggregated["systems"].values():
        names += [name for name in metrics if name not in names]
    return names


def _display_value(entry: dict[str, Any] | None) -> float | None:
    """The mean as shown (rounded), so ties are judged on what the reader sees."""
    if not entry or entry.get("mean") is None or not math.isfinite(entry["mean"]):
        return None
    return round(float(entry["mean"]), DECIMALS)


def best_systems(
    aggregated: dict[str, Any], metric: str, systems: Sequence[str]
) -> set[str]:
    """Systems holding the best shown mean of `metric` (all of them when tied); none when the
    direction is unknown or no system has a value."""
    higher = _higher_is_better(aggregated, metric)
    shown = {
        system: _display_value(aggregated["systems"].get(system, {}).get(metric))
        for system in systems
    }
    values = [value for value in shown.values() if value is not None]
    if higher is None or not values:
        return set()
    best = max(values) if higher else min(values)
    return {system for system, value in shown.items() if value == best}


def _higher_is_better(aggregated: dict[str, Any], metric: str) -> bool | None:
    for metrics in aggregated["systems"].values():
        if metric in metrics and metrics[metric].get("higher_is_better") is not None:
            return bool(metrics[metric]["higher_is_better"])
    return direction(metric)


def _cell(entry: dict[str, Any] | None, bold: bool, n_total: int,
          marked: bool) -> dict[str, Any]:
    """One table cell as parts the template joins: mean, std (or '--'), bold, fewer seeds,
    significance mark."""
    mean = None if entry is None else entry.get("mean")
    std = None if entry is None else entry.get("std")
    n_seeds = 0 if entry is None else int(entry.get("n_seeds") or 0)
    return {
        "mean": format_number(mean),
        "has_mean": mean is not None and math.isfinite(mean),
        "std": format_number(std) if std is not None else Latex("--"),
        "bold": bold,
        "fewer_seeds": 0 < n_seeds < n_total,
        "marked": marked,
    }


def table_metrics(aggregated: dict[str, Any]) -> list[str]:
    """Every metric a table or the paper's sentences compare: the main table's, the ablation
    table's, the headline pass@k and the paper's (registry places)."""
    present = _metrics_present(aggregated)
    return list(dict.fromkeys([*default_metrics(aggregated), *ablation_metrics(aggregated),
                               *filter(None, [main_passk(present)]),
                               *shown_in("paper", present)]))


def comparison_of(aggregated: dict[str, Any], metric: str, reference: str,
                  other: str) -> dict[str, Any] | None:
    """The aggregate's record (`comparisons`) of `reference` against `other` on `metric`."""
    for row in aggregated.get("comparisons") or []:
        if (row["metric"], row["system"], row["other"]) == (metric, reference, other):
            return row
    return None


def significance_marks(aggregated: dict[str, Any], metric: str, systems: Sequence[str],
                       reference: str | None) -> dict[str, bool]:
    """{system: True} for the systems that differ detectably from `reference` on `metric` by
    the primary rule (the aggregate's `comparisons`); False for the others."""
    marks = {system: False for system in systems}
    if reference is None:
        return marks
    for system in systems:
        found = comparison_of(aggregated, metric, reference, system)
        marks[system] = bool(found and found.get("detectable"))
    return marks


def _rows(aggregated: dict[str, Any], metrics: list[str], systems: list[str],
          reference: str | None) -> list[dict]:
    n_total = len(aggregated.get("seeds") or [])
    rows = []
    for metric in metrics:
        best = best_systems(aggregated, metric, systems)
        marks = significance_marks(aggregated, metric, systems, reference)
        cells = [
            _cell(aggregated["systems"].get(system, {}).get(metric), system in best, n_total,
                  marks[system])
            for system in systems
        ]
        rows.append({"label": label(metric), "higher": _higher_is_better(aggregated, metric),
                     "cells": cells})
    return rows


def results_table(
    aggregated: dict[str, Any], templates_dir: str, metrics: list[str] | None = None,
    systems: Sequence[str] | None = None, kind: str = "main",
) -> str:
    """Render a booktabs table: kind 'main' has one column per system and one row per metric,
    kind 'ablation' one row per system and one column per metric.

    `systems` defaults to the aggregate's `main_systems` (all systems when it has none); the
    marks come from the aggregate's `comparisons` (none without them);
    `kind` is 'main' (label tab:results) or 'ablation' (label tab:ablation).
    """
    if kind not in ("main", "ablation"):
        raise ValueError(f"kind must be 'main' or 'ablation', not {kind!r}")
    if systems is None:
        systems = aggregated.get("main_systems") or aggregated.get("system_order") or list(
            aggregated["systems"])
    systems = list(systems)
    metrics = default_metrics(aggregated) if metrics is None else list(metrics)
    reference = aggregated.get("reference_system")
    rows = _rows(aggregated, metrics, systems, reference)
    seeds = [int(seed) for seed in aggregated.get("seeds") or []]
    template = make_environment(templates_dir).get_template(TABLE_TEMPLATE)
    if kind == "ablation":  # transposed: one row per system, one column per metric
        header = [{"label": row["label"], "higher": row["higher"]} for row in rows]
        body = [{"label": system, "higher": None, "cells": [row["cells"][j] for row in rows]}
                for j, system in enumerate(systems)]
    else:
        header = [{"label": system, "higher": None} for system in systems]
        body = rows
    return template.render(
        kind=kind,
        systems=systems,
        header=header,
        rows=body,
        corner="System" if kind == "ablation" else "Metric",
        seeds=seeds,
        column_spec=Latex("l" + "c" * len(header)),
        any_fewer=any(cell["fewer_seeds"] for row in rows for cell in row["cells"]),
        # the rule is stated whenever tests were made, so "no dagger" means something
        reference=reference if aggregated.get("comparisons") is not None else None,
        alpha=Latex(f"{(aggregated.get('verdict') or {}).get('alpha', 0.05):g}"),
        table_family=sum(row.get("family") == "table" for row in
                         aggregated.get("comparisons") or []),
        anchors=[system for system in systems
                 if system not in (aggregated.get("ablation_systems") or [])],
    )


NO_ABLATION = (
    "%% Generated by polychromic.reporting.latex -- do not edit by hand.\n"
    "%% No ablation in this study: every LoRA system in config.yaml belongs to the main\n"
    "%% comparison (results_table.tex). An ablation is a LoRA system beyond the first system of\n"
    "%% each training objective (and the reference system), e.g. a second polychromic\n"
    "%% experiment with another lambda. This file is always written so that the workflow's\n"
    "%% outputs do not depend on the config; it holds a table only when ablations exist.\n"
)


def ablation_metrics(aggregated: dict[str, Any]) -> list[str]:
    """The ablation table's columns (registry place "ablation") present in the aggregate."""
    return shown_in("ablation", _metrics_present(aggregated))


def ablation_table(aggregated: dict[str, Any], templates_dir: str,
                   metrics: list[str] | None = None) -> str:
    """The ablation systems next to the main LoRA systems, one row per system and one column
    per metric of `ablation_metrics` (a sweep has more systems than a page has columns), or a
    LaTeX comment saying that the study has no ablation (`NO_ABLATION`)."""
    ablations = list(aggregated.get("ablation_systems") or [])
    if not ablations:
        return NO_ABLATION
    anchors = [system for system in aggregated.get("main_lora_systems") or []
               if system not in ablations]
    metrics = ablation_metrics(aggregated) if metrics is None else metrics
    return results_table(aggregated, templates_dir, metrics, systems=anchors + ablations,
                         kind="ablation")
