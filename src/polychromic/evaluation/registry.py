"""The metric registry: one entry per metric, read by the evaluation, tables, figures and paper.

An entry carries everything the pipeline needs to know about a metric (the way
lm-evaluation-harness registers metrics with their direction):

- `name`, the one name used in config, files and tables; `label` for tables and figures;
- `group`: the per-seed file that holds it (`diversity`, `quality` or `passk`,
  `polychromic.contract.EVALUATION_FILES`);
- `higher_is_better`: the direction the tables bold, the statistics orient and the figures
  arrow;
- `compute(view)`: per-prompt values (a list, one per test prompt, NaN where undefined) or one
  corpus-level number (`per_prompt=False`), from a `SystemView` (one system's generations and
  the shared heavy parts: embeddings, BERTScore, best-reference similarities);
- `undefined`: the reason written next to a null value; raising `Undefined(reason)` in
  `compute` makes the whole metric null with that reason;
- `common_prompts`: for a metric undefined on some prompts (NaN), take every system's per-seed
  mean over the prompts where every system of the seed has a value (`n_prompts_common` in its
  entry), so the means compare the same tweets; the per-prompt values (and the paired tests
  on them) stay as they are;
- `shown_in`: where it appears: "table" (main results table), "ablation" (ablation table),
  "diversity_figure", "quality_figure", "pareto_quality", "pareto_diversity" (the axes of the
  Pareto figure), "paper" (a sentence of the results section), "verdict" (a row of the
  verdict's primary test), "summary" (the README's results block); the order of a place is the
  registry's, after pass@k (`PASSK_IN` says which k each place shows);
- `definition`: how it is computed, in words, written into the settings of the files;
- `extras(view)`: non-metric numbers written next to it (pass counts, modes hit).

pass@k is a family: `passk_metric(k)` builds the entry of one k, `metrics_for(ks)` the list the
evaluation computes. A new metric is one function (in diversity.py, quality.py, or a module of
its own, with its formula in the docstring) plus one entry here; docs/extending.md shows one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from polychromic import similarity
from polychromic.evaluation import diversity as div
from polychromic.evaluation import passk as pk
from polychromic.evaluation import quality as qual
from polychromic.evaluation.view import SystemView
from polychromic.plugins import Registry

PLACES = ("table", "ablation", "diversity_figure", "quality_figure", "pareto_quality",
          "pareto_diversity", "paper", "verdict", "summary")
# Which pass@k each place shows: every k, or the headline ones (pass@1 and the main pass@k).
PASSK_IN = {"table": "every", "ablation": "headline", "verdict": "headline", "summary": "headline"}


class Undefined(ValueError):  # noqa: N818 - a value, not a failure
    """Raised by a metric's compute when the metric cannot be computed for the system."""


@dataclass(frozen=True)
class Metric:
    name: str
    group: str  # "diversity" | "quality" | "passk": the per-seed file that holds it
    higher_is_better: bool
    label: str  # for tables and figures
    compute: Callable[[SystemView], Any] | None = None
    per_prompt: bool = True  # False for corpus-level numbers (no per-prompt tests)
    undefined: str = ""  # why a value can be null
    shown_in: frozenset[str] = field(default_factory=frozenset)
    definition: str = ""  # in words, for the files' settings (built-in metrics: metric_definitions)
    extras: Callable[[SystemView], dict[str, Any]] | None = None
    common_prompts: bool = False  # per-seed mean over the prompts where every system has a value

    def __post_init__(self) -> None:
        unknown = set(self.shown_in) - set(PLACES)
        if unknown:
            raise ValueError(f"metric {self.name}: unknown places {sorted(unknown)}")
        if self.common_prompts and not self.per_prompt:
            raise ValueError(f"metric {self.name}: common_prompts needs per-prompt values")


def _shown(*places: str) -> frozenset[str]:
    return frozenset(places)


def _two_samples(view: SystemView) -> None:
    if view.n < 2:
        raise Undefined("fewer than 2 samples per prompt")


def self_bleu(view: SystemView) -> list[float]:
    _two_samples(view)
    return [div.self_bleu(samples) for samples in view.samples]


def semantic_diversity(view: SystemView) -> list[float]:
    _two_samples(view)
    return [similarity.semantic_diversity(e) for e in view.sample_embeddings]


def useful_diversity(view: SystemView) -> list[float]:
    """Semantic diversity among the passing samples of each prompt only (NaN with fewer than
    two): diversity that junk cannot buy."""
    return [similarity.semantic_diversity(e[np.array(passed)]) if sum(passed) >= 2
            else math.nan for e, passed in zip(view.sample_embeddings, view.passing, strict=True)]


def distinct(order: int) -> Callable[[SystemView], list[float]]:
    return lambda view: [div.distinct_n(samples, order) for samples in view.samples]


def pooled_distinct(order: int) -> Callable[[SystemView], float]:
    return lambda view: div.pooled_distinct_n(view.samples, order)


def empty_fraction(texts: Sequence[str]) -> float:
    return sum(not text.strip() for text in texts) / len(texts)


def rouge(name: str) -> Callable[[SystemView], list[float]]:
    return lambda view: [scores[name] for scores in view.rouge]


def perplexity(view: SystemView) -> list[float]:
    records = view.records
    if any(r.get("reference_nll") is None or r.get("reference_tokens") is None for r in records):
        raise Undefined("no reference_nll/reference_tokens in the generations")
    return [qual.perplexity(r["reference_nll"], r["reference_tokens"]) for r in records]


def coverage(view: SystemView) -> list[float]:
    return [value for value, _, _ in view.coverage]


def coverage_extras(view: SystemView) -> dict[str, Any]:
    return {"modes_hit": [hit for _, hit, _ in view.coverage],
            "modes": [total for _, _, total in view.coverage]}


# Corpus-level numbers count empty replies: they score 0 everywhere and BLEU 0 against the
# others, which would flatter a degenerate system's diversity.
_METRICS = [
    # passing samples' distinct reference modes / the references' modes (coverage.py)
    Metric("coverage", "passk", True, "Coverage", coverage,
           shown_in=_shown("table", "ablation", "verdict", "summary"), extras=coverage_extras),
    Metric("self_bleu", "diversity", False, "Self-BLEU", self_bleu,
           shown_in=_shown("table", "ablation", "diversity_figure", "paper")),
    *[Metric(f"distinct_{n}", "diversity", True, f"Distinct-{n}", distinct(n),
             undefined=f"no {n}-gram in the samples of the prompt (every sample shorter than "
                       f"{n} tokens)",
             shown_in=_shown(*(["diversity_figure"] if n < 3 else []),
                             *(["table"] if n == 2 else [])))
      for n in (1, 2, 3)],
    Metric("semantic_diversity", "diversity", True, "Semantic div.", semantic_diversity,
           shown_in=_shown("table", "ablation", "diversity_figure", "pareto_diversity")),
    *[Metric(f"pooled_distinct_{n}", "diversity", True, f"Pooled distinct-{n}",
             pooled_distinct(n), per_prompt=False,
             undefined=f"no {n}-gram in any sample of the system") for n in (1, 2, 3)],
    Metric("empty_samples", "diversity", False, "Empty samples (fraction)",
           lambda view: empty_fraction([s for group in view.samples for s in group]),
           per_prompt=False),
    Metric("useful_diversity", "diversity", True, "Useful div.", useful_diversity,
           undefined="fewer than 2 passing samples for the prompt",
           shown_in=_shown("table", "ablation"), common_prompts=True,
           definition="semantic diversity (mean pairwise 1 - cos, judge) among the samples "
                      "that pass; undefined with fewer than 2 passing samples; every system's "
                      "per-seed mean is over the prompts where every system has a value "
                      "(n_prompts_common), so the means compare the same tweets"),
    Metric("off_topic_samples", "diversity", False, "Off-topic samples",
           lambda view: view.off_topic, undefined="every sample of the prompt is empty",
           shown_in=_shown("table"),
           definition="fraction of the non-empty samples that fail for their own tweet (best "
                      "judge cosine to its references below the calibrated judge-cosine pass "
                      "threshold) but would pass for another test tweet (best judge cosine to "
                      "that tweet's references at or above the same threshold)"),
    Metric("rouge1", "quality", True, "ROUGE-1", rouge("rouge1"),
           shown_in=_shown("quality_figure")),
    Metric("rouge2", "quality", True, "ROUGE-2", rouge("rouge2")),
    Metric("rougeL", "quality", True, "ROUGE-L", rouge("rougeL"),
           shown_in=_shown("table", "ablation", "quality_figure", "pareto_quality", "paper",
                           "summary")),
    Metric("bertscore_f1", "quality", True, "BERTScore F1", lambda view: list(view.bertscore),
           shown_in=_shown("table", "quality_figure")),
    Metric("perplexity", "quality", False, "Perplexity", perplexity,
           undefined="no scored reference token, or the perplexity overflows",
           shown_in=_shown("table", "quality_figure")),
    Metric("empty_greedy", "quality", False, "Empty greedy replies (fraction)",
           lambda view: empty_fraction(view.greedy), per_prompt=False),
]

METRICS = Registry("metric")
_PASSK = re.compile(r"^pass@(\d+)$")
_READING = re.compile(r"^([a-z][a-z0-9]*)_pass@(\d+)$")
LEXICAL = "lexical"  # the ROUGE-L reading of pass@k: no neural model behind it


def register(metric: Metric) -> None:
    """Add a metric (after the built-in ones, in registration order); pass@k is built in."""
    if parse_passk(metric.name) is not None or _READING.match(metric.name):
        raise ValueError(f"pass@k metrics are built in: {metric.name!r}")
    METRICS.register(metric.name, metric)


unregister = METRICS.unregister


def parse_passk(name: str) -> int | None:
    """`pass@10` -> 10; None for any other name."""
    match = _PASSK.match(name)
    return int(match[1]) if match else None


for _metric in _METRICS:
    register(_metric)


def _unknown_counts(decisions: Any) -> list[int]:
    return [int(flags.sum()) for flags in decisions.unknown]


def passk_metric(k: int) -> Metric:
    """The entry of pass@k: the unbiased estimator of every prompt from its pass count, the
    primary judge deciding each sample (evaluation.judges)."""
    def compute(view: SystemView) -> list[float]:
        if k > view.n:
            raise Undefined(f"k={k} is larger than n={view.n} samples")
        return pk.passk_per_prompt(view.pass_counts, view.n, k)

    return Metric(f"pass@{k}", "passk", True, f"pass@{k}", compute,
                  shown_in=_shown("table"))


def reading_passk_metric(kind: str, k: int) -> Metric:
    """pass@k read by another judge: `lexical` (ROUGE-L at its own threshold, no neural
    model) or a judge kind (`similarity_pass@k` where the oracle decides, say)."""
    def compute(view: SystemView) -> list[float]:
        if k > view.n:
            raise Undefined(f"k={k} is larger than n={view.n} samples")
        counts = (view.lexical_pass_counts if kind == LEXICAL
                  else view.reading(kind).pass_counts)
        return pk.passk_per_prompt(counts, view.n, k)

    return Metric(f"{kind}_pass@{k}", "passk", True, f"{kind} pass@{k}", compute)


def passk_extras(view: SystemView) -> dict[str, Any]:
    return {"pass_counts": view.pass_counts, "unknown_counts": _unknown_counts(view.decisions),
            "n": view.n}


def reading_extras(kind: str) -> Callable[[SystemView], dict[str, Any]]:
    def extras(view: SystemView) -> dict[str, Any]:
        if kind == LEXICAL:
            return {"lexical_pass_counts": view.lexical_pass_counts}
        decisions = view.reading(kind)
        return {f"{kind}_pass_counts": decisions.pass_counts,
                f"{kind}_unknown_counts": _unknown_counts(decisions)}
    return extras


def _with_extras(metric: Metric, extras: Callable[[SystemView], dict[str, Any]]) -> Metric:
    return replace(metric, extras=extras)


def metrics_for(ks: Sequence[int], readings: Sequence[str] = ()) -> list[Metric]:
    """What the evaluation computes: pass@k for every k (the raw pass and unknown counts and n
    written after the last), every reading's pass@k (lexical, then the second judges in
    `readings`; their counts after their last), then every registered metric in registration
    order."""
    family = [passk_metric(int(k)) for k in ks]
    if family:
        family[-1] = _with_extras(family[-1], passk_extras)
    for kind in (LEXICAL, *readings):
        reading = [reading_passk_metric(kind, int(k)) for k in ks]
        if reading:
            reading[-1] = _with_extras(reading[-1], reading_extras(kind))
        family += reading
    return family + list(METRICS.values())


def get_metric(name: str) -> Metric:
    """Look a metric up by name; `pass@K` names are built on demand."""
    if name in METRICS:
        return METRICS[name]
    k = parse_passk(name)
    if k is not None:
        return passk_metric(k)
    match = _READING.match(name)
    if match:
        return reading_passk_metric(match[1], int(match[2]))
    raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}, pass@K and "
                   "<reading>_pass@K")


def direction(name: str) -> bool | None:
    """higher_is_better of a metric; None for a name the registry does not know."""
    try:
        return get_metric(name).higher_is_better
    except KeyError:
        return None


def label(name: str) -> str:
    """The display label; the name itself for an unknown metric."""
    try:
        return get_metric(name).label
    except KeyError:
        return name


def main_passk(names: Sequence[str]) -> str | None:
    """The headline pass@k among `names`: pass@10 when present, else the largest k."""
    ks = [k for k in (parse_passk(name) for name in names) if k is not None]
    if not ks:
        return None
    return "pass@10" if 10 in ks else f"pass@{max(ks)}"


def shown_in(place: str, present: Sequence[str]) -> list[str]:
    """The metrics of `present` shown in `place`, pass@k (by k) first, then registry order."""
    if place not in PLACES:
        raise ValueError(f"unknown place {place!r}; known: {PLACES}")
    ks = sorted(k for k in (parse_passk(name) for name in present) if k is not None)
    passk = []
    if PASSK_IN.get(place) == "every":
        passk = [f"pass@{k}" for k in ks]
    elif PASSK_IN.get(place) == "headline":
        passk = list(dict.fromkeys(name for name in ("pass@1", main_passk(present))
                                   if name in present))
    rest = [name for name, metric in METRICS.items() if place in metric.shown_in]
    return passk + [name for name in rest if name in present]
