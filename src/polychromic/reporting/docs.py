"""Write the result pages of docs/ (and the README's results block) from a results folder.

    python -m polychromic.reporting.docs results --out docs/results.md --readme README.md
    make docs                      (the same for the default run)

Why: a number typed into a document by hand is wrong after the next run. Every number on these
pages is read from the results folder: the main table (the registry's "table" metrics, the
daggers of the primary rule as the aggregate's `comparisons` record them), the verdict
(`verdict.markdown`), the training summary, the power of the final test simulated at the
run's own variance components (the aggregate's `power`, `power.final_test_power`), the run
time of each heavy rule (its `benchmark:` file), the run itself (base model, corpus, judge,
wall time: `showcase`), with `--samples N` every system's replies to N test prompts, with
`--gpu FOLDER` the same study's GPU run (or that it is pending), and with `--compare OTHER`,
how far the headline means of another run of the same config
(another machine, another number of cores) lie from these. The figures are copied next to
the page, and page 1 of the paper is rendered next to them with the run's pre-submission
checklist below it (docs/paper.md). In the README, the text between `<!-- results:begin -->` and
`<!-- results:end -->` is replaced.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polychromic.contract import AGGREGATE_FILES, FIGURES
from polychromic.evaluation.registry import label, shown_in
from polychromic.io import markers, read_json, replace_block, write_text
from polychromic.provenance import rule_times
from polychromic.reporting.judges import headroom_markdown, reward_markdown, validity_markdown
from polychromic.reporting.latex import best_systems, significance_marks
from polychromic.reporting.power import describe_power
from polychromic.reporting.showcase import (
    base_model_sentence,
    run_facts,
    sample_replies,
    wall_time_sentence,
)
from polychromic.reporting.verdict import comparisons_markdown, room_markdown
from polychromic.reporting.verdict import markdown as verdict_markdown

BEGIN, END = markers("results")


PAPER_PAGE = "paper_page1.png"


def _number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def main_table(aggregated: dict[str, Any]) -> str:
    """The main results as Markdown: mean ± std over seeds, best in bold, † where the system
    differs detectably from the reference system by the primary rule (`comparisons`)."""
    systems = list(aggregated.get("main_systems") or aggregated["system_order"])
    reference = aggregated.get("reference_system")
    lines = ["| metric | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for metric in shown_in("table", aggregated.get("metric_order") or []):
        best = best_systems(aggregated, metric, systems)
        marks = significance_marks(aggregated, metric, systems, reference)
        cells = []
        for system in systems:
            entry = aggregated["systems"][system].get(metric) or {}
            cell = f"{_number(entry.get('mean'))} ± {_number(entry.get('std'))}"
            cell = f"**{cell}**" if system in best else cell
            cells.append(cell + (" †" if marks[system] else ""))
        arrow = "↑" if aggregated["systems"][systems[0]][metric].get("higher_is_better") else "↓"
        lines.append(f"| {label(metric)} {arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _gate(entry: dict[str, Any]) -> tuple[str, str]:
    """An experiment's quality gate (its thresholds over seeds and their source) and how many
    of its sampling steps had a zero policy term; dashes where it samples nothing."""
    gate, zero = entry.get("quality_gate") or {}, entry.get("zero_term") or {}
    values = sorted({round(value, 3) for value in gate.get("thresholds") or []})
    shown = (", ".join(f"{value:.3f}" for value in values) + f" ({gate.get('source')})"
             if values else "-")
    steps = (f"{zero['zero_term_steps']} of {zero['sampling_steps']}"
             if zero.get("sampling_steps") else "-")
    return shown, steps


def training_summary(aggregated: dict[str, Any]) -> str:
    """Per experiment: objective, saved step per seed, best validation loss over seeds, the
    quality gate and the sampling steps whose policy term was zero (docs/training.md)."""
    lines = ["| experiment | objective | saved step per seed | best validation loss | zero "
             "adapter in seeds | quality gate | zero policy term (steps) |",
             "|---|---|---|---|---|---|---|"]
    for name, entry in (aggregated.get("experiments") or {}).items():
        loss, saved = entry["best_val_loss"], entry["saved_step"]
        seeds = ", ".join(str(s) for s in entry.get("initial_adapter_seeds") or []) or "none"
        steps = ", ".join(f"{value:g}" for value in saved.get("values") or [saved["mean"]])
        gate, zero = _gate(entry)
        lines.append(f"| {name} | {entry['objective']} | {steps} | "
                     f"{_number(loss['mean'])} ± {_number(loss['std'])} | {seeds} | {gate} | "
                     f"{zero} |")
    return "\n".join(lines)


def run_times(results: Path) -> str:
    """Wall time of every heavy rule (`benchmarks/`), summed per rule, in minutes."""
    rules = rule_times(results / "benchmarks")
    if not rules:
        return "No benchmark files in the results folder."
    parts = [f"{entry['rule']} {entry['jobs']} job(s), {entry['seconds'] / 60:.1f} min"
             for entry in rules]
    return "Run time of the heavy rules (sum over their jobs): " + "; ".join(parts) + "."


def headline_metrics(aggregated: dict[str, Any]) -> list[str]:
    """The metrics of the README's block (registry place "summary")."""
    return shown_in("summary", aggregated.get("metric_order") or [])


def comparison(aggregated: dict[str, Any], other: dict[str, Any], name: str) -> str:
    """The largest difference of the headline means between this run and `other`."""
    worst, where = 0.0, "nothing"
    for system in aggregated.get("main_systems") or []:
        for metric in headline_metrics(aggregated):
            a = (aggregated["systems"][system].get(metric) or {}).get("mean")
            b = ((other.get("systems") or {}).get(system, {}).get(metric) or {}).get("mean")
            if a is not None and b is not None and abs(a - b) >= worst:
                worst, where = abs(a - b), f"{label(metric)} of {system}"
    names = ", ".join(label(metric) for metric in headline_metrics(aggregated))
    if aggregated.get("systems") == other.get("systems"):
        return (f"Against {name} of the same config, every metric of every system is the same "
                f"number, to the last digit (the headline ones: {names}).")
    return (f"Against {name} of the same config, the headline means ({names} of the main "
            f"systems) differ by at most {worst:.2g} ({where}).")


def page(results: Path, title: str, figures_dir: str, compare: tuple[dict, str] | None,
         samples: int = 0, gpu: str | None = None) -> str:
    """The whole Markdown page of one results folder; `samples` test prompts' replies, and
    the GPU run's section when `gpu` names a results folder (pending where it has none)."""
    aggregated = read_json(results / "evaluation" / AGGREGATE_FILES["aggregated"])
    seeds = ", ".join(str(seed) for seed in aggregated.get("seeds") or [])
    parts = [f"# {title}", "",
             f"Generated by `python -m polychromic.reporting.docs` from `{results}`; do not edit "
             "by hand (run `make docs` again).", "",
             *run_facts(results, aggregated),
             f"## Main table (mean ± std over seeds {seeds})", "",
             main_table(aggregated), "",
             "Bold: best in the metric's direction. †: differs detectably from "
             f"`{aggregated.get('reference_system')}` by the primary rule (the verdict's "
             "cells as the verdict decided them, the others in one Holm family of the "
             "tables; docs/statistics.md).", "",
             "## Verdict (the primary test)", "", verdict_markdown(aggregated.get("verdict") or {}),
             *objectives_section(aggregated),
             *diversity_section(aggregated),
             "## Testbed check: does fine-tuning have room?", "",
             room_markdown(aggregated.get("testbed") or {}), "",
             headroom_markdown(aggregated.get("headroom") or {}), "",
             *judges_section(aggregated),
             "## Power of the final test", "", power_section(aggregated), "",
             "## Training", "", training_summary(aggregated), "", run_times(results), ""]
    if samples:
        parts += sample_replies(results, aggregated, samples)
    if gpu is not None:
        parts += gpu_section(Path(gpu))
    if compare is not None:
        parts += ["## Between runs", "", comparison(aggregated, *compare), ""]
    parts += ["## Figures", ""]
    parts += [f"![{name}]({figures_dir}/{name}.png)" for name in FIGURES
              if (results / "figures" / f"{name}.png").is_file()]
    parts += ["", "## The paper", "", *paper_section(results, figures_dir)]
    return "\n".join(parts) + "\n"


def gpu_section(gpu: Path) -> list[str]:
    """The same study on a GPU (bfloat16, generation.engine vllm on CUDA): its wall time and
    rule times where `gpu` holds its results, else a note that it is pending."""
    lines = ["## On a GPU", ""]
    if not (gpu / "evaluation" / AGGREGATE_FILES["aggregated"]).is_file():
        return lines + [f"Pending: `{gpu}` holds no results of this study on a GPU. That run "
                        "is the same config with `model.dtype: bfloat16` and `generation."
                        "engine: vllm` (CUDA vLLM through `--sdm conda`, envs/vllm.yaml), in "
                        f"the working folder `{gpu.parent}`; this page's run used CPUs only.",
                        ""]
    return lines + [wall_time_sentence(gpu), "", run_times(gpu), ""]


def paper_section(results: Path, figures_dir: str) -> list[str]:
    """Page 1 of the paper (rendered by `write_docs`) and its pre-submission checklist."""
    lines = []
    if (results / "paper" / "main.pdf").is_file():
        lines += [f"![Page 1 of the paper]({figures_dir}/{PAPER_PAGE})", ""]
    else:
        lines += ["No `paper/main.pdf` (TeX was not installed for this run).", ""]
    checklist = results / "submission" / "checklist.md"
    if checklist.is_file():
        body = checklist.read_text(encoding="utf-8").split("\n", 2)[2]  # without its title
        lines += ["The pre-submission checklist (`submission/checklist.md`, docs/paper.md):", "",
                  body.strip(), ""]
    return lines


def render_first_page(pdf: Path, png: Path, width: int = 900) -> None:
    """Page 1 of `pdf` as a PNG `width` pixels wide (pypdfium2, a dev dependency)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        page = document[0]
        image = page.render(scale=width / page.get_width()).to_pil()
        png.parent.mkdir(parents=True, exist_ok=True)
        image.save(png, optimize=True)
    finally:
        document.close()


def power_section(aggregated: dict[str, Any]) -> str:
    """The simulated power of the final test (the aggregate's `power`); a sentence saying why
    where there is none."""
    power = aggregated.get("power")
    if not power:
        verdict = aggregated.get("verdict") or {}
        return ("Not computed: " + (verdict.get("reason") or "the run has no verdict") + "."
                if not verdict.get("available") else "Not computed (see the aggregate step's log).")
    return describe_power(power)


def diversity_section(aggregated: dict[str, Any]) -> list[str]:
    """The reference system against its objective without the diversity term, when the study
    trains that ablation (`diversity_effect`)."""
    block = aggregated.get("diversity_effect")
    if not block:
        return []
    return ["## The diversity term's own effect", "",
            f"{block.get('reference')} against {block.get('baseline')}, the same objective "
            "without its diversity term (evaluation.diversity_ablation), by the same rule: "
            "where the verdict above answers whether the objective as a whole beats plain "
            "LoRA, this answers whether its diversity term does anything the quality reward "
            "alone does not.", "", verdict_markdown(block), ""]


def judges_section(aggregated: dict[str, Any]) -> list[str]:
    """Which judge decided, how it agrees with the oracle, and with the training reward."""
    used = ((aggregated.get("settings") or {}).get("passk") or {}).get("judges") or {}
    return ["## The judges", "",
            f"Primary judge: {used.get('primary', 'n/a')}; second readings: "
            f"{', '.join(used.get('readings') or []) or 'none'} (and the lexical ROUGE-L "
            "reading). Agreement with the oracle on the test samples of every system, over "
            "seeds (`evaluation/judge_validity.json`):", "",
            validity_markdown(aggregated.get("judge_validity") or {}), "",
            "Agreement with the training reward on the same samples:", "",
            reward_markdown(aggregated.get("judge_reward") or {}), ""]


def objectives_section(aggregated: dict[str, Any]) -> list[str]:
    """Each objective against the baseline at matched pass@1, when the study has more than
    the reference objective."""
    blocks = aggregated.get("objective_comparisons") or {}
    if len(blocks) < 2:
        return []
    return ["## Every LoRA system at matched pass@1", "",
            "Each LoRA system against its matched baseline (the verdict's rule: the baseline "
            "itself when the sampling was chosen on validation, else the baseline variant "
            "closest in pass@1), by the primary rule (differences with their 95 % CIs, seeds "
            "and tweets as crossed random factors; † detectable; the verdict word is "
            "'inconclusive (unmatched)' where pass@1 does not match). The reference system "
            "(bold) is the pre-registered verdict; the others are secondary readings, each "
            "with its own Holm family over its rows.", "",
            comparisons_markdown(blocks, aggregated.get("reference_system") or ""), ""]


def readme_block(aggregated: dict[str, Any], page_path: str,
                 origin: str = "the default run by `make docs`",
                 preface: Sequence[str] = ()) -> str:
    """The README's excerpt (between the markers of its block): the verdict sentence and the
    headline means, after the `preface` lines (a study's model and wall time)."""
    verdict = aggregated.get("verdict") or {}
    lines = [f"*Generated from {origin}; the whole page is "
             f"[{page_path}]({page_path}).*", "", *preface]
    systems = list(aggregated.get("main_systems") or [])
    metrics = headline_metrics(aggregated)
    lines += ["| system | " + " | ".join(label(m) for m in metrics) + " |",
              "|---" * (len(metrics) + 1) + "|"]
    for system in systems:
        values = [_number((aggregated["systems"][system].get(m) or {}).get("mean"))
                  for m in metrics]
        lines.append(f"| {system} | " + " | ".join(values) + " |")
    if verdict.get("available"):
        lines += ["", f"> **Verdict: {verdict['verdict']}.** {verdict['sentence']}"]
        lines += [f">\n> **Warning:** {text}." for text in verdict.get("warnings") or []]
    return "\n".join(lines)


def write_docs(results: str, out: str, title: str, readme: str | None = None,
               compare: str | None = None, compare_label: str = "another run",
               samples: int = 0, gpu: str | None = None, block: str = "results",
               origin: str | None = None) -> None:
    """Write the page `out` (and its figures) from `results`; update `readme`'s block."""
    folder, target = Path(results), Path(out)
    figures = target.parent / "figures" / target.stem
    figures.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        source = folder / "figures" / f"{name}.png"
        if source.is_file():
            shutil.copyfile(source, figures / f"{name}.png")
    if (folder / "paper" / "main.pdf").is_file():
        render_first_page(folder / "paper" / "main.pdf", figures / PAPER_PAGE)
    other = (read_json(compare), compare_label) if compare else None
    write_text(target, page(folder, title, f"figures/{target.stem}", other, samples, gpu))
    if readme:
        aggregated = read_json(folder / "evaluation" / AGGREGATE_FILES["aggregated"])
        preface = [] if block == "results" else [
            base_model_sentence(folder), "", wall_time_sentence(folder), ""]
        replace_block(readme, block, readme_block(
            aggregated, str(target), origin or "the default run by `make docs`", preface))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polychromic.reporting.docs",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("results", help="a results folder (results/ of a finished run)")
    parser.add_argument("--out", required=True, help="the Markdown page to write")
    parser.add_argument("--title", default="Results of the default run")
    parser.add_argument("--readme", default=None, help="README whose results block to update")
    parser.add_argument("--compare", default=None,
                        help="aggregated_results.json of another run of the same config")
    parser.add_argument("--compare-label", default="another run",
                        help="what the other run is, for the text (e.g. 'a run on 1 core')")
    parser.add_argument("--readme-block", default="results",
                        help="which generated block of the README to replace")
    parser.add_argument("--readme-origin", default=None,
                        help="the run the block comes from, for its first line")
    parser.add_argument("--samples", type=int, default=0,
                        help="show every system's replies to this many test prompts")
    parser.add_argument("--gpu", default=None,
                        help="the results folder of the same study on a GPU (pending if absent)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    write_docs(args.results, args.out, args.title, args.readme, args.compare,
               args.compare_label, args.samples, args.gpu, args.readme_block,
               args.readme_origin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
