"""Every sampling choice made on the validation split, for every system alike.

Why: picking the baseline's temperature by its pass@1 on the test tweets, and giving only the
baseline a grid, makes the comparison's own choice depend on the numbers it then reports. The
protocol (`evaluation.selection.search`):

1. every configured system (zero-shot, few-shot and every LoRA system alike) is sampled on the
   validation split, `num_samples` replies for each of the first `max_prompts` validation
   tweets, at generation's settings and then at the temperatures the search proposes
   (`polychromic.evaluation.search`, one round per Snakemake checkpoint; the candidates are
   named as sampling variants are, `polychromic_lora@t1.25`);
2. the judge, with the pass threshold calibrated on the validation split, gives each candidate
   its validation pass@1 (the mean over tweets of the share of passing replies, averaged over
   the seeds) and its validation pass@k for each configured k with n >= 2k
   (`validation_passk`; the validation frontier figure draws each system's candidates);
3. the target is the baseline system's validation pass@1 at generation's settings; each system
   takes its candidate closest to it (kept, never dropped, however far it lies); the aggregate
   then tests whether that candidate's validation pass@1 is shown within
   `evaluation.match_tolerance` of the baseline's (`evaluation.equivalence.on_validation`:
   the statistics stay out of this step, so a change to them never re-runs a generation);
4. the test split is then generated and scored once, each system at its chosen setting
   (`polychromic.systems.chosen_system`, applied by the `generate` step); no choice reads a
   test file.

The checkpoint rule (`training.checkpoint_selection`) and the pass threshold (calibrated on
validation) are the same for every system too. `selection.json` records every candidate of the
search with `selected_on: val`, each system's `val_gap` to the target, its chosen candidate's
per-tweet validation pass rates and why its search stopped; the aggregate copies it with the
equivalence tests. The verdict then tests equivalence in pass@1 again, on the test tweets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from polychromic.evaluation import passk as pk
from polychromic.evaluation import search as sampling_search
from polychromic.evaluation.calibration import RULE as CALIBRATION_RULE
from polychromic.evaluation.judges import JUDGES, resolve_kind
from polychromic.evaluation.judging import Judging, encode, load_generations, split_rows
from polychromic.io import read_json, write_json
from polychromic.settings import EvaluationSettings, GenerationSettings
from polychromic.systems import KEYS, System, candidate_system

RULE = ("each system at the candidate of its search (generation's settings, then the "
        "temperatures the search proposes) whose validation pass@1 is closest to the "
        "baseline system's validation pass@1 at generation's settings; ties to the earlier "
        "candidate")


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
    """{candidate: {pass@1, pass@k for each configured k with 2k <= num_samples (means over
    seeds and tweets; pass@k's unbiased estimator needs n >= 2k, as at test time), per_seed
    (pass@1), per_prompt (pass@1 per seed and tweet), n_prompts}} from every seed's
    validation generations ({seed: {candidate: path}})."""
    loaded = {seed: load_generations(dict(generations[seed]), int(seed))
              for seed in sorted(generations)}
    kind = primary_judge(loaded, settings)
    counted: dict[str, list[list[tuple[int, int]]]] = {}
    if kind == "similarity":
        judging = Judging.from_settings(settings, calibration)
        encoder = embedded_texts(loaded, judging) if judging.criterion == "semantic" else None
        for systems in loaded.values():
            for name, records in systems.items():
                counted.setdefault(name, []).append(pass_counts(records, judging, encoder))
    else:  # a judge that reads the records alone (the oracle)
        for systems in loaded.values():
            for name, records in systems.items():
                decided = JUDGES[kind].decide(SimpleNamespace(records=records))
                counted.setdefault(name, []).append(
                    [(int(p.sum()), len(p)) for p in decided.passed])
    n = min(size for rows in counted.values() for row in rows for _, size in row)
    ks = [k for k in settings.passk.k if 1 < k and 2 * k <= n]
    result = {}
    for name, rows in counted.items():
        pass1 = [[c / size for c, size in row] for row in rows]
        result[name] = {"pass@1": float(np.mean(pass1)),
                        **{f"pass@{k}": float(np.mean([[pk.pass_at_k(size, c, k) for c, size
                                                         in row] for row in rows]))
                           for k in ks},
                        "per_seed": [float(np.mean(r)) for r in pass1], "per_prompt": pass1,
                        "n_prompts": len(rows[0]), "judge": kind}
    return result


def primary_judge(loaded: Mapping[int, Mapping[str, Sequence[dict[str, Any]]]],
                  settings: EvaluationSettings) -> str:
    """The primary judge's kind on these validation generations (`judges.resolve_kind`): the
    same rule the evaluation applies to the test generations."""
    records = next(iter(next(iter(loaded.values())).values()))
    return resolve_kind(settings.judge_kind, records)


def _candidate(measured: Mapping[str, Any], system: System) -> dict[str, Any]:
    """A candidate's entry in selection.json: its round, overrides and validation pass@k."""
    return {"round": measured["round"], "overrides": system.overrides.items(),
            **{key: value for key, value in measured.items() if key.startswith("pass@")}}


def system_entry(entry: Mapping[str, Any], target: float, systems: Mapping[str, System],
                 generation: GenerationSettings) -> dict[str, Any]:
    """One system's choice in selection.json: its closest candidate (with its per seed and
    tweet validation pass rates, for the equivalence test), every candidate tried and why the
    search stopped."""
    best = sampling_search.chosen(entry, target)
    system = candidate_system(systems, best["name"])
    return {"chosen": best["name"], "overrides": system.overrides.items(),
            "sampling": effective_sampling(system, generation),
            "val_pass@1": best["pass@1"], "val_gap": best["pass@1"] - target,
            "per_prompt": best["per_prompt"],
            "stopped": entry["stopped"], "stop_reason": sampling_search.REASONS[entry["stopped"]],
            "candidates": {c["name"]: _candidate(c, candidate_system(systems, c["name"]))
                           for c in entry["tried"]}}


def search_step(round_: int, state: str | None, generations: Mapping[int, Mapping[str, str]],
                calibration: str | None, output: str, systems: Mapping[str, System],
                generation: GenerationSettings, settings: EvaluationSettings,
                seeds: Sequence[int]) -> dict[str, Any]:
    """One round of the search (`polychromic.evaluation.search`): round 0 proposes every
    system at generation's settings; round r scores round r - 1's candidates from their
    validation generations ({seed: {candidate: path}}) and proposes the next ones."""
    if round_ == 0:
        result = sampling_search.start(systems, settings, seeds)
    else:
        previous = read_json(state)
        if previous["round"] != round_ - 1:
            raise ValueError(f"{state} is round {previous['round']}, not {round_ - 1}")
        if previous["proposals"]:
            measured = validation_passk(generations, settings,
                                        read_json(calibration) if calibration else None)
            result = sampling_search.advance(previous, measured, settings, generation)
        else:  # every search has stopped: the round only carries the state on
            result = {**previous, "round": round_}
    write_json(output, result)
    return result


def select_sampling(state: str, output: str, systems: Mapping[str, System],
                    generation: GenerationSettings,
                    settings: EvaluationSettings) -> dict[str, Any]:
    """Write selection.json (module docstring) from the search's last state (a file)."""
    state = read_json(state)
    if state["proposals"]:
        raise ValueError(f"the search is not finished: round {state['round']} still proposes "
                         f"{sorted(state['proposals'].values())}")
    target = state["target_pass@1"]
    first = {name: entry["tried"][0] for name, entry in state["systems"].items()}
    search = settings.selection.active_search
    result = {
        "selected_on": "val", "rule": RULE, "calibration_rule": CALIBRATION_RULE,
        "judge": first[state["target_system"]].get("judge", "similarity"),
        "search": state["search"], "rounds": state["round"],
        "target_system": state["target_system"], "target_pass@1": target,
        "match_tolerance": settings.match_tolerance,
        "num_samples": settings.selection.num_samples,
        "n_prompts": first[state["target_system"]]["n_prompts"],
        "seeds": state["seeds"],
        # per seed, per validation tweet, the pass rate of every system at generation's own
        # settings (the testbed check reads them: untuned, on validation)
        "default_per_prompt": {name: entry["per_prompt"] for name, entry in first.items()},
        "systems": {name: system_entry(entry, target, systems, generation)
                    for name, entry in state["systems"].items()},
    }
    if search is not None and result["search"] != {key: getattr(search, key)
                                                    for key in search.__dataclass_fields__}:
        raise ValueError("the search's settings changed since it ran: run it again")
    write_json(output, result)
    return result
