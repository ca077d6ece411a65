"""The facts of the paper's reproducibility appendix, read from the run's own files.

- the config hash (`provenance.config_hash` of the resolved config) and the config files;
- the data manifest of the split step: the SHA-256 and line count of the curated corpus and of
  every split;
- the software: the training step's packages (from `run.json`), the evaluation's (from the
  per-seed metric documents' `settings.libraries`) and the report step's own;
- the hardware every training job recorded, and this step's machine;
- the time and peak memory per rule from the rules' `benchmark:` files;
- the commands that rebuild the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polychromic.io import read_json
from polychromic.provenance import REPORT_PACKAGES, config_hash, environment, rule_times


def software(runs: list[dict[str, Any]], evaluation: list[dict[str, Any]],
             here: dict[str, Any]) -> list[dict]:
    """Rows `{package, version, stage}`: training (run.json), evaluation, report; a package
    whose versions differ between jobs of one stage lists every version."""
    rows: list[dict[str, Any]] = []
    stages = [("training", [(run.get("environment") or {}).get("packages") or {}
                            for run in runs]),
              ("evaluation", [(doc.get("settings") or {}).get("libraries") or {}
                              for doc in evaluation]),
              ("report", [here["packages"]])]
    for stage, found in stages:
        versions: dict[str, set[str]] = {}
        for packages in found:
            for name, value in packages.items():
                versions.setdefault(name, set()).add(str(value))
        rows += [{"package": name, "version": ", ".join(sorted(values)), "stage": stage}
                 for name, values in versions.items()]
    return rows


def hardware(runs: list[dict[str, Any]], here: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct machines of the training jobs (CPU, cores, GPUs, Python, platform) with
    their job count, then this report step's machine (`here`)."""
    machines: dict[tuple, dict[str, Any]] = {}
    for run in runs:
        env = run.get("environment")
        if not env:
            continue
        key = (env.get("cpu"), env.get("cpu_count"), tuple(env.get("gpus") or []))
        entry = machines.setdefault(key, {"stage": "training", "jobs": 0, **_machine(env)})
        entry["jobs"] += 1
    return [*machines.values(), {"stage": "report", "jobs": 1, **_machine(here)}]


def _machine(env: dict[str, Any]) -> dict[str, Any]:
    return {"cpu": env.get("cpu") or "unknown", "cpu_count": env.get("cpu_count"),
            "gpus": ", ".join(env.get("gpus") or []) or "none",
            "python": env.get("python"), "platform": env.get("platform")}


def commands(configfiles: list[str], workdir: str | None) -> list[str]:
    """The commands that rebuild the study from its config files."""
    configs = " ".join(f"--configfile {path}" for path in configfiles)
    directory = f" --directory {workdir}" if workdir else ""
    return ["make venv   # .venv: the pinned torch first, then the package and its pins",
            f".venv/bin/snakemake --cores N{directory} {configs}".rstrip(),
            f".venv/bin/snakemake --profile profiles/slurm{directory} {configs}   # on SLURM"]


def appendix_facts(config: dict[str, Any], manifest: str, runs: list[str],
                   evaluation: list[dict[str, Any]], benchmarks: str,
                   configfiles: list[str], workdir: str | None = None) -> dict[str, Any]:
    """Everything the appendix prints (module docstring)."""
    run_docs = [read_json(path) for path in runs if Path(path).is_file()]
    here = environment(REPORT_PACKAGES)  # the report step's software and machine
    record = read_json(manifest) if Path(manifest).is_file() else {}
    files = [{"name": "curated (source)", **record["source"]}] if record.get("source") else []
    files += [{"name": name, **entry} for name, entry in (record.get("files") or {}).items()]
    return {
        "config_hash": config_hash(config),
        "configfiles": list(configfiles),
        "manifest": files,
        "split_rule": {key: record.get(key) for key in ("seed", "group_by", "stratify", "ratios")},
        "software": software(run_docs, evaluation, here),
        "hardware": hardware(run_docs, here),
        "rule_times": rule_times(benchmarks) if Path(benchmarks).is_dir() else [],
        "commands": commands(list(configfiles), workdir),
    }
