"""What a study page shows before its numbers: the run (base model, corpus, judge, wall time)
and the systems' replies to a few test prompts.

Why: a pass@3 of 0.4 means little to a reader who has never seen a reply, and a result means
little without the model, the data and the judge it came from. Everything here is read from the
results folder: the base model from `models/base/base_model.json` (its license where it is a
known model) and the trained precision from the experiments' run.json, the corpus from the
validation, curation and split reports, the judge from the aggregate's settings and the
calibration, the wall time from `wall_time.json` (`polychromic.reporting.walltime`).

The prompts are chosen by a fixed rule, not by hand: `count` test prompts evenly spaced over the
test split's order (the evaluation's `prompt_ids` of the first seed), each with its references
and, for every system, the first `shown` of its sampled replies in that seed and how many of its
n samples the primary judge passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polychromic.contract import EVALUATION_FILES
from polychromic.io import read_json, read_jsonl
from polychromic.reporting.walltime import summary as wall_time

REPORTS = ("validation_report.json", "curation_report.json", "split_report.json")
SCORES = {"semantic": "cosine", "rougeL": "ROUGE-L F1", "bertscore": "BERTScore F1"}
MARKDOWN = str.maketrans({char: "\\" + char for char in "\\`*_[]<>#|"})


def _cell(text: str, limit: int = 160) -> str:
    """A reply as one Markdown table cell: one line, long text cut with '...', Markdown's
    characters escaped (a reply that imitates code stays text)."""
    flat = " ".join(str(text).split())
    if not flat:
        return "*(empty)*"
    flat = flat if len(flat) <= limit else flat[: limit - 3] + "..."
    return flat.translate(MARKDOWN)


def base_model_sentence(results: Path) -> str:
    """Which base model, its license and precision."""
    path = results / "models" / "base" / "base_model.json"
    if not path.is_file():
        return f"**Base model:** not in this results folder (no `{path.relative_to(results)}`)."
    pointer = read_json(path)
    dtypes = sorted({read_json(run).get("dtype") for run in
                     (results / "models").glob("*/seed_*/run.json")} - {None})
    trained = f"; trained in {', '.join(dtypes)}" if dtypes else ""
    if pointer.get("kind") == "known":
        card = pointer["model"]  # known.describe: every key is there for a known name
        return (f"**Base model:** {card['name']} ({card['hub_name']}, {card['license']}; "
                f"{card['weights']}; from {card['source']}){trained}.")
    if pointer.get("kind") == "tiny":
        return ("**Base model:** the workflow's own tiny model, pretrained by `base_model`"
                f"{trained}.")
    card = pointer.get("model") or {}
    license_ = card.get("license")
    return (f"**Base model:** a local folder, `{Path(pointer['path']).name}`"
            f"{f' ({license_})' if license_ else ''}{trained}.")


def corpus_sentence(results: Path) -> str:
    """The raw files, and how many pairs and tweets survive validation, curation and split."""
    data = results / "data"
    missing = [name for name in REPORTS if not (data / name).is_file()]
    if missing:
        return f"**Corpus:** not in this results folder (no `data/{missing[0]}`)."
    files = read_json(data / "validation_report.json")["files"]
    read = sum(entry["lines_read"] for entry in files)
    kept = sum(entry["kept"] for entry in files)
    curated = read_json(data / "curation_report.json")["output"]
    splits = read_json(data / "split_report.json")["splits"]
    names = ", ".join(f"`{entry['file']}`" for entry in files)
    parts = ", ".join(f"{name} {splits[name]['pairs']} pairs of {splits[name]['tweets']} tweets"
                      for name in ("train", "val", "test") if name in splits)
    return (f"**Corpus:** {names}: {read} records read, {kept} valid, {curated} after curation "
            f"(docs/data.md; the reports are in `data/`); {parts}.")


def judge_sentence(aggregated: dict[str, Any]) -> str:
    """The primary judge, its encoder and its calibrated threshold."""
    passk = aggregated["settings"]["passk"]
    judges, encoder = passk.get("judges") or {}, passk.get("judge") or {}
    calibration = aggregated.get("calibration") or {}
    threshold = calibration.get("threshold")
    interval = calibration.get("threshold_ci") or []
    source = calibration.get("source")
    where = "" if threshold is None else (
        f", threshold {threshold:.3f} " + ("set in the config" if source == "config"
                                           else f"calibrated on {source}"))
    if len(interval) == 2:
        where += f" (95 % interval {interval[0]:.3f} to {interval[1]:.3f}"
        where += (f" from {calibration.get('positives')} positive pairs"
                  + (", few pairs" if calibration.get("few_pairs") else "") + ")")
    readings = ", ".join(judges.get("readings") or []) or "none"
    primary = judges.get("primary", "similarity")
    criterion = (passk.get("passk") or {}).get("criterion")
    score = SCORES.get(criterion, f"{criterion} score")
    how = {"similarity": f"a reply passes when its {score} to the closest reference reaches "
                         "the threshold",
           "oracle": "the demo generator's own templates decide a pass"}
    return (f"**Judge:** {primary} ({how.get(primary, 'docs/statistics.md')}); the similarity "
            f"judge's encoder {encoder.get('name')} in {encoder.get('precision')}{where}; "
            f"second readings: {readings}.")


def wall_time_sentence(results: Path) -> str:
    """The run's wall time, or that it was not recorded."""
    timing = wall_time(results)
    if timing is None:
        return "**Wall time:** not recorded (the run was not started through `walltime`)."
    if not timing["complete"]:
        return (f"**Wall time:** unknown: none of the {timing['invocations']} timed "
                "invocations wrote the run's final output.")
    cores = "/".join(str(count) for count in timing["cpus"]) or "?"
    runs = ("" if timing["invocations"] == 1 else
            f", the sum of {timing['invocations']} invocations")
    failed = f" ({timing['failed']} of them failed)" if timing["failed"] else ""
    return (f"**Wall time:** {timing['seconds'] / 60:.1f} min on {cores} CPU cores{runs}"
            f"{failed}, started {timing['started']}.")


def run_facts(results: Path, aggregated: dict[str, Any]) -> list[str]:
    """The section "The run": base model, corpus, judge, wall time."""
    return ["## The run", "", base_model_sentence(results), "", corpus_sentence(results), "",
            judge_sentence(aggregated), "", wall_time_sentence(results), ""]


def evenly_spaced(items: list[str], count: int) -> list[str]:
    """`count` items at evenly spaced positions, the first and the last among them."""
    if count <= 0 or not items:
        return []
    if count == 1 or len(items) <= count:
        return items[:count]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _prompt_table(prompt_id: str, records: dict[str, dict[str, Any]],
                  passk: dict[str, Any], shown: int) -> list[str]:
    """One prompt: its text and references, then a row per system that replied to it."""
    replied = [name for name in records if prompt_id in records[name]]
    first = records[replied[0]][prompt_id]
    refs = " / ".join(_cell(text, 120) for text in first.get("references") or []) or "none"
    lines = [f"**Prompt:** {_cell(first['tweet'])}  ", f"**Reference(s):** {refs}", "",
             "| system | passed | " + " | ".join(f"reply {i + 1}" for i in range(shown)) + " |",
             "|---|---|" + "---|" * shown]
    position = passk["prompt_ids"].index(prompt_id)
    for name in replied:
        counts = passk["systems"].get(name, {})
        passed = (f"{counts['pass_counts'][position]} of {counts['n']}"
                  if "pass_counts" in counts else "-")
        replies = [_cell(text) for text in records[name][prompt_id]["samples"][:shown]]
        replies += [""] * (shown - len(replies))
        lines.append(f"| {name} | {passed} | " + " | ".join(replies) + " |")
    return [*lines, ""]


def sample_replies(results: Path, aggregated: dict[str, Any], count: int = 5,
                   shown: int = 2) -> list[str]:
    """The section "Sample replies": `count` test prompts, every system's first `shown`
    sampled replies in the first seed and its judge's pass count."""
    seed = aggregated["seeds"][0]
    folder = results / "generations" / f"seed_{seed}"
    passk = read_json(results / "evaluation" / f"seed_{seed}" / EVALUATION_FILES["passk"])
    records = {name: {r["prompt_id"]: r for r in read_jsonl(folder / f"{name}.jsonl")}
               for name in aggregated.get("system_order") or aggregated["systems"]
               if (folder / f"{name}.jsonl").is_file()}
    chosen = [prompt_id for prompt_id in evenly_spaced(passk["prompt_ids"], count)
              if any(prompt_id in by_id for by_id in records.values())]
    lines = ["## Sample replies", ""]
    if not chosen:
        return [*lines, f"No generations of seed {seed} in this results folder.", ""]
    lines += [f"{len(chosen)} test prompts evenly spaced over the test split (not chosen by "
              f"hand), seed {seed}: each system's first {shown} sampled replies, and how many "
              "of its n sampled replies the primary judge passed.", ""]
    for prompt_id in chosen:
        lines += _prompt_table(prompt_id, records, passk, shown)
    return lines
