"""The dataset card of the data release (`polychromic.data.release`), written from the run's own
reports: the split manifest (rule and hashes), the split report (sizes) and the curation report
(every filter with its count). A Hugging Face dataset card: a YAML header that `datasets` reads
(data files per split, features, split sizes), then Markdown for a reader.
"""

from __future__ import annotations

from typing import Any

import yaml

from polychromic.data.release import MEANINGS, SPLITS


def header(facts: dict[str, Any]) -> str:
    """The card's YAML front matter."""
    meta = {
        "pretty_name": "Tweet replies: the splits of a polychromic LoRA study",
        "configs": [{"config_name": "default",
                     "data_files": [{"split": name, "path": f"data/{name}.parquet"}
                                    for name in SPLITS]}],
        "dataset_info": {
            "features": [{"name": name, "dtype": kind} for name, kind in facts["fields"].items()],
            "splits": [{"name": name, **facts["sizes"][name]} for name in SPLITS],
        },
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def fields_section(facts: dict[str, Any]) -> list[str]:
    lines = ["## Fields", "", "| field | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {kind} | {MEANINGS.get(name, 'a count' if kind == 'int64' else '')} |"
              for name, kind in facts["fields"].items()]
    if facts["left_out"]:
        lines += ["", "Not released:", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in facts["left_out"].items()]
    return lines + [""]


def sizes_section(facts: dict[str, Any]) -> list[str]:
    splits = (facts["split_report"] or {}).get("splits") or {}
    lines = ["## Sizes", "", "| split | pairs | tweets |", "|---|---|---|"]
    for name in SPLITS:
        tweets = (splits.get(name) or {}).get("tweets", "n/a")
        lines.append(f"| {name} | {facts['sizes'][name]['num_examples']} | {tweets} |")
    return lines + [""]


def curation_section(facts: dict[str, Any]) -> list[str]:
    report = facts["curation_report"] or {}
    filters = report.get("filters") or {}
    lines = ["## Curation", "",
             f"{report.get('input', 'n/a')} collected pairs passed validation; "
             f"{report.get('output', 'n/a')} were kept. Each filter, in the order applied, and "
             "the pairs it dropped:", "", "| filter | dropped |", "|---|---|"]
    lines += [f"| {name} | {(filters.get(name) or {}).get('dropped', 0)} |"
              for name in report.get("filter_order") or filters]
    identity = report.get("identity") or {}
    if identity:
        lines += ["", f"Check: {identity.get('equation')}: {identity.get('input')} = "
                      f"{identity.get('kept')} + {identity.get('dropped')} "
                      f"({'holds' if identity.get('holds') else 'does NOT hold'})."]
    return lines + [""]


def split_section(facts: dict[str, Any]) -> list[str]:
    manifest = facts["manifest"] or {}
    ratios = ", ".join(f"{k} {v}" for k, v in (manifest.get("ratios") or {}).items())
    unseen = ": no test tweet is seen in training" if manifest.get("group_by") == "tweet" else ""
    lines = ["## Split rule", "",
             f"Grouped by `{manifest.get('group_by')}` (every pair of one group in one split"
             f"{unseen}), ratios {ratios}, seed {manifest.get('seed')}, stratified by "
             f"`{manifest.get('stratify')}`.", "",
             "## Hashes", "", "SHA-256 of the JSONL files the study read (`results/data/`):", "",
             "| file | lines | sha256 |", "|---|---|---|"]
    source = manifest.get("source") or {}
    files = [("curated (before the split)", source)] + [
        (name, (manifest.get("files") or {}).get(name) or {}) for name in SPLITS]
    lines += [f"| {name} | {entry.get('lines', 'n/a')} | `{entry.get('sha256', 'n/a')}` |"
              for name, entry in files]
    return lines + [""]


def texts_section(facts: dict[str, Any]) -> list[str]:
    if facts["include_texts"]:
        return ["## Texts", "", "The tweet and reply texts and the author handles are included "
                "(`paper.release_texts: true`): release them only for data you own or may "
                "share.", ""]
    return ["## Texts and rehydration", "",
            "The tweet and reply texts and the author handles are left out: the platform's "
            "terms allow sharing ids, not content. To rebuild the pairs, fetch every "
            "`tweet_id` and `reply_id` from the platform's API (for X: the v2 endpoint "
            "`GET /2/tweets?ids=...`, up to 100 ids per call), keep the pairs whose two posts "
            "still exist, and join them on the ids; deleted or protected posts cannot be "
            "recovered, so report how many came back. The hashes above identify the exact "
            "files the study used.", ""]


def dataset_card(facts: dict[str, Any]) -> str:
    """README.md of the release folder."""
    load = ('```python\nfrom datasets import load_dataset\n\n'
            'splits = load_dataset("dataset")  # this folder: train, val, test\n```')
    body = ["# Tweet replies: the splits of a polychromic LoRA study", "",
            "Tweet -> reply pairs as curated and split by the study's pipeline; one row per "
            "pair, the splits exactly as trained, validated and tested on.", "", load, ""]
    for section in (fields_section, sizes_section, curation_section, split_section,
                    texts_section):
        body += section(facts)
    return header(facts) + "\n" + "\n".join(body)
