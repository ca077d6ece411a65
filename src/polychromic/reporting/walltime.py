"""Run a command and record its wall time in a results folder.

    python -m polychromic.reporting.walltime --out studies/real/results/wall_time.json \\
        --output studies/real/results/evaluation/aggregated_results.json -- \\
        snakemake --cores 2 --directory studies/real --configfile config/study_real.yaml

Why: a study page states how long its run took (`make study-real` is sized to fit a wall-time
budget), and a number typed in by hand is wrong after the next run. Snakemake's benchmark files
time each job, not the run: jobs overlap, and the scheduler's own time is in none of them.

The file keeps one entry per invocation, with its start, end, seconds, exit code, the CPUs this
process may use, and whether the run's final output (`--output`) was written during it. An entry
is written whatever the exit code, and when the command is interrupted. The run that produced
the current output is the invocations after the previous one that wrote it, up to the last one
that wrote it: a killed run and its resume are summed, a later run with nothing to do or a dry
run is left out, and a rerun after a change of config counts alone (`summary`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polychromic.io import read_json, write_json

WALL_TIME_FILE = "wall_time.json"


def _now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stamp(path: Path | None) -> int | None:
    """The modification time of `path` in ns, None where there is none."""
    return path.stat().st_mtime_ns if path is not None and path.is_file() else None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def timed_run(command: list[str], out: str | Path, output: str | Path | None = None) -> int:
    """Run `command`, append its invocation to `out` (a JSON list under "invocations"), and
    return its exit code; `output` is the run's final file, watched for a new version."""
    if not command:
        raise ValueError("no command to time: give it after --")
    watched = Path(output) if output else None
    before, started, start = _stamp(watched), _now(), time.perf_counter()
    returncode = -2  # interrupted, unless the command returns
    try:
        returncode = subprocess.call(command)
    finally:
        after = _stamp(watched)
        entry = {"command": command, "started": started, "finished": _now(),
                 "seconds": round(time.perf_counter() - start, 1), "returncode": returncode,
                 "cpus": usable_cpus(),
                 "output_written": None if watched is None else after not in (None, before)}
        path = Path(out)
        record = read_json(path) if path.is_file() else {"invocations": []}
        record["invocations"].append(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, record)
    return returncode


def _written(entry: dict[str, Any]) -> bool:
    """Whether the entry's invocation wrote the final output (without a watched output: it
    succeeded)."""
    written = entry.get("output_written")
    return entry["returncode"] == 0 if written is None else bool(written)


def summary(results: str | Path) -> dict[str, Any] | None:
    """The seconds, invocations and failures of the run that produced the current output, from
    `results`'s wall_time.json; None where no run was timed."""
    path = Path(results) / WALL_TIME_FILE
    if not path.is_file():
        return None
    invocations = read_json(path)["invocations"]
    ends = [index for index, entry in enumerate(invocations) if _written(entry)]
    if ends:
        last = ends[-1]
        first = ends[-2] + 1 if len(ends) > 1 else 0
        invocations = invocations[first:last + 1]
    if not invocations:
        return None
    return {"seconds": sum(entry["seconds"] for entry in invocations),
            "invocations": len(invocations),
            "failed": sum(1 for entry in invocations if entry["returncode"] != 0),
            "complete": bool(ends),
            "cpus": sorted({entry.get("cpus") for entry in invocations} - {None}),
            "started": invocations[0]["started"]}


def main(argv: list[str] | None = None) -> int:
    """The command line: time the command after `--`, return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m polychromic.reporting.walltime",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the JSON file to append the timing to")
    parser.add_argument("--output", default=None,
                        help="the run's final output: which invocations produced it")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return timed_run(command, args.out, args.output)


if __name__ == "__main__":
    raise SystemExit(main())
