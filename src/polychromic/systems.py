"""Names of the evaluated systems, their temperature variants, and the main / ablation split.

A system may list extra sampling temperatures (`systems.<name>.temperatures: [0.7, 1.3]`); each
becomes a system of its own, named `<name>@t<temperature>` (`baseline_lora@t1.3`), generated
with that sampling temperature (the greedy reply is unchanged) and evaluated like any system,
so a method can be compared with a temperature-tuned baseline at matched pass@1.

This is the one place that builds and parses these names: the workflow (common.smk), the
`generate` step and the reporting all call it; `System` is a system's typed settings. Light on
purpose: the workflow imports it while it builds the DAG.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from polychromic.settings import schema, validated

SEPARATOR = "@t"
_NAME = re.compile(r"^(?P<system>.+)@t(?P<temperature>\d+(?:\.\d+)?)$")


def format_temperature(temperature: float) -> str:
    """The temperature as written in a name: shortest round-trip form, always with a decimal
    point (1.0 -> '1.0', 1.3 -> '1.3', 0.75 -> '0.75')."""
    value = float(temperature)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"a sampling temperature must be a positive number, got {temperature!r}")
    text = repr(value)
    if "e" in text or "E" in text:
        text = f"{value:.10f}".rstrip("0")
    return text if "." in text else text + ".0"


def temperature_system(system: str, temperature: float) -> str:
    """`baseline_lora`, 1.3 -> `baseline_lora@t1.3`."""
    if SEPARATOR in system:
        raise ValueError(f"system name {system!r} already holds {SEPARATOR!r}")
    return f"{system}{SEPARATOR}{format_temperature(temperature)}"


def parse_system(name: str) -> tuple[str, float | None]:
    """`baseline_lora@t1.3` -> ('baseline_lora', 1.3); a plain name -> (name, None)."""
    match = _NAME.match(name)
    if match is None:
        return name, None
    return match["system"], float(match["temperature"])


def is_temperature_system(name: str) -> bool:
    return parse_system(name)[1] is not None


@dataclass(frozen=True)
class System:
    """One evaluated system, temperature variants (`baseline_lora@t1.3`) included."""

    name: str
    prompt: str  # the template in resources/prompts/
    shots: int  # few-shot examples from the train split
    experiment: str | None  # the experiment whose adapter it uses (LoRA systems)
    temperature: float | None  # its own sampling temperature; None: generation.temperature
    base_system: str | None  # the configured system a temperature variant derives from

    @classmethod
    def from_config(cls, name: str, values: Mapping[str, Any]) -> System:
        """From a configured system (the schema's defaults filled in) or an entry of
        `expand_systems` (which adds `temperature` and `base_system` to a variant)."""
        variant = {key: values[key] for key in ("temperature", "base_system") if key in values}
        node = schema()["properties"]["systems"]["additionalProperties"]
        checked = validated(node, {k: v for k, v in values.items() if k not in variant},
                            f"systems.{name}")
        return cls(name, checked["prompt"], checked["shots"], checked.get("experiment"),
                   variant.get("temperature"), variant.get("base_system"))


def expand_systems(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every configured system (its validated settings without `temperatures`), each followed
    by its temperature variants: the same settings plus `temperature` and `base_system`.

    The plain systems' settings stay exactly as configured otherwise, so adding temperatures
    to the config does not change (and re-run) the existing systems' jobs.
    """
    expanded: dict[str, dict[str, Any]] = {}
    for name, values in systems.items():
        base = {key: value for key, value in values.items() if key != "temperatures"}
        expanded[name] = base
        for temperature in values["temperatures"]:
            variant = temperature_system(name, temperature)
            if variant in systems or variant in expanded:
                raise ValueError(f"systems.{name}.temperatures: {variant!r} is listed twice")
            expanded[variant] = {**base, "temperature": float(temperature), "base_system": name}
    return expanded

