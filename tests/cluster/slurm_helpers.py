"""Helpers of the cluster tests: is a live SLURM here, run Snakemake on it, read what SLURM did.

The tests need the single-node SLURM of tests/cluster/start_slurm.sh (partitions `cpu` and `gpu`,
two fake GPUs, memory enforced, a job completion log) and snakemake-executor-plugin-slurm in this
Python. Without them they are skipped with the reason, unless POLYCHROMIC_SLURM_REQUIRED=1 (set
by .ci/run once SLURM is up), where a missing SLURM is a failure instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm-test"
START = "tests/cluster/start_slurm.sh"

# Set by .ci/run: the reason SLURM could not be installed or started (the tests skip, saying it),
UNAVAILABLE_ENV = "POLYCHROMIC_SLURM_UNAVAILABLE"
# and "1" once it is up (then a SLURM that does not answer fails the tests instead of skipping).
REQUIRED_ENV = "POLYCHROMIC_SLURM_REQUIRED"

SUBMITTED = re.compile(
    r"Job (?P<job>\d+) has been submitted with SLURM jobid (?P<slurm>\d+) \(log: (?P<log>[^)]+)\)"
)
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def _run(command: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def scontrol_config() -> dict[str, str]:
    done = _run(["scontrol", "show", "config"])
    config = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()
    return config


def why_unavailable() -> str | None:
    """None when the test cluster is up and usable, else the reason it is not."""
    reason = os.environ.get(UNAVAILABLE_ENV)
    if reason:
        return f"SLURM unavailable: {reason}"
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return (
            "SLURM is not installed (apt-get install slurmctld slurmd slurm-client munge, then "
            f"{START} as root; .ci/run and `make test-cluster` do both)"
        )
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'"
    try:
        sinfo = _run(["sinfo", "-h", "-o", "%P %T"], timeout=20)
    except subprocess.TimeoutExpired:
        return f"no SLURM controller answers (sinfo timed out); start it with {START}"
    if sinfo.returncode != 0:
        said = (sinfo.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no SLURM controller answers (sinfo: {said}); start it with {START}"
    partitions = dict(line.split() for line in sinfo.stdout.splitlines() if line.strip())
    if not {"cpu*", "gpu"} <= set(partitions):
        return f"this is not the test cluster of {START} (partitions: {sorted(partitions)})"
    if not all(state in {"idle", "mixed", "allocated"} for state in partitions.values()):
        return f"the test node is not ready: {partitions}"
    config = scontrol_config()
    if config.get("JobCompType") != "jobcomp/filetxt":
        return f"the tests read the job completion log (JobCompType=jobcomp/filetxt, {START})"
    return None


def require_slurm() -> None:
    """Skip (or, under POLYCHROMIC_SLURM_REQUIRED=1, fail) unless the test cluster is usable."""
    reason = why_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRED_ENV) == "1" and not os.environ.get(UNAVAILABLE_ENV):
        pytest.fail(f"{REQUIRED_ENV}=1 but {reason}")
    pytest.skip(reason)


def jobcomp_records() -> dict[str, dict[str, str]]:
    """The job completion log: one record per finished job, by SLURM job id (the last wins)."""
    path = Path(scontrol_config()["JobCompLoc"])
    records = {}
    for line in path.read_text().splitlines():
        record = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in record:
            records[record["JobId"]] = record
    return records


def wait_for_jobcomp(ids: list[str], timeout: float = 30) -> dict[str, dict[str, str]]:
    """The completion records of these jobs (slurmctld writes them a moment after the end)."""
    wait_for(lambda: set(ids) <= set(jobcomp_records()), timeout, f"jobs {ids} in the jobcomp log")
    records = jobcomp_records()
    return {job: records[job] for job in ids}


def show_job(slurm_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (finished jobs stay visible for MinJobAge = 1 h here)."""
    done = _run(["scontrol", "show", "job", "-o", slurm_id])
    return dict(re.findall(r"(\S+?)=(\S*)", done.stdout))


def job_state(slurm_id: str) -> str:
    return show_job(slurm_id).get("JobState", "")


@dataclass
class Submission:
    snakemake_job: int
    slurm_id: str
    rule: str
    log: Path


def submissions(output: str) -> list[Submission]:
    """The SLURM jobs a Snakemake run submitted, read from its log."""
    found = []
    for match in SUBMITTED.finditer(output):
        log = Path(match["log"])
        rule = next(p for p in log.parts if p.startswith("rule_"))[len("rule_") :]
        found.append(Submission(int(match["job"]), match["slurm"], rule, log))
    return found


def run_ids(output: str) -> list[str]:
    return RUN_ID.findall(output)


def cancel_runs(output: str) -> None:
    """Cancel whatever a (failed or interrupted) run left on the cluster, by its run id."""
    for run_id in run_ids(output):
        _run(["scancel", "--name", run_id])


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def snakemake_command(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> list:
    return [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *args]


def environment() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Run:
    """A Snakemake process with its output in a file, so a test can watch it and signal it."""

    def __init__(self, command: list[str], log: Path):
        self.log = log
        self._file = open(log, "w")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            command,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment(),
            start_new_session=True,  # signals reach Snakemake only, not pytest
            # Ctrl-C must reach Snakemake as KeyboardInterrupt even when pytest itself was
            # started in the background (`cmd &` in a script), which leaves SIGINT ignored and
            # that inherited: Python installs its handler only for a SIGINT that is not ignored.
            preexec_fn=_default_sigint,
        )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def signal(self, number: int) -> None:
        os.kill(self.process.pid, number)

    def stop(self) -> None:
        """End it if it still runs (SIGINT: it cancels its SLURM jobs), and cancel what is left."""
        if self.process.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        cancel_runs(self.output)
        self._file.close()

    def wait(self, timeout: float) -> subprocess.CompletedProcess:
        """Wait; past the timeout stop it and fail."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"Snakemake ran past {timeout:.0f} s; its log ends:\n{self.output[-4000:]}"
            ) from None
        finally:
            self._file.close()
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, self.output)


def snakemake(
    workdir: Path, *args: str, timeout: float = 600, **kwargs
) -> subprocess.CompletedProcess:
    """Run Snakemake to the end; its combined output is `.stdout` (and in workdir/../NAME.log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir.parent / f"{workdir.name}-{time.monotonic_ns()}.log"
    return Run(snakemake_command(workdir, *args, **kwargs), log).wait(timeout)
