"""Figures: pass@k recomputed for every k, Pareto front, files written, deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from polychromic.contract import FIGURES as FIGURE_NAMES
from polychromic.reporting.figures import (
    SMOOTH_STEPS,
    experiment_colours,
    figure_palette,
    frontier_axes,
    frontier_figure,
    frontier_points,
    frontier_zoom,
    make_figures,
    pareto_front,
    pass_at_k,
    passk_curves,
    passk_figure,
    read_training_log,
    render_figure,
    system_palette,
    training_figure,
)
from polychromic.reporting.selection_figure import (
    curve_metric,
    selection_points,
    validation_frontier_figure,
)
from polychromic.systems import parse_system
from test_report_helpers import (
    N_SAMPLES,
    SEEDS,
    SYSTEMS,
    build_evaluation,
    exact_pass_at_k,
    run_aggregate,
    typed_systems,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("figures")
    dirs = build_evaluation(root)
    aggregated = root / "aggregated_results.json"
    run_aggregate(dirs, root)
    passk = [str(Path(dirs[seed]) / "passk_results.json") for seed in SEEDS]
    logs = write_training_logs(root / "models")
    written = make_figures(str(aggregated), passk, str(root / "figures"), logs, SYSTEMS_CONFIG)
    return {"root": root, "aggregated": aggregated, "passk": passk, "written": written,
            "logs": logs}


HEADER = ("step,loss,ce,policy_term,mean_reward,mean_set_diversity,advantage_magnitude,"
          "raw_advantage_magnitude,lr,tokens_per_s,val_loss")
SYSTEMS_CONFIG = typed_systems({"baseline_lora": {"prompt": "lora", "experiment": "baseline"},
                                "polychromic_lora": {"prompt": "lora",
                                                     "experiment": "polychromic"}})


def write_training_logs(root: Path, steps: int = 30) -> dict[str, dict[int, str]]:
    """training_log.csv files as the train rule writes them: a val_loss row at step 0 and every
    10 steps, empty cells where a value is not computed; the polychromic runs log the reward
    and policy term, except seed 456, written by an older version without those columns and
    with its rows out of order; an experiment `orphan & 1` serves no system."""
    rng = np.random.default_rng(0)
    logs: dict[str, dict[int, str]] = {}
    for experiment in ("baseline", "polychromic", "orphan & 1"):
        logs[experiment] = {}
        for seed in SEEDS[:2] if experiment == "orphan & 1" else SEEDS:
            old = experiment == "polychromic" and seed == 456
            header = HEADER if not old else "step,loss,ce,lr,val_loss"
            rows = [header, "0," + ",".join([""] * (header.count(",") - 1)) + ",0.35"]
            for step in range(1, steps + 1):
                ce = 0.3 - step / 300 + rng.normal(0, 0.01)
                val = f"{0.3 - step / 400:.4f}" if step % 10 == 0 else ""
                if old:
                    rows.append(f"{step},{ce:.4f},{ce:.4f},0.001,{val}")
                elif experiment == "polychromic":
                    reward, policy = rng.uniform(0.4, 0.8), rng.normal(0.02, 0.05)
                    rows.append(f"{step},{ce + policy:.4f},{ce:.4f},{policy:.4f},{reward:.4f},"
                                f"0.5,0.9,0.05,0.001,500,{val}")
                else:
                    rows.append(f"{step},{ce:.4f},{ce:.4f},,,,,,0.001,900,{val}")
            if old:  # reversed, and step 5 logged twice (a resumed run): the last row counts
                rows = [rows[0], *reversed(rows[1:]), "5,9.0,0.25,0.001,"]
            path = root / experiment / f"seed_{seed}" / "training_log.csv"
            path.parent.mkdir(parents=True)
            path.write_text("\n".join(rows) + "\n", encoding="utf-8")
            logs[experiment][seed] = str(path)
    return logs


@pytest.mark.parametrize("n,c", [(10, 0), (10, 1), (10, 5), (10, 10), (200, 3), (7, 6)])
def test_pass_at_k_matches_binomial_form(n: int, c: int) -> None:
    for k in range(1, n + 1):
        assert pass_at_k(n, c, k) == pytest.approx(exact_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_rejects_impossible_input() -> None:
    with pytest.raises(ValueError):
        pass_at_k(10, 11, 1)
    with pytest.raises(ValueError):
        pass_at_k(10, 3, 11)


def test_passk_curves_recomputed_for_every_k(study: dict) -> None:
    docs = [json.loads(Path(path).read_text(encoding="utf-8")) for path in study["passk"]]
    curves = passk_curves(docs, SYSTEMS)
    for system in SYSTEMS:
        curve = curves[system]
        assert list(curve["k"]) == list(range(1, N_SAMPLES + 1))
        per_seed = np.array([[np.mean([exact_pass_at_k(N_SAMPLES, c, k)
                                       for c in doc["systems"][system]["pass_counts"]])
                              for k in range(1, N_SAMPLES + 1)] for doc in docs])
        np.testing.assert_allclose(curve["mean"], per_seed.mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(curve["std"], per_seed.std(axis=0, ddof=1), atol=1e-12)
        # at the configured k the curve agrees with the evaluation's own pass@k means
        for k in (1, 3, 5, 10):
            stored = np.mean([doc["systems"][system][f"pass@{k}"]["mean"] for doc in docs])
            assert curve["mean"][k - 1] == pytest.approx(stored)


def test_passk_markers_only_at_the_ticked_k(study: dict) -> None:
    """Every k on the line, markers and error bars at k = 1, 2, 3, 5, 10, ... and the last."""
    docs = [json.loads(Path(path).read_text(encoding="utf-8")) for path in study["passk"]]
    curves = passk_curves(docs, SYSTEMS)
    fig = passk_figure(curves, figure_palette(SYSTEMS))
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == N_SAMPLES]
    assert len(lines) == len(SYSTEMS)
    assert all(list(line.get_markevery()) == [0, 1, 2, 4, 9] for line in lines)
    caps = [c for c in fig.axes[0].collections if len(c.get_segments()) == 5]
    assert len(caps) == len(SYSTEMS)  # one error bar per marked k, not one per k


def test_pareto_front_respects_direction() -> None:
    points = [(0.1, 0.9), (0.5, 0.5), (0.9, 0.1), (0.4, 0.4), (0.5, 0.2)]
    assert pareto_front(points, True, True) == [0, 1, 2]
    # lower y is better: (0.9, 0.1) dominates everything with x <= 0.9 and y >= 0.1
    assert pareto_front(points, True, False) == [2]


def test_palette_is_one_colour_per_system() -> None:
    palette = system_palette(SYSTEMS)
    assert list(palette) == SYSTEMS and len(set(palette.values())) == len(SYSTEMS)


def test_all_figures_written(study: dict) -> None:
    expected = {f"{name}.{ext}" for name in FIGURE_NAMES for ext in ("png", "pdf")}
    assert {Path(path).name for path in study["written"]} == expected
    for path in study["written"]:
        data = Path(path).read_bytes()
        assert len(data) > 2000
        assert data[:4] == (b"%PDF" if path.endswith(".pdf") else b"\x89PNG")
        assert b"CreationDate" not in data


def test_figures_are_deterministic(study: dict, tmp_path: Path) -> None:
    data = json.loads(study["aggregated"].read_text(encoding="utf-8"))
    docs = [json.loads(Path(path).read_text(encoding="utf-8")) for path in study["passk"]]
    curves = passk_curves(docs, data["system_order"])
    palette = system_palette(data["system_order"])
    first = study["root"] / "figures"
    for name in ("pareto", "passk_curves"):
        for path in render_figure(name, data, curves, palette, tmp_path):
            assert Path(path).read_bytes() == (first / Path(path).name).read_bytes(), path


def test_read_training_log_numbers_nan_and_order(study: dict) -> None:
    base = read_training_log(study["logs"]["baseline"][42])
    assert list(base.columns) == ["step", "ce", "val_loss", "mean_reward", "policy_term"]
    assert base["val_loss"].notna().sum() == 4 and np.isnan(base["ce"].iloc[0])
    assert base["mean_reward"].isna().all()
    old = read_training_log(study["logs"]["polychromic"][456])  # no reward columns, reversed
    assert list(old["step"]) == list(range(31)) and old["policy_term"].isna().all()
    assert old.loc[old["step"] == 5, "ce"].item() == 0.25


def test_experiment_colours_follow_their_system() -> None:
    palette = system_palette(SYSTEMS)
    colours = experiment_colours(["baseline", "polychromic", "orphan & 1"], SYSTEMS_CONFIG,
                                 palette)
    assert colours["baseline"] == palette["baseline_lora"]
    assert colours["polychromic"] == palette["polychromic_lora"]
    assert colours["orphan & 1"] not in palette.values()


def test_training_figure_panels_and_mean_curve(study: dict) -> None:
    logs = {e: {s: read_training_log(p) for s, p in runs.items()}
            for e, runs in study["logs"].items()}
    palette = system_palette(SYSTEMS)
    colours = experiment_colours(list(logs), SYSTEMS_CONFIG, palette)
    fig = training_figure(logs, colours)
    loss, reward, policy = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss (nats / token)", "mean set reward",
                                                     "policy term"]
    assert policy.get_xlabel() == "training step"
    thick = [line for line in loss.get_lines()
             if line.get_color() == colours["baseline"] and line.get_linewidth() == 1.3]
    assert len(thick) == 1
    expected = np.mean([logs["baseline"][s].set_index("step")["ce"].dropna()
                        .rolling(SMOOTH_STEPS, min_periods=1).mean().to_numpy()
                        for s in SEEDS], axis=0)
    np.testing.assert_allclose(thick[0].get_ydata(), expected)
    # only the polychromic runs that log a reward are drawn in the reward panel
    drawn = {line.get_color() for line in reward.get_lines()}
    assert drawn == {colours["polychromic"]}
    assert len([line for line in reward.get_lines() if line.get_linewidth() == 0.5]) == 2
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend[:3] == ["baseline", "polychromic", "orphan & 1"]


def test_training_figure_without_reward_or_runs() -> None:
    sft = {"baseline": {1: _frame([0.3, 0.2, 0.1])}}
    fig = training_figure(sft, {"baseline": (0.1, 0.2, 0.3)})
    assert len(fig.axes) == 1
    empty = training_figure({}, {})
    assert "no training runs" in empty.axes[0].texts[0].get_text()


def _frame(ce: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": range(1, len(ce) + 1), "ce": ce, "val_loss": np.nan,
                         "mean_reward": np.nan, "policy_term": np.nan})


def _entry(mean: float, std: float | None) -> dict:
    return {"mean": mean, "std": std, "values": [mean], "n_seeds": 1}


def test_frontier_has_one_point_per_system_with_std_bars(tmp_path: Path) -> None:
    systems = ["baseline_lora", "polychromic_lora", "baseline_lora@t0.7", "baseline_lora@t1.3"]
    data = {
        "system_order": systems, "main_systems": systems[:2], "metric_order": [
            "pass@1", "pass@5", "pass@10", "coverage"],
        "systems": {
            "baseline_lora": {"pass@1": _entry(0.6, 0.04), "pass@10": _entry(0.93, 0.01)},
            "polychromic_lora": {"pass@1": _entry(0.45, 0.06), "pass@10": _entry(0.92, None)},
            "baseline_lora@t0.7": {"pass@1": _entry(0.7, 0.02), "pass@10": _entry(0.9, 0.02)},
            "baseline_lora@t1.3": {"pass@1": _entry(0.4, 0.05), "pass@10": _entry(0.95, 0.01)},
        },
    }
    assert frontier_axes(data) == ("pass@1", "pass@10")
    points = {p["system"]: p for p in frontier_points(data)}
    assert list(points) == systems
    assert points["baseline_lora@t1.3"]["base"] == "baseline_lora"
    assert points["baseline_lora@t1.3"]["temperature"] == 1.3
    assert points["baseline_lora@t1.3"]["curve"] == () == points["baseline_lora"]["curve"]
    assert points["baseline_lora@t1.3"]["label"] == "T=1.3"
    assert points["baseline_lora"]["label"] is None
    assert (points["baseline_lora"]["x"], points["baseline_lora"]["yerr"]) == (0.6, 0.01)
    assert np.isnan(points["polychromic_lora"]["yerr"])
    palette = figure_palette(systems)
    assert palette["baseline_lora@t1.3"] == palette["baseline_lora"]
    assert palette["polychromic_lora"] == figure_palette(systems[:2])["polychromic_lora"]
    written = render_figure("frontier", data, {}, palette, tmp_path, sampling_temperature=1.0)
    assert sorted(Path(path).name for path in written) == ["frontier.pdf", "frontier.png"]


def test_frontier_zooms_on_crowded_lora_systems() -> None:
    def point(system: str, x: float, y: float, err: float = 0.01) -> dict:
        base, overrides = parse_system(system)
        return {"system": system, "base": base, "temperature": overrides.temperature, "x": x,
                "y": y, "xerr": err, "yerr": np.nan}
    far = [point("few_shot", 0.05, 0.3), point("baseline_lora@t1.6", 0.16, 0.75)]
    crowded = [point("baseline_lora", 0.56, 0.97), point("polychromic_lora", 0.57, 0.96)]
    x0, x1, y0, y1 = frontier_zoom(far + crowded, ["baseline_lora", "polychromic_lora"])
    assert x0 < 0.55 and x1 > 0.58 and y0 < 0.96 < 0.97 < y1  # bars and padding inside
    assert x1 - x0 < 0.1 and y1 - y0 < 0.05
    assert frontier_zoom(far + crowded, ["polychromic_lora"]) is None  # one point: no zoom
    spread = [point("baseline_lora", 0.1, 0.3), point("polychromic_lora", 0.6, 0.97)]
    assert frontier_zoom(spread + far, ["baseline_lora", "polychromic_lora"]) is None
    entry = {"std": 0.01, "n_seeds": 3}
    data = {"system_order": [p["system"] for p in far + crowded],
            "metric_order": ["pass@1", "pass@10"], "main_lora_systems": ["baseline_lora",
                                                                        "polychromic_lora"],
            "systems": {p["system"]: {"pass@1": {**entry, "mean": p["x"]},
                                      "pass@10": {**entry, "mean": p["y"]}}
                        for p in far + crowded}}
    palette = figure_palette(data["system_order"])
    assert len(frontier_figure(data, palette).axes) == 2
    data["main_lora_systems"] = []
    assert len(frontier_figure(data, palette).axes) == 1


def test_frontier_draws_min_p_variants_as_their_own_curves(tmp_path: Path) -> None:
    """Other sampling variants keep their system's colour, take a triangle labelled by their
    suffix, and those with the same non-temperature keys form a dashed curve in temperature
    order; the temperature curve stays solid and unchanged."""
    systems = ["baseline_lora", "polychromic_lora", "baseline_lora@t1.3",
               "baseline_lora@t2.0m0.1", "baseline_lora@t1.6m0.1", "baseline_lora@m0.05"]
    xy = {"baseline_lora": (0.6, 0.9), "polychromic_lora": (0.45, 0.92),
          "baseline_lora@t1.3": (0.4, 0.95), "baseline_lora@t2.0m0.1": (0.3, 0.96),
          "baseline_lora@t1.6m0.1": (0.45, 0.94), "baseline_lora@m0.05": (0.58, 0.91)}
    data = {"system_order": systems, "main_systems": systems[:2],
            "metric_order": ["pass@1", "pass@10"],
            "systems": {s: {"pass@1": _entry(x, 0.01), "pass@10": _entry(y, 0.01)}
                        for s, (x, y) in xy.items()}}
    points = {p["system"]: p for p in frontier_points(data)}
    assert points["baseline_lora@t1.6m0.1"]["curve"] == (("min_p", 0.1),)
    assert points["baseline_lora@t1.6m0.1"]["sampling"] == {"temperature": 1.6, "min_p": 0.1}
    assert points["baseline_lora@m0.05"]["label"] == "m0.05"
    palette = figure_palette(systems)
    assert palette["baseline_lora@t1.6m0.1"] == palette["baseline_lora"]
    fig = frontier_figure(data, palette, sampling_temperature=1.0)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
    dashed = [list(line.get_xdata()) for line in lines if line.get_linestyle() == "--"]
    solid = [list(line.get_xdata()) for line in lines if line.get_linestyle() == "-"]
    assert dashed == [[0.45, 0.3]]  # t1.6m0.1 then t2.0m0.1; m0.05 is a curve of its own
    assert [0.6, 0.4] in solid  # baseline_lora (T = 1.0) then @t1.3
    colours = {line.get_color() for line in lines}
    assert len(colours) == 1  # every curve in baseline_lora's colour
    texts = {text.get_text() for text in ax.texts}
    assert {"T=1.3", "t1.6m0.1", "t2.0m0.1", "m0.05"} <= texts
    markers = [line.get_marker() for line in ax.get_lines()]
    assert markers.count("^") >= 3 and "D" in markers
    labels = ax.get_legend_handles_labels()[1]
    assert "same system, other min-p / top-p / top-k" in labels
    written = render_figure("frontier", data, {}, palette, tmp_path, sampling_temperature=1.0)
    assert sorted(Path(path).name for path in written) == ["frontier.pdf", "frontier.png"]
    temperature_only = {**data, "system_order": systems[:3]}
    labels = frontier_figure(temperature_only, palette, 1.0).axes[0].get_legend_handles_labels()
    assert "same system, other min-p / top-p / top-k" not in labels[1]
    assert "same system, other sampling temperature" in labels[1]
    # no temperature variant drawn: no diamond in the legend either
    plain = {**data, "system_order": systems[:2]}
    labels = frontier_figure(plain, palette, 1.0).axes[0].get_legend_handles_labels()[1]
    assert "same system, other sampling temperature" not in labels


def _selection() -> dict:
    def candidate(p1: float, p10: float, **overrides) -> dict:
        return {"overrides": overrides, "pass@1": p1, "pass@10": p10}
    return {"selected_on": "val", "target_system": "baseline_lora", "target_pass@1": 0.6,
            "match_tolerance": 0.02, "systems": {
                "baseline_lora": {"chosen": "baseline_lora", "candidates": {
                    "baseline_lora": candidate(0.6, 0.9),
                    "baseline_lora@t1.3": candidate(0.45, 0.93, temperature=1.3),
                    "baseline_lora@t0.7": candidate(0.7, 0.85, temperature=0.7)}},
                "polychromic_lora": {"chosen": "polychromic_lora@t1.6m0.1", "candidates": {
                    "polychromic_lora": candidate(0.8, 0.9),
                    "polychromic_lora@t1.6m0.1": candidate(0.57, 0.97, temperature=1.6,
                                                           min_p=0.1),
                    "polychromic_lora@t1.3": candidate(0.7, 0.95, temperature=1.3)}}}}


def test_validation_frontier_draws_every_candidate_and_rings_the_chosen(tmp_path: Path) -> None:
    selection = _selection()
    assert curve_metric(selection) == "pass@10"
    curves = selection_points(selection, "pass@10", 1.0)
    assert [p["candidate"] for p in curves["baseline_lora"]] == [
        "baseline_lora@t0.7", "baseline_lora", "baseline_lora@t1.3"]  # temperature order
    assert [p["chosen"] for p in curves["polychromic_lora"]] == [False, False, True]
    assert curves["polychromic_lora"][-1]["dashed"]  # it sets min-p: a curve of its own
    data = {"system_order": ["baseline_lora", "polychromic_lora"], "selection": selection}
    palette = figure_palette(data["system_order"])
    written = render_figure("validation_frontier", data, {}, palette, tmp_path, None,
                            sampling_temperature=1.0)
    assert sorted(Path(path).name for path in written) == [
        "validation_frontier.pdf", "validation_frontier.png"]
    fig = validation_frontier_figure(data, palette, 1.0, 3.5, Figure())
    ax = fig.axes[0]
    rings = [line for line in ax.get_lines() if line.get_markersize() == 7
             and len(line.get_xdata()) == 1]
    assert sorted(float(line.get_xdata()[0]) for line in rings) == [0.57, 0.6]
    labels = ax.get_legend_handles_labels()[1]
    assert "equivalence margin (±0.02)" in labels and "chosen sampling" in labels
    # every system named as configured, as in every other figure
    assert {"baseline_lora", "polychromic_lora",
            "target: baseline_lora at default sampling"} <= set(labels)
    assert not any("baseline lora" in label for label in labels)
    off = validation_frontier_figure({"system_order": []}, palette, 1.0, 3.5, Figure())
    assert "no validation selection" in off.axes[0].texts[0].get_text()
    del selection["systems"]["baseline_lora"]["candidates"]["baseline_lora"]["pass@10"]
    assert curve_metric(selection) is None  # pass@10 must exist for every candidate
