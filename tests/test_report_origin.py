"""The paper says what its data and model are: a synthetic corpus (the release's card says so)
is called synthetic in the title, the abstract, the Data paragraph and the limitations; the
limitations name the demo model's stance-balanced pretraining and the pass threshold as it was
calibrated; a collected corpus's files are named; a checklist item fails where the origin is
not stated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polychromic.reporting.checklist import check_origin
from polychromic.reporting.paper import build_paper
from polychromic.reporting.paper_text import threshold_limit
from test_data_release import demo_record, make_release
from test_report_paper import _inputs

CALIBRATION = {"criterion": "semantic", "source": "validation", "threshold": 0.5737,
               "threshold_ci": [0.5242, 0.6973], "positives": 179, "negatives": 179,
               "few_pairs": False, "pairing": "held-out best match"}


def _paper(root: Path, synthetic: bool) -> tuple[str, str]:
    """main.tex and the checklist of the test paper, its release built from demo records (a
    synthetic corpus) or not, its aggregate holding a calibration record."""
    inputs = _inputs(root)
    if synthetic:
        (root / "demo_release").mkdir()
        release, _ = make_release(root / "demo_release", rows=demo_record)
        inputs["release_dir"] = str(release)
    stored = json.loads(Path(inputs["aggregated"]).read_text(encoding="utf-8"))
    stored["calibration"] = CALIBRATION
    Path(inputs["aggregated"]).write_text(json.dumps(stored), encoding="utf-8")
    build_paper(**inputs)
    return ((Path(inputs["paper_dir"]) / "main.tex").read_text(encoding="utf-8"),
            Path(inputs["checklist"]).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return _paper(tmp_path_factory.mktemp("synthetic"), True)


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_a_synthetic_corpus_is_called_so_everywhere(synthetic: tuple[str, str]) -> None:
    main, checklist = synthetic
    title = _between(main, r"\title{", r"\author")
    assert "A study on a synthetic tweet--reply corpus" in title
    abstract = _between(main, r"\begin{abstract}", r"\end{abstract}")
    assert "synthetic tweet-reply pairs" in abstract
    assert "of a synthetic corpus, and say nothing about larger models or real tweets" in abstract
    data = _between(main, r"\paragraph{Data.}", r"\paragraph")
    assert data.strip().startswith("The corpus is synthetic, not real Twitter data: the "
                                   "pipeline's demo generator")
    limits = _between(main, r"\subsection{Limitations}", r"\section{Conclusion}")
    assert "The corpus is synthetic, not real Twitter data" in limits
    assert "- [x] **Data origin stated**: a synthetic corpus" in checklist


def test_the_limitations_name_the_model_and_the_threshold(synthetic: tuple[str, str]) -> None:
    main, _ = synthetic
    limits = " ".join(_between(main, r"\subsection{Limitations}", r"\section{Conclusion}")
                      .split())
    assert "Its pretraining read the corpus's stance labels to balance the replies" in limits
    assert ("The pass threshold (semantic similarity 0.574, 95\\% CI {[}0.524, 0.697{]} over "
            "validation tweets) is calibrated on 179 validation references") in limits
    assert "not that it takes a reference's stance" in limits
    model = " ".join(_between(main, r"\paragraph{Model and training.}", r"\paragraph").split())
    assert "stance-balanced subset of the replies" in model


def test_a_collected_corpus_is_named_by_its_files(tmp_path: Path) -> None:
    main, checklist = _paper(tmp_path, False)
    data = _between(main, r"\paragraph{Data.}", r"\paragraph")
    assert "The pairs were read from raw.jsonl (data.raw)" in data
    assert "synthetic" not in main.lower() and "stance-balanced" not in main
    assert "- [x] **Data origin stated**: a collected corpus" in checklist


def test_the_threshold_limit_follows_the_record() -> None:
    assert threshold_limit(None) is None
    configured = threshold_limit({"criterion": "semantic", "source": "config",
                                  "threshold": 0.7})
    assert configured.startswith("The pass threshold (semantic similarity 0.700) is set in "
                                 "the config")
    assert "over validation tweets" not in threshold_limit({**CALIBRATION,
                                                            "threshold_ci": None})


def test_the_origin_item_fails_where_the_origin_is_not_stated(synthetic) -> None:
    main, _ = synthetic
    origin = {"synthetic": True, "demo": True, "sources": ["raw.jsonl"]}
    assert check_origin(main, origin).ok is True
    abstract = _between(main, r"\begin{abstract}", r"\end{abstract}")
    hidden = main.replace(abstract, abstract.replace("synthetic", "generated"))
    item = check_origin(hidden, origin)
    assert item.ok is False and item.evidence.endswith("not said in the abstract")
    collected = {"synthetic": False, "sources": ["export.jsonl"]}
    item = check_origin(main, collected)
    assert item.ok is False and "does not name ['export.jsonl']" in item.evidence
    assert check_origin(main, None).ok is None
