"""The `evaluate` step: one seed's generations -> diversity, quality, pass@k and statistics JSON.

Why: metrics are computed from saved generations only, so a metric change never re-runs
generation (DESIGN.md sections 3 and 7). The formulas live in diversity.py, quality.py,
passk.py and stats.py; this module reads and checks the generation files, batches the heavy
parts (one MiniLM encoder call per system plus one for the references, one BERTScore call for
all greedy replies) and writes the four files of docs/file_contract.md.

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

from polychromic.embeddings import EMBEDDING_MODEL_NAME, get_encoder, resolve_model_path
from polychromic.evaluation import coverage as cov
from polychromic.evaluation import diversity as div
from polychromic.evaluation import passk as pk
from polychromic.evaluation import quality as qual
from polychromic.evaluation.stats import ALPHA, CI, statistical_tests
from polychromic.io import read_jsonl, write_json

log = logging.getLogger(__name__)

DISTINCT_ORDERS = (1, 2, 3)


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


def diversity_metrics(records: list[dict[str, Any]], embeddings: list[np.ndarray]
                      ) -> dict[str, dict[str, Any]]:
    """Per-prompt and pooled diversity of one system's samples."""
    samples = [record["samples"] for record in records]
    out: dict[str, dict[str, Any]] = {}
    if len(samples[0]) < 2:
        out["self_bleu"] = null_entry("fewer than 2 samples per prompt")
    else:
        out["self_bleu"] = metric_entry([div.self_bleu(s) for s in samples])
    for n in DISTINCT_ORDERS:
        out[f"distinct_{n}"] = metric_entry(
            [div.distinct_n(s, n) for s in samples],
            f"no {n}-gram in the samples of the prompt (every sample shorter than {n} tokens)")
    if len(samples[0]) < 2:
        out["semantic_diversity"] = null_entry("fewer than 2 samples per prompt")
    else:
        out["semantic_diversity"] = metric_entry([div.semantic_diversity(e) for e in embeddings])
    for n in DISTINCT_ORDERS:
        out[f"pooled_distinct_{n}"] = corpus_entry(
            div.pooled_distinct_n(samples, n), f"no {n}-gram in any sample of the system")
    # Empty samples score 0 everywhere and BLEU 0 against the others, which would flatter a
    # degenerate system's diversity: count them so a reader can see it.
    flat = [text for group in samples for text in group]
    out["empty_samples"] = corpus_entry(sum(not t.strip() for t in flat) / len(flat))
    return out


def quality_metrics(records: list[dict[str, Any]], bertscore: Sequence[float]
                    ) -> dict[str, dict[str, Any]]:
    """ROUGE, BERTScore (precomputed, batched) and perplexity of one system."""
    rouge = [qual.rouge_best(record["greedy"], record["references"]) for record in records]
    out = {name: metric_entry([r[name] for r in rouge]) for name in qual.ROUGE_TYPES}
    out["bertscore_f1"] = metric_entry(list(bertscore))
    if any(record.get("reference_nll") is None or record.get("reference_tokens") is None
           for record in records):
        out["perplexity"] = null_entry("no reference_nll/reference_tokens in the generations")
    else:
        out["perplexity"] = metric_entry(
            [qual.perplexity(r["reference_nll"], r["reference_tokens"]) for r in records],
            "no scored reference token, or the perplexity overflows")
    greedy = [record["greedy"] for record in records]
    out["empty_greedy"] = corpus_entry(sum(not t.strip() for t in greedy) / len(greedy))
    return out


def passk_metrics(counts: list[int], n: int, ks: Sequence[int]) -> dict[str, Any]:
    """pass@k per prompt and mean for every k, plus the raw pass counts and n."""
    out: dict[str, Any] = {}
    for k in ks:
        if k > n:
            out[f"pass@{k}"] = null_entry(f"k={k} is larger than n={n} samples")
        else:
            out[f"pass@{k}"] = metric_entry(pk.passk_per_prompt(counts, n, k))
    out["pass_counts"] = counts
    out["n"] = n
    return out


def coverage_metrics(similarities: list[np.ndarray], samples: list[list[str]],
                     sample_embeddings: list[np.ndarray], reference_embeddings: list[np.ndarray],
                     modes: list[list], threshold: float) -> dict[str, Any]:
    """Coverage per prompt (coverage.py) and mean, with the modes hit and the modes per prompt."""
    values, hit, total = [], [], []
    for sims, texts, emb, refs, labels in zip(similarities, samples, sample_embeddings,
                                              reference_embeddings, modes, strict=True):
        value, n_hit, n_modes = cov.coverage(cov.passing(sims, texts, threshold),
                                             cov.closest_references(emb, refs), labels)
        values.append(value)
        hit.append(n_hit)
        total.append(n_modes)
    return {"coverage": metric_entry(values), "modes_hit": hit, "modes": total}


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


def run_settings(loaded: dict[str, list[dict[str, Any]]], settings: dict[str, Any],
                 model_path: str, seed: int) -> dict[str, Any]:
    """Everything that produced the numbers, written into each output file."""
    passk_cfg = settings.get("passk", {})
    gen = {system: records[0].get("settings", {}) for system, records in loaded.items()}
    layer = int(settings.get("bertscore_layer", 6))
    return {
        "seed": seed,
        "systems": list(loaded),
        "num_samples": {system: len(records[0]["samples"]) for system, records in loaded.items()},
        "temperature": {system: s.get("temperature") for system, s in gen.items()},
        "top_p": {system: s.get("top_p") for system, s in gen.items()},
        "generation": gen,
        "passk": {"k": [int(k) for k in passk_cfg.get("k", [1, 3, 5, 10])],
                  "criterion": passk_cfg.get("criterion", "semantic"),
                  "threshold": float(passk_cfg.get("threshold", 0.7)),
                  "rule": "a sample passes when its similarity to the closest reference >= "
                          "threshold; empty samples fail; pass@k = 1 - C(n-c,k)/C(n,k)"},
        "embedding_model": {"name": EMBEDDING_MODEL_NAME if not settings.get("embedding_model")
                            else str(settings["embedding_model"]), "path": model_path,
                            "pooling": "mean over tokens, L2-normalised"},
        "bertscore_layer": layer,
        "metrics": {
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
        },
        "libraries": {name: version(name) for name in
                      ("sacrebleu", "rouge-score", "bert-score", "scipy", "transformers")},
    }


def _timed(label: str, started: float) -> float:
    now = time.perf_counter()
    log.info("%s: %.1f s", label, now - started)
    return now


def evaluate_seed(generations: dict[str, str], diversity: str, quality: str, passk: str,
                  statistics: str, settings: dict[str, Any], seed: int) -> None:
    """Compute and write the four evaluation files of one seed (docs/file_contract.md)."""
    started = time.perf_counter()
    loaded = load_generations(generations, seed)
    systems = list(loaded)
    first = loaded[systems[0]]
    prompt_ids = [record["prompt_id"] for record in first]
    references = [record["references"] for record in first]
    reference_system = settings.get("reference_system", "polychromic_lora")
    if reference_system not in loaded:
        raise ValueError(f"reference system {reference_system!r} has no generations; "
                         f"systems: {systems}")
    model_path = str(resolve_model_path(settings.get("embedding_model")))
    layer = int(settings.get("bertscore_layer", 6))
    run = run_settings(loaded, settings, model_path, seed)
    log.info("evaluating %d systems x %d prompts (seed %d)", len(systems), len(prompt_ids), seed)

    encoder = get_encoder(model_path)
    ref_emb = split_rows(encode(encoder, [r for refs in references for r in refs]),
                         [len(refs) for refs in references])
    sample_emb = {}
    for system, records in loaded.items():
        flat = [s for record in records for s in record["samples"]]
        sample_emb[system] = split_rows(encode(encoder, flat),
                                        [len(record["samples"]) for record in records])
        log.info("embedded %d samples of %s", len(flat), system)
    t = _timed("sentence embeddings", started)

    greedy = [record["greedy"] for system in systems for record in loaded[system]]
    bert = qual.bertscore_best(greedy, references * len(systems), model_path, layer)
    bert_by_system = dict(zip(systems, [bert[i * len(prompt_ids):(i + 1) * len(prompt_ids)]
                                        for i in range(len(systems))], strict=True))
    t = _timed("BERTScore of the greedy replies", t)

    header = {"seed": seed, "settings": run, "prompt_ids": prompt_ids}
    div_out = {system: diversity_metrics(loaded[system], sample_emb[system]) for system in systems}
    t = _timed("diversity", t)
    qual_out = {system: quality_metrics(loaded[system], bert_by_system[system])
                for system in systems}
    t = _timed("quality", t)

    criterion, threshold = run["passk"]["criterion"], run["passk"]["threshold"]
    modes = [cov.reference_modes(record.get("reference_stances"), emb, threshold)
             for record, emb in zip(first, ref_emb, strict=True)]
    run["coverage"] = coverage_settings([source for _, source in modes], threshold)
    pass_out = {}
    for system in systems:
        samples = [record["samples"] for record in loaded[system]]
        sims = pk.best_reference_similarities(criterion, samples, references, sample_emb[system],
                                              ref_emb, model_path, layer)
        counts = pk.pass_counts(sims, samples, threshold)
        pass_out[system] = passk_metrics(counts, len(samples[0]), run["passk"]["k"])
        pass_out[system].update(coverage_metrics(sims, samples, sample_emb[system], ref_emb,
                                                 [labels for labels, _ in modes], threshold))
    t = _timed(f"pass@k and coverage ({criterion})", t)

    write_json(diversity, {**header, "systems": div_out})
    write_json(quality, {**header, "systems": qual_out})
    write_json(passk, {**header, "systems": pass_out})

    per_prompt: dict[str, dict[str, list]] = {system: {} for system in systems}
    for block in (div_out, qual_out, pass_out):
        for system, metrics in block.items():
            for name, entry in metrics.items():
                if isinstance(entry, dict) and entry.get("per_prompt") is not None:
                    per_prompt[system][name] = entry["per_prompt"]
    bootstrap = int(settings.get("bootstrap_samples", 2000))
    stats_seed = int(settings.get("stats_seed", 0))
    tests = statistical_tests(per_prompt, reference_system, bootstrap, stats_seed)
    write_json(statistics, {
        "seed": seed,
        "settings": {"reference_system": reference_system, "bootstrap_samples": bootstrap,
                     "stats_seed": stats_seed, "correction": "holm", "ci": CI, "alpha": ALPHA,
                     "family_size": sum(row["wilcoxon_p"] is not None for row in tests),
                     "wilcoxon": "scipy.stats.wilcoxon two-sided, zero_method='wilcox'",
                     "mannwhitney": "scipy.stats.mannwhitneyu two-sided, unpaired",
                     "cohens_d": "mean(diff) / std(diff, ddof=1), diff = reference - other",
                     "bootstrap": "percentile CI of mean(diff), prompts resampled, "
                                  "numpy default_rng(stats_seed) per test"},
        "tests": tests,
    })
    _timed(f"statistics ({len(tests)} tests)", t)
    log.info("evaluate_seed total %.1f s", time.perf_counter() - started)
