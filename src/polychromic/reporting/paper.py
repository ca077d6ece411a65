"""The paper package: the paper written from the results, its checklist and a tarball.

A jinja2-rendered paper in the study plan's order (docs/paper.md): a generated abstract,
introduction and related work (the motivation and the discussion as marked drafts, citations in
place), method, setup with the data statistics of `split_report.json` and the validation
protocol, results (main table, pass@k analysis, the diversity-quality trade-off with the
baselines and ablations), discussion with limitations assembled from the pipeline's warnings, the
conclusion's first sentence, the code and data availability statement and a reproducibility
appendix (`reporting.reproducibility`). `build_paper` compiles it when TeX is present
(`reporting.tex`), ticks `submission/checklist.md` from what was written
(`reporting.checklist`), and packs `submission.tar.gz`.

The sentences are written from the numbers, never ahead of them: Python decides "better",
"worse" or "no detectable difference" by the primary rule (the aggregate's `comparisons`, which
set the tables' daggers, and the verdict block: one reading per difference), `paper_text` words
the abstract, the finding, the limitations and the conclusion from them, and the templates only
pick the wording for each word. The ablation table is included when the study has ablations.
Every string taken from data or config is LaTeX-escaped by the environment of
`latex.make_environment`. The tarball is byte-for-byte reproducible: one flat `submission/`
folder (plus `dataset/`), sorted names, mtime 0, uid/gid 0, gzip header without a time or name.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from polychromic.config import Experiment, Settings, criterion_is_reward
from polychromic.contract import AGGREGATE_FILES, FIGURES
from polychromic.data.card import card_origin
from polychromic.data.release import every_pair_labelled
from polychromic.encoders import same_encoder
from polychromic.evaluation.registry import get_metric, label, main_passk, shown_in
from polychromic.io import read_json, write_text
from polychromic.reporting import paper_text as text
from polychromic.reporting.checklist import Compiled, build_checklist
from polychromic.reporting.checklist import render as render_checklist
from polychromic.reporting.judges import paper_sentences as judge_sentences
from polychromic.reporting.latex import Latex, comparison_of, format_signed, make_environment
from polychromic.reporting.reproducibility import appendix_facts
from polychromic.reporting.significance import alpha_of
from polychromic.reporting.tex import compile_pdf, compile_table
from polychromic.settings import as_dict
from polychromic.systems import is_variant

log = logging.getLogger(__name__)

MAIN_TEMPLATE = "main.tex.j2"
BIB_TEMPLATE = "references.bib.j2"
APPENDIX_TEMPLATE = "paper_appendix.tex.j2"
APPENDIX_FILE = "reproducibility.tex"  # this run's record, input by main.tex


def format_p(value: float | None) -> Latex:
    """A p-value for the text: `$p<0.001$`, `$p=0.034$` or `$p$ n/a`."""
    if value is None or not math.isfinite(value):
        return Latex("$p$ n/a")
    if value < 0.001:
        return Latex("$p<0.001$")
    return Latex(f"$p={value:.3f}$")


def format_p_value(value: float | None) -> Latex:
    """A p-value for a table cell: `0.034`, `$<$0.001` or `n/a`."""
    if value is None or not math.isfinite(value):
        return Latex("n/a")
    return Latex("$<$0.001" if value < 0.001 else f"{value:.3f}")


def comparison(aggregated: dict[str, Any], metric: str, ref: str,
               other: str) -> dict[str, Any] | None:
    """Numbers and reading of one main comparison, from the aggregate's record of it (the
    primary rule, the record the tables' daggers read: one reading per difference); None when
    a mean is missing."""
    entries = [aggregated["systems"].get(name, {}).get(metric) for name in (ref, other)]
    if any(entry is None or entry.get("mean") is None for entry in entries):
        log.warning("comparison %s vs %s on %s skipped: a mean is missing", ref, other, metric)
        return None
    found = comparison_of(aggregated, metric, ref, other) or {}
    diff = found.get("diff")
    return {
        "label": label(metric), "ref": ref, "other": other, "metric": metric,
        "metric_kind": get_metric(metric).group,
        "raw_diff": f"{diff:+.3f}" if diff is not None else "n/a",
        "ref_entry": entries[0], "other_entry": entries[1],
        "diff": format_signed(diff), "direction": found.get("direction", "untested"),
        "higher_or_lower": "higher" if (diff or 0) > 0 else "lower",
        "tested": found.get("p_holm") is not None,
        "ci_low": format_signed(found.get("ci_low")),
        "ci_high": format_signed(found.get("ci_high")),
        "p_holm": format_p(found.get("p_holm")), "family": found.get("family"),
        "family_size": found.get("family_size"),
    }


def main_comparisons(aggregated: dict[str, Any], ref: str, other: str) -> list[dict]:
    """The headline pass@k and the metrics the registry shows in the paper."""
    present = aggregated.get("metric_order", [])
    metrics = [main_passk(present), *shown_in("paper", present)]
    found = [comparison(aggregated, metric, ref, other) for metric in metrics
             if metric is not None]
    return [item for item in found if item is not None]


# the figures shown side by side, per results subsection; a figure of FIGURES not named here
# gets a float of its own at the end of the trade-off subsection
FIGURE_ROWS = {"passk": (("passk_curves", "validation_frontier"),),
               "tradeoff": (("diversity_comparison", "quality_comparison"),
                            ("pareto", "frontier"))}


def figure_rows(figures: list[str]) -> dict[str, list[list[dict[str, Latex]]]]:
    """The figure floats of each results subsection: rows of one or two present figures, each
    `{file, label}`."""
    def entry(name: str) -> dict[str, Latex]:
        return {"file": Latex(name), "label": Latex("fig:" + name.replace("_", "-"))}

    present = [name for name in figures if name in FIGURES]
    rows: dict[str, list[list[dict[str, Latex]]]] = {}
    for part, groups in FIGURE_ROWS.items():
        rows[part] = [[entry(name) for name in group if name in present] for group in groups]
        rows[part] = [row for row in rows[part] if row]
    placed = {name for groups in FIGURE_ROWS.values() for group in groups for name in group}
    rows["tradeoff"] += [[entry(name)] for name in present if name not in placed]
    return rows


def split_rows(split_report: dict) -> list[dict[str, Any]]:
    """Per split: pairs and tweets ('--' where the report lacks them)."""
    splits = split_report.get("splits") if isinstance(split_report, dict) else None
    rows = []
    for name, block in (splits or {}).items():
        block = block if isinstance(block, dict) else {}
        rows.append({"name": str(name), "pairs": block.get("pairs", "--"),
                     "tweets": block.get("tweets", "--")})
    return rows


def with_gate(experiment: Experiment, aggregated: dict[str, Any]) -> dict[str, Any]:
    """An experiment's config for the method section, its quality gate as trained: the
    configured number, or the one calibrated on validation (the aggregate's
    `experiments.*.quality_gate`; None where the runs recorded none) with `gate_source`."""
    config = experiment.as_config()
    if "quality_threshold" not in config or config["quality_threshold"] is not None:
        return {**config, "gate_source": "config"}
    gate = ((aggregated.get("experiments") or {}).get(experiment.name) or {}).get(
        "quality_gate") or {}
    thresholds = [t for t in gate.get("thresholds") or [] if t is not None]
    return {**config, "quality_threshold": f"{thresholds[0]:.3f}" if thresholds else None,
            "gate_source": "validation"}


def _polychromic_settings(settings: Settings, aggregated: dict[str, Any]) -> dict[str, Any]:
    """The settings of the first polychromic experiment with the CE anchor, for the method
    section."""
    for experiment in settings.experiments.values():
        if experiment.objective == "polychromic" and experiment.settings.ce_weight:
            return with_gate(experiment, aggregated)
    return {}


def objective_settings(settings: Settings, aggregated: dict[str, Any]
                       ) -> dict[str, dict[str, Any]]:
    """The first experiment of each sampling baseline, for its paragraph of the method section:
    `diversity_bonus`, `passk_training`, and `polychromic_setrl` (polychromic without the CE
    anchor)."""
    found: dict[str, dict[str, Any]] = {}
    for experiment in settings.experiments.values():
        key = experiment.objective
        if key == "polychromic" and not experiment.settings.ce_weight:
            key = "polychromic_setrl"
        if key in ("diversity_bonus", "passk_training", "polychromic_setrl"):
            found.setdefault(key, with_gate(experiment, aggregated))
    return found


def reward_models(settings: Settings) -> list[str]:
    """The reward encoders of the study's objectives."""
    return sorted({str(e.settings.reward_model) for e in settings.experiments.values()
                   if hasattr(e.settings, "reward_model")})


def data_origin(release_dir: str | None, settings: Settings) -> dict[str, Any]:
    """Where the corpus comes from, for the paper and its checklist: what the release's card
    says (`synthetic`, `demo`), the files read (`sources`, data.raw) and whether the tiny base
    model's pretraining balanced the replies by stance (`stance_balanced`: it does when every
    pair has a stance, `models.tiny`)."""
    return {**card_origin(release_dir),
            "sources": [Path(str(path)).name for path in settings.data.raw],
            "stance_balanced": settings.model.path is None and settings.model.name is None
            and every_pair_labelled(release_dir)}


def _context(aggregated: dict, statistics: list[dict], split_report: dict,
             figures: list[str], settings: Settings) -> dict[str, Any]:
    ref, other = settings.evaluation.reference_system, settings.evaluation.baseline_system
    judge = ((aggregated.get("settings") or {}).get("passk") or {}).get("judge") or {}
    return {
        "title": settings.paper.title,
        "author": settings.paper.author,
        "seeds": aggregated.get("seeds", []),
        "systems": aggregated.get("system_order", []),
        "reference": ref,
        "model_path": settings.model.path or settings.model.name,  # a folder or a known name
        "lora": as_dict(settings.lora),
        "training": as_dict(settings.training),
        "poly": _polychromic_settings(settings, aggregated),
        "objectives": objective_settings(settings, aggregated),
        "objective_names": list(dict.fromkeys(e.objective
                                              for e in settings.experiments.values())),
        "release_texts": settings.paper.release_texts,
        "has_variants": any(is_variant(name) for name in aggregated.get("system_order", [])),
        "generation": as_dict(settings.generation),
        "passk": ((aggregated.get("settings") or {}).get("passk") or {}).get("passk")
                 or as_dict(settings.evaluation.passk),
        "judge": judge.get("name"),
        "judge_precision": judge.get("precision"),
        "reward_models": reward_models(settings),
        "judge_is_reward": any(same_encoder(settings.evaluation.judge, model)
                               for model in reward_models(settings)),
        "criterion_is_reward": criterion_is_reward(settings),
        "splits": split_rows(split_report),
        "comparisons": main_comparisons(aggregated, ref, other),
        "objective_comparisons": aggregated.get("objective_comparisons") or {},
        "selection": aggregated.get("selection"),
        "testbed": aggregated.get("testbed") or {"available": False},
        "calibration": aggregated.get("calibration"),
        "verdict": aggregated.get("verdict") or {
            "available": False, "reason": "the aggregate has no verdict block"},
        "alpha": alpha_of(statistics),
        "ablations": aggregated.get("ablation_systems") or [],
        "figure_names": [name for name in figures if name in FIGURES],
        "figure_rows": figure_rows(figures),
    }


def render_paper(context: dict[str, Any], templates_dir: str) -> tuple[str, str, str]:
    """(main.tex, references.bib, reproducibility.tex) text."""
    environment = make_environment(templates_dir)
    environment.filters["p"] = format_p
    environment.filters["signed"] = format_signed
    environment.filters["pvalue"] = format_p_value
    main = environment.get_template(MAIN_TEMPLATE).render(**context)
    bib = environment.get_template(BIB_TEMPLATE).render()
    appendix = environment.get_template(APPENDIX_TEMPLATE).render(**context)
    return main, bib, appendix


def write_tarball(files: list[Path], tarball: str | Path, folder: str = "submission",
                  release_dir: str | Path | None = None) -> None:
    """A reproducible .tar.gz of `files` flat inside `folder/`, plus the data release (a folder
    of its own, `polychromic.data.release`) as `folder/dataset/`."""
    entries = [(path.name, path) for path in files]
    if release_dir is not None:
        root = Path(release_dir)
        entries += [(f"dataset/{path.relative_to(root).as_posix()}", path)
                    for path in root.rglob("*") if path.is_file()
                    and path.name != ".snakemake_timestamp"]  # Snakemake's folder marker
    folders = sorted({str(Path(name).parent) for name, _ in entries} - {"."})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ["", *folders]:
            tar.addfile(_tarinfo(f"{folder}/{name}/".replace("//", "/"), tarfile.DIRTYPE, 0,
                                 0o755))
        for name, path in sorted(entries):
            data = path.read_bytes()
            tar.addfile(_tarinfo(f"{folder}/{name}", tarfile.REGTYPE, len(data), 0o644),
                        io.BytesIO(data))
    out = Path(tarball)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                               mtime=0) as gz:
        gz.write(buffer.getvalue())
    os.replace(tmp, out)


def _tarinfo(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def add_prose(context: dict[str, Any], aggregated: dict[str, Any]) -> dict[str, Any]:
    """The generated abstract, limitations and conclusion (`paper_text`) in the context, with
    the simulated power of the final test (the aggregate's `power`)."""
    power = aggregated.get("power")
    return {**context, "power": power,
            "title_note": text.title_note(context),
            "origin_sentence": text.origin_sentence(context.get("origin") or {}),
            "abstract": text.abstract(context, power),
            "limitations": text.limitations(context, aggregated, power),
            "conclusion_first": text.conclusion_first(context),
            "finding": text.finding_sentence(context["verdict"]),
            "judges_text": judge_sentences(aggregated),
            "judges_primary": (((aggregated.get("settings") or {}).get("passk") or {}).get(
                "judges") or {}).get("primary", "similarity"),
            "discussion": [sentence for sentence in (
                text.diversity_sentence(aggregated.get("diversity_effect")),
                text.objectives_sentence(context["objective_comparisons"],
                                         context["reference"]),
                text.testbed_sentence(context["testbed"])) if sentence],
            "question": text.QUESTION}


def _sources(folder: Path, rendered: tuple[str, str, str], table: str,
             ablation_table: str | None, figures: tuple[str, list[str]]) -> list[Path]:
    """main.tex, references.bib, the appendix, the tables and the figure PDFs written into
    `folder`."""
    for name, content in zip(("main.tex", "references.bib", APPENDIX_FILE), rendered,
                             strict=True):
        write_text(folder / name, content)
    shutil.copyfile(table, folder / AGGREGATE_FILES["table"])
    files = [folder / name for name in ["main.tex", "references.bib", APPENDIX_FILE,
                                        AGGREGATE_FILES["table"]]]
    (folder / AGGREGATE_FILES["ablation_table"]).unlink(missing_ok=True)
    if ablation_table is not None:
        shutil.copyfile(ablation_table, folder / AGGREGATE_FILES["ablation_table"])
        files.append(folder / AGGREGATE_FILES["ablation_table"])
    figures_dir, names = figures
    for name in names:
        shutil.copyfile(Path(figures_dir) / f"{name}.pdf", folder / f"{name}.pdf")
    return files + [folder / f"{name}.pdf" for name in names]


def check_paper(folder: Path, files: list[Path], aggregated: dict[str, Any],
                settings: Settings, figures: list[str], release_dir: str | None,
                origin: dict[str, Any] | None = None) -> tuple[list, Compiled | None]:
    """Compile (when TeX is present), compile each input table on its own, and tick the
    checklist from what was written; the items and what TeX left."""
    compiled = compile_pdf(folder, files)
    tables = [path for path in files
              if path.suffix == ".tex" and path.name not in ("main.tex", APPENDIX_FILE)]
    if compiled is not None:
        compiled.tables = {path.name: compile_table(path) for path in tables}
    items = build_checklist(
        (folder / "main.tex").read_text(encoding="utf-8"),
        (folder / "references.bib").read_text(encoding="utf-8"),
        [path.name for path in files], aggregated, settings.seeds, (figures, FIGURES),
        (release_dir, settings.paper.release_texts), compiled, settings.paper.page_limit,
        (folder / APPENDIX_FILE).read_text(encoding="utf-8"), origin)
    return items, compiled


def keep_evidence(folder: Path, evidence_dir: str | None, checklist: str | None) -> str:
    """Copies of main.tex, main.log and the checklist where a failed job's outputs are not
    deleted; the sentence that names them."""
    if evidence_dir is None:
        return ""
    out = Path(evidence_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept = []
    for path in [folder / "main.tex", folder / "main.log", *([Path(checklist)] if checklist
                                                             else [])]:
        if path.is_file():
            shutil.copyfile(path, out / path.name)
            kept.append(str(out / path.name))
    return f" (kept: {', '.join(kept)})" if kept else ""


def build_paper(aggregated: str, table: str, figures_dir: str, split_report: str,
                statistics: list[str], paper_dir: str, tarball: str, templates_dir: str,
                settings: Settings, ablation_table: str | None = None,
                release_dir: str | None = None, passk: list[str] | None = None,
                provenance: dict[str, Any] | None = None, checklist: str | None = None,
                evidence_dir: str | None = None) -> list:
    """Render the paper into `paper_dir`, compile it when TeX is present, write `checklist`
    and pack `tarball` (sources, checklist, the data release of `release_dir`); return the
    checklist's items. `provenance` holds `reproducibility.appendix_facts`' arguments.
    Fails, keeping main.tex, main.log and the checklist in `evidence_dir`, on a TeX error, an
    unresolved citation or reference, or a table that does not compile."""
    folder = Path(paper_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("main.pdf", "main.log"):  # from an earlier run: never left looking current
        (folder / stale).unlink(missing_ok=True)
    figures = [name for name in FIGURES if (Path(figures_dir) / f"{name}.pdf").is_file()]
    if set(FIGURES) - set(figures):
        log.warning("figures missing from %s, left out of the paper: %s", figures_dir,
                    sorted(set(FIGURES) - set(figures)))
    data, passk_docs = read_json(aggregated), [read_json(path) for path in passk or []]
    context = _context(data, [read_json(path) for path in statistics],
                       read_json(split_report), figures, settings)
    context["release"] = release_dir is not None
    context["origin"] = data_origin(release_dir, settings)
    context["ablations"] = context["ablations"] if ablation_table is not None else []
    context["appendix"] = (appendix_facts(**provenance, evaluation=passk_docs)
                           if provenance else None)
    context = add_prose(context, data)
    files = _sources(folder, render_paper(context, templates_dir), table,
                     ablation_table if context["ablations"] else None, (figures_dir, figures))
    items, compiled = check_paper(folder, files, data, settings, figures, release_dir,
                                  context["origin"])
    if checklist is not None:
        write_text(checklist, render_checklist(items))
        files.append(Path(checklist))
    blocking = [item for item in items if item.blocking and item.ok is False]
    if blocking:
        detail = f"\n{compiled.error}" if compiled is not None and compiled.error else ""
        raise RuntimeError("the paper has " + "; ".join(f"{item.name}: {item.evidence}"
                                                        for item in blocking)
                           + keep_evidence(folder, evidence_dir, checklist) + detail)
    write_tarball(files, tarball, release_dir=release_dir)
    return items
