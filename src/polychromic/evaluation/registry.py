"""The metric registry: one name per metric, its direction and where it is computed.

Tables, statistics and figures read `higher_is_better` from here instead of hard-coding it
(the way lm-evaluation-harness registers metrics). pass@k metrics are named `pass@{k}`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    group: str  # "diversity" | "quality" | "passk": the per-seed JSON file that holds it
    higher_is_better: bool
    label: str  # for tables and figures
    per_prompt: bool = True  # False for corpus-level numbers (no per-prompt tests)


_METRICS = [
    # passing samples' distinct reference modes / the references' modes (coverage.py)
    Metric("coverage", "passk", True, "Coverage"),
    Metric("self_bleu", "diversity", False, "Self-BLEU"),
    Metric("distinct_1", "diversity", True, "Distinct-1"),
    Metric("distinct_2", "diversity", True, "Distinct-2"),
    Metric("distinct_3", "diversity", True, "Distinct-3"),
    Metric("semantic_diversity", "diversity", True, "Semantic div."),
    Metric("pooled_distinct_1", "diversity", True, "Pooled distinct-1", per_prompt=False),
    Metric("pooled_distinct_2", "diversity", True, "Pooled distinct-2", per_prompt=False),
    Metric("pooled_distinct_3", "diversity", True, "Pooled distinct-3", per_prompt=False),
    Metric("empty_samples", "diversity", False, "Empty samples (fraction)", per_prompt=False),
    Metric("rouge1", "quality", True, "ROUGE-1"),
    Metric("rouge2", "quality", True, "ROUGE-2"),
    Metric("rougeL", "quality", True, "ROUGE-L"),
    Metric("bertscore_f1", "quality", True, "BERTScore F1"),
    Metric("perplexity", "quality", False, "Perplexity"),
    Metric("empty_greedy", "quality", False, "Empty greedy replies (fraction)", per_prompt=False),
]

METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}


def passk_metric(k: int) -> Metric:
    return Metric(f"pass@{k}", "passk", True, f"pass@{k}")


def get_metric(name: str) -> Metric:
    """Look a metric up by name; `pass@K` names are built on demand."""
    if name in METRICS:
        return METRICS[name]
    if name.startswith("pass@") and name[5:].isdigit():
        return passk_metric(int(name[5:]))
    raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)} and pass@K")
