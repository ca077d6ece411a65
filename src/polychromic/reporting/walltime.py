"""Run a command and record its wall time in a results folder.

    python -m polychromic.reporting.walltime --out studies/real/results/wall_time.json -- \\
        snakemake --cores 2 --directory studies/real --configfile config/study_real.yaml

Why: a study page states how long its run took (`make study-real` is sized to fit a wall-time
budget), and a number typed in by hand is wrong after the next run. Snakemake's benchmark files
time each job, not the run: jobs overlap, and the scheduler's own time is in none of them. The
file keeps one entry per invocation (a killed run resumed with `--rerun-incomplete` is two), with
its start, end, seconds, exit code and the machine's CPU count; the docs script reports their sum
and how many there were. The entry is written whatever the command's exit code, which this
command returns.
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
    return datetime.now(UTC).isoformat(timespec="seconds")


def timed_run(command: list[str], out: str | Path) -> int:
    """Run `command`, append its invocation to `out` (a JSON list under "invocations"), and
    return its exit code."""
    if not command:
        raise ValueError("no command to time: give it after --")
    started, start = _now(), time.perf_counter()
    returncode = subprocess.call(command)
    entry = {"command": command, "started": started, "finished": _now(),
             "seconds": round(time.perf_counter() - start, 1), "returncode": returncode,
             "cpus": os.cpu_count()}
    path = Path(out)
    record = read_json(path) if path.is_file() else {"invocations": []}
    record["invocations"].append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return returncode


def summary(results: str | Path) -> dict[str, Any] | None:
    """The total seconds, invocations and whether every one succeeded, of `results`'s
    wall_time.json; None where the run was not timed."""
    path = Path(results) / WALL_TIME_FILE
    if not path.is_file():
        return None
    invocations = read_json(path)["invocations"]
    return {"seconds": sum(entry["seconds"] for entry in invocations),
            "invocations": len(invocations),
            "failed": sum(1 for entry in invocations if entry["returncode"] != 0),
            "cpus": sorted({entry.get("cpus") for entry in invocations} - {None}),
            "started": invocations[0]["started"] if invocations else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polychromic.reporting.walltime",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the JSON file to append the timing to")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return timed_run(command, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
