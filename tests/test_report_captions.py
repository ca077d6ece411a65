"""The captions of `snakemake --report`: every figure and table registered with report() has its
caption file, and every caption renders (Jinja, then reStructuredText) with the study's configs,
as Snakemake renders it. A missing caption fails `make report` only at the very end of a run."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from docutils.core import publish_parts
from jinja2 import Environment
from snakemake.utils import validate

from polychromic.contract import FIGURES

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "workflow" / "report"
RULES = ROOT / "workflow" / "rules"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def caption_paths() -> set[Path]:
    """Every caption file a rule names: the literal `caption="../report/x.rst"` paths and the
    figures rule's one per figure of FIGURES."""
    named = {RULES / match for path in RULES.glob("*.smk")
             for match in re.findall(r'caption="([^"{}]+\.rst)"', path.read_text("utf-8"))}
    return {path.resolve() for path in named} | {REPORT / f"{name}.rst" for name in FIGURES}


def missing_captions(figures: tuple[str, ...], folder: Path) -> list[str]:
    return [name for name in figures if not (folder / f"{name}.rst").is_file()]


def test_every_figure_has_its_caption() -> None:
    assert missing_captions(FIGURES, REPORT) == []


def test_a_figure_without_caption_is_named(tmp_path: Path) -> None:
    (tmp_path / "pareto.rst").write_text("caption", encoding="utf-8")
    assert missing_captions(("pareto", "new_figure"), tmp_path) == ["new_figure"]


def test_every_caption_a_rule_names_exists() -> None:
    missing = sorted(str(path.relative_to(ROOT)) for path in caption_paths()
                     if not path.is_file())
    assert missing == []
    assert len(caption_paths()) >= len(FIGURES) + 4  # the tables and the paper too


def _configs() -> list[dict]:
    default = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    study = {**copy.deepcopy(default),
             **yaml.safe_load((ROOT / "config" / "study_demo.yaml").read_text("utf-8"))}
    return [default, study, None]


@pytest.mark.parametrize("config", _configs(), ids=["default", "study", "no_search"])
def test_every_caption_renders(config: dict | None) -> None:
    search = config is not None
    config = config or _configs()[0]
    validate(config, str(SCHEMA))  # the defaults filled in, as common.smk does
    if not search:  # set after validating: the validator cannot fill defaults below a null
        config["evaluation"]["selection"]["search"] = {"enabled": False}
    env = Environment(trim_blocks=True, lstrip_blocks=True)  # Snakemake's report settings
    snakemake = SimpleNamespace(config=config)
    for path in sorted(caption_paths()):
        text = env.from_string(path.read_text(encoding="utf-8")).render(snakemake=snakemake)
        body = publish_parts(text, writer="html",
                             settings_overrides={"halt_level": 2, "report_level": 5})["body"]
        assert body.strip(), path.name
        assert "{{" not in body and "{%" not in body, path.name
