"""Which systems form the main comparison and which are ablations.

Light on purpose (standard library only): the workflow imports it while it builds the DAG, to
register the ablation table in the report only when the study has ablations.
"""

from __future__ import annotations

from typing import Any

from polychromic.systems import is_variant


def split_systems(systems: dict[str, Any], experiments: dict[str, Any],
                  reference: str | None) -> dict[str, list[str]]:
    """{main, ablation, main_lora}: which systems form the main comparison.

    `systems` and `experiments` are the typed settings (`polychromic.settings.System`,
    `Experiment`). Every system without a training experiment (zero-shot, few-shot) is main; of
    the LoRA systems, the reference system and the first system (in config order) of each
    training objective other than the reference's are main; every further LoRA system is an
    ablation. With the default config: baseline_lora and polychromic_lora are main, and a
    system `polychromic_l3_lora` of a second polychromic experiment is an ablation. A sampling
    variant (`baseline_lora@t1.3`, `baseline_lora@t1.6m0.1`, `polychromic.systems`) is always
    an ablation.
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
        if is_variant(name):
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
