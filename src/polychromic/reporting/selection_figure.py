"""The validation frontier: where every system's sampling was chosen, and how close it came.

With the validation protocol (`polychromic.evaluation.selection`) each system is sampled on the
validation tweets at generation's settings and at every temperature its search tries, and takes the
candidate whose validation pass@1 is closest to the baseline's. This figure draws what that choice
saw: per system, validation pass@1 against validation pass@k (the largest k up to the selection's
`num_samples`) for each candidate, joined in temperature order (candidates that also set min-p /
top-p / top-k dashed), the chosen candidate ringed, and the target pass@1 as a vertical line with
the equivalence margin as a grey band. A ring outside the band cannot be shown equivalent to the
baseline (a ring inside may still fail the equivalence test of `evaluation.equivalence`, whose
interval `selection.json` records): the verdict then calls the comparison inconclusive, and this
figure shows the curve it was read from. Every number comes from `aggregated["selection"]`
(selection.json); nothing here reads the test split.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from polychromic.evaluation.registry import parse_passk
from polychromic.systems import parse_system


def plain(name: str) -> str:
    """A system's name as every figure writes it (as configured; `$` escaped for mathtext)."""
    return str(name).replace("$", r"\$")


def curve_metric(selection: dict[str, Any]) -> str | None:
    """The pass@k of the y axis: the largest k (> 1) recorded for every candidate."""
    entries = [candidate for system in selection.get("systems", {}).values()
               for candidate in system.get("candidates", {}).values()]
    common = set.intersection(*(set(entry) for entry in entries)) if entries else set()
    ks = [k for k in (parse_passk(key) for key in common) if k is not None and k > 1]
    return f"pass@{max(ks)}" if ks else None


def selection_points(selection: dict[str, Any], metric: str,
                     default_temperature: float) -> dict[str, list[dict[str, Any]]]:
    """{system: [{candidate, x (val pass@1), y (val metric), temperature, dashed, chosen}]}
    in temperature order; `dashed` marks candidates setting more than temperature."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for system, entry in selection.get("systems", {}).items():
        points = []
        for candidate, values in entry.get("candidates", {}).items():
            overrides = parse_system(candidate).overrides
            others = {k: v for k, v in overrides.items().items() if k != "temperature"}
            temperature = overrides.temperature or default_temperature
            points.append({"candidate": candidate, "x": values["pass@1"], "y": values[metric],
                           "temperature": temperature, "dashed": bool(others),
                           "chosen": candidate == entry.get("chosen")})
        curves[system] = sorted(points, key=lambda p: (p["dashed"], p["temperature"]))
    return curves


def validation_frontier_figure(aggregated: dict[str, Any], palette: dict[str, tuple],
                               default_temperature: float | None, width: float,
                               figure: Figure) -> Figure:
    """Draw the validation frontier (module docstring) on `figure`; a note when the aggregate
    has no selection (the protocol is off) or no pass@k beyond pass@1 was recorded."""
    ax = figure.subplots()
    selection = aggregated.get("selection") or {}
    metric = curve_metric(selection) if selection else None
    if metric is None:
        ax.text(0.5, 0.5, "no validation selection in the aggregate" if not selection
                else "the selection recorded no pass@k beyond pass@1", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    target, tolerance = selection["target_pass@1"], selection.get("match_tolerance")
    if tolerance is not None:
        ax.axvspan(target - tolerance, target + tolerance, color="0.9", zorder=0,
                   label=f"equivalence margin (±{tolerance:g})")
    ax.axvline(target, color="0.4", linewidth=0.7, linestyle=":", zorder=1,
               label=f"target: {plain(selection['target_system'])} at default sampling")
    for system, points in selection_points(selection, metric, default_temperature or 1.0).items():
        colour = palette.get(system, (0.3, 0.3, 0.3))
        for dashed in (False, True):
            line = [p for p in points if p["dashed"] == dashed]
            if len(line) > 1:
                ax.plot([p["x"] for p in line], [p["y"] for p in line], color=colour,
                        linewidth=0.7, alpha=0.7, linestyle="--" if dashed else "-")
        ax.plot([p["x"] for p in points], [p["y"] for p in points], color=colour, marker="o",
                ms=2.5, linestyle="none", label=plain(system))
        for point in points:
            if point["chosen"]:
                ax.plot(point["x"], point["y"], marker="o", ms=7, markerfacecolor="none",
                        markeredgecolor=colour, markeredgewidth=1.0, linestyle="none")
    ax.plot([], [], marker="o", ms=7, markerfacecolor="none", markeredgecolor="0.3",
            linestyle="none", label="chosen sampling")
    ax.set_xlabel("validation pass@1")
    ax.set_ylabel(f"validation {metric}")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              handletextpad=0.3, columnspacing=1.0)
    figure.set_size_inches(width, 3.6)
    figure.tight_layout()
    return figure
