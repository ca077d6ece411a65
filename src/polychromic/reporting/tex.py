"""Compiling the paper: main.tex to main.pdf, and each input table on its own.

Every compile runs in a clean scratch folder (no stale .aux), with shell escape off and the dates
fixed (SOURCE_DATE_EPOCH), using latexmk when it is on PATH, else pdflatex + bibtex + pdflatex
twice. It returns what the checklist reads (`checklist.Compiled`: the final log, the .aux and
bibtex's log, and the error with the log's tail when TeX stops on one: -halt-on-error). Without
a TeX engine it returns None and says how to install one. A paper that does not compile is not
an exception here: its error is recorded, so that the checklist is still written before the
paper step fails.

`tex_engine` names the engine the compile would use: the `paper` rule passes it as a param, so
a run after TeX was installed (or removed) re-runs the paper. `python -m
polychromic.reporting.tex --notice results/paper` prints, where there is no main.pdf, why and
the one command that builds it: the last lines of `make run`.

A table is compiled on its own in a minimal article with the paper's packages, so that a table
that breaks is named, not lost in the paper's log.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from polychromic.reporting.checklist import Compiled

log = logging.getLogger(__name__)

COMPILE_TIMEOUT_S = 300
# the Debian packages of TeX that compile the paper (the Makefile's TEX_PACKAGES, as .ci/run
# installs them): the article class, geometry, amsmath, booktabs, graphicx, bibtex, latexmk
TEX_PACKAGES = ("texlive-latex-base", "texlive-latex-recommended", "latexmk")
ENGINES = ("latexmk", "pdflatex")
TABLE_DOCUMENT = (
    "\\documentclass[11pt]{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{amsmath}\n"
    "\\usepackage{amssymb}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
    "\\begin{document}\n\\input{%s}\n\\end{document}\n")


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log, for an error message."""
    if not path.is_file():
        return f"(no {path.name})"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def tex_engine() -> str | None:
    """The TeX engine on PATH that `compile_commands` uses (latexmk, else pdflatex), or None."""
    return next((name for name in ENGINES if shutil.which(name)), None)


def install_command() -> str:
    """The command that installs TeX here: apt-get (with sudo unless root) where there is one,
    else what to install."""
    apt = "apt-get install -y --no-install-recommends " + " ".join(TEX_PACKAGES)
    if shutil.which("apt-get"):
        return apt if os.geteuid() == 0 else f"sudo {apt}"
    return "install TeX Live (or MacTeX, MiKTeX) with latexmk or pdflatex on PATH"


def missing_pdf_notice(paper_dir: str | Path) -> list[str]:
    """Why `paper_dir` has no main.pdf and the one command that builds it; [] when main.pdf
    is there."""
    folder = Path(paper_dir)
    if (folder / "main.pdf").is_file():
        return []
    if tex_engine() is None:
        fix = install_command()
        command = f"{fix} && make run" if fix.split()[0] in ("apt-get", "sudo") else fix
        return [f"No paper PDF: neither latexmk nor pdflatex is on PATH, so {folder}/ holds "
                "main.tex and its sources but no main.pdf.",
                "To build it, install TeX and run `make run` again (the paper rule re-runs "
                "once TeX is found):",
                f"    {command}"]
    if (folder / "main.tex").is_file():
        return [f"No paper PDF in {folder}/ although {tex_engine()} is on PATH: `make run` "
                "builds it (see results/logs/paper.log)."]
    return []


def compile_commands(name: str = "main") -> list[list[str]] | None:
    """latexmk, else pdflatex + bibtex + pdflatex x2; None without a TeX engine."""
    if shutil.which("latexmk"):
        engine = "pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error %O %S"
        return [["latexmk", "-pdf", f"-pdflatex={engine}", "-interaction=nonstopmode",
                 "-halt-on-error", f"{name}.tex"]]
    if shutil.which("pdflatex"):
        latex = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                 f"{name}.tex"]
        bibtex = [["bibtex", name]] if shutil.which("bibtex") else []
        return [latex, *bibtex, latex, latex]
    return None


def _run(commands: list[list[str]], build: Path, name: str) -> None:
    """Run the TeX `commands` in `build`; RuntimeError with the log's tail on a failure or a
    timeout. Log lines are not wrapped (max_print_line), so the checklist reads whole
    warnings."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1",
           "max_print_line": "100000"}
    for command in commands:
        try:
            done = subprocess.run(command, cwd=build, env=env, capture_output=True, text=True,
                                  timeout=COMPILE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"{command[0]} timed out after {COMPILE_TIMEOUT_S} s on "
                               f"{name}.tex; log tail:\n{tail(build / f'{name}.log')}") from error
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({done.returncode}) on {name}.tex; "
                               f"log tail:\n{tail(build / f'{name}.log')}\n"
                               f"output tail:\n{done.stdout[-2000:]}")


def _read(path: Path) -> str:
    """A file's text, or "" where TeX did not write it."""
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def compile_pdf(paper_dir: str | Path, files: list[Path]) -> Compiled | None:
    """Compile main.tex of `files` into `paper_dir`/main.pdf (module docstring): None without
    TeX; on a TeX error, what it left with the error set (`Compiled.error`, the log's tail) and
    main.log copied next to main.tex."""
    commands = compile_commands()
    if commands is None:
        log.warning("PDF skipped: neither latexmk nor pdflatex is on PATH (install: %s)",
                    install_command())
        return None
    with tempfile.TemporaryDirectory(prefix="paper-") as scratch:
        build = Path(scratch)
        for path in files:
            shutil.copyfile(path, build / path.name)
        error = None
        try:
            _run(commands, build, "main")
            shutil.copyfile(build / "main.pdf", Path(paper_dir) / "main.pdf")
        except RuntimeError as failed:
            error = str(failed)
            if (build / "main.log").is_file():
                shutil.copyfile(build / "main.log", Path(paper_dir) / "main.log")
        compiled = Compiled(log=_read(build / "main.log"), aux=_read(build / "main.aux"),
                            blg=_read(build / "main.blg"), error=error)
    log.info("compiled %s" if error is None else "%s did not compile", Path(paper_dir) /
             ("main.pdf" if error is None else "main.tex"))
    return compiled


def compile_table(table: Path) -> str | None:
    """None when `table` compiles in a minimal article, else the error's log tail."""
    commands = compile_commands("table")
    if commands is None:
        return "no TeX engine"
    with tempfile.TemporaryDirectory(prefix="table-") as scratch:
        build = Path(scratch)
        shutil.copyfile(table, build / table.name)
        (build / "table.tex").write_text(TABLE_DOCUMENT % table.stem, encoding="utf-8")
        try:
            _run([command for command in commands if command[0] != "bibtex"], build, "table")
        except RuntimeError as error:
            return " | ".join([str(error).splitlines()[0], *tail(build / "table.log", 8)
                               .splitlines()])
    return None


def main(argv: list[str] | None = None) -> int:
    """`--notice PAPER_DIR`: print why PAPER_DIR has no main.pdf (nothing when it has one)."""
    parser = argparse.ArgumentParser(prog="python -m polychromic.reporting.tex",
                                     description=main.__doc__)
    parser.add_argument("--notice", metavar="PAPER_DIR", required=True)
    args = parser.parse_args(argv)
    lines = missing_pdf_notice(args.notice)
    if lines:
        print("\n".join(["", *lines]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
