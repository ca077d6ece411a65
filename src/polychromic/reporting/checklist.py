"""The pre-submission checklist, ticked from the artefacts: `submission/checklist.md`.

Each item is checked by reading what the run wrote, never by trusting the step that wrote it:
the study plan's items (all seeds run, mean +- std over seeds, figures, LaTeX tables, complete
references, the code and data availability statement, the supplementary material) and the
pipeline's own (every table compiles, every figure referenced, every citation key resolves, no
placeholder outside the marked drafts, the page count, the data release, the warnings in the
limitations, a generated abstract, the sections in order, the data's origin stated).

An item is `ok` (True), failing (False) or not checked (None, with the reason: the checks that
need the compiled PDF are not checked without TeX). `render` writes the Markdown with `[x]`,
`[ ]` and `[-]`. The paper rule fails on the two items a submission cannot survive, an
unresolved reference or citation and a table that does not compile (`blocking`), once the
checklist is written for the user to read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polychromic.reporting.latex import escape_latex
from polychromic.reporting.paper_text import expected_warnings, row_of, with_ci

# the sections of the study plan, in order (the results subsections inside "Results")
SECTION_ORDER = ("Introduction", "Related work", "Method", "Experimental setup", "Results",
                 "Discussion", "Conclusion")
RESULTS_ORDER = ("Main results", "Pass@$k$ analysis",
                 "Diversity--quality trade-off, baselines and ablations")
MIN_REFERENCES = 12
ABSTRACT_WORDS = (120, 260)
# what a placeholder looks like, outside the marked drafts
PLACEHOLDERS = re.compile(r"placeholder|\bTODO\b|\bTBD\b|\bXXX\b|lorem ipsum", re.I)
DRAFT = re.compile(r"\\begin\{draft\}.*?\\end\{draft\}", re.S)
COMMENT = re.compile(r"(?<!\\)%.*$", re.M)
INPUT = re.compile(r"\\input\{([^}]*)\}")
INCLUDE = re.compile(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}")
CITE = re.compile(r"\\cite[tp]?\*?(?:\[[^\]]*\])?\{([^}]*)\}")
BIB_ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", re.S)
# TeX's log lines are not wrapped: the compile sets max_print_line (reporting.tex)
UNDEFINED = re.compile(r"(Citation|Reference) `([^']*)' on page \d+ undefined")
UNDEFINED_SUMMARY = re.compile(r"There were undefined (references|citations)")


@dataclass
class Item:
    """One line of the checklist: what, whether it holds, and the evidence."""

    name: str
    ok: bool | None
    evidence: str
    blocking: bool = False


@dataclass
class Compiled:
    """What a TeX run left: the final log and .aux, bibtex's log, each table's own compile
    (None where it compiled, else the error) and the paper's own error (None: main.pdf)."""

    log: str
    aux: str
    blg: str = ""
    tables: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None


def strip_comments(tex: str) -> str:
    """`tex` without its % comments (an escaped \\% stays)."""
    return COMMENT.sub("", tex)


def cited_keys(tex: str) -> list[str]:
    """The distinct keys of every \\cite, \\citet and \\citep, sorted."""
    keys = [key.strip() for group in CITE.findall(strip_comments(tex)) for key in group.split(",")]
    return sorted({key for key in keys if key})


def bib_entries(bib: str) -> dict[str, dict[str, str]]:
    """`key -> {type, fields...}` of a .bib text (the flat entries this project writes)."""
    entries = {}
    for kind, key, body in BIB_ENTRY.findall(bib):
        fields = dict(re.findall(r"(\w+)\s*=\s*\{(.*?)\}\s*,?\s*$", body, re.M))
        entries[key] = {"type": kind.lower(), **{k.lower(): v for k, v in fields.items()}}
    return entries


def section_titles(tex: str, command: str = "section") -> list[str]:
    """The titles of every `\\command{...}` (starred too), in order."""
    return re.findall(rf"\\{command}\*?\{{([^}}]*)\}}", strip_comments(tex))


def section_text(tex: str, title: str, command: str = "subsection") -> str:
    """The text of the (sub)section called `title`, up to the next (sub)section."""
    match = re.search(rf"\\{command}\*?\{{{re.escape(title)}\}}(.*?)(?=\\(?:sub)?section|"
                      r"\\end\{document\}|\\appendix)", tex, re.S)
    return match.group(1) if match else ""


def check_seeds(aggregated: dict[str, Any], seeds: Iterable[int]) -> Item:
    """Every configured seed is in the aggregate."""
    want, have = sorted(seeds), sorted(aggregated.get("seeds") or [])
    missing = sorted(set(want) - set(have))
    return Item("All seeds run", not missing and bool(want),
                f"configured {want}; aggregated {have}" + (f"; missing {missing}" if missing
                                                          else ""))


def check_mean_std(aggregated: dict[str, Any]) -> Item:
    """Every system x metric cell has a std over every seed (one seed has none: not ready)."""
    n = len(aggregated.get("seeds") or [])
    short = [f"{system}/{metric}" for system, metrics in (aggregated.get("systems") or {}).items()
             for metric, entry in metrics.items()
             if isinstance(entry, dict) and "mean" in entry
             and (entry.get("std") is None or entry.get("n_seeds") != n)]
    cells = sum(1 for metrics in (aggregated.get("systems") or {}).values()
                for entry in metrics.values() if isinstance(entry, dict) and "mean" in entry)
    return Item("Results aggregated as mean +- std over every seed", cells > 0 and not short,
                f"{cells} system x metric cells over {n} seeds"
                + (f"; without std or with fewer seeds: {', '.join(short[:8])}" if short else ""))


def check_figures(tex: str, present: list[str], expected: Iterable[str]) -> list[Item]:
    """Every expected figure is packed and included (`\\includegraphics`), and every figure's
    label is referenced in the text."""
    body = strip_comments(tex)
    included = set(INCLUDE.findall(body))
    missing = sorted(set(expected) - (set(present) & included))
    labels = re.findall(r"\\label\{(fig:[^}]*)\}", body)
    unreferenced = [label for label in labels if f"\\ref{{{label}}}" not in body]
    return [Item("Figures in the paper", not missing and bool(included),
                 f"{len(included)} figures included" + (f"; not packed or not included: "
                                                        f"{missing}" if missing else "")),
            Item("Every figure referenced in the text", bool(labels) and not unreferenced,
                 f"{len(labels)} figures" + (f"; never referenced: {', '.join(unreferenced)}"
                                             if unreferenced else ""))]


def check_tables(tex: str, files: list[str], compiled: Compiled | None) -> Item:
    """Every `\\input` table exists and (with TeX) compiles on its own, and so does the
    paper."""
    inputs = INPUT.findall(strip_comments(tex))
    missing = [name for name in inputs if f"{name}.tex" not in files and name not in files]
    name = "LaTeX tables present and compiling"
    if missing:
        return Item(name, False, f"\\input of missing files: {missing}", blocking=True)
    if compiled is None:
        return Item(name, None, f"{len(inputs)} input tables present; not compiled (no TeX)")
    broken = {table: error for table, error in compiled.tables.items() if error}
    if broken:
        return Item(name, False, "; ".join(f"{table} does not compile: {error}"
                                           for table, error in broken.items()), blocking=True)
    if compiled.error:
        return Item(name, False, f"the input tables compile on their own, the paper does not: "
                                 f"{compiled.error.splitlines()[0]}", blocking=True)
    return Item(name, True, f"{len(compiled.tables)} input table(s) compile on their own; every "
                            f"table of the paper compiles (main.pdf built with -halt-on-error)")


def check_citations(tex: str, bib: str, compiled: Compiled | None) -> Item:
    """Every \\cite key is in references.bib, and (with TeX) no citation or reference is
    undefined in the final log and bibtex found every entry."""
    keys, entries = cited_keys(tex), bib_entries(bib)
    unknown = [key for key in keys if key not in entries]
    problems = [f"\\cite of keys not in references.bib: {', '.join(unknown)}"] if unknown else []
    if compiled is not None:
        undefined = sorted({f"{kind.lower()} {key}" for kind, key in UNDEFINED.findall(
            compiled.log)})
        if undefined:
            problems.append(f"undefined in the compiled paper: {', '.join(undefined)}")
        elif UNDEFINED_SUMMARY.search(compiled.log):
            problems.append("LaTeX reports undefined references or citations (main.log)")
        missing = re.findall(r"I didn't find a database entry for \"([^\"]*)\"", compiled.blg)
        if missing:
            problems.append(f"bibtex found no entry for {', '.join(missing)}")
    checked = "" if compiled is not None else " (the compiled log not checked: no TeX)"
    return Item("Every citation key and reference resolves", not problems,
                "; ".join(problems) or f"{len(keys)} cited keys resolve{checked}",
                blocking=bool(problems))


REQUIRED_FIELDS = ("author", "title", "year")
VENUE_FIELDS = ("journal", "booktitle", "note", "howpublished")


def check_references(tex: str, bib: str) -> Item:
    """At least MIN_REFERENCES cited entries, each with author, title, year and a venue (an
    entry nobody cites is listed; bibtex leaves it out of the bibliography)."""
    entries, keys = bib_entries(bib), set(cited_keys(tex))
    cited = {key: entry for key, entry in entries.items() if key in keys}
    incomplete = [key for key, entry in cited.items()
                  if any(not entry.get(f) for f in REQUIRED_FIELDS)
                  or not any(entry.get(f) for f in VENUE_FIELDS)]
    uncited = sorted(set(entries) - keys)
    evidence = (f"{len(cited)} cited entries (at least {MIN_REFERENCES})"
                + (f"; without author, title, year or venue: {incomplete}" if incomplete
                   else ", each with author, title, year and venue")
                + (f"; in references.bib but not cited here: {', '.join(uncited)}"
                   if uncited else ""))
    return Item("References complete", len(cited) >= MIN_REFERENCES and not incomplete,
                evidence)


def check_placeholders(tex: str) -> Item:
    body = DRAFT.sub("", strip_comments(tex))
    drafts = len(DRAFT.findall(strip_comments(tex)))
    found = sorted({match.group(0) for match in PLACEHOLDERS.finditer(body)})
    return Item("No placeholder outside the marked drafts", not found,
                f"{drafts} marked draft blocks" + (f"; found {found}" if found else ""))


def check_pages(compiled: Compiled | None, limit: int) -> Item:
    """The main text with its floats within `limit` pages: the pages before the one that holds
    the label `paper:after-main` (placed after a \\clearpage that ends the conclusion)."""
    name = f"Page count (main text at most {limit} pages)"
    if compiled is None:
        return Item(name, None, "not checked: no PDF (no TeX)")
    if compiled.error:
        return Item(name, False, "no PDF: the paper does not compile")
    total = re.search(r"Output written on \S+ \((\d+) pages?", compiled.log)
    end = re.search(r"\\newlabel\{paper:after-main\}\{\{[^}]*\}\{(\d+)\}", compiled.aux)
    if not (total and end):
        return Item(name, False, "the log or the .aux does not give the page count")
    pages = int(end.group(1)) - 1
    return Item(name, pages <= limit, f"main text {pages} pages; {total.group(1)} pages in all "
                                      "with the references and the appendix")


def check_release(release_dir: str | None, include_texts: bool) -> Item:
    """The data release: the card and one Parquet file per split; no text column unless
    `paper.release_texts`."""
    import pyarrow.parquet as pq

    from polychromic.data.release import SPLITS, TEXT_FIELDS

    name = "Data release (splits in Parquet with a dataset card)"
    if release_dir is None or not Path(release_dir).is_dir():
        return Item(name, False, "no release folder")
    root = Path(release_dir)
    missing = [f"data/{split}.parquet" for split in SPLITS
               if not (root / "data" / f"{split}.parquet").is_file()]
    missing += [] if (root / "README.md").is_file() else ["README.md"]
    if missing:
        return Item(name, False, f"missing {missing}")
    columns = {split: pq.read_schema(root / "data" / f"{split}.parquet").names for split in SPLITS}
    texts = sorted({c for names in columns.values() for c in names if c in TEXT_FIELDS})
    if texts and not include_texts:
        return Item(name, False, f"text columns {texts} released with paper.release_texts off")
    rows = {split: pq.read_metadata(root / "data" / f"{split}.parquet").num_rows
            for split in SPLITS}
    return Item(name, True, ", ".join(f"{split} {n} rows" for split, n in rows.items())
                + ("; with texts (paper.release_texts)" if include_texts else "; no text columns"))


def normalise(text: str) -> str:
    """Lower case, runs of white space as one space: how the limitations are compared."""
    return " ".join(text.lower().split())


def check_limitations(tex: str, warnings: list[str]) -> Item:
    """Every warning of the artefacts appears (LaTeX-escaped) in the Limitations subsection."""
    section = normalise(section_text(tex, "Limitations"))
    if not section:
        return Item("Warnings shown in the limitations", False, "no Limitations subsection")
    missing = [text for text in warnings if normalise(escape_latex(text)) not in section]
    return Item("Warnings shown in the limitations", not missing,
                f"{len(warnings)} warnings of the artefacts"
                + (f"; not in the limitations: {[text[:80] for text in missing]}" if missing
                   else (", each in the limitations" if warnings else "")))


def check_abstract(tex: str, aggregated: dict[str, Any]) -> Item:
    """An abstract of 120-260 words, no draft or placeholder, holding the verdict's headline
    number with its CI (or, without one, the reason)."""
    match = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", strip_comments(tex), re.S)
    text = match.group(1) if match else ""
    words = len(re.sub(r"\\[a-zA-Z]+|[{}$]", " ", text).split())
    verdict = aggregated.get("verdict") or {}
    row = row_of(verdict, verdict.get("passk_metric") or "") if verdict.get("available") else None
    number = with_ci(row) if row else str(verdict.get("reason") or "")
    low, high = ABSTRACT_WORDS
    has_number = normalise(escape_latex(number)) in normalise(text)
    ok = (bool(match) and not DRAFT.search(text) and not PLACEHOLDERS.search(text)
          and low <= words <= high and has_number)
    return Item("Abstract generated from the numbers", ok,
                (f"{words} words (expected {low}-{high}); the headline number "
                 + ("present" if has_number else f"missing ({number[:60]})")) if match
                else "no abstract")


def check_origin(tex: str, origin: dict[str, Any] | None) -> Item:
    """The data's origin stated (`paper.data_origin`): a synthetic corpus is called synthetic
    in the title, the abstract, the Data paragraph and the limitations; another corpus's files
    (data.raw) are named in the Data paragraph."""
    name = "Data origin stated"
    if origin is None:
        return Item(name, None, "not checked: the paper step gave no data origin")
    body = strip_comments(tex)
    title = re.search(r"\\title\{(.*?)\}\s*\\author", body, re.S)
    abstract = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", body, re.S)
    data = body.split("\\paragraph{Data.}", 1)[-1].split("\\paragraph", 1)[0] \
        if "\\paragraph{Data.}" in body else ""
    places = {"title": title.group(1) if title else "",
              "abstract": abstract.group(1) if abstract else "", "Data paragraph": data,
              "limitations": section_text(body, "Limitations")}
    if origin.get("synthetic"):
        missing = [place for place, text in places.items() if "synthetic" not in text.lower()]
        return Item(name, not missing, "a synthetic corpus (the release's card): "
                    + ("said in the title, abstract, Data paragraph and limitations"
                       if not missing else f"not said in the {', '.join(missing)}"))
    sources = list(origin.get("sources") or [])
    unnamed = [source for source in sources if escape_latex(source) not in data]
    return Item(name, bool(sources) and not unnamed, "a collected corpus: "
                + (f"the Data paragraph does not name {unnamed or 'its files'}"
                   if unnamed or not sources else f"the Data paragraph names {sources}"))


def check_sections(tex: str) -> Item:
    """The plan's sections, and the results subsections, each present and in order."""
    sections = [title for title in section_titles(tex) if title in SECTION_ORDER]
    body = strip_comments(tex).split("\\section{Results}", 1)[-1].split("\\section", 1)[0]
    results = [title for title in section_titles(body, "subsection") if title in RESULTS_ORDER]
    ok = sections == list(SECTION_ORDER) and results == list(RESULTS_ORDER)
    return Item("Sections in the plan's order", ok,
                f"sections: {sections}; results: {results}")


def check_statements(tex: str, files: list[str], release: bool, appendix_tex: str
                     ) -> list[Item]:
    """The availability statement (pointing at the code and at `dataset/`), and the package:
    sources, tables, figures, the data release and a filled reproducibility appendix (its
    body `appendix_tex`, the file main.tex inputs)."""
    statement = section_text(tex, "Code and data availability", "section\\*")
    says = "dataset/" in statement and "code" in statement.lower()
    appendix = ("Reproducibility" in section_titles(tex)
                and "\\paragraph{Configuration.}" in appendix_tex)
    body = strip_comments(tex)
    wanted = ["main.tex", "references.bib", *[f"{name}.tex" for name in INPUT.findall(body)],
              *[f"{name}.pdf" for name in INCLUDE.findall(body)]]
    absent = [name for name in wanted if name not in files]
    return [Item("Code and data availability statement", says and release,
                 "points at the code and at dataset/" if says and release else
                 "no statement pointing at the code and the data release"),
            Item("Supplementary material (sources, tables, figures, dataset, reproducibility "
                 "appendix)", appendix and not absent and release,
                 f"{len(files)} files in the package" + ("; dataset/" if release else "; no "
                                                         "data release")
                 + (f"; not packed: {absent}" if absent else "")
                 + ("; appendix 'Reproducibility'" if appendix else "; no reproducibility "
                    "appendix"))]


def render(items: list[Item]) -> str:
    """The checklist as Markdown: `[x]` holds, `[ ]` fails, `[-]` not checked."""
    mark = {True: "[x]", False: "[ ]", None: "[-]"}
    failing = sum(item.ok is False for item in items)
    unchecked = sum(item.ok is None for item in items)
    lines = ["# Pre-submission checklist", "",
             "Ticked by `polychromic.reporting.checklist` from the artefacts of this run "
             "(`[x]` holds, `[ ]` fails, `[-]` not checked).", "",
             f"{len(items) - failing - unchecked} of {len(items)} hold; {failing} fail; "
             f"{unchecked} not checked.", ""]
    lines += [f"- {mark[item.ok]} **{item.name}**: {' '.join(item.evidence.split())}"
              for item in items]  # one line per item, whatever a log tail held
    return "\n".join(lines) + "\n"


def build_checklist(tex: str, bib: str, files: list[str], aggregated: dict[str, Any],
                    seeds: Iterable[int], figures: tuple[list[str], Iterable[str]],
                    release: tuple[str | None, bool], compiled: Compiled | None,
                    page_limit: int, appendix_tex: str = "",
                    origin: dict[str, Any] | None = None) -> list[Item]:
    """Every item, plan's first: `files` are the names packed into the submission,
    `figures` (present, expected), `release` (folder, texts included), `appendix_tex` the
    reproducibility appendix's body, `origin` the corpus' (`paper.data_origin`)."""
    # (the paper's own compile is reported by the tables and the page count)
    return [
        check_seeds(aggregated, seeds),
        check_mean_std(aggregated),
        *check_figures(tex, *figures),
        check_tables(tex, files, compiled),
        check_references(tex, bib),
        *check_statements(tex, files, release[0] is not None, appendix_tex),
        check_citations(tex, bib, compiled),
        check_placeholders(tex),
        check_pages(compiled, page_limit),
        check_release(*release),
        check_limitations(tex, expected_warnings(aggregated)),
        check_abstract(tex, aggregated),
        check_sections(tex),
        check_origin(tex, origin),
    ]
