"""One reading per difference: the generated paper never says of one (system pair, metric) both
"detectable" and "no detectable difference", nor "detectably higher" and "detectably lower".

`statements` reads every such statement of main.tex and its results table: the sentences
("no detectable difference", "detectably higher / lower / better / worse"; a summary such as
"detectably worse on at least one" is not about one metric), the verdict table's rows (dagger:
detectable, with the difference's sign; none: not detectable), the objectives table's rows and
the results table's daggers (detectable; an unmarked cell may be untested, so it says nothing).
A sentence's metric is the last metric label before it in its clause, else its paragraph's
heading (`\\paragraph{pass@10.}`); its pair is the systems named in its clause, else the last
ones named before it in its paragraph, else the verdict's pair ("the baseline"), in the order
they are named (the first is the subject). Better and worse become higher and lower by the
metric's direction. The test renders papers as tests/test_report_paper.py does, and shows on
crafted contradictions that the scan finds them.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from polychromic.evaluation.registry import direction, label
from polychromic.reporting.latex import escape_latex
from polychromic.reporting.paper import build_paper
from test_report_paper import _inputs

READING = re.compile(r"no detectable difference|detectably (higher|lower|better|worse)"
                     r"(?! on (?:at least one|neither))")
CLAUSE = re.compile(r";|\.(?=\s)")
CELL_DIFF = re.compile(r"\$([+-]\d+\.\d+)\$")


def _finder(names: list[str]) -> re.Pattern:
    """A pattern of any of `names`, longest first, not inside a longer word or label."""
    escaped = sorted((re.escape(name) for name in names), key=len, reverse=True)
    return re.compile(r"(?<![\w@\\])(" + "|".join(escaped) + r")(?![\w@])")


class Scan:
    """The systems, metric labels and default pair of one aggregate."""

    def __init__(self, aggregated: dict[str, Any]) -> None:
        self.systems = {escape_latex(name): name for name in aggregated["system_order"]}
        self.labels = {label(metric): metric for metric in aggregated["metric_order"]}
        self.system_re = _finder(list(self.systems))
        self.label_re = _finder(list(self.labels))
        verdict = aggregated.get("verdict") or {}
        self.default = [verdict.get("reference"), verdict.get("matched")]

    def kind(self, word: str, metric: str) -> str:
        """none, higher or lower (better / worse by the metric's direction)."""
        if word == "no detectable difference":
            return "none"
        word = word.split()[-1]
        if word in ("better", "worse"):
            up = direction(self.labels[metric])
            word = "higher" if (word == "better") == bool(up) else "lower"
        return word


def _oriented(pair: list[str], kind: str) -> tuple[tuple[str, str], str]:
    """The statement for the sorted pair: higher and lower flipped where the subject is the
    second of the sorted pair."""
    key = tuple(sorted(pair))
    if key[0] != pair[0] and kind in ("higher", "lower"):
        kind = "lower" if kind == "higher" else "higher"
    return key, kind


def sentence_statements(tex: str, scan: Scan) -> list[tuple[tuple, str, str]]:
    """((pair, metric), kind, where) of every reading in the text's paragraphs."""
    found = []
    for paragraph in re.split(r"\n\s*\n", tex):
        heading = re.match(r"\s*\\paragraph\{(.+?)\.\}", paragraph)
        mentions: list[tuple[int, str]] = []  # (position, system) in the paragraph
        start = 0
        for clause in CLAUSE.split(paragraph):
            offset = paragraph.index(clause, start)
            start = offset + len(clause)
            here = [(offset + m.start(), scan.systems[m.group(1)])
                    for m in scan.system_re.finditer(clause)]
            for match in READING.finditer(clause):
                labels = [m.group(1) for m in scan.label_re.finditer(clause[:match.start()])]
                metric = labels[-1] if labels else (heading.group(1) if heading else None)
                if metric not in scan.labels:
                    continue
                pair = _pair(here, mentions, scan.default)
                if pair is None:
                    continue
                key, kind = _oriented(pair, scan.kind(match.group(0), metric))
                found.append(((key, metric), kind, clause.strip()[:120]))
            mentions += here
    return found


def _pair(here: list[tuple[int, str]], before: list[tuple[int, str]],
          default: list[str | None]) -> list[str] | None:
    """The clause's two systems, else completed by the last ones named before it, else by the
    default pair; in the order they are named."""
    chosen: dict[str, int] = {}
    for position, name in here + list(reversed(before)):
        if len(chosen) < 2 and name not in chosen:
            chosen[name] = position
    pair = sorted(chosen, key=chosen.get)
    for name in default:
        if len(pair) < 2 and name is not None and name not in pair:
            pair.append(name)
    return pair if len(pair) == 2 else None


def verdict_table_statements(tex: str, scan: Scan) -> list[tuple[tuple, str, str]]:
    """The verdict table's rows: reference against matched, a dagger detectable."""
    table = tex.split(r"\label{tab:verdict}", 1)[0].rsplit(r"\begin{table}", 1)[-1]
    header = re.search(r"metric & \\texttt\{(.+?)\} & \\texttt\{(.+?)\}", table)
    if not header or r"\label{tab:verdict}" not in tex:
        return []
    pair = [scan.systems[header.group(1)], scan.systems[header.group(2)]]
    found = []
    for row in re.findall(r"^(.+ & .*) \\\\$", table.split(r"\midrule", 1)[-1], re.M):
        cells = row.split(" & ")
        if cells[0] not in scan.labels or len(cells) < 4 or r"\ddagger" in cells[3]:
            continue
        sign = CELL_DIFF.search(cells[3])
        kind = ("none" if r"\dagger" not in cells[3] else
                "higher" if sign and float(sign.group(1)) > 0 else "lower")
        key, kind = _oriented(pair, kind)
        found.append(((key, cells[0]), kind, f"verdict table: {cells[0]}"))
    return found


def results_table_statements(table: str, scan: Scan, reference: str
                             ) -> list[tuple[tuple, str, str]]:
    """The results table's daggers: the column's system differs detectably from the
    reference (no direction)."""
    header = re.search(r"^Metric & (.+?) \\\\$", table, re.M)
    if not header:
        return []
    columns = [scan.systems.get(cell.strip()) for cell in header.group(1).split(" & ")]
    found = []
    for row in re.findall(r"^(.+?) \$\\(?:up|down)arrow\$ & (.+?) \\\\$", table, re.M):
        for system, cell in zip(columns, row[1].split(" & "), strict=False):
            if system and system != reference and row[0] in scan.labels and "dagger" in cell:
                found.append(((tuple(sorted((reference, system))), row[0]), "detectable",
                              f"results table: {row[0]}, {system}"))
    return found


def conflicts(statements: list[tuple[tuple, str, str]]) -> dict[tuple, list]:
    """The (pair, metric) keys read two ways: none and detectable, or higher and lower."""
    kinds: dict[tuple, set[str]] = defaultdict(set)
    where: dict[tuple, list[str]] = defaultdict(list)
    for key, kind, text in statements:
        kinds[key].add(kind)
        where[key].append(f"{kind}: {text}")
    return {key: where[key] for key, found in kinds.items()
            if ("none" in found and found - {"none"}) or {"higher", "lower"} <= found}


def scan_paper(folder: Path, aggregated: dict[str, Any]) -> list[tuple[tuple, str, str]]:
    """Every statement about a difference in main.tex and its results table."""
    scan = Scan(aggregated)
    tex = (folder / "main.tex").read_text(encoding="utf-8")
    table = (folder / "results_table.tex").read_text(encoding="utf-8")
    return (sentence_statements(tex, scan) + verdict_table_statements(tex, scan)
            + results_table_statements(table, scan, aggregated["reference_system"]))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    inputs = _inputs(tmp_path_factory.mktemp("voice"))
    build_paper(**inputs)
    return {"folder": Path(inputs["paper_dir"]), "inputs": inputs,
            "aggregated": json.loads(Path(inputs["aggregated"]).read_text(encoding="utf-8"))}


def _by_key(statements: list[tuple[tuple, str, str]]) -> dict[tuple, list[str]]:
    grouped: dict[tuple, list[str]] = defaultdict(list)
    for key, kind, _ in statements:
        grouped[key].append(kind)
    return grouped


def test_the_paper_reads_every_difference_one_way(rendered: dict[str, Any]) -> None:
    statements = scan_paper(rendered["folder"], rendered["aggregated"])
    assert conflicts(statements) == {}
    grouped = _by_key(statements)
    pair = ("baseline_lora", "polychromic_lora")
    # the scan sees the sentences and tables it must: pass@10 in 5.1, 5.2's verdict sentence,
    # the verdict table and the results table; ROUGE-L in the abstract and in 5.1
    # (polychromic_lora detectably higher: "lower" read from baseline_lora, first in the pair)
    assert sorted(grouped[(pair, "pass@10")]) == ["detectable", "lower", "lower", "lower"]
    assert grouped[(pair, "ROUGE-L")] == ["none", "none"]
    assert grouped[(pair, "pass@1")].count("none") >= 3


def test_a_matched_verdict_reads_one_way(rendered: dict[str, Any], tmp_path: Path) -> None:
    """The same paper with the verdict matched in pass@1 (its sentence and the abstract's
    finding then use the verdict words)."""
    stored = dict(rendered["aggregated"])
    verdict = {**stored["verdict"], "verdict": "better", "matched_on": "test",
               "equivalence": {**(stored["verdict"].get("equivalence") or {}), "holds": True}}
    stored["verdict"] = verdict
    path = tmp_path / "aggregated_results.json"
    path.write_text(json.dumps(stored), encoding="utf-8")
    inputs = {**rendered["inputs"], "aggregated": str(path),
              "paper_dir": str(tmp_path / "paper"), "tarball": str(tmp_path / "s.tar.gz")}
    build_paper(**inputs)
    statements = scan_paper(tmp_path / "paper", stored)
    assert conflicts(statements) == {} and len(statements) >= 10


def _crafted(rendered: dict[str, Any], old: str, new: str, tmp_path: Path) -> dict:
    folder = tmp_path / "paper"
    folder.mkdir()
    tex = (rendered["folder"] / "main.tex").read_text(encoding="utf-8")
    assert old in tex
    (folder / "main.tex").write_text(tex.replace(old, new, 1), encoding="utf-8")
    (folder / "results_table.tex").write_text(
        (rendered["folder"] / "results_table.tex").read_text(encoding="utf-8"), "utf-8")
    return conflicts(scan_paper(folder, rendered["aggregated"]))


def test_a_second_reading_in_a_sentence_is_caught(rendered: dict[str, Any],
                                                  tmp_path: Path) -> None:
    """The report's case: 5.1 reading a difference another way than the verdict."""
    found = _crafted(rendered, r"\texttt{polychromic\_lora} scores detectably higher than",
                     r"There is no detectable difference (Holm p 0.034 to 0.450) between "
                     r"\texttt{polychromic\_lora} and", tmp_path)
    assert list(found) == [(("baseline_lora", "polychromic_lora"), "pass@10")]


def test_a_table_marker_against_a_sentence_is_caught(rendered: dict[str, Any],
                                                     tmp_path: Path) -> None:
    tex = (rendered["folder"] / "main.tex").read_text(encoding="utf-8")
    row = next(line for line in tex.splitlines() if line.startswith("pass@10 & "))
    found = _crafted(rendered, row, row.replace(r"$^\dagger$", ""), tmp_path)
    assert list(found) == [(("baseline_lora", "polychromic_lora"), "pass@10")]


def test_opposite_directions_are_caught(rendered: dict[str, Any], tmp_path: Path) -> None:
    found = _crafted(rendered, r"\texttt{polychromic\_lora} scores detectably higher than "
                     r"\texttt{baseline\_lora}", r"\texttt{baseline\_lora} scores detectably "
                     r"higher than \texttt{polychromic\_lora}", tmp_path)
    assert list(found) == [(("baseline_lora", "polychromic_lora"), "pass@10")]
