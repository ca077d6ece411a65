"""Every sampling choice made on the validation split, for every system alike.

Why: picking the baseline's temperature by its pass@1 on the test tweets, and giving only the
baseline a grid, makes the comparison's own choice depend on the numbers it then reports. The
protocol (`evaluation.selection` with a non-empty grid):

1. every configured system (zero-shot, few-shot and every LoRA system alike) is sampled on the
   validation split at generation's own settings and at each entry of the grid
   (`polychromic.systems.selection_candidates`: the system and its variants `<system>@t1.3`,
   named as sampling variants are named), `num_samples` replies for each of the first
   `max_prompts` validation tweets;
2. the judge, with the pass threshold calibrated on the validation split, gives each candidate
   its validation pass@1: the mean over tweets of the share of passing replies, averaged over
   the seeds, and its validation pass@k for each configured k up to `num_samples`
   (`validation_passk`; the validation frontier figure draws each system's candidates);
3. the target is the baseline system's validation pass@1 at generation's settings, the
   single-answer quality of plain LoRA as practised ("without losing single-answer quality");
4. every system takes the candidate whose validation pass@1 is closest to the target (ties: the
   first in grid order, generation's own first) (`choose`);
5. the test split is then generated and scored once, each system at its chosen setting
   (`polychromic.systems.chosen_system`, applied by the `generate` step); no choice reads a
   test file.

The checkpoint rule (`training.checkpoint_selection`) and the pass threshold (calibrated on
validation) are the same for every system too; `selection.json` records every choice with
`selected_on: val`, each system's `val_gap` to the target and whether it is within
`evaluation.match_tolerance` (`matched`: a system none of whose candidates comes that close is
kept at its closest and flagged, never dropped); the aggregate copies it. The verdict then checks
on the test tweets that the pass@1 of the compared systems agree within the same tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from polychromic.evaluation import passk as pk
from polychromic.evaluation.calibration import RULE as CALIBRATION_RULE
from polychromic.evaluation.judging import Judging, encode, load_generations, split_rows
from polychromic.io import read_json, write_json
from polychromic.settings import EvaluationSettings, GenerationSettings
from polychromic.systems import KEYS, System, selection_candidates

RULE = ("each system at the candidate (generation's settings, or a grid entry) whose "
        "validation pass@1 is closest to the baseline system's validation pass@1 at "
        "generation's settings; ties to the earlier candidate")


def effective_sampling(system: System, generation: GenerationSettings) -> dict[str, Any]:
    """The sampling a system is generated with: its overrides over generation's values."""
    return {key: getattr(system, key) if getattr(system, key) is not None
            else getattr(generation, key) for key in KEYS}


def pass_counts(records: Sequence[dict[str, Any]], judging: Any,
                encoder: Any) -> list[tuple[int, int]]:
    """Per tweet, (passing replies, replies) under `judging`: the pass@1 estimate is their
    ratio, pass@k the unbiased estimator of Chen et al. (2021) on them."""
    samples = [record["samples"] for record in records]
    references = [record["references"] for record in records]
    embeddings = ref_embeddings = None
    if judging.criterion == "semantic":  # one batched call each over the unique texts
        embeddings = split_rows(encode(encoder, [s for group in samples for s in group]),
                                [len(group) for group in samples])
        ref_embeddings = split_rows(encode(encoder, [r for group in references for r in group]),
                                    [len(group) for group in references])
    similarities = pk.best_reference_similarities(
        judging.criterion, samples, references, embeddings, ref_embeddings,
        judging.judge["path"], judging.layer)
    counts = pk.pass_counts(similarities, samples, judging.threshold)
    return [(int(count), len(group)) for count, group in zip(counts, samples, strict=True)]


class EmbeddingTable:
    """Embeddings looked up by text (an encoder's `encode` for texts embedded beforehand)."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.rows = {text: vector for text, vector in zip(texts, vectors, strict=True)}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.rows[text] for text in texts])


def embedded_texts(loaded: Mapping[int, Mapping[str, Sequence[dict[str, Any]]]],
                   judging: Any) -> EmbeddingTable:
    """Every sample and reference of every seed and candidate, embedded by the judge in one
    batched call over the unique texts (candidates repeat many replies and every reference)."""
    from polychromic.embeddings import get_encoder

    texts = sorted({text for systems in loaded.values() for records in systems.values()
                    for record in records for text in (*record["samples"],
                                                       *record["references"])})
    encoder = get_encoder(judging.judge["path"], precision=judging.judge["precision"])
    return EmbeddingTable(texts, encode(encoder, texts))


def validation_passk(generations: Mapping[int, Mapping[str, str]], settings: EvaluationSettings,
                     calibration: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{candidate: {pass@1, pass@k for each configured k <= num_samples (means over seeds and
    tweets), per_seed (pass@1), per_prompt (pass@1 per seed and tweet), n_prompts}} from every
    seed's validation generations ({seed: {candidate: path}})."""
    judging = Judging.from_settings(settings, calibration)
    loaded = {seed: load_generations(dict(generations[seed]), int(seed))
              for seed in sorted(generations)}
    encoder = embedded_texts(loaded, judging) if judging.criterion == "semantic" else None
    counted: dict[str, list[list[tuple[int, int]]]] = {}
    for systems in loaded.values():
        for name, records in systems.items():
            counted.setdefault(name, []).append(pass_counts(records, judging, encoder))
    n = min(size for rows in counted.values() for row in rows for _, size in row)
    ks = [k for k in settings.passk.k if 1 < k <= n]
    result = {}
    for name, rows in counted.items():
        pass1 = [[c / size for c, size in row] for row in rows]
        result[name] = {"pass@1": float(np.mean(pass1)),
                        **{f"pass@{k}": float(np.mean([[pk.pass_at_k(size, c, k) for c, size
                                                         in row] for row in rows]))
                           for k in ks},
                        "per_seed": [float(np.mean(r)) for r in pass1], "per_prompt": pass1,
                        "n_prompts": len(rows[0])}
    return result


def choose(pass1: Mapping[str, float], options: Mapping[str, System],
           baseline: str) -> tuple[float, dict[str, str]]:
    """(target, {configured system: chosen candidate}) by `RULE`; `options` in candidate
    order (each system, then its grid variants)."""
    if baseline not in pass1:
        raise ValueError(f"the baseline system {baseline!r} has no validation pass@1")
    target = pass1[baseline]
    chosen: dict[str, str] = {}
    for name, system in options.items():
        owner = system.base_system or name
        best = chosen.get(owner)
        if best is None or abs(pass1[name] - target) < abs(pass1[best] - target):
            chosen[owner] = name
    return target, chosen


def _candidate(measured: Mapping[str, Any], system: System) -> dict[str, Any]:
    """A candidate's entry in selection.json: its overrides and its validation pass@k."""
    return {"overrides": system.overrides.items(),
            **{key: value for key, value in measured.items() if key.startswith("pass@")}}


def select_sampling(generations: Mapping[int, Mapping[str, str]], output: str,
                    systems: Mapping[str, System], generation: GenerationSettings,
                    settings: EvaluationSettings, calibration: str | None) -> dict[str, Any]:
    """Write selection.json (module docstring) from every seed's validation generations."""
    options = selection_candidates(systems, settings.selection.grid)
    missing = sorted(set(options) - {name for paths in generations.values() for name in paths})
    if missing:
        raise ValueError(f"no validation generations of {missing}")
    measured = validation_passk(generations, settings, read_json(calibration)
                                if calibration else None)
    target, chosen = choose({name: entry["pass@1"] for name, entry in measured.items()},
                            options, settings.baseline_system)
    result = {
        "selected_on": "val", "rule": RULE, "calibration_rule": CALIBRATION_RULE,
        "target_system": settings.baseline_system, "target_pass@1": target,
        "match_tolerance": settings.match_tolerance,
        "grid": [dict(entry) for entry in settings.selection.grid],
        "num_samples": settings.selection.num_samples,
        "n_prompts": next(iter(measured.values()))["n_prompts"],
        "seeds": sorted(int(seed) for seed in generations),
        # per seed, per validation tweet, the pass rate of every system at generation's own
        # settings (the testbed check reads them: untuned, on validation)
        "default_per_prompt": {owner: measured[owner]["per_prompt"] for owner in chosen},
        "systems": {owner: {"chosen": name,
                            "overrides": options[name].overrides.items(),
                            "sampling": effective_sampling(options[name], generation),
                            "val_pass@1": measured[name]["pass@1"],
                            "val_gap": measured[name]["pass@1"] - target,
                            "matched": abs(measured[name]["pass@1"] - target)
                            <= settings.match_tolerance,
                            "candidates": {option: _candidate(measured[option], system)
                                           for option, system in options.items()
                                           if (system.base_system or option) == owner}}
                    for owner, name in chosen.items()},
    }
    write_json(output, result)
    return result
