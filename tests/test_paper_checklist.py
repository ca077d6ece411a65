"""The paper's generated parts and the pre-submission checklist: every item can fail, and the
paper step fails on a broken citation, reference or table (with TeX), keeping the evidence."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from polychromic.provenance import config_hash, package_versions, rule_times
from polychromic.reporting import checklist as cl
from polychromic.reporting import paper_text as text
from polychromic.reporting.paper import build_paper
from polychromic.reporting.tex import compile_table
from test_report_helpers import TEMPLATES
from test_report_paper import HAS_TEX, _inputs

LONG_LABEL = "sec:" + "a-section-that-does-not-exist-" * 3
needs_tex = pytest.mark.skipif(not HAS_TEX, reason="no latexmk/pdflatex on PATH (Debian: "
                               "texlive-latex-recommended latexmk)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    inputs = _inputs(tmp_path_factory.mktemp("checklist"))
    items = build_paper(**inputs)
    folder = Path(inputs["paper_dir"])
    return {**inputs, "items": items,
            "main": (folder / "main.tex").read_text(encoding="utf-8"),
            "bib": (folder / "references.bib").read_text(encoding="utf-8"),
            "aggregated_doc": json.loads(Path(inputs["aggregated"]).read_text())}


def test_every_item_holds_on_a_good_paper(built: dict) -> None:
    failing = [(item.name, item.evidence) for item in built["items"] if item.ok is False]
    assert not failing
    names = [item.name for item in built["items"]]
    for name in ("All seeds run", "References complete", "Every figure referenced in the text",
                 "No placeholder outside the marked drafts", "Warnings shown in the limitations",
                 "Sections in the plan's order", "Data release (splits in Parquet with a "
                 "dataset card)"):
        assert name in names
    written = Path(built["checklist"]).read_text(encoding="utf-8")
    assert written.startswith("# Pre-submission checklist") and "- [ ]" not in written


def test_sections_in_order_with_a_generated_abstract(built: dict) -> None:
    main = built["main"]
    abstract = main.split(r"\begin{abstract}")[1].split(r"\end{abstract}")[0]
    verdict = built["aggregated_doc"]["verdict"]
    assert "placeholder" not in abstract.lower() and text.QUESTION[:40] in abstract
    assert f"{verdict['rows'][1]['diff']:+.3f}" in abstract  # the pass@10 difference
    assert verdict["verdict"] == "inconclusive (unmatched)"  # the fixture's pass@1 differ
    assert "is inconclusive (unmatched)" in abstract and "better than" not in abstract
    positions = [main.index(rf"\section{{{title}}}") for title in cl.SECTION_ORDER]
    assert positions == sorted(positions)
    conclusion = main.split(r"\label{sec:conclusion}")[1]
    assert conclusion.lstrip().startswith("This study gives no answer to its question: the "
                                          "comparison of polychromic\\_lora with the baseline "
                                          "is inconclusive (unmatched).")


def test_a_citation_without_an_entry_fails_the_check(built: dict) -> None:
    broken = built["main"].replace(r"\section{Method}", r"\section{Method} See~\cite{nosuch2099}.")
    item = cl.check_citations(broken, built["bib"], None)
    assert item.ok is False and item.blocking and "nosuch2099" in item.evidence
    assert "- [ ] **Every citation key and reference resolves**" in cl.render([item])
    assert cl.check_citations(built["main"], built["bib"], None).ok is True


def test_a_broken_citation_fails_the_paper_step_and_keeps_the_evidence(
        built: dict, tmp_path: Path) -> None:
    templates = tmp_path / "latex"
    shutil.copytree(TEMPLATES, templates)
    intro = templates / "paper_intro.tex.j2"
    intro.write_text(intro.read_text(encoding="utf-8").replace(
        r"\cite{chen2021codex}", r"\cite{nosuch2099}", 1), encoding="utf-8")
    inputs = {key: value for key, value in built.items()
              if key not in ("items", "main", "bib", "aggregated_doc")}
    inputs.update(templates_dir=str(templates), paper_dir=str(tmp_path / "paper"),
                  tarball=str(tmp_path / "submission.tar.gz"),
                  checklist=str(tmp_path / "checklist.md"), evidence_dir=str(tmp_path / "kept"))
    with pytest.raises(RuntimeError, match="nosuch2099") as error:
        build_paper(**inputs)
    assert str(tmp_path / "kept" / "checklist.md") in str(error.value)
    kept = (tmp_path / "kept" / "checklist.md").read_text(encoding="utf-8")
    assert "- [ ] **Every citation key and reference resolves**" in kept
    assert (tmp_path / "kept" / "main.tex").is_file()
    assert not (tmp_path / "submission.tar.gz").exists()  # nothing packed from a broken paper


@needs_tex
def test_an_undefined_reference_is_caught_in_the_compiled_log(built: dict,
                                                              tmp_path: Path) -> None:
    templates = tmp_path / "latex"
    shutil.copytree(TEMPLATES, templates)
    discussion = templates / "paper_discussion.tex.j2"
    discussion.write_text(discussion.read_text(encoding="utf-8").replace(
        r"\subsection{Limitations}",
        rf"See Section~\ref{{{LONG_LABEL}}}.\subsection{{Limitations}}"), encoding="utf-8")
    inputs = {key: value for key, value in built.items()
              if key not in ("items", "main", "bib", "aggregated_doc")}
    inputs.update(templates_dir=str(templates), paper_dir=str(tmp_path / "paper"),
                  tarball=str(tmp_path / "submission.tar.gz"),
                  checklist=str(tmp_path / "checklist.md"), evidence_dir=str(tmp_path / "kept"))
    # a long label: TeX would wrap the warning at 79 characters without max_print_line
    with pytest.raises(RuntimeError, match=f"reference {LONG_LABEL}"):
        build_paper(**inputs)
    assert (tmp_path / "kept" / "main.tex").is_file()


@needs_tex
def test_a_table_that_does_not_compile_fails(built: dict, tmp_path: Path) -> None:
    bad = tmp_path / "results_table.tex"
    bad.write_text("\\begin{tabular}{l}\na & b \\\\\n\\end{tabular}\n", encoding="utf-8")
    assert "failed" in (compile_table(bad) or "")
    good = Path(built["paper_dir"]) / "results_table.tex"
    assert compile_table(good) is None
    inputs = {key: value for key, value in built.items()
              if key not in ("items", "main", "bib", "aggregated_doc")}
    inputs.update(table=str(bad), paper_dir=str(tmp_path / "paper"),
                  tarball=str(tmp_path / "submission.tar.gz"),
                  checklist=str(tmp_path / "checklist.md"), evidence_dir=str(tmp_path / "kept"))
    with pytest.raises(RuntimeError, match="results_table.tex does not compile"):
        build_paper(**inputs)
    assert "Extra alignment tab" in (tmp_path / "kept" / "main.log").read_text(encoding="utf-8")
    kept = (tmp_path / "kept" / "checklist.md").read_text(encoding="utf-8")
    assert "- [ ] **LaTeX tables present and compiling**: results_table.tex does not" in kept
    assert "- [ ] **Page count (main text at most 10 pages)**: no PDF" in kept


def test_every_warning_reaches_the_limitations(built: dict) -> None:
    warnings = text.expected_warnings(built["aggregated_doc"])
    assert warnings, "the fixture's verdict carries warnings"
    assert cl.check_limitations(built["main"], warnings).ok is True
    section = cl.section_text(built["main"], "Limitations")
    first = cl.escape_latex(warnings[0][1:])
    assert first in section
    dropped = built["main"].replace(first, "something else")
    item = cl.check_limitations(dropped, warnings)
    assert item.ok is False and warnings[0][:40] in item.evidence


def test_a_placeholder_counts_only_outside_the_drafts(built: dict) -> None:
    main = built["main"]
    inside = main.replace(r"\end{draft}", r"TODO: more. \end{draft}", 1)
    assert cl.check_placeholders(inside).ok is True
    outside = main.replace(r"\section{Method}", r"\section{Method} TODO", 1)
    assert cl.check_placeholders(outside).ok is False
    old = main.replace(text.QUESTION.split()[0], r"\textit{[Abstract placeholder.]}", 1)
    assert cl.check_abstract(old, built["aggregated_doc"]).ok is False
    assert cl.check_abstract(main, built["aggregated_doc"]).ok is True
    verdict = built["aggregated_doc"]["verdict"]
    headline = text.with_ci(text.row_of(verdict, verdict["passk_metric"]))
    without = main.replace(cl.escape_latex(headline), "a number", 1)
    item = cl.check_abstract(without, built["aggregated_doc"])
    assert item.ok is False and "missing" in item.evidence


def test_sections_out_of_order_fail(built: dict) -> None:
    main = built["main"].replace(r"\section{Related work}", r"\section{Related work!}")
    assert cl.check_sections(main).ok is False
    assert cl.check_sections(built["main"]).ok is True


def test_references_need_twelve_complete_cited_entries(built: dict) -> None:
    assert cl.check_references(built["main"], built["bib"]).ok is True
    entries = cl.bib_entries(built["bib"])
    assert all(entry.get("year") for entry in entries.values())
    no_venue = re.sub(r"journal\s*=\s*\{Scandinavian Journal of Statistics\},", "", built["bib"])
    assert no_venue != built["bib"]
    main = built["main"]
    assert cl.check_references(main, no_venue).ok is False
    few = "\n".join(built["bib"].split("\n@")[:5])
    assert cl.check_references(main, few).ok is False


def test_page_count_from_the_log_and_the_aux() -> None:
    compiled = cl.Compiled(log="Output written on main.pdf (14 pages, 1 bytes).",
                           aux=r"\newlabel{paper:after-main}{{}{12}}")
    assert cl.check_pages(compiled, 11).ok is True
    assert cl.check_pages(compiled, 10).ok is False
    assert cl.check_pages(None, 10).ok is None
    assert cl.check_pages(cl.Compiled(log="", aux=""), 10).ok is False


def test_seeds_and_release_checks_fail_on_gaps(built: dict, tmp_path: Path) -> None:
    assert cl.check_seeds(built["aggregated_doc"], [42, 123, 456, 7]).ok is False
    assert cl.check_release(None, False).ok is False
    release = tmp_path / "release"
    shutil.copytree(built["release_dir"], release)
    (release / "data" / "val.parquet").unlink()
    assert cl.check_release(str(release), False).ok is False


def test_the_appendix_comes_from_the_run(built: dict) -> None:
    main = built["main"]
    assert main.split(r"\section{Reproducibility}")[1].split(r"\end{document}")[0].strip() \
        .endswith(r"\input{reproducibility}")  # this run's record: a file of its own
    appendix = (Path(built["paper_dir"]) / "reproducibility.tex").read_text(encoding="utf-8")
    assert config_hash(built["provenance"]["config"]) in appendix
    assert "train & 24 & \\texttt{abababababababab}" in appendix
    assert "train & 1 & 1.1 & 1.1 & 712" in appendix
    assert r"\texttt{config.yaml}" in appendix and "snakemake --cores N" in appendix


def test_provenance_helpers(tmp_path: Path) -> None:
    assert config_hash({"a": 1, "b": [2]}) == config_hash({"b": [2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    versions = package_versions(["pytest", "no-such-package-xyz"])
    assert versions["no-such-package-xyz"] == "not installed" and versions["pytest"][0].isdigit()
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.tsv").write_text("s\tmax_rss\n10\t100\n")
    (tmp_path / "train" / "b.tsv").write_text("s\tmax_rss\n30\tNA\n")
    (tmp_path / "calibrate.tsv").write_text("s\tmax_rss\n5\t50\n")
    times = {row["rule"]: row for row in rule_times(tmp_path)}
    assert times["train"]["jobs"] == 2 and times["train"]["seconds"] == 40
    assert times["train"]["longest_seconds"] == 30 and times["train"]["max_rss_mb"] == 100
    assert times["calibrate"]["jobs"] == 1


@pytest.mark.parametrize("word,phrase", [
    ("better", "is better than"), ("worse", "is worse than"),
    ("no detectable difference", "shows no detectable difference from"),
])
def test_the_finding_words_come_from_the_verdict(word: str, phrase: str) -> None:
    row = {"metric": "pass@10", "label": "pass@10", "diff": 0.05, "ci_low": 0.01,
           "ci_high": 0.09}
    verdict = {"available": True, "verdict": word, "reference": "poly", "matched": "base",
               "matched_on": "val", "rows": [row], "passk_metric": "pass@10"}
    sentence = text.finding_sentence(verdict)
    assert sentence.startswith(f"At matched pass@1, poly {phrase} the baseline (base)")
    assert "+0.050 (95% CI [+0.010, +0.090])" in sentence
    degenerate = {**verdict, "verdict": "inconclusive (degenerate)", "reason": "pass@1 is 0"}
    assert "yields no finding" in text.finding_sentence(degenerate)
    assert "gives no answer" in text.conclusion_first({"verdict": degenerate})


@pytest.mark.parametrize("word,predicate", [
    ("better", "is better"), ("worse", "is worse"),
    ("mixed", "is better on one measure and worse on another"),
    ("no detectable difference", "shows no detectable difference"),
    ("inconclusive (unmatched)", "is inconclusive (unmatched)"), ("void", "is void"),
])
def test_other_objectives_read_as_sentences(word: str, predicate: str) -> None:
    blocks = {"poly": {"available": True, "verdict": "worse"},
              "bonus": {"available": True, "verdict": word}}
    sentence = text.objectives_sentence(blocks, "poly")
    assert sentence == ("Of the other LoRA systems, each against its matched baseline, "
                        f"bonus {predicate}.")
    assert text.objectives_sentence({"poly": blocks["poly"]}, "poly") == ""


def test_sentences_without_their_numbers_stay_sentences() -> None:
    assert text.testbed_sentence({"available": True, "rows": [], "room": False}) == ""
    only_pass1 = {"available": True, "verdict": "worse", "reference": "poly",
                  "matched": "base@t1.2", "matched_on": "test",
                  "rows": [{"metric": "pass@1", "label": "pass@1", "diff": -0.1}]}
    assert text.finding_sentence(only_pass1) == (
        "Against the temperature-matched baseline, poly is worse than the baseline (base@t1.2).")
    context = {"verdict": {"available": True, "tweets": "42"}, "seeds": [1, 2],
               "model_path": None}
    power = {"metric": "pass@10", "detectable_delta": 0.081, "target_power": 0.8}
    assert text.scope_sentence(context, power) == (
        "These results hold for a small demonstration model, 2 seeds and 42 test tweets, and "
        "say nothing about larger models. The final test detects a pass@10 difference of "
        "0.081 with power 0.8.")
    assert "larger models" not in text.scope_sentence({**context, "model_path": "/m/Qwen3-8B"},
                                                       None)
