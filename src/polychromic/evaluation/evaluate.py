"""The `evaluate` step: one seed's generations -> diversity, quality, pass@k and statistics JSON.

Why: metrics are computed from saved generations only, so a metric change never re-runs
generation. The metrics are the entries of the registry (registry.py), their formulas in
diversity.py, quality.py, passk.py and coverage.py, the tests in stats.py; this module reads and
checks the generation files, batches the heavy parts (one encoder call per system plus one for
the references, one BERTScore call for all greedy replies; view.py), computes every registered
metric of every system and writes the four files of docs/file_contract.md.

A value that cannot be computed (distinct-3 of samples that are all shorter than 3 tokens,
perplexity without scored tokens, Self-BLEU with one sample) is written as null with a reason;
the mean is then over the prompts where it is defined, and ``n_defined`` says how many.
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
from polychromic.embeddings import EMBEDDING_MODEL_NAME, get_encoder, resolve_model_path
from polychromic.evaluation import coverage as cov
from polychromic.evaluation import diversity as div
from polychromic.evaluation import passk as pk
from polychromic.evaluation import quality as qual
from polychromic.evaluation.registry import METRICS, Metric, Undefined, metrics_for
from polychromic.evaluation.stats import statistical_tests, test_settings
from polychromic.evaluation.view import SystemView
from polychromic.io import read_jsonl, write_json
from polychromic.settings import EvaluationSettings

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
                              f"embeddings, joining at mean cosine >= {threshold:g} (the pass "
                              "threshold)",
    }


def run_settings(loaded: dict[str, list[dict[str, Any]]], settings: EvaluationSettings,
                 model_path: str, seed: int) -> dict[str, Any]:
    """Everything that produced the numbers, written into each output file."""
    gen = {system: records[0].get("settings", {}) for system, records in loaded.items()}
    passk = settings.passk
    return {
        "seed": seed,
        "systems": list(loaded),
        "num_samples": {system: len(records[0]["samples"]) for system, records in loaded.items()},
        "temperature": {system: s.get("temperature") for system, s in gen.items()},
        "top_p": {system: s.get("top_p") for system, s in gen.items()},
        "generation": gen,
        "passk": {"k": list(passk.k), "criterion": passk.criterion,
                  "threshold": float(passk.threshold),
                  "rule": "a sample passes when its similarity to the closest reference >= "
                          "threshold; empty samples fail; pass@k = 1 - C(n-c,k)/C(n,k)"},
        "embedding_model": {"name": settings.embedding_model or EMBEDDING_MODEL_NAME,
                            "path": model_path, "pooling": "mean over tokens, L2-normalised"},
        "bertscore_layer": settings.bertscore_layer,
        "metrics": metric_definitions(loaded, model_path, settings.bertscore_layer),
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
                      "tokenization": "model WordPiece, [CLS]/[SEP] carry no weight",
                      "score": "F1, max over references; empty greedy -> 0"},
        "perplexity": "exp(sum reference_nll / sum reference_tokens) over the prompt's "
                      "references, from the generation records",
        **{name: metric.definition for name, metric in METRICS.items() if metric.definition},
    }


def _timed(label: str, started: float) -> float:
    now = time.perf_counter()
    log.info("%s: %.1f s", label, now - started)
    return now


def build_views(loaded: dict[str, list[dict[str, Any]]], settings: EvaluationSettings,
                model_path: str) -> tuple[dict[str, SystemView], list[str]]:
    """Every system's `SystemView` (embeddings, BERTScore and similarities computed in batched
    calls) and each prompt's mode source (for the coverage settings)."""
    started = time.perf_counter()
    first = next(iter(loaded.values()))
    references = [record["references"] for record in first]
    passk = settings.passk
    encoder = get_encoder(model_path)
    ref_emb = split_rows(encode(encoder, [r for refs in references for r in refs]),
                         [len(refs) for refs in references])
    sample_emb = {system: split_rows(encode(encoder, [s for r in records for s in r["samples"]]),
                                     [len(r["samples"]) for r in records])
                  for system, records in loaded.items()}
    t = _timed("sentence embeddings", started)
    greedy = [record["greedy"] for records in loaded.values() for record in records]
    bert = qual.bertscore_best(greedy, references * len(loaded), model_path,
                               settings.bertscore_layer)
    t = _timed("BERTScore of the greedy replies", t)
    modes = [cov.reference_modes(record.get("reference_stances"), emb, passk.threshold)
             for record, emb in zip(first, ref_emb, strict=True)]
    views = {}
    for index, (system, records) in enumerate(loaded.items()):
        samples = [record["samples"] for record in records]
        sims = pk.best_reference_similarities(passk.criterion, samples, references,
                                              sample_emb[system], ref_emb, model_path,
                                              settings.bertscore_layer)
        views[system] = SystemView(records, sample_emb[system], ref_emb,
                                   bert[index * len(first):(index + 1) * len(first)], sims,
                                   [labels for labels, _ in modes], float(passk.threshold))
    _timed(f"best-reference similarities ({passk.criterion})", t)
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


def evaluate_seed(generations: dict[str, str], outputs: dict[str, str],
                  settings: EvaluationSettings, seed: int) -> None:
    """Compute and write the evaluation files of one seed (`outputs`: a path per name of
    `contract.EVALUATION_FILES` and `statistics`; docs/file_contract.md)."""
    started = time.perf_counter()
    loaded = load_generations(generations, seed)
    if settings.reference_system not in loaded:
        raise ValueError(f"reference system {settings.reference_system!r} has no generations; "
                         f"systems: {list(loaded)}")
    model_path = str(resolve_model_path(settings.embedding_model))
    run = run_settings(loaded, settings, model_path, seed)
    log.info("evaluating %d systems x %d prompts (seed %d)", len(loaded),
             len(next(iter(loaded.values()))), seed)
    views, sources = build_views(loaded, settings, model_path)
    run["coverage"] = coverage_settings(sources, settings.passk.threshold)
    metrics = metrics_for(settings.passk.k)
    results: dict[str, dict[str, dict[str, Any]]] = {group: {} for group in EVALUATION_FILES}
    for system, view in views.items():
        for group, block in system_metrics(metrics, view).items():
            results[group][system] = block
    t = _timed("metrics", started)
    header = {"seed": seed, "settings": run,
              "prompt_ids": [record["prompt_id"] for record in views[next(iter(views))].records]}
    for group in EVALUATION_FILES:
        write_json(outputs[group], {**header, "systems": results[group]})
    tests = statistical_tests(per_prompt_values(results), settings.reference_system,
                              settings.bootstrap_samples, settings.stats_seed)
    write_json(outputs["statistics"], {
        "seed": seed,
        "settings": {**test_settings(settings.reference_system, settings.bootstrap_samples,
                                     settings.stats_seed),
                     "family_size": sum(row["wilcoxon_p"] is not None for row in tests)},
        "tests": tests,
    })
    _timed(f"statistics ({len(tests)} tests)", t)
    log.info("evaluate_seed total %.1f s", time.perf_counter() - started)
