"""Aggregate the per-seed evaluation files into one file: mean, std and values over seeds.

The study reports every number as mean +- std over training seeds, so this step reads
`evaluation/seed_{seed}/` of every seed (`polychromic.contract.SEED_FILES`) and writes
`aggregated_results.json` in the shape of docs/file_contract.md: per system and metric
`{mean, std (ddof=1), values (config seed order), n_seeds, higher_is_better}`. A value that is
null in a per-seed file stays null in `values` and is left out of mean and std; `n_seeds` says
how many seeds counted.

Systems are split into the main comparison and ablations (`groups.split_systems`): an
ablation is a LoRA system beyond the reference system and the first LoRA system of each
training objective (a second polychromic experiment with another lambda, say). The aggregate
lists both groups (`main_systems`, `ablation_systems`) and, from each run's `run.json`,
summarises every training experiment over seeds (`experiments`). It also holds the verdict
(`verdict.py`). The results table (`results_table.tex`, main systems) and the ablation table
(`ablation_table.tex`, always written: a LaTeX comment when there is no ablation) are rendered
from the aggregate here. Their daggers come from the aggregate's `comparisons` (the primary
rule of `significance.py`: the verdict's cells from the verdict, every other cell in one Holm
family of the tables), which the paper reads too, so a difference has one reading everywhere.
The aggregate also holds the power of the final test (`power`, a simulation of the rule:
`reporting.power`), and, with `evaluation.diversity_ablation`, the reference system against the
same objective without its diversity term (`diversity_effect`: the term's own effect, where
the verdict against the baseline is the objective's as a whole).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.config import Experiment
from polychromic.contract import EVALUATION_FILES, SEED_FILES
from polychromic.evaluation.calibration import calibration_warnings
from polychromic.evaluation.equivalence import on_validation
from polychromic.evaluation.registry import METRICS, direction, parse_passk
from polychromic.evaluation.stats import finite_or_none
from polychromic.io import read_json, write_json, write_text
from polychromic.reporting.groups import split_systems
from polychromic.reporting.judges import headroom, judge_reward, judge_validity
from polychromic.reporting.judges import warnings as judge_warnings
from polychromic.reporting.latex import ablation_table as render_ablation_table
from polychromic.reporting.latex import results_table, table_metrics
from polychromic.reporting.power import final_test_power
from polychromic.reporting.significance import Evidence, table_family
from polychromic.reporting.verdict import (
    build_verdict,
    objective_comparisons,
    room_check,
    room_check_on_validation,
)
from polychromic.settings import EvaluationSettings
from polychromic.systems import System

log = logging.getLogger(__name__)

def load_seed(evaluation_dir: str | Path) -> dict[str, Any]:
    """Read the four evaluation files of one seed, keyed by group ('statistics' for tests)."""
    folder = Path(evaluation_dir)
    missing = [name for name in SEED_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing evaluation files {missing}")
    return {group: read_json(folder / name) for group, name in SEED_FILES.items()}


def _metric_entries(system_block: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one system: entries holding a `mean` (not `pass_counts`, `n`, ...)."""
    return {
        name: entry
        for name, entry in system_block.items()
        if isinstance(entry, dict) and "mean" in entry
    }


def seed_means(seed_data: dict[str, Any], seed: int, systems: list[str]) -> dict[str, dict]:
    """{system: {metric: mean or None}} of one seed, merged over the three metric files."""
    means: dict[str, dict[str, float | None]] = {system: {} for system in systems}
    for group in EVALUATION_FILES:
        blocks = seed_data[group].get("systems", {})
        for system in systems:
            if system not in blocks:
                raise ValueError(f"seed {seed}: system {system!r} missing from {group} metrics")
            for metric, entry in _metric_entries(blocks[system]).items():
                means[system][metric] = finite_or_none(entry["mean"])
    return means


def metric_order(names: set[str]) -> list[str]:
    """pass@k by k, then the registry's order, then unknown metrics alphabetically."""
    passk = sorted((n for n in names if parse_passk(n) is not None), key=parse_passk)
    known = [name for name in METRICS if name in names]
    rest = sorted(names - set(passk) - set(known))
    return passk + known + rest


def summarise(values: list[float | None], metric: str | None,
              higher_is_better: bool | None = None) -> dict[str, Any]:
    """{mean, std (ddof=1), values, n_seeds, higher_is_better}, plus `reason` when mean or
    std is null (the contract: a number that cannot be computed is null with a reason).
    The direction comes from the registry for a metric, else from `higher_is_better`."""
    counted = np.array([value for value in values if value is not None], dtype=float)
    n = len(counted)
    entry: dict[str, Any] = {
        "mean": float(np.mean(counted)) if n else None,
        "std": float(np.std(counted, ddof=1)) if n >= 2 else None,
        "values": list(values),
        "n_seeds": n,
        "higher_is_better": direction(metric) if metric else higher_is_better,
    }
    if n < 2:
        entry["reason"] = "no seed has a value" if n == 0 else "one seed: no std"
    return entry


# Deterministic numbers only (no wall time): a re-run with the same seeds gives the same file.
RUN_FIELDS = {"best_val_loss": False, "best_step": None, "saved_step": None, "steps_run": None}


def summarise_runs(runs: dict[str, dict[int, str]], seeds: list[int],
                   experiments: dict[str, Experiment],
                   systems: dict[str, System]) -> dict[str, Any]:
    """Per training experiment: objective, the systems it serves, and over seeds (config
    order) the `run.json` numbers best_val_loss, best_step, saved_step and steps_run, and the
    seeds whose saved adapter is the initial, zero LoRA (`initial_adapter_seeds`: the system
    then is the base model; the paper and the verdict say so), the adapters' weight digests in
    seed order (`adapter_sha256`: equal digests make a comparison void), and for a sampling
    objective its gate and zero-term steps (`policy_term_summary`)."""
    block: dict[str, Any] = {}
    for experiment, paths in runs.items():
        docs = {seed: read_json(paths[seed]) if seed in paths else {} for seed in seeds}
        entry: dict[str, Any] = {
            "objective": experiments[experiment].objective,
            "systems": [name for name, system in systems.items()
                        if system.experiment == experiment],
        }
        for field, higher in RUN_FIELDS.items():
            values = [finite_or_none(docs[seed].get(field)) for seed in seeds]
            entry[field] = summarise(values, None, higher)
        entry["initial_adapter_seeds"] = [seed for seed in seeds
                                          if docs[seed].get("adapter_is_initial")]
        entry["adapter_sha256"] = [docs[seed].get("adapter_sha256") for seed in seeds]
        entry.update(policy_term_summary([docs[seed] for seed in seeds]))
        block[experiment] = entry
    return block


def policy_term_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A sampling objective's quality gate per seed (`quality_gate`, the thresholds) and how
    often its policy term was zero (`zero_term`: steps summed over seeds, and their share);
    nothing for an objective that samples nothing."""
    sampled = [run for run in runs if run.get("sampling_steps") is not None]
    if not sampled:
        return {}
    steps = sum(run["sampling_steps"] for run in sampled)
    zero = sum(run["zero_term_steps"] for run in sampled)
    gates = [(run.get("quality_gate") or {}) for run in runs]
    return {"quality_gate": {"thresholds": [gate.get("threshold") for gate in gates],
                             "source": next((g["source"] for g in gates if g.get("source")),
                                            None)},
            "zero_term": {"sampling_steps": steps, "zero_term_steps": zero,
                          "share": zero / steps if steps else None}}


def _merged_settings(per_seed: dict[int, dict], seeds: list[int]) -> dict[str, Any]:
    """Each file's settings: keys equal in every seed once, keys that differ (adapter paths,
    say) under `by_seed`; the `seed` key itself is dropped (the seeds are listed above)."""
    settings: dict[str, Any] = {}
    for group in SEED_FILES:
        by_seed = {
            seed: {
                key: value
                for key, value in per_seed[seed][group].get("settings", {}).items()
                if key != "seed"
            }
            for seed in seeds
        }
        keys = list(dict.fromkeys(key for value in by_seed.values() for key in value))
        same = [
            key
            for key in keys
            if all(
                key in value and value[key] == by_seed[seeds[0]].get(key)
                for value in by_seed.values()
            )
        ]
        merged = {key: by_seed[seeds[0]][key] for key in same}
        differing = {
            str(seed): {k: v for k, v in value.items() if k not in same}
            for seed, value in by_seed.items()
        }
        if any(differing.values()):
            merged["by_seed"] = differing
        settings[group] = merged
    return settings


def build_aggregate(per_seed: dict[int, dict], seeds: list[int], systems: list[str],
                    groups: dict[str, list[str]] | None = None) -> dict:
    """The aggregate document from already-loaded per-seed data (see module docstring);
    `groups` is `split_systems`'s answer (every system main when None)."""
    means = {seed: seed_means(per_seed[seed], seed, systems) for seed in seeds}
    metrics = metric_order({m for seed in seeds for s in systems for m in means[seed][s]})
    systems_block = {
        system: {
            metric: summarise([means[seed][system].get(metric) for seed in seeds], metric)
            for metric in metrics
        }
        for system in systems
    }
    groups = groups or {"main": list(systems), "ablation": [], "main_lora": []}
    return {
        "systems": systems_block,
        "seeds": list(seeds),
        "system_order": list(systems),
        "main_systems": [system for system in systems if system not in groups["ablation"]],
        "ablation_systems": [system for system in systems if system in groups["ablation"]],
        "main_lora_systems": [system for system in systems if system in groups["main_lora"]],
        "metric_order": metrics,
        "settings": _merged_settings(per_seed, seeds),
    }


def threshold_record(calibration: str | None,
                     evaluation: EvaluationSettings) -> dict[str, Any] | None:
    """The pass criterion's threshold as the evaluation used it: from the config, or from
    the calibration on validation with its bootstrap interval and pair counts."""
    if evaluation.passk.threshold is not None:
        return {"criterion": evaluation.passk.criterion, "source": "config",
                "threshold": evaluation.passk.threshold}
    if calibration is None:
        return None
    record = read_json(calibration)[evaluation.passk.criterion]
    return {"criterion": evaluation.passk.criterion, "source": "validation",
            **{key: record.get(key) for key in ("threshold", "threshold_ci", "positives",
                                                "negatives", "few_pairs", "pairing")}}


def power_block(evidence: Evidence, verdict: dict[str, Any]) -> dict[str, Any] | None:
    """The simulated power of the final test (`power.final_test_power`); None, with the reason
    logged, where there is no verdict or too little to estimate its variance components."""
    if not verdict.get("available"):
        return None
    try:
        return final_test_power(evidence.seed_documents, verdict, evidence.alpha)
    except (KeyError, ValueError) as error:
        log.warning("power of the final test not computed: %s", error)
        return None


def load_seeds(evaluation_dirs: dict[int, str], seeds: list[int]) -> dict[int, dict]:
    """Every seed's evaluation documents, in config seed order."""
    if not seeds:
        raise ValueError("no seeds to aggregate")
    dirs = {int(seed): path for seed, path in evaluation_dirs.items()}
    missing = [seed for seed in seeds if seed not in dirs]
    if missing:
        raise ValueError(f"no evaluation folder for seeds {missing}")
    return {seed: load_seed(dirs[seed]) for seed in seeds}


def aggregate(evaluation_dirs: dict[int, str], outputs: dict[str, str], seeds: list[int],
              systems: dict[str, System], experiments: dict[str, Experiment],
              evaluation: EvaluationSettings, templates_dir: str,
              runs: dict[str, dict[int, str]] | None = None,
              selection: str | None = None, calibration: str | None = None) -> dict:
    """Write `outputs` (`aggregated`: aggregated_results.json, `table`: results_table.tex and,
    when given, `ablation_table`) from every seed's evaluation and every run's run.json
    (`runs`: {experiment: {seed: path}}); `selection` (selection.json, the sampling chosen on
    validation) is copied in as `selection` with each system's equivalence test on validation
    (`equivalence.on_validation`), null without a search; `calibration`
    (judge_calibration.json) gives the pass threshold's record (`calibration`) and, when the
    threshold was calibrated on too few pairs, a warning of the verdict."""
    seeds = [int(seed) for seed in seeds]
    per_seed = load_seeds(evaluation_dirs, seeds)
    reference, baseline = evaluation.reference_system, evaluation.baseline_system
    groups = split_systems(systems, experiments, reference)
    result = build_aggregate(per_seed, seeds, list(systems), groups)
    result.update(reference_system=reference, baseline_system=baseline,
                  selection=on_validation(read_json(selection), evaluation.match_tolerance)
                  if selection else None)
    if runs is not None:
        result["experiments"] = summarise_runs(
            {name: {int(seed): path for seed, path in paths.items()}
             for name, paths in runs.items()}, seeds, experiments, systems)
    statistics = [per_seed[seed]["statistics"] for seed in seeds]
    evidence = Evidence(result, statistics, [per_seed[seed] for seed in seeds], evaluation)
    result["headroom"] = headroom(result["selection"], evaluation, result["metric_order"])
    passk_metric = f"pass@{result['headroom']['k']}" if result["headroom"]["k"] else None
    result["verdict"] = build_verdict(evidence, reference, baseline, passk_metric)
    result["calibration"] = threshold_record(calibration, evaluation)
    if result["calibration"] and result["calibration"]["source"] == "validation" \
            and result["verdict"].get("available"):
        result["verdict"]["warnings"] += calibration_warnings(read_json(calibration))
    lora = [name for name, system in systems.items()
            if system.experiment is not None and system.base_system is None]
    result["objective_comparisons"] = objective_comparisons(evidence, lora, reference, baseline,
                                                            passk_metric)
    ablation = evaluation.diversity_ablation
    result["diversity_effect"] = (build_verdict(evidence, reference, ablation, passk_metric)
                                  if ablation else None)
    untuned = [name for name, system in systems.items()
               if system.experiment is None and system.base_system is None]
    result["testbed"] = (room_check_on_validation(result["selection"], baseline, untuned,
                                                  evidence.alpha)
                         if result["selection"] else room_check(evidence, baseline, untuned))
    passk_docs = [per_seed[seed]["passk"] for seed in seeds]
    result["judge_validity"] = judge_validity(passk_docs)
    result["judge_reward"] = judge_reward(passk_docs)
    if result["verdict"].get("available"):
        result["verdict"]["warnings"] += judge_warnings(result["judge_reward"],
                                                        result["headroom"])
    result["comparisons"] = table_family(evidence, table_metrics(result), reference,
                                         list(systems), result["verdict"])
    result["power"] = power_block(evidence, result["verdict"])
    write_json(outputs["aggregated"], result)
    if outputs.get("judge_validity"):
        write_json(outputs["judge_validity"], result["judge_validity"])
    write_text(outputs["table"], results_table(result, templates_dir))
    if outputs.get("ablation_table"):
        write_text(outputs["ablation_table"], render_ablation_table(result, templates_dir))
    log.info("aggregated %d metrics x %d systems over seeds %s; ablations: %s",
             len(result["metric_order"]), len(systems), seeds,
             result["ablation_systems"] or "none")
    return result
