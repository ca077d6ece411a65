"""The `evaluate` step: one seed's generations -> diversity, quality, pass@k and statistics JSON.

Why: metrics are computed from saved generations only, so a metric change never re-runs
generation. The metrics are the entries of the registry (registry.py), their formulas in
diversity.py, quality.py, passk.py and coverage.py, the tests in stats.py; this module reads the
generation files (checked, with the judge's thresholds, by judging.py, which the sampling choice
on validation shares), batches the heavy parts (one encoder call per system plus one for the
references, one BERTScore call for all greedy replies; view.py), computes every registered
metric of every system and writes the four files of docs/file_contract.md.

A value that cannot be computed (distinct-3 of samples that are all shorter than 3 tokens,
perplexity without scored tokens, Self-BLEU with one sample) is written as null with a reason;
the mean is then over the prompts where it is defined, and ``n_defined`` says how many. A metric
registered with ``common_prompts`` (useful diversity) takes every system's mean over the prompts
where every system of the seed has a value instead, ``n_prompts_common`` says how many: means
over different subsets of tweets would not be comparable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from polychromic.contract import EVALUATION_FILES
from polychromic.embeddings import get_encoder
from polychromic.evaluation import agreement, judges
from polychromic.evaluation import calibration as cal
from polychromic.evaluation import coverage as cov
from polychromic.evaluation import diversity as div
from polychromic.evaluation import passk as pk
from polychromic.evaluation import quality as qual
from polychromic.evaluation.judging import Judging, encode, load_generations, split_rows
from polychromic.evaluation.registry import METRICS, Metric, Undefined, metrics_for
from polychromic.evaluation.stats import statistical_tests, test_settings
from polychromic.evaluation.view import SystemView
from polychromic.io import read_json, write_json
from polychromic.settings import EvaluationSettings
from polychromic.similarity import rouge_l_similarity

log = logging.getLogger(__name__)


def metric_entry(values: Sequence[float], reason: str = "") -> dict[str, Any]:
    """{"mean", "per_prompt"} with non-finite values as null (+ reason and n_defined)."""
    per_prompt = [float(v) if math.isfinite(v) else None for v in values]
    defined = [v for v in per_prompt if v is not None]
    entry: dict[str, Any] = {"mean": float(np.mean(defined)) if defined else None,
                             "per_prompt": per_prompt}
    if len(defined) < len(per_prompt):
        entry.update(n_defined=len(defined), reason=reason or "not computable")
    return entry


def corpus_entry(value: float, reason: str = "") -> dict[str, Any]:
    """A corpus-level number: per_prompt is null."""
    if math.isfinite(value):
        return {"mean": float(value), "per_prompt": None}
    return {"mean": None, "per_prompt": None, "reason": reason or "not computable"}


def null_entry(reason: str) -> dict[str, Any]:
    return {"mean": None, "per_prompt": None, "reason": reason}


def entry(metric: Metric, view: SystemView) -> dict[str, Any]:
    """One metric of one system as written: per-prompt values and mean, or a corpus number,
    or null with the reason when the metric is undefined for the system."""
    try:
        values = metric.compute(view)
    except Undefined as error:
        return null_entry(str(error))
    if metric.per_prompt:
        return metric_entry(values, metric.undefined)
    return corpus_entry(values, metric.undefined)


def system_metrics(metrics: Sequence[Metric], view: SystemView) -> dict[str, dict[str, Any]]:
    """{group: {metric: entry, extra: value}} of one system, in the order of `metrics`."""
    out: dict[str, dict[str, Any]] = {group: {} for group in EVALUATION_FILES}
    for metric in metrics:
        out[metric.group][metric.name] = entry(metric, view)
        if metric.extras is not None:
            out[metric.group].update(metric.extras(view))
    return out


def common_prompt_entries(entries: dict[str, dict[str, Any]], reason: str
                          ) -> dict[str, dict[str, Any]]:
    """One metric's entries of every system of a seed, each mean re-taken over the prompts where
    every system has a value, with `n_prompts_common`; the per-prompt values are kept.

    Why: each system's own mean covers the prompts where *it* is defined, a different subset for
    each system, so the means would compare different tweets. With no common prompt (or a
    system whose metric is null altogether) the means are null with a reason, never 0; an entry
    that is null altogether keeps its own reason."""
    lists = [entry["per_prompt"] for entry in entries.values()]
    common: list[int] = []
    if lists and all(values is not None for values in lists):
        common = [i for i in range(len(lists[0]))
                  if all(values[i] is not None for values in lists)]
    out = {}
    for system, entry in entries.items():
        entry = dict(entry)
        if entry["per_prompt"] is not None:
            entry["n_prompts_common"] = len(common)
            if common:
                entry["mean"] = float(np.mean([entry["per_prompt"][i] for i in common]))
            else:
                entry["mean"] = None
                entry["reason"] = ("no prompt where every system has a value"
                                   + (f" ({reason})" if reason else ""))
        out[system] = entry
    return out


def common_prompt_means(metrics: Sequence[Metric],
                        results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Every `common_prompts` metric of `results` ({group: {system: {metric: entry}}}) with its
    means over the prompts common to all systems (`common_prompt_entries`), in place."""
    for metric in metrics:
        if not metric.common_prompts:
            continue
        block = results[metric.group]
        entries = common_prompt_entries(
            {system: values[metric.name] for system, values in block.items()},
            metric.undefined)
        for system, value in entries.items():
            block[system][metric.name] = value


def coverage_settings(sources: list[str], threshold: float) -> dict[str, Any]:
    """How coverage was measured: the mode source (one of them, or 'mixed') and the rule."""
    counts = {source: sources.count(source) for source in (cov.STANCE, cov.CLUSTERS)}
    used = [source for source, count in counts.items() if count]
    return {
        "mode_source": used[0] if len(used) == 1 else "mixed",
        "prompts_by_source": counts,
        "rule": "coverage = distinct modes of the references hit by passing samples / distinct "
                "modes of the references; a passing sample hits the mode of its closest "
                "reference by embedding cosine",
        "stance": "the references' `stance` field, used when every reference of the prompt "
                  "has one",
        "embedding clusters": "average-linkage agglomerative clustering of the reference "
                              f"embeddings, joining at mean cosine >= {threshold:g} (the "
                              "judge's cosine pass threshold)",
    }


def run_settings(loaded: dict[str, list[dict[str, Any]]], settings: EvaluationSettings,
                 judging: Judging, seed: int) -> dict[str, Any]:
    """Everything that produced the numbers, written into each output file."""
    gen = {system: records[0].get("settings", {}) for system, records in loaded.items()}
    return {
        "seed": seed,
        "systems": list(loaded),
        "num_samples": {system: len(records[0]["samples"]) for system, records in loaded.items()},
        "temperature": {system: s.get("temperature") for system, s in gen.items()},
        "top_p": {system: s.get("top_p") for system, s in gen.items()},
        "generation": gen,
        "passk": {"k": list(settings.passk.k), "criterion": judging.criterion,
                  "threshold": judging.threshold, "lexical_threshold": judging.lexical_threshold,
                  "threshold_source": judging.sources, "calibration_rule": cal.RULE,
                  "rule": "a sample passes when its similarity to the closest reference >= "
                          "threshold; empty samples fail; pass@k = 1 - C(n-c,k)/C(n,k); "
                          "lexical_pass@k: the same under ROUGE-L and lexical_threshold"},
        "judge": {**judging.judge, "pooling": "mean over tokens, L2-normalised"},
        "bertscore_layer": judging.layer,
        "metrics": metric_definitions(loaded, judging.judge["path"], judging.layer),
        "libraries": {name: version(name) for name in
                      ("sacrebleu", "rouge-score", "bert-score", "scipy", "transformers")},
    }


def metric_definitions(loaded: dict[str, list[dict[str, Any]]], model_path: str,
                       layer: int) -> dict[str, Any]:
    """How each metric was computed (tokenisation, smoothing, packages), for the files."""
    return {
        "self_bleu": {**div.SELF_BLEU_SETTINGS,
                      "signature": div.self_bleu_signature(
                          min(len(r[0]["samples"]) for r in loaded.values()))},
        "distinct_n": div.DISTINCT_TOKENIZATION,
        "pooled_distinct_n": "distinct-n over the samples of all prompts of a system; "
                             + div.DISTINCT_TOKENIZATION,
        "semantic_diversity": "mean over i<j of 1 - cos of the samples' sentence embeddings",
        "rouge": "rouge-score RougeScorer(use_stemmer=True): lowercase, non-alphanumeric "
                 "-> space, Porter stemmer; F1, max over references; empty greedy -> 0",
        "bertscore": {"package": f"bert_score {version('bert-score')}", "model": model_path,
                      "num_layers": layer, "idf": False, "rescale_with_baseline": False,
                      "rescale_note": "no baseline file exists for this model",
                      "tokenization": "the judge's tokenizer; special start/end tokens carry no "
                                      "weight",
                      "score": "F1, max over references; empty greedy -> 0"},
        "perplexity": "exp(sum reference_nll / sum reference_tokens) over the prompt's "
                      "references, from the generation records",
        **{name: metric.definition for name, metric in METRICS.items() if metric.definition},
    }


def _timed(label: str, started: float) -> float:
    now = time.perf_counter()
    log.info("%s: %.1f s", label, now - started)
    return now


def build_views(loaded: dict[str, list[dict[str, Any]]], judging: Judging,
                judges: tuple[str, tuple[str, ...]] = ("similarity", ())
                ) -> tuple[dict[str, SystemView], list[str]]:
    """Every system's `SystemView` (judge embeddings, BERTScore and similarities computed in
    batched calls; `judges`: the primary judge's kind and the readings') and each prompt's
    mode source (for the coverage settings)."""
    started = time.perf_counter()
    first = next(iter(loaded.values()))
    references = [record["references"] for record in first]
    path = judging.judge["path"]
    encoder = get_encoder(path, precision=judging.judge["precision"])
    flat_refs = [r for refs in references for r in refs]
    all_refs = encode(encoder, flat_refs)
    ref_emb = split_rows(all_refs, [len(refs) for refs in references])
    owners = np.repeat(np.arange(len(references)), [len(refs) for refs in references])
    texts = [s for records in loaded.values() for r in records for s in r["samples"]]
    embedded = dict(zip(texts, encode(encoder, texts), strict=True))  # once per unique text
    t = _timed(f"judge embeddings ({len(set(texts))} unique samples)", started)
    greedy = [record["greedy"] for records in loaded.values() for record in records]
    bert = qual.bertscore_best(greedy, references * len(loaded), path, judging.layer)
    t = _timed("BERTScore of the greedy replies", t)
    modes = [cov.reference_modes(record.get("reference_stances"), emb,
                                 judging.cluster_threshold)
             for record, emb in zip(first, ref_emb, strict=True)]
    views = {}
    for index, (system, records) in enumerate(loaded.items()):
        samples = [record["samples"] for record in records]
        emb = [np.stack([embedded[s] for s in group]) for group in samples]
        views[system] = SystemView(
            records, emb, ref_emb, bert[index * len(first):(index + 1) * len(first)],
            pk.best_reference_similarities(judging.criterion, samples, references, emb,
                                           ref_emb, path, judging.layer),
            [labels for labels, _ in modes], judging.threshold,
            [rouge_l_similarity(s, r) for s, r in zip(samples, references, strict=True)],
            judging.lexical_threshold, all_refs, owners,
            judging.cluster_threshold,  # the judge-cosine threshold, for off-topic samples
            judges[0], judges[1])
    _timed(f"best-reference similarities ({judging.criterion} and ROUGE-L)", t)
    return views, [source for _, source in modes]


def per_prompt_values(results: dict[str, dict[str, dict[str, Any]]]
                      ) -> dict[str, dict[str, list]]:
    """{system: {metric: per-prompt values}} of every per-prompt metric, for the tests."""
    out: dict[str, dict[str, list]] = {}
    for block in results.values():
        for system, metrics in block.items():
            for name, value in metrics.items():
                if isinstance(value, dict) and value.get("per_prompt") is not None:
                    out.setdefault(system, {})[name] = value["per_prompt"]
    return out


def reward_with_gate(reward: dict[str, Any] | None, reward_run: str | None
                     ) -> dict[str, Any] | None:
    """`reward` with the quality gate the training used: the config's number, else the one
    calibrated on validation and recorded in run.json (`quality_gate`)."""
    if reward is None or reward.get("quality_threshold") is not None:
        return reward
    if reward_run is None:
        raise ValueError(f"the quality gate of experiment {reward['experiment']} is calibrated "
                         "(quality_threshold: null) and its run.json was not given")
    gate = read_json(reward_run).get("quality_gate") or {}
    if gate.get("threshold") is None:
        raise ValueError(f"{reward_run} records no quality_gate: train the experiment again")
    return {**reward, "quality_threshold": gate["threshold"], "gate_source": gate["source"]}


def evaluate_seed(generations: dict[str, str], outputs: dict[str, str],
                  settings: EvaluationSettings, seed: int, calibration: str | None = None,
                  reward: dict[str, Any] | None = None, reward_run: str | None = None) -> None:
    """Compute and write the evaluation files of one seed (`outputs`: a path per name of
    `contract.SEED_FILES`; docs/file_contract.md); `calibration` is the judge_calibration.json
    that null thresholds are taken from; `reward` ({reward, reward_model, quality_threshold}
    of the reference system's objective) is what the judges' agreement with the training
    reward is measured against (`evaluation.agreement`; none without it), its quality gate
    read from that experiment's run.json of this seed (`reward_run`) when the config leaves it
    to calibration."""
    started = time.perf_counter()
    reward = reward_with_gate(reward, reward_run)
    loaded = load_generations(generations, seed)
    if settings.reference_system not in loaded:
        raise ValueError(f"reference system {settings.reference_system!r} has no generations; "
                         f"systems: {list(loaded)}")
    judging = Judging.from_settings(settings, read_json(calibration) if calibration else None)
    first = next(iter(loaded.values()))
    primary = judges.resolve_kind(settings.judge_kind, first)
    readings = judges.readings(primary, settings.second_judges, first)
    run = run_settings(loaded, settings, judging, seed)
    run["judges"] = {"primary": primary, "readings": readings,
                     "configured": settings.judge_kind}
    log.info("evaluating %d systems x %d prompts (seed %d), judged by %s (readings: %s)",
             len(loaded), len(first), seed, primary, readings or "none")
    views, sources = build_views(loaded, judging, (primary, tuple(readings)))
    run["coverage"] = coverage_settings(sources, judging.cluster_threshold)
    metrics = metrics_for(settings.passk.k, readings)
    results: dict[str, dict[str, dict[str, Any]]] = {group: {} for group in EVALUATION_FILES}
    for system, view in views.items():
        for group, block in system_metrics(metrics, view).items():
            results[group][system] = block
    common_prompt_means(metrics, results)
    t = _timed("metrics", started)
    run["agreement"] = agreement.judge_checks(views, results["passk"], reward)
    t = _timed("judge validity and agreement with the reward", t)
    header = {"seed": seed, "settings": run,
              "prompt_ids": [record["prompt_id"] for record in views[next(iter(views))].records]}
    for group in EVALUATION_FILES:
        write_json(outputs[group], {**header, "systems": results[group]})
    tests = statistical_tests(per_prompt_values(results), settings)
    write_json(outputs["statistics"], {
        "seed": seed,
        "settings": {**test_settings(settings), "judge": judging.judge,
                     "family_size": sum(row["p"] is not None for row in tests)},
        "tests": tests,
    })
    _timed(f"statistics ({len(tests)} tests)", t)
    log.info("evaluate_seed total %.1f s", time.perf_counter() - started)
