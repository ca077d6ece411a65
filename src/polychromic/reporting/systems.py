"""Which systems form the main comparison and which are ablations.

Light on purpose (no numpy, scipy or jinja2): the workflow imports it while it builds the DAG,
to register the ablation table in the report only when the study has ablations.
"""

from __future__ import annotations

from polychromic.systems import is_temperature_system


def split_systems(systems_config: dict[str, dict], experiments_config: dict[str, dict],
                  reference: str | None) -> dict[str, list[str]]:
    """{main, ablation, main_lora}: which systems form the main comparison.

    Every system without a training experiment (zero-shot, few-shot) is main; of the LoRA
    systems, the reference system and the first system (in config order) of each training
    objective other than the reference's are main; every further LoRA system is an ablation.
    With the default config: baseline_lora and polychromic_lora are main, and a system
    `polychromic_l3_lora` of a second polychromic experiment is an ablation. A temperature
    system (`baseline_lora@t1.3`, polychromic.systems) is always an ablation.
    """
    def objective(system: str) -> str | None:
        experiment = (systems_config.get(system) or {}).get("experiment")
        if experiment is None:
            return None
        return (experiments_config.get(experiment) or {}).get("objective", experiment)

    covered = set()
    if reference in systems_config and objective(reference) is not None:
        covered.add(objective(reference))
    groups: dict[str, list[str]] = {"main": [], "ablation": [], "main_lora": []}
    for system in systems_config:
        kind = objective(system)
        if is_temperature_system(system):
            groups["ablation"].append(system)
        elif kind is None:
            groups["main"].append(system)
        elif system == reference or kind not in covered:
            covered.add(kind)
            groups["main"].append(system)
            groups["main_lora"].append(system)
        else:
            groups["ablation"].append(system)
    return groups
