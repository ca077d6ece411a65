"""Names of the evaluated systems, their temperature variants, and the main / ablation split.

A system may list extra sampling temperatures (`systems.<name>.temperatures: [0.7, 1.3]`); each
becomes a system of its own, named `<name>@t<temperature>` (`baseline_lora@t1.3`), generated
with that sampling temperature (the greedy reply is unchanged) and evaluated like any system,
so a method can be compared with a temperature-tuned baseline at matched pass@1.

This is the one place that builds and parses these names: the workflow (common.smk), the
`generate` step and the reporting all call it. Light on purpose (standard library only): the
workflow imports it while it builds the DAG.
"""

from __future__ import annotations

import re
from typing import Any

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


def expand_systems(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every configured system (its settings without `temperatures`), each followed by its
    temperature variants: the same settings plus `temperature` and `base_system`.

    The plain systems' settings stay exactly as configured otherwise, so adding temperatures
    to the config does not change (and re-run) the existing systems' jobs.
    """
    expanded: dict[str, dict[str, Any]] = {}
    for name, settings in systems.items():
        base = {key: value for key, value in (settings or {}).items() if key != "temperatures"}
        expanded[name] = base
        for temperature in (settings or {}).get("temperatures") or []:
            variant = temperature_system(name, temperature)
            if variant in systems or variant in expanded:
                raise ValueError(f"systems.{name}.temperatures: {variant!r} is listed twice")
            expanded[variant] = {**base, "temperature": float(temperature), "base_system": name}
    return expanded


def split_systems(systems: dict[str, Any], experiments: dict[str, Any],
                  reference: str | None) -> dict[str, list[str]]:
    """{main, ablation, main_lora}: which systems form the main comparison.

    `systems` and `experiments` are the typed settings (`polychromic.settings.System`,
    `Experiment`). Every system without a training experiment (zero-shot, few-shot) is main; of
    the LoRA systems, the reference system and the first system (in config order) of each
    training objective other than the reference's are main; every further LoRA system is an
    ablation. With the default config: baseline_lora and polychromic_lora are main, and a
    system `polychromic_l3_lora` of a second polychromic experiment is an ablation. A
    temperature system (`baseline_lora@t1.3`) is always an ablation.
    """
    def objective(name: str) -> str | None:
        experiment = systems[name].experiment if name in systems else None
        if experiment is None:
            return None
        return experiments[experiment].objective if experiment in experiments else experiment

    covered = set()
    if reference in systems and objective(reference) is not None:
        covered.add(objective(reference))
    groups: dict[str, list[str]] = {"main": [], "ablation": [], "main_lora": []}
    for name in systems:
        kind = objective(name)
        if is_temperature_system(name):
            groups["ablation"].append(name)
        elif kind is None:
            groups["main"].append(name)
        elif name == reference or kind not in covered:
            covered.add(kind)
            groups["main"].append(name)
            groups["main_lora"].append(name)
        else:
            groups["ablation"].append(name)
    return groups
