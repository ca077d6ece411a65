"""build_paper(): rendering, wording chosen from the numbers, flat reproducible tarball, PDF."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml
from matplotlib.figure import Figure

from polychromic.config import load_settings
from polychromic.contract import FIGURES
from polychromic.reporting.paper import build_paper, split_rows, write_tarball
from test_data_release import make_release
from test_report_helpers import (
    HOSTILE,
    REFERENCE,
    SEEDS,
    SYSTEMS,
    TEMPLATES,
    build_evaluation,
    run_aggregate,
)

ROOT = Path(__file__).resolve().parents[1]
HAS_TEX = shutil.which("latexmk") is not None or shutil.which("pdflatex") is not None
EVIL = r"Evil \input{/etc/passwd} & 100% $x$ #1 ~^_"


def _set_values(folder: Path, file: str, system: str, metric: str, base: float,
                seed: int) -> None:
    """Per-tweet values near `base` (a small pattern over tweets and seeds) and their mean."""
    path = folder / file
    doc = json.loads(path.read_text(encoding="utf-8"))
    values = [base + 0.01 * (i % 3) + seed / 1e5 for i in range(len(doc["prompt_ids"]))]
    doc["systems"][system][metric].update(mean=sum(values) / len(values), per_prompt=values)
    path.write_text(json.dumps(doc), encoding="utf-8")


def _figures(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in FIGURES:
        fig = Figure(figsize=(2, 1.5))
        fig.subplots().plot([0, 1], [0, 1])
        fig.savefig(folder / f"{name}.pdf", metadata={"CreationDate": None})


def _inputs(root: Path, ablation: bool = False) -> dict:
    """A study in which polychromic_lora is clearly better on pass@10 and Self-BLEU (0.4 on
    every tweet of every seed) and, on ROUGE-L, random like every other metric.
    With `ablation`, the system named HOSTILE is a second polychromic LoRA system."""
    dirs = build_evaluation(root / "evaluation")
    for seed, folder in ((s, Path(d)) for s, d in dirs.items()):
        _set_values(folder, "passk_results.json", REFERENCE, "pass@10", 0.9, seed)
        _set_values(folder, "passk_results.json", "baseline_lora", "pass@10", 0.5, 0)
        _set_values(folder, "diversity_metrics.json", REFERENCE, "self_bleu", 0.2, seed)
        _set_values(folder, "diversity_metrics.json", "baseline_lora", "self_bleu", 0.6, 0)
    aggregated, table = root / "aggregated_results.json", root / "results_table.tex"
    ablation_table = root / "ablation_table.tex"
    systems_config = {name: {"prompt": "zero_shot"} for name in SYSTEMS}
    systems_config["few_shot"] = {"prompt": "few_shot"}
    systems_config |= {"baseline_lora": {"prompt": "lora", "experiment": "baseline"},
                       REFERENCE: {"prompt": "lora", "experiment": "polychromic"}}
    if ablation:
        systems_config[HOSTILE] = {"prompt": "lora", "experiment": "polychromic_l3"}
    experiments = {"baseline": {"objective": "sft"}, "polychromic": {"objective": "polychromic"},
                   "polychromic_l3": {"objective": "polychromic"}}
    run_aggregate(dirs, root, systems_config=systems_config, experiments=experiments,
                  ablation_table=True)
    _figures(root / "figures")
    split = root / "split_report.json"
    split.write_text(json.dumps({"splits": {"train": {"pairs": 812, "tweets": 301},
                                            "val": {"pairs": 99}, HOSTILE: {}}}))
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["paper"] = {"title": EVIL}
    if ablation:  # the study's experiments: every objective gets its method paragraph
        study = yaml.safe_load((ROOT / "config" / "study_demo.yaml").read_text(encoding="utf-8"))
        config["experiments"] = study["experiments"]
        config["training"]["checkpoint_selection"] = "last"
    (root / "release").mkdir()
    release, _ = make_release(root / "release")
    return {**_provenance(root, config, dirs),
            "aggregated": str(aggregated), "table": str(table), "release_dir": str(release),
            "ablation_table": str(ablation_table),
            "figures_dir": str(root / "figures"), "split_report": str(split),
            "statistics": [str(Path(dirs[s]) / "statistical_tests.json") for s in SEEDS],
            "paper_dir": str(root / "paper"), "tarball": str(root / "submission.tar.gz"),
            "templates_dir": TEMPLATES, "settings": load_settings(config)}


def _provenance(root: Path, config: dict, dirs: dict) -> dict:
    """What the paper rule passes for the appendix, the power and the checklist: a manifest,
    one benchmark file, the per-seed pass@k files."""
    digest = "ab" * 32
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({
        "seed": 42, "group_by": "tweet", "stratify": "none", "ratios": {"train": 0.8},
        "source": {"path": "curated.jsonl", "sha256": digest, "lines": 30},
        "files": {"train": {"path": "train.jsonl", "sha256": digest, "lines": 24}}}))
    (root / "benchmarks" / "train").mkdir(parents=True)
    (root / "benchmarks" / "train" / "baseline_seed_42.tsv").write_text(
        "s\th:m:s\tmax_rss\n65.5\t0:01:05\t712.0\n")
    return {"passk": [str(Path(dirs[s]) / "passk_results.json") for s in SEEDS],
            "provenance": {"config": config, "manifest": str(manifest), "runs": [],
                           "benchmarks": str(root / "benchmarks"),
                           "configfiles": ["config.yaml"], "workdir": None},
            "checklist": str(root / "submission" / "checklist.md"),
            "evidence_dir": str(root / "evidence")}


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> dict:
    inputs = _inputs(tmp_path_factory.mktemp("paper"))
    build_paper(**inputs)
    main = (Path(inputs["paper_dir"]) / "main.tex").read_text(encoding="utf-8")
    return {**inputs, "main": main}


def _paragraph(main: str, label: str) -> str:
    return main.split(rf"\paragraph{{{label}.}}", 1)[1].split(r"\paragraph", 1)[0]


def test_paper_has_its_parts(paper: dict) -> None:
    main = paper["main"]
    for part in (r"\section{Method}", r"\section{Experimental setup}", r"\section{Results}",
                 r"\begin{abstract}", r"\input{results_table}", r"\bibliography{references}",
                 r"\binom{|S|}{2}", r"\lambda = 10.0", "$N=4$", "$n=2$"):
        assert part in main, part
    for name in FIGURES:
        width = "0.55" if name == "training_curves" else ""  # the others side by side
        assert rf"\includegraphics[width={width}\linewidth]{{{name}}}" in main
    assert "train & 812 & 301" in main and "val & 99 & --" in main
    assert r"a\_b \& c\% & -- & --" in main


def test_strings_from_config_and_data_are_escaped(paper: dict) -> None:
    main = paper["main"]
    assert r"\title{Evil \textbackslash{}input\{/etc/passwd\} \& 100\% \$x\$ \#1" in main
    assert r"\input{/etc" not in main
    assert r"\texttt{a\_b \& c\%}" in main


def test_bibliography_covers_every_citation(paper: dict) -> None:
    bib = (Path(paper["paper_dir"]) / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = {k.strip() for group in re.findall(r"\\cite\{([^}]+)\}", paper["main"])
             for k in group.split(",")}
    assert cited <= keys and len(keys) == 25
    for needle in ("Diverse Preference Optimization", "Sentence-{BERT}", "{MPNet}", "{MiniLM}",
                   "Sequentially Rejective", "Hu, Edward", "Chen, Mark", "Polychromic Objectives",
                   "Texygen",
                   "Diversity-Promoting", "BERTScore", "ROUGE", "Jointly Reinforcing Diversity",
                   "R1-Zero", "Pass@k Training", "DeepSeekMath", "Poly-EPO",
                   "Approximating {KL}", "Min-p Sampling", "Pitfalls in {KL}",
                   "Variance Components", "Fiducial Argument", "{B}ehrens-{F}isher",
                   "Two One-Sided Tests", "Regula Falsi"):
        assert needle in bib


def test_wording_follows_the_numbers(paper: dict) -> None:
    main = paper["main"]
    passk = _paragraph(main, "pass@10")
    assert r"scores detectably higher than \texttt{baseline\_lora}, which is better" in passk
    assert "$+0.40" in passk and "within the comparison at matched pass@1" in passk
    bleu = _paragraph(main, "Self-BLEU")
    assert "scores detectably lower" in bleu and "which is better" in bleu
    assert "comparisons of the tables" in bleu and "Holm-adjusted $p<0.001$" in bleu
    rouge = _paragraph(main, "ROUGE-L")
    assert "no detectable difference" in rouge and "detectably" not in rouge


def test_split_report_missing_keys() -> None:
    assert split_rows({}) == []
    assert split_rows({"splits": {"test": {"tweets": 3}}}) == [
        {"name": "test", "pairs": "--", "tweets": 3}]


def test_tarball_flat_and_reproducible(paper: dict, tmp_path: Path) -> None:
    data = Path(paper["tarball"]).read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    with tarfile.open(paper["tarball"]) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "submission" and members[0].isdir() and "submission/main.tex" in names
    # the paper's files flat, the data release in dataset/ (its card and one Parquet per split)
    paper_files = [n for n in names[1:] if not n.startswith("submission/dataset")]
    assert all(re.fullmatch(r"submission/[^/]+", name) for name in paper_files)
    assert {"submission/dataset/README.md", "submission/dataset/data/train.parquet",
            "submission/dataset/data/val.parquet", "submission/dataset/data/test.parquet"} <= set(
        names)
    assert {"submission/results_table.tex", "submission/references.bib",
            "submission/pareto.pdf"} <= set(names)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    assert "submission/checklist.md" in names  # written next to the tarball, packed in it
    files = [Path(paper["checklist"]) if n == "submission/checklist.md"
             else Path(paper["paper_dir"]) / n.split("/", 1)[1] for n in paper_files
             if not n.endswith("/")]
    write_tarball(list(reversed(files)), tmp_path / "again.tar.gz",
                  release_dir=paper["release_dir"])
    assert (tmp_path / "again.tar.gz").read_bytes() == data
    assert gzip.decompress(data)  # a valid gzip stream


def test_pdf_skipped_without_tex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 caplog: pytest.LogCaptureFixture) -> None:
    inputs = _inputs(tmp_path)
    Path(inputs["paper_dir"]).mkdir()
    (Path(inputs["paper_dir"]) / "main.pdf").write_bytes(b"%PDF stale")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with caplog.at_level(logging.INFO, logger="polychromic.reporting.tex"):
        build_paper(**inputs)
    assert not (Path(inputs["paper_dir"]) / "main.pdf").exists()
    assert "PDF skipped" in caplog.text
    checklist = Path(inputs["checklist"]).read_text(encoding="utf-8")
    assert "- [-] **Page count (main text at most 10 pages)**: not checked: no PDF" in checklist


@pytest.mark.skipif(not HAS_TEX, reason="no latexmk/pdflatex on PATH (Debian: "
                    "texlive-latex-recommended latexmk)")
def test_paper_compiles(paper: dict) -> None:
    pdf = Path(paper["paper_dir"]) / "main.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:4] == b"%PDF" and pdf.stat().st_size > 10_000
    leftovers = {p.suffix for p in Path(paper["paper_dir"]).iterdir()} & {".aux", ".log"}
    assert not leftovers


def test_no_ablation_no_ablation_table(paper: dict) -> None:
    assert r"\input{ablation_table}" not in paper["main"]
    assert not (Path(paper["paper_dir"]) / "ablation_table.tex").exists()
    assert "No ablation" in Path(paper["ablation_table"]).read_text(encoding="utf-8")
    assert r"\includegraphics[width=0.55\linewidth]{training_curves}" in paper["main"]
    assert "a dagger marks every system" in paper["main"]


def test_paper_with_ablation(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path, ablation=True)
    build_paper(**inputs)
    folder = Path(inputs["paper_dir"])
    main = (folder / "main.tex").read_text(encoding="utf-8")
    assert r"\input{ablation_table}" in main and r"\texttt{a\_b \& c\%}" in main
    assert r"\label{tab:ablation}" in (folder / "ablation_table.tex").read_text(encoding="utf-8")
    for paragraph in ("Diversity as a per-sample bonus", "Pass@$k$ training"):
        assert rf"\paragraph{{{paragraph}.}}" in main
    assert r"\emph{pure set-RL}" in main and r"\beta_{\mathrm{KL}} = 0.1" in main
    assert "tang2025klpitfalls" in main
    assert r"\binom{N_{\mathrm{neg}}-1}{k-1}" in main and "with $k = 2$" in main
    assert r"with $\beta = 1.0$, $N = 4$" in main
    bib = (folder / "references.bib").read_text(encoding="utf-8")
    assert all(key in bib for key in ("chen2025passk", "orney2026polyepo", "schulman2020kl"))
    with tarfile.open(inputs["tarball"]) as tar:
        assert "submission/ablation_table.tex" in tar.getnames()
    if HAS_TEX:
        assert (folder / "main.pdf").stat().st_size > 10_000
    else:
        print("TeX not on PATH: the paper with an ablation table was not compiled")


def test_verdict_paragraph_follows_the_numbers(paper: dict) -> None:
    """The matched-baseline verdict (polychromic.reporting.verdict) is in the results."""
    block = _paragraph(paper["main"], "Against a temperature-matched baseline")
    assert r"\texttt{baseline\_lora}" in block and r"\label{tab:verdict}" in block
    assert re.search(r"\\textbf\{Verdict: (better|worse|mixed|no detectable difference|"
                     r"inconclusive \(unmatched\))\.\}", block)
    stored = json.loads(Path(paper["aggregated"]).read_text(encoding="utf-8"))["verdict"]
    assert f"Verdict: {stored['verdict']}." in block
    assert f"Holm-adjusted over these {stored['family']} comparisons" in block
    assert f"the {stored['n_prompts']} test tweets, which every seed answers" in block
    assert "treat seeds and tweets as crossed random factors" in block
    row = stored["rows"][1]
    assert row["metric"] == "pass@10" and f"${row['diff']:+.3f}$ [${row['ci_low']:+.3f}$" in block
    assert "95 \\% CI {[}" in block  # the sentence's % and brackets escaped


def _rebuilt(paper: dict, stored: dict, folder: Path) -> str:
    """main.tex of the paper fixture rebuilt in `folder` from an edited aggregate."""
    aggregated = folder / "aggregated_results.json"
    aggregated.write_text(json.dumps(stored), encoding="utf-8")
    inputs = {key: value for key, value in paper.items() if key != "main"}
    inputs.update(aggregated=str(aggregated), paper_dir=str(folder / "paper"),
                  tarball=str(folder / "submission.tar.gz"))
    build_paper(**inputs)
    return (folder / "paper" / "main.tex").read_text(encoding="utf-8")


def test_a_matched_sampling_variant_is_named_with_its_settings(paper: dict, tmp_path: Path
                                                               ) -> None:
    stored = json.loads(Path(paper["aggregated"]).read_text(encoding="utf-8"))
    stored["verdict"].update(matched="baseline_lora@t1.6m0.1",
                             matched_sampling={"temperature": 1.6, "min_p": 0.1})
    main = _rebuilt(paper, stored, tmp_path)
    assert r"\texttt{baseline\_lora@t1.6m0.1} (sampled at temperature 1.6, min p 0.1)." in main


def test_the_submission_holds_the_data_release_without_text(paper: dict) -> None:
    import pyarrow.parquet as pq

    with tarfile.open(paper["tarball"]) as tar:
        card = tar.extractfile("submission/dataset/README.md").read().decode("utf-8")
        table = pq.read_table(io.BytesIO(
            tar.extractfile("submission/dataset/data/test.parquet").read()))
    assert "reply" not in table.column_names and "reply_id" in table.column_names
    assert "## Texts and rehydration" in card
    assert r"\section*{Code and data availability}" in paper["main"]
    assert "not the texts or\nauthor handles" in paper["main"]


def test_every_objective_gets_its_row(paper: dict, tmp_path: Path) -> None:
    stored = json.loads(Path(paper["aggregated"]).read_text(encoding="utf-8"))
    second = {**stored["verdict"], "reference": "bonus_lora", "verdict": "better"}
    stored["objective_comparisons"] = {"polychromic_lora": stored["verdict"], "bonus_lora": second}
    main = _rebuilt(paper, stored, tmp_path)
    assert r"\paragraph{Every LoRA system at matched pass@1.}" in main
    assert r"\texttt{bonus\_lora} & \texttt{baseline\_lora" in main
    assert r"\label{tab:objectives}" in main
    if HAS_TEX:
        assert (tmp_path / "paper" / "main.pdf").stat().st_size > 10_000


def test_the_protocol_paragraph_names_every_choice(paper: dict, tmp_path: Path) -> None:
    assert "no sampling setting is tuned" in paper["main"]  # the fixture has no selection
    stored = json.loads(Path(paper["aggregated"]).read_text(encoding="utf-8"))
    stored["selection"] = {
        "selected_on": "val", "target_system": "baseline_lora", "target_pass@1": 0.6,
        "match_tolerance": 0.02, "num_samples": 20, "n_prompts": 40,
        "search": {"parameter": "temperature", "low": 0.5, "high": 2.0, "max_candidates": 6,
                   "stop_within": 0.01, "min_step": 0.02},
        "systems": {
            "baseline_lora": {"sampling": {"temperature": 1.0, "min_p": 0.0},
                              "val_pass@1": 0.6, "candidates": {"baseline_lora": {}},
                              "matched": True},
            "polychromic_lora": {"sampling": {"temperature": 1.25, "min_p": 0.0},
                                 "val_pass@1": 0.62, "matched": False, "candidates": {
                                     "polychromic_lora": {}, "polychromic_lora@t2.0": {},
                                     "polychromic_lora@t1.5": {}}}}}
    main = _rebuilt(paper, stored, tmp_path)
    assert "first 40 validation tweets (20 replies each)" in main
    assert (r"a bracketing search (regula falsi~\cite{dowell1971illinois}) between 0.5 and "
            "2.0") in main
    assert "or 6 candidates are spent" in main
    assert (r"\texttt{polychromic\_lora}: temperature 1.25 (validation pass@1 0.620, 3 "
            r"candidates; equivalence within $\pm$0.02 not shown)") in main
    assert "The test split is generated and scored once" in main
    assert r"\paragraph{At matched pass@1.}" in main and "90\\% interval" in main
    assert "Against a temperature-matched baseline" not in main


def test_the_testbed_check_is_in_the_paper(paper: dict) -> None:
    stored = json.loads(Path(paper["aggregated"]).read_text(encoding="utf-8"))["testbed"]
    assert stored["available"] and {row["system"] for row in stored["rows"]} >= {"zero_shot"}
    assert r"\paragraph{Does fine-tuning have room?}" in paper["main"]
    assert r"(\texttt{zero\_shot}, Holm $p$" in paper["main"]


def test_snakemakes_folder_marker_stays_out_of_the_data_release(tmp_path: Path) -> None:
    release = tmp_path / "dataset"
    (release / "data").mkdir(parents=True)
    (release / "README.md").write_text("card", encoding="utf-8")
    (release / ".snakemake_timestamp").write_text("", encoding="utf-8")
    paper_file = tmp_path / "main.tex"
    paper_file.write_text("paper", encoding="utf-8")
    write_tarball([paper_file], tmp_path / "s.tar.gz", release_dir=release)
    with tarfile.open(tmp_path / "s.tar.gz") as tar:
        names = tar.getnames()
    assert "submission/dataset/README.md" in names
    assert not any(name.endswith(".snakemake_timestamp") for name in names)
