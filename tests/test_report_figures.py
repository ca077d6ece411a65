"""Figures: pass@k recomputed for every k, Pareto front, files written, deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polychromic.reporting.aggregate import aggregate
from polychromic.reporting.figures import (
    FIGURE_NAMES,
    make_figures,
    pareto_front,
    pass_at_k,
    passk_curves,
    render_figure,
    system_palette,
)
from test_report_helpers import (
    N_SAMPLES,
    SEEDS,
    SYSTEMS,
    TEMPLATES,
    build_evaluation,
    exact_pass_at_k,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("figures")
    dirs = build_evaluation(root)
    aggregated = root / "aggregated_results.json"
    aggregate(dirs, str(aggregated), str(root / "results_table.tex"), SEEDS, SYSTEMS, TEMPLATES)
    passk = [str(Path(dirs[seed]) / "passk_results.json") for seed in SEEDS]
    written = make_figures(str(aggregated), passk, str(root / "figures"))
    return {"root": root, "aggregated": aggregated, "passk": passk, "written": written}


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
