"""What a result was made with: the software, the machine, the config and the time it took.

The paper's reproducibility appendix is assembled from these facts, never typed by hand:

- `environment(packages)`: Python, the installed versions of `packages` (a package that is not
  installed is listed as such, never given a version), the platform, the CPU model and count and
  the CUDA devices torch sees. The training step records it in every `run.json`, so the appendix
  names the software and the machine that trained, not only the one that wrote the paper.
- `config_hash(config)`: SHA-256 of the resolved config as canonical JSON (sorted keys, no
  whitespace), the same for the same settings whatever their order in the YAML files.
- `rule_times(benchmarks)`: per rule, the jobs, the summed and the longest wall time and the
  peak resident memory, read from the `benchmark:` files Snakemake writes
  (`results/benchmarks/<rule>.tsv` or `results/benchmarks/<rule>/<job>.tsv`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# the packages whose versions decide the numbers of each stage
TRAINING_PACKAGES = ("torch", "transformers", "peft", "tokenizers", "numpy")
REPORT_PACKAGES = ("polychromic", "snakemake", "numpy", "scipy", "matplotlib", "jinja2",
                   "datasets", "pyarrow")


def package_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`name -> version`, or `"not installed"` where the package is missing from this
    environment (the reporting environment of `--sdm conda` has no torch)."""
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one, else `platform.processor()`."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def gpus() -> list[str]:
    """The names of the CUDA devices torch sees (empty without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def environment(packages: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The software and machine of this process (module docstring)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus(),
        "packages": package_versions(packages),
    }


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of `config` as canonical JSON (sorted keys, compact separators)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rule_times(benchmarks: str | Path) -> list[dict[str, Any]]:
    """Per rule, in order of first appearance (sorted paths): jobs, total and longest wall
    seconds, peak `max_rss` in MB, from Snakemake's benchmark TSV files under `benchmarks`."""
    totals: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(benchmarks).rglob("*.tsv")):
        rule = path.parent.name if path.parent != Path(benchmarks) else path.stem
        with open(path, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        entry = totals.setdefault(rule, {"rule": rule, "jobs": 0, "seconds": 0.0,
                                         "longest_seconds": 0.0, "max_rss_mb": None})
        for row in rows:
            seconds = float(row["s"])
            entry["jobs"] += 1
            entry["seconds"] += seconds
            entry["longest_seconds"] = max(entry["longest_seconds"], seconds)
            rss = _float(row.get("max_rss"))
            if rss is not None:
                entry["max_rss_mb"] = max(rss, entry["max_rss_mb"] or 0.0)
    return list(totals.values())


def _float(text: str | None) -> float | None:
    """A benchmark cell as a float; None for Snakemake's `NA` or an empty cell."""
    try:
        return float(text) if text not in (None, "", "NA", "-") else None
    except ValueError:
        return None
