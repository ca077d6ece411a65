"""Figures of the study: diversity, quality, pass@k curves, the quality-diversity Pareto plot
and the training curves of every experiment.

Sized for one column of a paper (3.5 in wide, 8 pt text) on matplotlib's Agg backend, in
seaborn's whitegrid theme and colour-blind palette. One palette maps each system to a colour and
every figure reuses it, so a system looks the same everywhere. Bars and error bars are drawn from
the aggregate (error bar = its std over seeds, ddof=1, the number the table shows; dots = each
seed). The pass@k curves are recomputed for every k from 1 to n from the per-prompt pass counts
of each seed (the unbiased estimator of Chen et al. 2021, the `pass_at_k` the evaluation uses),
so the curve is complete even where the configured k list is short; error bars are the std over
seeds. The training curves read each run's `training_log.csv` (every experiment and seed): the
cross-entropy per step and the validation loss, and for experiments that log them (polychromic)
the mean set reward and the policy term; thin lines are single seeds, thick lines their mean,
and an experiment takes the colour of the system it serves. Output is deterministic: no dates
or software versions in the PDF/PNG metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from polychromic.contract import FIGURES
from polychromic.evaluation.passk import pass_at_k
from polychromic.evaluation.registry import get_metric, main_passk, parse_passk, shown_in
from polychromic.io import read_json
from polychromic.reporting.selection_figure import validation_frontier_figure
from polychromic.systems import is_variant, parse_system

log = logging.getLogger(__name__)

WIDTH_IN = 3.5
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "pdf.fonttype": 42,
    "svg.hashsalt": "polychromic",
    "savefig.dpi": 300,
}


def plain_text(text: str) -> str:
    """A data string for a matplotlib label: `$` would start mathtext, so escape it."""
    return str(text).replace("$", r"\$")


def system_palette(systems: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """The one system -> colour mapping used by every figure (colour-blind safe)."""
    colours = sns.color_palette("colorblind", n_colors=max(len(systems), 1))
    return {system: tuple(colours[i % len(colours)]) for i, system in enumerate(systems)}


def figure_palette(systems: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """`system_palette` over the systems that are not sampling variants, so adding variants
    never recolours a system; each variant (`<system>@t1.3`, `<system>@t1.6m0.1`) takes its
    system's colour."""
    palette = system_palette([s for s in systems if not is_variant(s)])
    for system in systems:
        base = parse_system(system).base
        if system not in palette:
            palette[system] = palette.get(base, (0.3, 0.3, 0.3))
    return {system: palette[system] for system in systems}


def _axis_label(metric: str) -> str:
    """The registry label with the better direction as an arrow: 'Self-BLEU (↓ better)'."""
    try:
        info = get_metric(metric)
    except KeyError:
        return plain_text(metric)
    return f"{info.label} ({'↑' if info.higher_is_better else '↓'} better)"


def _figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas of its own: no pyplot state, no global backend switch."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_dir: Path, stem: str) -> list[str]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None}, bbox_inches="tight", pad_inches=0.02)
    fig.savefig(paths[1], metadata={"CreationDate": None, "ModDate": None},
                bbox_inches="tight", pad_inches=0.02)
    return [str(path) for path in paths]


def _present(aggregated: dict[str, Any], place: str) -> list[str]:
    """The metrics of the aggregate that the registry shows in `place`."""
    return shown_in(place, aggregated.get("metric_order") or [])


def _shared_legend(fig: Figure, palette: dict[str, tuple], ncol: int = 2) -> None:
    handles = [Line2D([], [], marker="s", linestyle="", color=colour, markersize=5)
               for colour in palette.values()]
    fig.legend(handles, [plain_text(s) for s in palette], loc="lower center", ncol=ncol,
               frameon=False, bbox_to_anchor=(0.5, -0.02), handletextpad=0.3, columnspacing=1.0)


def _bar_panel(ax: Axes, aggregated: dict[str, Any], metric: str,
               palette: dict[str, tuple]) -> None:
    """Bars = mean over seeds, error bars = the aggregate's std (ddof=1, as in the table),
    dots = each seed's value. Plain matplotlib bars: seaborn's barplot would recompute the
    spread itself and costs seconds per panel."""
    order = list(palette)
    entries = [aggregated["systems"][system].get(metric) or {} for system in order]
    means = [np.nan if e.get("mean") is None else e["mean"] for e in entries]
    stds = [np.nan if e.get("std") is None else e["std"] for e in entries]
    x = np.arange(len(order))
    ax.bar(x, np.nan_to_num(means), width=0.75, color=[palette[s] for s in order], zorder=2)
    ax.errorbar(x, means, yerr=stds, fmt="none", ecolor="0.2", elinewidth=0.8, capsize=2.0,
                zorder=3)
    for position, entry in zip(x, entries, strict=True):
        seeds = [v for v in entry.get("values") or [] if v is not None]
        ax.scatter([position] * len(seeds), seeds, s=3, color="0.15", zorder=4, linewidths=0)
    ax.set_xticks(x, [""] * len(order))
    ax.grid(axis="x", visible=False)
    ax.set_title(_axis_label(metric))


def metric_panels(aggregated: dict[str, Any], metrics: list[str],
                  palette: dict[str, tuple]) -> Figure:
    """One bar panel per metric (two columns), a shared legend of systems underneath."""
    ncols = 2 if len(metrics) > 1 else 1
    nrows = max(1, -(-len(metrics) // ncols))
    fig = _figure(WIDTH_IN, 1.25 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        _bar_panel(ax, aggregated, metric, palette)
        ax.set_ylabel("mean over seeds" if ax.get_subplotspec().is_first_col() else "")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    sns.despine(fig=fig)
    fig.tight_layout(rect=(0, 0.12, 1, 1), h_pad=0.6, w_pad=0.6)
    _shared_legend(fig, palette)
    return fig


def passk_curves(passk_docs: list[dict[str, Any]], systems: list[str]) -> dict[str, dict]:
    """{system: {k, mean, std}}: pass@k for every k = 1..n, averaged over prompts per seed,
    then mean and std (ddof=1) over seeds."""
    curves = {}
    for system in systems:
        per_seed = []
        for doc in passk_docs:
            block = doc["systems"].get(system)
            if not block or not block.get("pass_counts"):
                continue
            n = int(block["n"])
            counts = [int(c) for c in block["pass_counts"] if c is not None]
            per_seed.append([np.mean([pass_at_k(n, c, k) for c in counts])
                             for k in range(1, n + 1)])
        if not per_seed:
            continue
        kmax = min(len(curve) for curve in per_seed)
        values = np.array([curve[:kmax] for curve in per_seed])
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.full(kmax, np.nan)
        curves[system] = {"k": np.arange(1, kmax + 1), "mean": values.mean(axis=0), "std": std,
                          "n_seeds": len(values)}
    return curves


PASSK_TICKS = (1, 2, 3, 5, 10, 20, 50, 100)


def passk_figure(curves: dict[str, dict], palette: dict[str, tuple]) -> Figure:
    """pass@k against k: every k on the line, markers and error bars only at the ticked k
    (and the largest), so that 50 k's do not crowd."""
    fig = _figure(WIDTH_IN, 2.8)
    ax = fig.subplots()
    # a small multiplicative shift on the log axis keeps the error bars of systems apart
    dodge = np.linspace(-0.012, 0.012, len(curves)) if len(curves) > 1 else [0.0] * len(curves)
    for shift, (system, curve) in zip(dodge, curves.items(), strict=True):
        yerr = None if np.isnan(curve["std"]).all() else curve["std"]
        shown = [i for i, k in enumerate(curve["k"])
                 if k in PASSK_TICKS or k == curve["k"][-1]]
        ax.errorbar(curve["k"] * 10**shift, curve["mean"], yerr=yerr, color=palette[system],
                    marker="o", ms=2.5, markevery=shown, errorevery=shown, capsize=1.5,
                    elinewidth=0.7, linewidth=1.0, label=plain_text(system))
    ax.set_xscale("log")
    ks = next(iter(curves.values()))["k"] if curves else np.arange(1, 2)
    ticks = [k for k in PASSK_TICKS if k <= ks.max()]
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_xlabel("k (samples per prompt)")
    ax.set_ylabel("pass@k (mean over seeds)")
    _legend_below(fig, ax)
    return fig


def _legend_below(fig: Figure, ax: Axes) -> None:
    """Legend in two columns under the axes, so it never hides data."""
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              handletextpad=0.3, columnspacing=1.0)
    fig.tight_layout()


def pareto_front(points: list[tuple[float, float]], x_higher: bool, y_higher: bool) -> list[int]:
    """Indices of the points no other point dominates, sorted by x."""
    sx = 1.0 if x_higher else -1.0
    sy = 1.0 if y_higher else -1.0
    scored = [(sx * x, sy * y) for x, y in points]

    def dominated(i: int) -> bool:
        xi, yi = scored[i]
        return any(xj >= xi and yj >= yi and (xj > xi or yj > yi) for xj, yj in scored)

    front = [i for i in range(len(points)) if not dominated(i)]
    return sorted(front, key=lambda i: points[i][0])


def pareto_figure(aggregated: dict[str, Any], palette: dict[str, tuple]) -> Figure:
    """One point per system and seed: quality (x) against diversity (y), the front marked."""
    x_metric = (_present(aggregated, "pareto_quality") or [None])[0]
    y_metric = (_present(aggregated, "pareto_diversity") or [None])[0]
    fig = _figure(WIDTH_IN, 3.0)
    ax = fig.subplots()
    if x_metric is None or y_metric is None:
        ax.text(0.5, 0.5, "quality or diversity metric missing", ha="center",
                transform=ax.transAxes)
        return fig
    points, owners = [], []
    for system in aggregated["system_order"]:
        xs = aggregated["systems"][system][x_metric]["values"]
        ys = aggregated["systems"][system][y_metric]["values"]
        for x, y in zip(xs, ys, strict=True):
            if x is not None and y is not None:
                points.append((float(x), float(y)))
                owners.append(system)
    for system in aggregated["system_order"]:
        mine = [p for p, o in zip(points, owners, strict=True) if o == system]
        if mine:
            ax.scatter(*zip(*mine, strict=True), color=palette[system], s=14,
                       label=plain_text(system), zorder=3)
    if points:
        front = pareto_front(points, get_metric(x_metric).higher_is_better,
                             get_metric(y_metric).higher_is_better)
        fx, fy = zip(*(points[i] for i in front), strict=True)
        ax.plot(fx, fy, color="0.4", linestyle="--", linewidth=0.8, zorder=2)
        ax.scatter(fx, fy, facecolors="none", edgecolors="black", s=40, linewidths=0.7,
                   zorder=4, label="Pareto front")
    ax.set_xlabel(_axis_label(x_metric) + ", per seed")
    ax.set_ylabel(_axis_label(y_metric))
    _legend_below(fig, ax)
    return fig


SMOOTH_STEPS = 10
TRAINING_COLUMNS = ["step", "ce", "val_loss", "mean_reward", "policy_term"]


def read_training_log(path: str | Path) -> pd.DataFrame:
    """A training_log.csv as numbers: every column of TRAINING_COLUMNS (NaN where empty or
    absent), sorted by step; a step logged twice (a resumed run) keeps its last row."""
    frame = pd.read_csv(path)
    for column in TRAINING_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame \
            else np.nan
    frame = frame.dropna(subset=["step"]).drop_duplicates("step", keep="last")
    frame = frame.sort_values("step", kind="stable")
    return frame[TRAINING_COLUMNS].reset_index(drop=True)


def experiment_colours(experiments: Sequence[str], systems: dict[str, Any] | None,
                       palette: dict[str, tuple]) -> dict[str, tuple]:
    """Each experiment in the colour of the first system it serves (`systems`: the typed
    `polychromic.settings.System`s); experiments that serve no system take the colours after
    the systems' ones."""
    colours: dict[str, tuple] = {}
    for experiment in experiments:
        for name, system in (systems or {}).items():
            if system.experiment == experiment and name in palette:
                colours[experiment] = palette[name]
                break
    spare = [c for c in sns.color_palette("colorblind", len(palette) + len(experiments))
             if tuple(c) not in set(palette.values())]
    for experiment in experiments:
        if experiment not in colours:
            colours[experiment] = tuple(spare.pop(0)) if spare else (0.3, 0.3, 0.3)
    return colours


def _smoothed(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column over its logged steps, as a trailing mean over SMOOTH_STEPS values."""
    values = frame.set_index("step")[column].dropna()
    return values.rolling(SMOOTH_STEPS, min_periods=1).mean()


def _seed_lines(ax: Axes, runs: dict[int, pd.DataFrame], column: str, colour: tuple,
                smooth: bool) -> bool:
    """Thin line per seed, thick line for the mean over seeds (on the steps all seeds
    logged); True when anything was drawn."""
    series = {seed: (_smoothed(frame, column) if smooth
                     else frame.set_index("step")[column].dropna())
              for seed, frame in runs.items()}
    series = {seed: values for seed, values in series.items() if len(values)}
    if not series:
        return False
    for values in series.values():
        ax.plot(values.index, values.values, color=colour, linewidth=0.5, alpha=0.35,
                linestyle="-" if smooth else "--")
    mean = pd.concat(series.values(), axis=1, join="inner").mean(axis=1)
    if smooth:
        ax.plot(mean.index, mean.values, color=colour, linewidth=1.3)
    else:
        ax.plot(mean.index, mean.values, color=colour, linewidth=1.1, linestyle="--",
                marker="o", ms=2.5)
    return True


def training_figure(logs: dict[str, dict[int, pd.DataFrame]],
                    colours: dict[str, tuple]) -> Figure:
    """Loss panel (train CE, smoothed; validation loss, dashed with markers) for every
    experiment, then mean set reward and policy term for experiments that log them."""
    with_reward = [e for e, runs in logs.items()
                   if any(frame["mean_reward"].notna().any() for frame in runs.values())]
    panels = [("loss", "loss (nats / token)")]
    if with_reward:
        panels += [("mean_reward", "mean set reward"), ("policy_term", "policy term")]
    height = 1.45 * len(panels) + 0.75
    fig = _figure(WIDTH_IN, height)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    if not logs:
        axes[0].text(0.5, 0.5, "no training runs in this study", ha="center",
                     transform=axes[0].transAxes)
    for ax, (column, label) in zip(axes, panels, strict=True):
        for experiment, runs in logs.items():
            colour = colours[experiment]
            if column == "loss":
                _seed_lines(ax, runs, "ce", colour, smooth=True)
                _seed_lines(ax, runs, "val_loss", colour, smooth=False)
            elif experiment in with_reward:
                _seed_lines(ax, runs, column, colour, smooth=True)
        if column == "policy_term":
            ax.axhline(0.0, color="0.5", linewidth=0.6, zorder=1)
        ax.set_ylabel(label)
    axes[-1].set_xlabel("training step")
    sns.despine(fig=fig)
    handles = [Line2D([], [], color=colours[e], linewidth=1.3) for e in logs]
    labels = [plain_text(e) for e in logs]
    handles += [Line2D([], [], color="0.3", linewidth=1.3),
                Line2D([], [], color="0.3", linewidth=1.1, linestyle="--", marker="o", ms=2.5),
                Line2D([], [], color="0.3", linewidth=0.5, alpha=0.5)]
    labels += [f"train CE, mean of last {SMOOTH_STEPS} steps", "validation loss",
               "thin: one seed; thick: mean over seeds"]
    rows = -(-len(labels) // 2)
    fig.tight_layout(rect=(0, (0.14 * rows + 0.02) / height, 1, 1), h_pad=0.4)
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False,
               bbox_to_anchor=(0.5, 0.0), handletextpad=0.4, columnspacing=1.0,
               handlelength=2.2)
    return fig


def frontier_axes(aggregated: dict[str, Any]) -> tuple[str | None, str | None]:
    """(pass@1, pass@10) metric names of the frontier: pass@1 and pass@10, else the largest k."""
    names = aggregated.get("metric_order") or []
    ks = sorted(k for k in (parse_passk(name) for name in names) if k is not None)
    if not ks:
        return None, None
    return f"pass@{ks[0]}", main_passk(names)


def _point_curve(system: str) -> dict[str, Any]:
    """Where a system sits among its system's points on the frontier: {base, temperature,
    sampling (the keys it sets), curve, label}. `curve` is the non-temperature keys it sets:
    () for the system itself and its temperature variants (the temperature curve), e.g.
    (('min_p', 0.1),) for `@t1.6m0.1` and `@t2.0m0.1` (a min-p curve, in temperature order);
    `label` is 'T=1.3' for a temperature variant, the name's suffix for another variant."""
    base, overrides = parse_system(system)
    sampling = overrides.items()
    curve = tuple((key, value) for key, value in sampling.items() if key != "temperature")
    label = (None if not sampling else f"T={overrides.temperature:g}" if not curve
             else overrides.suffix())
    return {"base": base, "temperature": overrides.temperature, "sampling": sampling,
            "curve": curve, "label": label}


def frontier_points(aggregated: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per system with both means: {system, x, y, xerr, yerr} and `_point_curve`'s
    keys (errors: std over seeds, NaN when there is none)."""
    x_metric, y_metric = frontier_axes(aggregated)
    points = []
    if x_metric is None:
        return points
    for system in aggregated["system_order"]:
        entries = [aggregated["systems"][system].get(m) or {} for m in (x_metric, y_metric)]
        if any(entry.get("mean") is None for entry in entries):
            continue
        points.append({
            "system": system, **_point_curve(system),
            "x": entries[0]["mean"], "y": entries[1]["mean"],
            "xerr": np.nan if entries[0].get("std") is None else entries[0]["std"],
            "yerr": np.nan if entries[1].get("std") is None else entries[1]["std"],
        })
    return points


def frontier_zoom(points: list[dict[str, Any]], systems: Sequence[str],
                  share: float = 0.5) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) around the points of `systems` (the LoRA systems at their own sampling
    temperature and the verdict's matched baseline) and their std bars, padded by 10 % (at least
    0.01); None when fewer than two of them are drawn or the box already spans more than
    `share` of the whole plot in both directions (a zoom would show nothing new)."""
    chosen = [p for p in points if p["system"] in systems]
    if len(chosen) < 2:
        return None

    def span(key: str, err: str, pool: list[dict[str, Any]]) -> tuple[float, float]:
        low = min(p[key] - np.nan_to_num(p[err]) for p in pool)
        high = max(p[key] + np.nan_to_num(p[err]) for p in pool)
        return low, high

    (x0, x1), (y0, y1) = span("x", "xerr", chosen), span("y", "yerr", chosen)
    (fx0, fx1), (fy0, fy1) = span("x", "xerr", points), span("y", "yerr", points)
    if (x1 - x0) > share * (fx1 - fx0) and (y1 - y0) > share * (fy1 - fy0):
        return None
    pad_x, pad_y = max(0.1 * (x1 - x0), 0.01), max(0.1 * (y1 - y0), 0.01)
    return x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y


def _draw_point(ax: Axes, point: dict[str, Any], colour: tuple, labels: bool) -> None:
    """One system's point with its std bars: a circle for a system, a diamond for a
    temperature variant, a triangle for another sampling variant, a variant annotated with
    its label (`_point_curve`)."""
    variant = point["label"] is not None
    marker = "^" if point["curve"] else "D" if variant else "o"
    xerr = None if np.isnan(point["xerr"]) else point["xerr"]
    yerr = None if np.isnan(point["yerr"]) else point["yerr"]
    ax.errorbar(point["x"], point["y"], xerr=xerr, yerr=yerr, color=colour, marker=marker,
                ms=3.0 if variant else 4.0, elinewidth=0.6, capsize=1.5, linestyle="none",
                zorder=3, label=None if variant or not labels else plain_text(point["base"]))
    if variant:
        ax.annotate(plain_text(point["label"]), (point["x"], point["y"]), xytext=(3, 2),
                    textcoords="offset points", fontsize=5.5, color=colour,
                    annotation_clip=True)


def _draw_frontier(ax: Axes, points: list[dict[str, Any]], palette: dict[str, tuple],
                   sampling_temperature: float | None, labels: bool) -> None:
    """Every system's points in its colour, each curve of a system (`_point_curve`: the
    temperature curve solid, a curve of other variants dashed) joined in temperature order."""
    bases = list(dict.fromkeys(point["base"] for point in points))
    for base in bases:
        colour = palette.get(base) or palette.get(next(
            p["system"] for p in points if p["base"] == base), (0.3, 0.3, 0.3))
        mine = [p for p in points if p["base"] == base]
        for curve in dict.fromkeys(p["curve"] for p in mine):
            line = sorted((p for p in mine if p["curve"] == curve),
                          key=lambda p: (p["temperature"] if p["temperature"] is not None
                                         else (sampling_temperature or 0.0)))
            if len(line) > 1:
                ax.plot([p["x"] for p in line], [p["y"] for p in line], color=colour,
                        linewidth=0.7, alpha=0.6, zorder=2, linestyle="--" if curve else "-")
        for point in mine:
            _draw_point(ax, point, colour, labels)


def frontier_figure(aggregated: dict[str, Any], palette: dict[str, tuple],
                    sampling_temperature: float | None = None) -> Figure:
    """pass@1 against pass@10, one point per system (mean over seeds, std bars both ways);
    a system's temperature variants share its colour, take a diamond marker with their
    temperature written next to them, and are joined to it by a line in temperature order;
    its other sampling variants (min-p, top-p, top-k) share its colour too, take a triangle
    with their name's suffix next to them, and those that set the same non-temperature keys
    (`@t1.6m0.1`, `@t2.0m0.1`: a min-p curve) are joined by a dashed line in temperature order.
    When the LoRA systems (`main_lora_systems` and `ablation_systems` of the aggregate, at their
    own temperature, with the verdict's matched baseline) crowd a small corner of the plot, a
    second panel zooms on them (`frontier_zoom`), and a grey box
    in the first panel marks where."""
    x_metric, y_metric = frontier_axes(aggregated)
    points = frontier_points(aggregated)
    lora = [s for s in list(aggregated.get("main_lora_systems") or []) + list(
        aggregated.get("ablation_systems") or []) if not is_variant(s)]
    lora.append((aggregated.get("verdict") or {}).get("matched"))
    zoom = frontier_zoom(points, lora) if points else None
    fig = _figure(WIDTH_IN, 4.0 if zoom else 3.2)
    axes = fig.subplots(1, 2) if zoom else [fig.subplots()]
    ax = axes[0]
    if not points:
        ax.text(0.5, 0.5, "no pass@k in the aggregate", ha="center", transform=ax.transAxes)
        return fig
    _draw_frontier(ax, points, palette, sampling_temperature, labels=True)
    ax.set_xlabel(_axis_label(x_metric) + ", mean over seeds")
    ax.set_ylabel(_axis_label(y_metric))
    if any(point["label"] is not None and not point["curve"] for point in points):
        ax.plot([], [], color="0.3", marker="D", ms=3.0, linestyle="none",
                label="same system, other sampling temperature")
    if any(point["curve"] for point in points):
        ax.plot([], [], color="0.3", marker="^", ms=3.0, linestyle="none",
                label="same system, other min-p / top-p / top-k")
    if zoom:
        x0, x1, y0, y1 = zoom
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                               edgecolor="0.5", linewidth=0.6, zorder=1))
        _draw_frontier(axes[1], points, palette, sampling_temperature, labels=False)
        axes[1].set_xlim(x0, x1)
        axes[1].set_ylim(y0, y1)
        axes[1].set_title("zoom: the LoRA systems", fontsize=7)
        axes[1].set_xlabel(_axis_label(x_metric))
        axes[1].set_ylabel(_axis_label(y_metric))
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, frameon=False, loc="lower center", ncol=2,
                   handletextpad=0.3, columnspacing=1.0)
        fig.tight_layout(rect=(0.0, 0.03 + 0.045 * ((len(labels) + 1) // 2), 1.0, 1.0))
        return fig
    _legend_below(fig, ax)
    return fig


def render_figure(name: str, data: dict[str, Any], curves: dict[str, dict],
                  palette: dict[str, tuple], out_dir: Path,
                  training: tuple[dict, dict] | None = None,
                  sampling_temperature: float | None = None) -> list[str]:
    """Draw one named figure in the paper style and save it as PNG and PDF; `training` is
    (logs, colours) for training_curves. The frontier shows every system; the other figures
    leave the sampling variants (`baseline_lora@t1.3`, `baseline_lora@t1.6m0.1`) out."""
    main = [system for system in palette if not is_variant(system)]
    main_palette = {system: palette[system] for system in main}
    curves = {system: curve for system, curve in curves.items() if system in main_palette}
    with sns.axes_style("whitegrid"), matplotlib.rc_context(RC):
        if name == "frontier":
            fig = frontier_figure(data, palette, sampling_temperature)
        elif name == "pareto":
            fig = pareto_figure({**data, "system_order": main}, main_palette)
        elif name == "diversity_comparison":
            fig = metric_panels(data, _present(data, "diversity_figure"), main_palette)
        elif name == "quality_comparison":
            fig = metric_panels(data, _present(data, "quality_figure"), main_palette)
        elif name == "passk_curves":
            fig = passk_figure(curves, main_palette)
        elif name == "validation_frontier":
            fig = validation_frontier_figure(data, palette, sampling_temperature, WIDTH_IN,
                                             _figure(WIDTH_IN, 3.6))
        elif name == "training_curves":
            fig = training_figure(*(training or ({}, {})))
        else:
            raise ValueError(f"unknown figure {name!r}; known: {FIGURES}")
        return _save(fig, out_dir, name)


def make_figures(aggregated: str, passk_files: list[str], out_dir: str,
                 training_logs: dict[str, dict[int, str]] | None = None,
                 systems: dict[str, Any] | None = None,
                 sampling_temperature: float | None = None) -> list[str]:
    """Write the figures as PNG and PDF into `out_dir`; return the written paths.

    `training_logs` is {experiment: {seed: training_log.csv}} (the training curves show
    "no training runs" without it); `systems` (the typed settings' systems) gives each
    experiment the colour of its system; `sampling_temperature` (generation.temperature) places
    the plain systems on the frontier's temperature lines (and variants that keep generation's
    temperature on their curves)."""
    data = read_json(aggregated)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    palette = figure_palette(data["system_order"])
    curves = passk_curves([read_json(path) for path in passk_files], data["system_order"])
    logs = {experiment: {int(seed): read_training_log(path) for seed, path in runs.items()}
            for experiment, runs in (training_logs or {}).items()}
    training = (logs, experiment_colours(list(logs), systems, palette))
    written: list[str] = []
    for name in FIGURES:
        written += render_figure(name, data, curves, palette, folder, training,
                                 sampling_temperature)
    log.info("wrote %d figure files to %s", len(written), folder)
    return written
