"""The data release of the submission package: the splits as a Hugging Face `datasets`
DatasetDict in Parquet, with a dataset card.

Why: a paper's data-availability statement needs the exact train / val / test pairs it used.
Platforms' terms (X's developer agreement, for one) allow sharing tweet ids, not their content,
so by default the release holds the ids and the metadata of each pair, and no tweet or reply
text and no author handle; the card says how to rehydrate the texts from the ids.
`paper.release_texts: true` includes them, for a collection you own or may share.

Layout of the folder (a dataset repository: `datasets.load_dataset("<folder>")` gives the
DatasetDict with splits train, val and test, offline):

    README.md             the card: YAML header (data files, features, split sizes), then the
                          fields, sizes, curation rules and their counts, the split rule, the
                          hashes of the split files, what was left out and how to rehydrate
    data/train.parquet    one file per split, rows in the split file's order
    data/val.parquet
    data/test.parquet

Nothing is dropped silently: a record field that is not released is named in the card with the
reason (the texts: the terms; `source_file`, `source_line`: local provenance). The release is
an allow-list (ids, counts, the reply delay, dates, the topic and stance labels): any other
field of a collection, which may hold text (a URL, a quoted tweet, a display name), is listed
as not released. The Parquet bytes depend only
on the records and the pyarrow version (no time stamps), so a re-run rewrites identical files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polychromic.data.schema import COUNT_FIELDS, DATETIME_FIELDS, ID_FIELDS, NUMBER_FIELDS
from polychromic.io import read_json, read_jsonl, write_text

SPLITS = ("train", "val", "test")
TEXT_FIELDS = ("tweet", "reply", "tweet_author", "reply_author")
PROVENANCE_FIELDS = ("source_file", "source_line")
LABEL_FIELDS = ("topic", "stance")
MEANINGS = {
    "tweet_id": "the tweet's platform id", "reply_id": "the reply's platform id",
    "tweet": "the tweet's text", "reply": "the reply's text",
    "tweet_author": "the tweet's author handle", "reply_author": "the reply's author handle",
    "tweet_created_at": "when the tweet was posted (ISO 8601)",
    "reply_created_at": "when the reply was posted (ISO 8601)",
    "collected_at": "when the pair was collected (ISO 8601)",
    "reply_time_diff_seconds": "seconds from the tweet to the reply",
    "topic": "the tweet's topic label", "stance": "the reply's stance label",
}


def released_fields(records: list[dict[str, Any]], include_texts: bool
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """({field: type} released, {field: reason} left out) over all records, in a fixed order:
    ids, texts (when included), counts, numbers, dates, labels, then other string fields."""
    present = {key for record in records for key in record}
    order = [*ID_FIELDS, *(TEXT_FIELDS if include_texts else ()), *COUNT_FIELDS,
             *NUMBER_FIELDS, *DATETIME_FIELDS, *LABEL_FIELDS]
    kinds = {**dict.fromkeys(COUNT_FIELDS, "int64"), **dict.fromkeys(NUMBER_FIELDS, "float64")}
    fields = {name: kinds.get(name, "string") for name in order if name in present}
    left_out = {}
    for name in sorted(present - set(fields)):
        if name in TEXT_FIELDS:
            left_out[name] = "text or handle: the platform's terms allow sharing ids only"
        elif name in PROVENANCE_FIELDS:
            left_out[name] = "local provenance (a path on the collecting machine)"
        else:  # an allow-list: an unknown field may hold text (a URL, a quote, a name)
            left_out[name] = "not in the release's list of fields (it may hold text)"
    return fields, left_out


def features(fields: Mapping[str, str]) -> Any:
    """The `datasets.Features` of the released fields."""
    from datasets import Features, Value

    return Features({name: Value(kind) for name, kind in fields.items()})


def rows(records: list[dict[str, Any]], fields: Mapping[str, str]) -> dict[str, list]:
    """Column-wise values of the released fields (null where a record lacks one)."""
    cast = {"int64": int, "float64": float, "string": str}
    return {name: [None if r.get(name) is None else cast[kind](r[name]) for r in records]
            for name, kind in fields.items()}


def write_parquet(splits: Mapping[str, list[dict[str, Any]]], fields: Mapping[str, str],
                  folder: Path) -> dict[str, dict[str, int]]:
    """data/<split>.parquet of a DatasetDict; {split: {num_examples, num_bytes}}."""
    import datasets
    from datasets import Dataset, DatasetDict

    datasets.disable_progress_bars()
    dataset = DatasetDict({name: Dataset.from_dict(rows(records, fields),
                                                   features=features(fields))
                           for name, records in splits.items()})
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for name, part in dataset.items():
        part.to_parquet(str(folder / "data" / f"{name}.parquet"))
    return {name: {"num_examples": len(part), "num_bytes": int(part.data.nbytes)}
            for name, part in dataset.items()}


def build_release(splits: Mapping[str, str], manifest: str, split_report: str,
                  curation_report: str, out_dir: str, include_texts: bool,
                  synthetic: bool | None = None) -> dict[str, Any]:
    """Write the release folder (module docstring) from the split files; returns what the
    card says (sizes, fields, left out, origin). `synthetic` (`data.synthetic`) says whether
    the corpus was generated; None: the demo corpus is (`demo.is_demo_corpus`), no other."""
    from polychromic.data.demo import is_demo_corpus

    records = {name: read_jsonl(splits[name]) for name in SPLITS}
    every = [r for part in records.values() for r in part]
    fields, left_out = released_fields(every, include_texts)
    folder = Path(out_dir)
    sizes = write_parquet(records, fields, folder)
    demo = is_demo_corpus(every)
    facts = {"sizes": sizes, "fields": fields, "left_out": left_out,
             "synthetic": demo if synthetic is None else bool(synthetic),
             "demo": demo and synthetic is not False,
             "include_texts": include_texts, "manifest": read_json(manifest),
             "split_report": read_json(split_report),
             "curation_report": read_json(curation_report)}
    from polychromic.data.card import dataset_card

    write_text(folder / "README.md", dataset_card(facts))
    return facts


def every_pair_labelled(folder: str | Path | None, field: str = "stance",
                        split: str = "train") -> bool:
    """Whether every pair of `split` in the release folder has a `field` label (the tiny base
    model balances its pretraining's replies by stance exactly then: `models.tiny`)."""
    import pyarrow.parquet as pq

    path = Path(folder) / "data" / f"{split}.parquet" if folder is not None else None
    if path is None or not path.is_file() or field not in pq.read_schema(path).names:
        return False
    column = pq.read_table(path, columns=[field]).column(field)
    return len(column) > 0 and column.null_count == 0
