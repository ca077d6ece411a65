"""What judges a sample, shared by the evaluation and the sampling choice on validation: the
judge and its thresholds (`Judging`), reading and checking one seed's generation files, and one
batched encoder call over unique texts.

Kept apart from `evaluate` (every metric and test) so that the validation choice
(`evaluation.selection`) depends on what it uses: editing a metric or a statistical test re-runs
the evaluation, not the sampling choice and the generations after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polychromic.encoders import default_layer
from polychromic.evaluation import calibration as cal
from polychromic.io import read_jsonl
from polychromic.settings import EvaluationSettings


def load_generations(generations: dict[str, str], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Read every system's records and check they cover the same prompts in the same order."""
    if not generations:
        raise ValueError("no generation files given")
    loaded = {system: read_jsonl(path) for system, path in generations.items()}
    first_system, first = next(iter(loaded.items()))
    ids = [record["prompt_id"] for record in first]
    if not ids:
        raise ValueError(f"{first_system}: no prompts in {generations[first_system]}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{first_system}: duplicate prompt ids in {generations[first_system]}")
    for system, records in loaded.items():
        if [record["prompt_id"] for record in records] != ids:
            raise ValueError(f"{system}: prompt ids differ from {first_system}'s (ids or order) "
                             f"in {generations[system]}")
        for record, ref in zip(records, first, strict=True):
            if record["references"] != ref["references"]:
                raise ValueError(f"{system}: references of prompt {record['prompt_id']} differ "
                                 f"from {first_system}'s")
            if not any(r.strip() for r in record["references"]):
                raise ValueError(f"{system}: prompt {record['prompt_id']} has no reference")
            if record.get("seed") != seed:
                raise ValueError(f"{system}: record seed {record.get('seed')} is not seed {seed}")
            if record.get("system") != system:
                raise ValueError(f"{system}: record of prompt {record['prompt_id']} says system "
                                 f"{record.get('system')!r}")
        sizes = {len(record["samples"]) for record in records}
        if len(sizes) != 1:
            raise ValueError(f"{system}: prompts have different numbers of samples {sorted(sizes)}")
    return loaded


def encode(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """One batched encoder call over the unique texts, sorted by length (less padding)."""
    unique = sorted(set(texts), key=lambda text: (len(text), text))  # deterministic batches
    vectors = encoder.encode(unique)
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[text] for text in texts]]


def split_rows(matrix: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *sizes])
    return [matrix[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]


@dataclass(frozen=True)
class Judging:
    """How samples are judged in this evaluation: the judge, its BERTScore layer, the pass
    criterion and thresholds (from config, or calibrated on validation)."""

    judge: dict[str, str]  # {name, path, precision}
    layer: int
    criterion: str
    threshold: float
    lexical_threshold: float
    cluster_threshold: float  # judge cosine at which reference modes join (coverage)
    sources: dict[str, str]  # where each threshold came from: config | validation

    @classmethod
    def from_settings(cls, settings: EvaluationSettings,
                      calibration: dict[str, Any] | None) -> Judging:
        main, lexical, sources = cal.thresholds(settings, calibration)
        if settings.passk.criterion == "semantic":
            semantic = main
        elif calibration is None or "semantic" not in calibration:
            raise ValueError("coverage clusters references at the judge's calibrated cosine "
                             "threshold: the calibration file has no 'semantic' entry")
        else:
            semantic = calibration["semantic"]["threshold"]
        layer = settings.bertscore_layer or default_layer(settings.judge)
        return cls(cal.judge_description(settings, calibration), int(layer),
                   settings.passk.criterion, main, lexical, float(semantic), sources)
