"""Checks of the study config that a JSON Schema cannot express.

The schema (workflow/schemas/config.schema.yaml) checks keys, types and ranges; this checks the
relations between keys, before any job runs, with a message that names the key.
"""

from __future__ import annotations

from typing import Any

from polychromic.systems import SEPARATOR, expand_systems


class ConfigError(ValueError):
    """A config value is inconsistent with another one; the message names the key."""


def check_config(config: dict[str, Any]) -> None:
    split = config["split"]
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split.train + split.val + split.test must be 1, got {total:g}")

    n = config["generation"]["num_samples"]
    too_big = [k for k in config["evaluation"]["passk"]["k"] if k > n]
    if too_big:
        raise ConfigError(
            f"evaluation.passk.k has {too_big} > generation.num_samples = {n}: pass@k needs k <= n"
        )

    experiments = config["experiments"]
    sampling = float(config["generation"]["temperature"])
    for name, settings in config["systems"].items():
        if SEPARATOR in name:
            raise ConfigError(
                f"systems.{name}: {SEPARATOR!r} is reserved for temperature systems; list extra "
                f"temperatures under systems.<name>.temperatures instead"
            )
        temperatures = [float(t) for t in settings.get("temperatures") or []]
        if sampling in temperatures:
            raise ConfigError(
                f"systems.{name}.temperatures holds {sampling:g}, the sampling temperature of "
                f"generation.temperature: {name} itself is already sampled at it"
            )
        try:
            expand_systems({name: settings})
        except ValueError as error:
            raise ConfigError(f"systems.{name}.temperatures: {error}") from error
        experiment = settings.get("experiment")
        if settings["prompt"] == "lora":
            if experiment is None:
                raise ConfigError(f"systems.{name}: a lora system needs an `experiment`")
            if experiment not in experiments:
                raise ConfigError(
                    f"systems.{name}.experiment = {experiment!r} is not in experiments "
                    f"({', '.join(experiments)})"
                )
        elif experiment is not None:
            raise ConfigError(f"systems.{name}: only prompt: lora systems take an experiment")

    for name, settings in experiments.items():
        if settings["objective"] == "polychromic":
            size, samples = settings.get("set_size", 2), settings.get("num_samples", 4)
            if not 2 <= size < samples:
                raise ConfigError(
                    f"experiments.{name}: need 2 <= set_size ({size}) < num_samples ({samples}); "
                    "with set_size = num_samples every advantage is 0"
                )
        else:
            extra = set(settings) - {"objective"}
            if extra:
                raise ConfigError(f"experiments.{name}: objective sft takes no {sorted(extra)}")

    reference = config["evaluation"]["reference_system"]
    if reference not in config["systems"]:
        raise ConfigError(f"evaluation.reference_system = {reference!r} is not in systems")
    tiny = config["model"]["tiny"]
    if tiny["hidden_size"] % tiny["num_heads"] or tiny["num_heads"] % tiny["num_kv_heads"]:
        raise ConfigError(
            "model.tiny: num_heads must divide hidden_size and num_kv_heads num_heads"
        )
