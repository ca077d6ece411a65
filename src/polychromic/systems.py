"""Names of the evaluated systems, their sampling variants, and the main / ablation split.

A system may list sampling variants (`systems.<name>.variants: [{temperature: 1.6, min_p:
0.1}, {min_p: 0.05}]`), each any non-empty subset of the sampling keys temperature, top_p, top_k
and min_p, the unset ones taking `generation`'s value. `temperatures: [0.7, 1.3]` is shorthand
for `variants: [{temperature: 0.7}, {temperature: 1.3}]`. Each variant becomes a system of its
own, named `<name>@` followed by the keys it sets in the fixed order t (temperature), p (top_p),
k (top_k), m (min_p), each with its value (`baseline_lora@t1.3`, `baseline_lora@t1.6m0.1`,
`baseline_lora@m0.05`, `baseline_lora@t1.3p1.0`), generated with those sampling settings (the
greedy reply is unchanged) and evaluated like any system, so a method can be compared with a
sampling-tuned baseline at matched pass@1 (the verdict) and drawn on the frontier. A
temperature-only variant keeps the name it always had, so existing runs keep their files.

min_p (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling for Creative and Coherent LLM
Outputs", arXiv 2407.01082) keeps the tokens whose probability is at least min_p times the top
token's: a truncation that adapts to the model's confidence, the usual companion of a high
temperature.

This is the one place that builds and parses these names: the workflow (common.smk), the
`generate` step and the reporting all call it; `System` is a system's typed settings. Light on
purpose: the workflow imports it while it builds the DAG.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from polychromic.settings import schema, validated

SEPARATOR = "@"
# The sampling keys a variant may set, in the order of their letters in a name.
KEYS = ("temperature", "top_p", "top_k", "min_p")
LETTERS = {"temperature": "t", "top_p": "p", "top_k": "k", "min_p": "m"}
_NUMBER = r"\d+(?:\.\d+)?"
_NAME = re.compile(
    rf"^(?P<system>.+)@(?=[tpkm])(?:t(?P<temperature>{_NUMBER}))?(?:p(?P<top_p>{_NUMBER}))?"
    rf"(?:k(?P<top_k>\d+))?(?:m(?P<min_p>{_NUMBER}))?$")


def format_value(value: float) -> str:
    """A non-negative number as written in a name: shortest round-trip form, always with a
    decimal point (1.0 -> '1.0', 1.3 -> '1.3', 0.75 -> '0.75', 1e-05 -> '0.00001'); refused
    when negative, not finite, or not exactly writable with ten decimals."""
    number = float(value)
    if not math.isfinite(number) or number < 0 or isinstance(value, bool):
        raise ValueError(f"a sampling setting in a system name must be a non-negative number, "
                         f"got {value!r}")
    text = repr(number)
    if "e" in text or "E" in text:
        text = f"{number:.10f}".rstrip("0")
        if float(text) != number:
            raise ValueError(f"{value!r} cannot be written exactly in a system name")
    return text if "." in text else text + ".0"


def format_temperature(temperature: float) -> str:
    """The temperature as written in a name (`format_value`); it must be positive."""
    value = float(temperature)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"a sampling temperature must be a positive number, got {temperature!r}")
    return format_value(value)


def _cast(key: str, value: Any) -> float | int:
    """A sampling key's value as its type: top_k an integer (2.5 refused), the others float."""
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if key != "top_k":
        return float(value)
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"top_k must be an integer, got {value!r}")
    return int(value)


def _format(key: str, value: float | int) -> str:
    """One key's value in a name: top_k as an integer ('20'), the others as `format_value`."""
    if key == "temperature":
        return format_temperature(value)
    if key == "top_k":
        if _cast(key, value) < 0:
            raise ValueError(f"top_k must be a non-negative integer, got {value!r}")
        return str(_cast(key, value))
    return format_value(value)


@dataclass(frozen=True)
class Overrides:
    """The sampling settings a variant sets itself; None: `generation`'s value."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Overrides:
        """From a mapping of sampling keys (a `variants` entry); other keys are refused."""
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown sampling key(s) {unknown}; known: {', '.join(KEYS)}")
        return cls(**{key: _cast(key, value) for key, value in values.items()
                      if value is not None})

    def items(self) -> dict[str, float | int]:
        """The keys it sets, in name order (empty for a plain system)."""
        return {key: getattr(self, key) for key in KEYS if getattr(self, key) is not None}

    def suffix(self) -> str:
        """What follows `@` in the name: 't1.6m0.1'."""
        return "".join(LETTERS[key] + _format(key, value) for key, value in self.items().items())

    def describe(self) -> str:
        """In words, for sentences: 'temperature 1.6, min_p 0.1'."""
        return ", ".join(f"{key} {value:g}" for key, value in self.items().items())


class SystemName(NamedTuple):
    """A parsed system name: the configured system and the variant's overrides (empty for a
    plain system)."""

    base: str
    overrides: Overrides

    @property
    def is_variant(self) -> bool:
        return bool(self.overrides.items())


def variant_system(system: str, overrides: Overrides | Mapping[str, Any]) -> str:
    """`baseline_lora`, {temperature: 1.6, min_p: 0.1} -> `baseline_lora@t1.6m0.1`."""
    if SEPARATOR in system:
        raise ValueError(f"system name {system!r} already holds {SEPARATOR!r}")
    if not isinstance(overrides, Overrides):
        overrides = Overrides.of(overrides)
    if not overrides.items():
        raise ValueError(f"a variant of {system!r} must set at least one of {', '.join(KEYS)}")
    return f"{system}{SEPARATOR}{overrides.suffix()}"


def temperature_system(system: str, temperature: float) -> str:
    """`baseline_lora`, 1.3 -> `baseline_lora@t1.3`."""
    return variant_system(system, Overrides(temperature=float(temperature)))


def parse_system(name: str) -> SystemName:
    """`baseline_lora@t1.6m0.1` -> ('baseline_lora', Overrides(temperature=1.6, min_p=0.1));
    a plain name -> (name, Overrides())."""
    match = _NAME.match(name)
    if match is None:
        return SystemName(name, Overrides())
    found = {key: match[key] for key in KEYS if match[key] is not None}
    return SystemName(match["system"], Overrides.of(found))


def is_variant(name: str) -> bool:
    """Whether `name` is a sampling variant of a system (`baseline_lora@t1.3`, `...@m0.05`)."""
    return parse_system(name).is_variant


@dataclass(frozen=True)
class System:
    """One evaluated system, sampling variants (`baseline_lora@t1.6m0.1`) included; a sampling
    field left None takes `generation`'s value."""

    name: str
    prompt: str  # the template in resources/prompts/
    shots: int  # few-shot examples from the train split
    experiment: str | None  # the experiment whose adapter it uses (LoRA systems)
    temperature: float | None  # its own sampling temperature; None: generation.temperature
    base_system: str | None  # the configured system a variant derives from
    top_p: float | None = None  # its own top_p; None: generation.top_p
    top_k: int | None = None  # its own top_k; None: generation.top_k
    min_p: float | None = None  # its own min_p; None: generation.min_p

    @property
    def overrides(self) -> Overrides:
        """The sampling settings this system sets itself (empty for a plain system)."""
        return Overrides(self.temperature, self.top_p, self.top_k, self.min_p)

    @classmethod
    def from_config(cls, name: str, values: Mapping[str, Any]) -> System:
        """From a configured system (the schema's defaults filled in) or an entry of
        `expand_systems` (which adds its overrides and `base_system` to a variant)."""
        variant = {key: values[key] for key in (*KEYS, "base_system") if key in values}
        node = schema()["properties"]["systems"]["additionalProperties"]
        checked = validated(node, {k: v for k, v in values.items() if k not in variant},
                            f"systems.{name}")
        overrides = Overrides.of({key: variant[key] for key in KEYS if key in variant})
        return cls(name, checked["prompt"], checked["shots"], checked.get("experiment"),
                   overrides.temperature, variant.get("base_system"), overrides.top_p,
                   overrides.top_k, overrides.min_p)


def system_variants(name: str, values: Mapping[str, Any]) -> Iterator[tuple[str, Overrides]]:
    """(config key, overrides) of each variant of the configured system `name`: its
    `temperatures` (shorthand for temperature-only variants) first, then its `variants`, in
    config order; the key names the entry (`systems.baseline_lora.variants.1`)."""
    for index, temperature in enumerate(values.get("temperatures") or []):
        yield f"systems.{name}.temperatures.{index}", Overrides(temperature=float(temperature))
    for index, entry in enumerate(values.get("variants") or []):
        where = f"systems.{name}.variants.{index}"
        try:
            overrides = Overrides.of(entry)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from error
        if not overrides.items():
            raise ValueError(f"{where}: a variant must set at least one of {', '.join(KEYS)}")
        yield where, overrides


def expand_systems(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every configured system (its validated settings without `temperatures` and `variants`),
    each followed by its variants: the same settings plus the keys the variant sets and
    `base_system`. A name given twice (two entries, or a variant and a configured system) is a
    ValueError naming the key.

    The plain systems' settings stay exactly as configured otherwise, so adding variants to the
    config does not change (and re-run) the existing systems' jobs; `temperatures: [1.3]` gives
    exactly the entry (and name) it always gave.
    """
    expanded: dict[str, dict[str, Any]] = {}
    for name, values in systems.items():
        base = {key: value for key, value in values.items()
                if key not in ("temperatures", "variants")}
        expanded[name] = base
        for where, overrides in system_variants(name, values):
            try:
                variant = variant_system(name, overrides)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from error
            if variant in systems or variant in expanded:
                raise ValueError(f"{where}: {variant!r} is listed twice")
            expanded[variant] = {**base, **overrides.items(), "base_system": name}
    return expanded


def candidate_system(systems: Mapping[str, System], name: str) -> System:
    """A candidate of the sampling search on validation (`polychromic.evaluation.search`): a
    configured system itself, or `<system>@t1.25`, the system at the sampling its name sets.
    A configured sampling variant is not a candidate (it keeps its own sampling)."""
    parsed = parse_system(name)
    system = systems.get(parsed.base)
    if system is None or system.base_system is not None:
        raise ValueError(f"{name!r} is not a configured system or a sampling candidate of one")
    if not parsed.is_variant:
        return system
    overrides = parsed.overrides
    return dataclasses.replace(system, name=name, base_system=parsed.base,
                               **{key: getattr(overrides, key) for key in KEYS
                                  if getattr(overrides, key) is not None})


def candidate_pattern(systems: Mapping[str, System]) -> str:
    """A regular expression of every candidate name of `candidate_system` (a Snakemake
    wildcard constraint)."""
    names = [re.escape(name) for name, system in systems.items() if system.base_system is None]
    return rf"(?:{'|'.join(names)})(?:@(?=[tpkm])[tpkm0-9.]+)?" if names else "(?!x)x"


def chosen_system(system: System, selection: Mapping[str, Any] | None) -> System:
    """The system as the test split is generated: a configured system at the sampling chosen
    for it on validation (`selection`, the content of selection.json); a configured sampling
    variant, or any system when there is no selection, as it is."""
    if selection is None or system.base_system is not None:
        return system
    entry = (selection.get("systems") or {}).get(system.name)
    if entry is None:
        raise ValueError(f"the sampling selection has no choice for system {system.name!r}")
    overrides = Overrides.of(entry["overrides"])
    return dataclasses.replace(system, **{key: getattr(overrides, key) for key in KEYS})
