"""The paper package: a LaTeX skeleton filled from the results, a bibliography and a tarball.

A jinja2-rendered paper (title, abstract placeholder, method with the polychromic objective,
setup with the data statistics of `split_report.json`, results with the table, the figures, the
verdict and one sentence per main comparison) plus `submission.tar.gz`, compiled to PDF when a
TeX engine is present.

The comparison sentences are written from the numbers, never ahead of them: Python decides
"better", "worse" or "no detectable difference" with `significance.detect` (the every-seed
rule, which sets the table's daggers), and the template only picks the wording for that
verdict. The
ablation table is included when the study has ablations. Every string taken from data or
config is LaTeX-escaped by the environment of `latex.make_environment`. The tarball is
byte-for-byte reproducible: one flat `submission/` folder, sorted names, mtime 0, uid/gid 0,
gzip header without a time or name.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from polychromic.config import Settings
from polychromic.contract import AGGREGATE_FILES, FIGURES
from polychromic.encoders import same_encoder
from polychromic.evaluation.registry import label, main_passk, shown_in
from polychromic.io import read_json, write_text
from polychromic.reporting.latex import Latex, make_environment
from polychromic.reporting.significance import Evidence, alpha_of, detect
from polychromic.settings import as_dict
from polychromic.systems import is_variant

log = logging.getLogger(__name__)

MAIN_TEMPLATE = "main.tex.j2"
BIB_TEMPLATE = "references.bib.j2"
COMPILE_TIMEOUT_S = 300


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


def format_signed(value: float | None) -> Latex:
    if value is None or not math.isfinite(value):
        return Latex("n/a")
    return Latex(f"${value:+.3f}$")


def comparison(evidence: Evidence, metric: str, ref: str, other: str) -> dict[str, Any] | None:
    """Numbers and verdict of one main comparison by the every-seed rule (the table's daggers);
    None when a mean is missing."""
    entries = [evidence.aggregated["systems"].get(name, {}).get(metric) for name in (ref, other)]
    if any(entry is None or entry.get("mean") is None for entry in entries):
        log.warning("comparison %s vs %s on %s skipped: a mean is missing", ref, other, metric)
        return None
    found = detect(evidence, [metric], ref, other, "every_seed")[0]
    return {
        "label": label(metric), "ref": ref, "other": other,
        "ref_entry": entries[0], "other_entry": entries[1],
        "diff": format_signed(found["diff"]), "direction": found["direction"],
        "higher_or_lower": "higher" if (found["diff"] or 0) > 0 else "lower",
        "n_tests": found["n_tests"], "n_seeds": evidence.n_seeds,
        "holm_min": format_p(found["p_holm_min"]), "holm_max": format_p(found["p_holm"]),
    }


def main_comparisons(evidence: Evidence, ref: str, other: str) -> list[dict]:
    """The headline pass@k and the metrics the registry shows in the paper."""
    present = evidence.aggregated.get("metric_order", [])
    metrics = [main_passk(present), *shown_in("paper", present)]
    found = [comparison(evidence, metric, ref, other) for metric in metrics if metric is not None]
    return [item for item in found if item is not None]


def split_rows(split_report: dict) -> list[dict[str, Any]]:
    """Per split: pairs and tweets ('--' where the report lacks them)."""
    splits = split_report.get("splits") if isinstance(split_report, dict) else None
    rows = []
    for name, block in (splits or {}).items():
        block = block if isinstance(block, dict) else {}
        rows.append({"name": str(name), "pairs": block.get("pairs", "--"),
                     "tweets": block.get("tweets", "--")})
    return rows


def _polychromic_settings(settings: Settings) -> dict[str, Any]:
    """The settings of the first polychromic experiment with the CE anchor, for the method
    section."""
    for experiment in settings.experiments.values():
        if experiment.objective == "polychromic" and experiment.settings.ce_weight:
            return experiment.as_config()
    return {}


def objective_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """The first experiment of each sampling baseline, for its paragraph of the method section:
    `diversity_bonus`, `passk_training`, and `polychromic_setrl` (polychromic without the CE
    anchor)."""
    found: dict[str, dict[str, Any]] = {}
    for experiment in settings.experiments.values():
        key = experiment.objective
        if key == "polychromic" and not experiment.settings.ce_weight:
            key = "polychromic_setrl"
        if key in ("diversity_bonus", "passk_training", "polychromic_setrl"):
            found.setdefault(key, experiment.as_config())
    return found


def reward_models(settings: Settings) -> list[str]:
    """The reward encoders of the study's objectives."""
    return sorted({str(e.settings.reward_model) for e in settings.experiments.values()
                   if hasattr(e.settings, "reward_model")})


def _context(aggregated: dict, statistics: list[dict], split_report: dict,
             figures: list[str], settings: Settings) -> dict[str, Any]:
    evidence = Evidence(aggregated, statistics)
    ref, other = settings.evaluation.reference_system, settings.evaluation.baseline_system
    judge = ((aggregated.get("settings") or {}).get("passk") or {}).get("judge") or {}
    return {
        "title": settings.paper.title,
        "author": settings.paper.author,
        "seeds": aggregated.get("seeds", []),
        "systems": aggregated.get("system_order", []),
        "reference": ref,
        "model_path": settings.model.path,
        "lora": as_dict(settings.lora),
        "training": as_dict(settings.training),
        "poly": _polychromic_settings(settings),
        "objectives": objective_settings(settings),
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
        "splits": split_rows(split_report),
        "comparisons": main_comparisons(evidence, ref, other),
        "objective_comparisons": aggregated.get("objective_comparisons") or {},
        "selection": aggregated.get("selection"),
        "testbed": aggregated.get("testbed") or {"available": False},
        "verdict": aggregated.get("verdict") or {
            "available": False, "reason": "the aggregate has no verdict block"},
        "alpha": alpha_of(statistics),
        "ablations": aggregated.get("ablation_systems") or [],
        "figures": [{"file": Latex(name), "label": Latex("fig:" + name.replace("_", "-"))}
                    for name in figures if name in FIGURES],
    }


def render_paper(context: dict[str, Any], templates_dir: str) -> tuple[str, str]:
    """(main.tex, references.bib) text."""
    environment = make_environment(templates_dir)
    environment.filters["p"] = format_p
    environment.filters["signed"] = format_signed
    environment.filters["pvalue"] = format_p_value
    main = environment.get_template(MAIN_TEMPLATE).render(**context)
    bib = environment.get_template(BIB_TEMPLATE).render()
    return main, bib


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


def _tail(path: Path, lines: int = 40) -> str:
    if not path.is_file():
        return f"(no {path.name})"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _compile_commands() -> list[list[str]] | None:
    """latexmk, else pdflatex + bibtex + pdflatex x2; None without a TeX engine."""
    if shutil.which("latexmk"):
        engine = "pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error %O %S"
        return [["latexmk", "-pdf", f"-pdflatex={engine}", "-interaction=nonstopmode",
                 "-halt-on-error", "main.tex"]]
    if shutil.which("pdflatex"):
        latex = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                 "main.tex"]
        bibtex = [["bibtex", "main"]] if shutil.which("bibtex") else []
        return [latex, *bibtex, latex, latex]
    return None


def compile_pdf(paper_dir: str | Path, files: list[Path]) -> Path | None:
    """Compile main.tex to `paper_dir`/main.pdf in a clean scratch folder (no stale .aux);
    shell escape off, dates fixed. None without TeX; RuntimeError with the log tail on failure.
    """
    commands = _compile_commands()
    if commands is None:
        log.info("PDF skipped: neither latexmk nor pdflatex is on PATH "
                 "(Debian: texlive-latex-recommended latexmk)")
        return None
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
    out = Path(paper_dir) / "main.pdf"
    with tempfile.TemporaryDirectory(prefix="paper-") as scratch:
        build = Path(scratch)
        for path in files:
            shutil.copyfile(path, build / path.name)
        for command in commands:
            done = subprocess.run(command, cwd=build, env=env, capture_output=True, text=True,
                                  timeout=COMPILE_TIMEOUT_S, check=False)
            if done.returncode != 0:
                if (build / "main.log").is_file():
                    shutil.copyfile(build / "main.log", Path(paper_dir) / "main.log")
                raise RuntimeError(f"{command[0]} failed ({done.returncode}) on main.tex; "
                                   f"log tail:\n{_tail(build / 'main.log')}\n"
                                   f"output tail:\n{done.stdout[-2000:]}")
        shutil.copyfile(build / "main.pdf", out)
    log.info("compiled %s", out)
    return out


def build_paper(aggregated: str, table: str, figures_dir: str, split_report: str,
                statistics: list[str], paper_dir: str, tarball: str, templates_dir: str,
                settings: Settings, ablation_table: str | None = None,
                release_dir: str | None = None) -> None:
    """Render the paper into `paper_dir`, pack `tarball` (with the data release of
    `release_dir`) and compile when TeX is present. `ablation_table` is copied and included
    when the aggregate lists ablation systems."""
    folder = Path(paper_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("main.pdf", "main.log"):  # from an earlier run: never left looking current
        (folder / stale).unlink(missing_ok=True)
    figures = [name for name in FIGURES if (Path(figures_dir) / f"{name}.pdf").is_file()]
    missing = sorted(set(FIGURES) - set(figures))
    if missing:
        log.warning("figures missing from %s, left out of the paper: %s", figures_dir, missing)
    data = read_json(aggregated)
    context = _context(data, [read_json(path) for path in statistics],
                       read_json(split_report), figures, settings)
    context["release"] = release_dir is not None
    if ablation_table is None:
        context["ablations"] = []
    main, bib = render_paper(context, templates_dir)
    write_text(folder / "main.tex", main)
    write_text(folder / "references.bib", bib)
    shutil.copyfile(table, folder / AGGREGATE_FILES["table"])
    for name in figures:
        shutil.copyfile(Path(figures_dir) / f"{name}.pdf", folder / f"{name}.pdf")
    files = [folder / name for name in ["main.tex", "references.bib", AGGREGATE_FILES["table"]]]
    (folder / AGGREGATE_FILES["ablation_table"]).unlink(missing_ok=True)
    if context["ablations"]:
        shutil.copyfile(ablation_table, folder / AGGREGATE_FILES["ablation_table"])
        files.append(folder / AGGREGATE_FILES["ablation_table"])
    files += [folder / f"{name}.pdf" for name in figures]
    write_tarball(files, tarball, release_dir=release_dir)
    compile_pdf(folder, files)
