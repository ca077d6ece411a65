"""The paper's PDF from the two commands: `make run` installs TeX where it can (root with
apt-get), otherwise its last lines say why there is no main.pdf and the command that builds it;
once TeX is on PATH, the next run re-runs the paper rule (its params name the TeX engine).

A machine without TeX is simulated with a PATH that hides it: a folder of links to every program
of /usr/bin and /bin except the TeX engines. A machine with TeX, where there is none, with a
stand-in `latexmk` (only dry runs and `which` see it). Fake `apt-get` and `id` programs stand in
for the real ones, so no test installs anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from polychromic.reporting import tex

from conftest import REPO, SNAKEMAKE, job_counts, snakemake, stand_in_outputs

TEX_PROGRAMS = {"latexmk", "pdflatex"}
MAKE = shutil.which("make")


def path_without_tex(folder: Path) -> str:
    """A PATH holding every program of /usr/bin and /bin but the TeX engines (links in
    `folder`), then the virtual environment's programs."""
    folder.mkdir(parents=True, exist_ok=True)
    for directory in (Path("/usr/bin"), Path("/bin")):
        for program in directory.iterdir() if directory.is_dir() else []:
            target = folder / program.name
            if program.name not in TEX_PROGRAMS and not target.exists():
                target.symlink_to(program)
    return os.pathsep.join([str(folder), str(SNAKEMAKE.parent)])


def fake_programs(folder: Path, uid: int, tex: bool = False) -> Path:
    """`id` printing `uid`, an `apt-get` that logs its arguments to folder/apt.log, and (with
    `tex`) a `latexmk` that does nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {"id": f"#!/bin/sh\necho {uid}\n",
               "apt-get": f'#!/bin/sh\necho "$@" >> "{folder}/apt.log"\n'}
    if tex:
        scripts["latexmk"] = "#!/bin/sh\nexit 0\n"
    for name, body in scripts.items():
        (folder / name).write_text(body, encoding="utf-8")
        (folder / name).chmod(0o755)
    return folder


def tex_flipped_path(folder: Path) -> str:
    """A PATH on which TeX's presence is the opposite of this machine's."""
    if tex.tex_engine() is not None:
        return path_without_tex(folder)
    fakes = fake_programs(folder, os.getuid(), tex=True)
    return os.pathsep.join([str(fakes), os.environ["PATH"]])


def test_the_hidden_path_hides_tex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without_tex(tmp_path / "bin"))
    assert tex.tex_engine() is None and shutil.which("sh") is not None
    monkeypatch.setenv("PATH", os.pathsep.join([str(fake_programs(tmp_path / "fake", 0, True)),
                                                os.environ["PATH"]]))
    assert tex.tex_engine() == "latexmk"


def test_the_notice_says_why_and_the_command(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "main.tex").write_text("x", encoding="utf-8")
    fakes = fake_programs(tmp_path / "fake", 1000)
    monkeypatch.setenv("PATH", os.pathsep.join([str(fakes), path_without_tex(tmp_path / "b")]))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    lines = tex.missing_pdf_notice(paper)
    packages = " ".join(tex.TEX_PACKAGES)
    assert lines[0].startswith("No paper PDF: neither latexmk nor pdflatex is on PATH")
    assert lines[-1].strip() == (f"sudo apt-get install -y --no-install-recommends {packages} "
                                 "&& make run")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert tex.missing_pdf_notice(paper)[-1].strip().startswith("apt-get install -y")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get either
    assert "TeX Live" in tex.missing_pdf_notice(paper)[-1]
    (paper / "main.pdf").write_bytes(b"%PDF")
    assert tex.missing_pdf_notice(paper) == []


def test_the_notice_is_printed_by_the_module(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": path_without_tex(tmp_path / "bin")}
    done = subprocess.run([str(SNAKEMAKE.with_name("python")), "-m", "polychromic.reporting.tex",
                           "--notice", str(tmp_path / "paper")], capture_output=True, text=True,
                          env=env, check=True)
    last = done.stdout.strip().splitlines()
    assert "No paper PDF" in last[0] and last[-1].strip().endswith("&& make run")
    assert " ".join(tex.TEX_PACKAGES) in last[-1]


def test_the_makefile_installs_the_packages_of_the_library() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    packages = re.search(r"^TEX_PACKAGES\s*:=\s*(.+)$", makefile, re.M).group(1).split()
    assert tuple(packages) == tex.TEX_PACKAGES
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert run.splitlines()[0].split() == ["$(STAMP)", "tex"]
    assert run.rstrip().endswith("-m polychromic.reporting.tex --notice results/paper")
    assert re.search(r"^venv: .*\btex\b", makefile, re.M)


def _make_tex(tmp_path: Path, uid: int, hide_tex: bool = True,
              *args: str) -> tuple[str, str]:
    """`make tex` with fake id and apt-get: its output and what apt-get was asked."""
    fakes = fake_programs(tmp_path / f"fake{uid}", uid)
    rest = path_without_tex(tmp_path / "bin") if hide_tex else os.environ["PATH"]
    env = {**os.environ, "PATH": os.pathsep.join([str(fakes), rest])}
    done = subprocess.run([MAKE, "-s", "-C", str(REPO), "tex", *args], capture_output=True,
                          text=True, env=env, check=True)
    log = fakes / "apt.log"
    return done.stdout, log.read_text(encoding="utf-8") if log.is_file() else ""


@pytest.mark.skipif(MAKE is None, reason="no make on PATH")
def test_make_tex_installs_tex_as_root_with_apt(tmp_path: Path) -> None:
    output, apt = _make_tex(tmp_path, 0)
    assert "installing texlive-latex-base" in output
    assert apt.splitlines() == ["update -qq", "install -y -qq --no-install-recommends "
                                + " ".join(tex.TEX_PACKAGES)]
    output, apt = _make_tex(tmp_path / "off", 0, True, "INSTALL_TEX=0")
    assert apt == "" and "TeX not found" in output


@pytest.mark.skipif(MAKE is None, reason="no make on PATH")
def test_make_tex_without_root_installs_nothing_and_says_so(tmp_path: Path) -> None:
    output, apt = _make_tex(tmp_path, 1000)
    assert apt == "" and "TeX not found" in output


@pytest.mark.skipif(MAKE is None or tex.tex_engine() is None, reason="no TeX on this machine")
def test_make_tex_with_tex_does_nothing(tmp_path: Path) -> None:
    assert _make_tex(tmp_path, 0, False) == ("", "")


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_the_paper_reruns_once_tex_appears(tmp_path: Path) -> None:
    """Every output stood in for, the paper's recorded with this machine's TeX (or its
    absence): a dry run with the opposite has the paper (and only it) to do, for its params."""
    work = tmp_path / "work"
    work.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["raw"] = [str(REPO / "resources" / "demo" / "raw.jsonl")]
    (work / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    stand_in_outputs(work)
    snakemake(work, "--touch", "--cores", "1", "--forcerun", "paper")  # records its params
    assert "Nothing to be done" in snakemake(work, "-n")
    env = {**os.environ, "PATH": tex_flipped_path(tmp_path / "bin")}
    done = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile",
         str(work / "config.yaml"), "-n"], capture_output=True, text=True, env=env,
        timeout=300, check=False, cwd=work)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    assert job_counts(text) == {"paper": 1, "all": 1}, text[-3000:]
    assert re.search(r"params have changed since last execution:\s+paper", text), text[-2000:]
