"""Typed settings: one frozen dataclass per config section, built once from the validated config.

Why: a setting read as `config["training"].get("grad_accum", 1)` in five places has five
defaults. Here every default lives in exactly one place:

- the sections of `config.yaml` (data, curation, split, model, lora, training, generation,
  evaluation, paper) take theirs from the JSON Schema `workflow/schemas/config.schema.yaml`,
  which is also the config's documentation; the dataclasses below declare no defaults, and a
  test checks that their fields and the schema's keys are the same;
- an objective's settings (`experiments.<name>`) take theirs from the objective's settings
  dataclass in `polychromic.objectives` (fields with a one-line help, as TRL's configs do);
- a system's (`systems.<name>`) from the schema too (`polychromic.systems.System`).

`section("training", values)` fills the schema's defaults into a copy of one section, validates
it (types, ranges, unknown keys: a `ConfigError` names the key) and builds its dataclass; the
rules' scripts build the settings they need this way. The whole study (experiments, systems and
the relations between sections) is `polychromic.config.load_settings`.

Light on purpose (standard library, yaml, jsonschema): the workflow builds it at DAG time, and
every rule depends on it, so it imports nothing else of the library.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value is invalid or inconsistent with another one; the message names the key."""


@dataclass(frozen=True)
class Thresholds:
    min_pairs: int | None
    min_tweets: int | None
    min_unique_tweet_fraction: float | None
    min_authors: int | None
    min_mean_tweet_likes: float | None
    min_mean_reply_likes: float | None


@dataclass(frozen=True)
class Review:
    n: int
    seed: int


@dataclass(frozen=True)
class DataSettings:
    raw: tuple[str, ...]
    format: str
    synthetic: bool | None
    max_rejected_fraction: float
    strict: bool
    thresholds: Thresholds
    review: Review


@dataclass(frozen=True)
class CurationSettings:
    min_reply_chars: int
    max_reply_chars: int
    drop_urls: bool
    max_hashtags: int
    spam_keywords: tuple[str, ...]
    generic_replies: tuple[str, ...]
    max_emojis: int | None
    drop_all_caps: bool
    max_repeated_chars: int | None
    drop_self_replies: bool
    min_tweet_likes: int | None
    min_reply_likes: int | None
    min_reply_author_followers: int | None
    language: str | None
    drop_exact_duplicates: bool
    near_duplicate_threshold: float | None
    near_duplicate_model: str
    near_duplicate_scope: str
    decisions: str
    undecided: str


@dataclass(frozen=True)
class SplitSettings:
    train: float
    val: float
    test: float
    seed: int
    min_tweets: int
    group_by: str
    stratify: str


@dataclass(frozen=True)
class TinySettings:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_length: int
    pretrain_steps: int
    batch_size: int
    learning_rate: float
    seed: int


@dataclass(frozen=True)
class ModelSettings:
    name: str | None  # a known model (polychromic.models.known); None: path, else the tiny one
    path: str | None
    dtype: str  # auto | float32 | bfloat16 | float16 (polychromic.models.base.resolve_dtype)
    attn_implementation: str | None
    load_in_4bit: bool
    gradient_checkpointing: bool
    tiny: TinySettings


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...] | str | None  # a list, or auto / None: from the architecture


@dataclass(frozen=True)
class TrainingSettings:
    max_steps: int
    batch_size: int
    grad_accum: int
    learning_rate: float
    warmup_steps: int
    eval_every: int
    checkpoint_selection: str
    save_every: int
    report_to: str
    early_stopping_patience: int
    max_length: int


@dataclass(frozen=True)
class GenerationSettings:
    engine: str
    num_samples: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    max_new_tokens: int
    batch_size: int


@dataclass(frozen=True)
class PassKSettings:
    k: tuple[int, ...]
    criterion: str
    threshold: float | None  # None: calibrated on the validation split
    lexical_threshold: float | None


@dataclass(frozen=True)
class SearchSettings:
    enabled: bool  # False: every system at generation's settings
    parameter: str  # the sampling key searched: temperature
    low: float  # the coldest setting the search may try
    high: float  # the hottest
    max_candidates: int  # the budget per system, generation's own setting included
    stop_within: float  # stop once a candidate's validation pass@1 is this close to the target
    min_step: float  # stop when the bracket is narrower


@dataclass(frozen=True)
class SelectionSettings:
    search: SearchSettings
    num_samples: int
    max_prompts: int | None

    @property
    def active_search(self) -> SearchSettings | None:
        """The search when it is on, else None."""
        return self.search if self.search.enabled else None


@dataclass(frozen=True)
class EvaluationSettings:
    reference_system: str
    baseline_system: str
    diversity_ablation: str | None  # the reference's objective without its diversity term
    match_tolerance: float  # the largest |pass@1 difference| of a matched comparison
    degenerate_share: float  # ties at a bound on this share of tweets: no test (validity.py)
    judge_kind: str  # the primary judge: auto | a kind of evaluation.judges (similarity, oracle)
    second_judges: tuple[str, ...]  # further readings of pass@k (<kind>_pass@k)
    judge: str  # the judge encoder: the similarity judge's, semantic diversity's, BERTScore's
    allow_judge_as_reward: bool
    judge_precision: str  # auto | float32 | bfloat16 (embeddings.resolve_precision)
    bertscore_layer: int | None  # None: the judge's own (encoders.default_layer)
    passk: PassKSettings
    headroom: float  # the baseline's validation pass@k must stay at or below this
    verdict_k: int | None  # the verdict's k; None: the largest k with headroom on validation
    selection: SelectionSettings
    bootstrap_samples: int
    permutation_samples: int
    stats_seed: int


@dataclass(frozen=True)
class PaperSettings:
    title: str
    author: str
    release_texts: bool
    page_limit: int


SECTIONS: dict[str, type] = {
    "data": DataSettings, "curation": CurationSettings, "split": SplitSettings,
    "model": ModelSettings, "lora": LoraSettings, "training": TrainingSettings,
    "generation": GenerationSettings, "evaluation": EvaluationSettings, "paper": PaperSettings,
}


@functools.cache
def schema() -> dict[str, Any]:
    """The config's JSON Schema (read once per process)."""
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def _validator(node: dict[str, Any]) -> Any:
    """A Draft 2020-12 validator of `node` that fills in defaults while it validates (the way
    Snakemake's `validate(config, schema)` does)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, node_schema):  # noqa: ANN001, ANN202
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, node_schema)

    return jsonschema.validators.extend(base, {"properties": properties})(node)


def validated(node: dict[str, Any], values: Any, where: str) -> Any:
    """A copy of `values` with `node`'s defaults filled in; ConfigError naming the first
    violation's key path."""
    filled = copy.deepcopy(values)
    errors = sorted(_validator(node).iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        key = ".".join(str(part) for part in [where, *error.absolute_path] if part != "")
        raise ConfigError(f"{key or 'config'}: {error.message}")
    return filled


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """The dataclass `cls` from a validated mapping; nested dataclasses and tuples converted."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        kind, value = hints[field.name], values[field.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and value is not None:
            kind = _member(kind, value)
        if dataclasses.is_dataclass(kind):
            value = build(kind, value)
        elif typing.get_origin(kind) is tuple and value is not None:
            value = tuple(value)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def _member(union: Any, value: Any) -> Any:
    """The member of a union type that a (non-None) value is: a string value is the `str`
    member where there is one, a list the tuple member; otherwise the first member that is
    not None."""
    members = [arg for arg in typing.get_args(union) if arg is not type(None)]
    for member in members:
        if isinstance(value, str) and member is str:
            return member
        if isinstance(value, list | tuple) and typing.get_origin(member) is tuple:
            return member
    return members[0]


def as_dict(settings: Any) -> Any:
    """A settings dataclass as plain JSON-ready data (tuples as lists)."""
    if dataclasses.is_dataclass(settings):
        return {f.name: as_dict(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    if isinstance(settings, tuple | list):
        return [as_dict(item) for item in settings]
    if isinstance(settings, dict):
        return {key: as_dict(value) for key, value in settings.items()}
    return settings


def section(name: str, values: Mapping[str, Any] | None = None) -> Any:
    """One config section as its dataclass, the schema's defaults filled in (`values` may be
    partial or None)."""
    node = schema()["properties"][name]
    return build(SECTIONS[name], validated(node, dict(values or {}), name))
