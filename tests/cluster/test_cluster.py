"""The workflow on a live single-node SLURM (tests/cluster/start_slurm.sh), through the plugin.

1. The real Snakefile at its smallest (one seed, a tiny model, a few steps) through
   `--profile profiles/slurm-test`: the GPU rules, `calibrate` and `evaluate` ran on SLURM (job
   ids in the Snakemake log, in `scontrol show job` and in the job completion log), with the
   profile's partitions, GPU counts and memory, the light rules stayed local, and every result
   equals that of a local run of the same config.
2. Faults: a `train` job killed with scancel mid-run is reported failed and the re-run resumes
   from its checkpoint; a job over its memory is retried with more (`retries`, `attempt`);
   Snakemake interrupted (Ctrl-C, or killed with its session) and restarted keeps the jobs that
   had finished. The memory and interruption tests use tests/cluster/faults.smk (seconds a job).

Skipped, with the reason, when SLURM or the plugin is missing (see slurm_helpers.py).
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from slurm_helpers import (
    PROFILE,
    Run,
    cancel_runs,
    job_state,
    require_slurm,
    show_job,
    snakemake,
    snakemake_command,
    submissions,
    wait_for,
    wait_for_jobcomp,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FAULTS = Path(__file__).with_name("faults.smk")
# generate_val: one job per seed and candidate of the sampling search (counted from the run's
# selection.json); search: rounds 0 to max_candidates (2 in the small config)
SLURM_RULES = {"base_model": 1, "calibrate": 1, "train": 2, "generate": 4, "evaluate": 1,
               "search": 3}
GPU_RULES = {"base_model", "train", "generate", "generate_val"}
LOCAL_RULES = {"validate_raw", "verify_collection", "sample_for_review", "curate", "split",
               "release", "select_sampling", "aggregate", "figures", "paper"}  # fmt: skip
# Files whose numbers are timings, so they differ between any two runs.
VOLATILE_DIRS = ("logs", "benchmarks")
VOLATILE_KEYS = ("seconds", "rss_mb", "memory_mb", "tokens_per_s")
# The paper's reproducibility appendix (time per rule, the folders and config files of the run)
# and the PDF that prints it: main.tex, with the study's numbers, is compared bitwise.
RUN_RECORDS = ("reproducibility.tex", "main.pdf")


@pytest.fixture(scope="module")
def slurm():
    require_slurm()


@pytest.fixture(scope="module")
def study(slurm, tmp_path_factory):
    """The small study run locally and through SLURM, at the same time (the cluster run mostly
    waits on SLURM, so the two overlap well on a small machine)."""
    from polychromic.data.demo import generate_demo
    from test_end_to_end import small_config

    root = tmp_path_factory.mktemp("study")
    raw = root / "raw.jsonl"
    generate_demo(raw, n_tweets=90, seed=3)
    config = yaml.safe_dump(small_config(str(raw)))
    dirs = {}
    for name in ["local", "cluster"]:
        dirs[name] = root / name
        dirs[name].mkdir()
        (dirs[name] / "config.yaml").write_text(config)

    def command(name, *args):
        return snakemake_command(dirs[name], "--configfile", str(dirs[name] / "config.yaml"), *args)

    local = Run(command("local", "--cores", "2"), root / "local.log")
    try:
        cluster = Run(command("cluster", "--profile", str(PROFILE)), root / "cluster.log")
        cluster_done = cluster.wait(timeout=1200)
    except BaseException:
        local.stop()
        raise
    local_done = local.wait(timeout=1200)
    assert local_done.returncode == 0, local_done.stdout[-4000:]
    assert cluster_done.returncode == 0, cluster_done.stdout[-4000:]
    return {"dirs": dirs, "output": cluster_done.stdout, "root": root}


def test_jobs_went_through_slurm_with_the_profile_resources(study):
    output = study["output"]
    jobs = submissions(output)
    selection = json.loads((study["dirs"]["cluster"] / "results" / "selection" /
                            "selection.json").read_text())
    candidates = sum(len(entry["candidates"]) for entry in selection["systems"].values())
    expected = {**SLURM_RULES, "generate_val": candidates * len(selection["seeds"])}
    assert Counter(job.rule for job in jobs) == expected, output[-4000:]
    for rule in LOCAL_RULES:
        assert f"localrule {rule}:" in output, rule  # ran on the submitting machine
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"]
    records = wait_for_jobcomp([job.slurm_id for job in jobs])
    for job in jobs:
        record, shown = records[job.slurm_id], show_job(job.slurm_id)
        assert record["JobState"] == "COMPLETED", record
        assert record["WorkDir"] == str(study["dirs"]["cluster"]), record
        want = profile[job.rule]
        assert record["Partition"] == want["slurm_partition"], (job.rule, record)
        assert f"mem={int(want['mem_mb'].split('*')[1])}M" in record["Tres"], (job.rule, record)
        asks_gpu = "gres:gpu:1" in shown.get("TresPerJob", "")
        assert asks_gpu == (job.rule in GPU_RULES), (job.rule, shown.get("TresPerJob"))
        assert job.log.is_file()  # the profile keeps every SLURM log


def volatile(key: str) -> bool:
    return any(part in key for part in VOLATILE_KEYS)


def normalised(path: Path):
    """A result file's content without its timings (they differ between any two runs)."""
    if path.suffix == ".json":
        return _drop_timings(json.loads(path.read_text()))
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        return [{k: v for k, v in row.items() if not volatile(k)} for row in rows]
    if path.name == "README.md" and path.parent.name == "adapter":  # model card: training time
        return [line for line in path.read_text().splitlines() if "training time" not in line]
    if path.name in RUN_RECORDS:  # the paper's appendix: this run's times, folders, machines
        return "this run's own record"
    if path.name.endswith(".tar.gz"):  # the submission: every member but the run's record
        with tarfile.open(path) as tar:
            return [(member.name, tar.extractfile(member).read() if member.isfile() else None)
                    for member in tar.getmembers() if Path(member.name).name not in RUN_RECORDS]
    return path.read_bytes()


def _drop_timings(node):
    if isinstance(node, dict):
        return {
            key: sorted(value) if key == "target_modules" else _drop_timings(value)
            # peft keeps target_modules as a set: their order in adapter_config.json follows
            # Python's per-process hash seed, so it differs between any two runs, local ones too.
            for key, value in node.items()
            if not volatile(key)
        }
    if isinstance(node, list):
        return [_drop_timings(value) for value in node]
    return node


def test_results_equal_those_of_a_local_run(study):
    local, cluster = (study["dirs"][name] / "results" for name in ["local", "cluster"])
    aggregated = "evaluation/aggregated_results.json"
    assert (cluster / aggregated).read_bytes() == (local / aggregated).read_bytes()

    files = sorted(
        path.relative_to(local)
        for path in local.rglob("*")
        if path.is_file() and path.relative_to(local).parts[0] not in VOLATILE_DIRS
    )
    assert len(files) > 30
    theirs = {p.relative_to(cluster) for p in cluster.rglob("*") if p.is_file()}
    assert set(files) <= theirs, set(files) - theirs
    differ = [str(f) for f in files if normalised(local / f) != normalised(cluster / f)]
    assert differ == []
    # Bitwise, not only after dropping timings: generations, metrics, adapters, figures, paper.
    for pattern in ["generations/**/*.jsonl", "evaluation/**/*.json", "**/*.safetensors",
                    "figures/*.png", "paper/main.tex"]:  # fmt: skip
        for path in local.glob(pattern):
            assert path.read_bytes() == (cluster / path.relative_to(local)).read_bytes(), path


def test_scancel_of_train_is_reported_failed_and_the_rerun_resumes(study, tmp_path):
    """Kill a running `train` job with scancel after its first checkpoint; Snakemake reports the
    job failed; the re-run completes and continues from the checkpoint (run.json says where)."""
    workdir = study["dirs"]["cluster"]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    # Long enough to be caught running (new settings re-run only this train job).
    config["training"].update(max_steps=400, eval_every=100, save_every=20)
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(config))
    target = "results/models/baseline/seed_42/run.json"
    checkpoint = workdir / "results/checkpoints/baseline/seed_42/state.pt"
    args = ["--configfile", str(tmp_path / "long.yaml"), "--profile", str(PROFILE), target]

    run = Run(snakemake_command(workdir, *args, "--retries", "0"), tmp_path / "first.log")
    try:
        job = wait_for(lambda: submissions(run.output), 120, "the train job's submission")[0]
        assert job.rule == "train"
        wait_for(checkpoint.exists, 180, "the first checkpoint of the train job")
        assert job_state(job.slurm_id) == "RUNNING"
        subprocess.run(["scancel", job.slurm_id], check=True)
        first = run.wait(timeout=180)
    finally:
        run.stop()
    assert first.returncode != 0
    assert "CANCELLED" in first.stdout, first.stdout[-3000:]
    assert "Error in rule train" in first.stdout
    assert wait_for_jobcomp([job.slurm_id])[job.slurm_id]["JobState"] == "CANCELLED"
    assert checkpoint.exists() and not (workdir / target).exists()

    second = snakemake(workdir, *args, timeout=300)
    assert second.returncode == 0, second.stdout[-4000:]
    assert [j.rule for j in submissions(second.stdout)] == ["train"]
    summary = json.loads((workdir / target).read_text())
    assert summary["steps_run"] == 400
    assert summary["resumed_from_step"] and summary["resumed_from_step"] >= 20, summary
    assert not checkpoint.exists()  # a finished run removes its checkpoint


def faults_profile(folder: Path, set_resources: dict | None = None) -> Path:
    """profiles/slurm-test for faults.smk: the same settings, its own set-resources."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile.pop("set-resources")
    if set_resources:
        profile["set-resources"] = set_resources
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_job_over_its_memory_is_retried_with_more(slurm, tmp_path):
    """hog fills 700 MB: killed under its first --mem (600 MB), done under the second."""
    profile = faults_profile(tmp_path / "profile", {"hog": {"mem_mb": "attempt * 600"}})
    workdir = tmp_path / "work"
    done = snakemake(workdir, "--profile", str(profile), "hog.txt", snakefile=FAULTS, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    jobs = submissions(done.stdout)
    assert [j.rule for j in jobs] == ["hog", "hog"], done.stdout[-4000:]
    records = wait_for_jobcomp([j.slurm_id for j in jobs])
    first, second = (records[j.slurm_id] for j in jobs)
    assert first["JobState"] in {"FAILED", "OUT_OF_MEMORY"} and "mem=600M" in first["Tres"], first
    assert second["JobState"] == "COMPLETED" and "mem=1200M" in second["Tres"], second
    assert "exceeded memory limit" in jobs[0].log.read_text()
    assert (workdir / "hog.txt").read_text().strip() == "mem_mb=1200"


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_snakemake_restarts_without_redoing_finished_jobs(slurm, tmp_path, how):
    """SIGINT is Ctrl-C: Snakemake cancels its running jobs and exits. SIGKILL is a lost login
    session: its jobs stay on SLURM and its lock stays; the README's recovery is to cancel them
    by the run id, `--unlock`, and start again. Either way the finished jobs are kept."""
    profile = faults_profile(tmp_path / "profile")
    workdir = tmp_path / "work"
    workdir.mkdir()
    args = ["--profile", str(profile)]
    run = Run(snakemake_command(workdir, *args, snakefile=FAULTS), tmp_path / "first.log")
    try:
        wait_for(lambda: run.output.count("(Rule: quick)") == 2, 180, "both quick jobs")
        slow = next(j for j in submissions(run.output) if j.rule == "slow")
        wait_for(lambda: job_state(slow.slurm_id) == "RUNNING", 60, "the slow job to run")
        quick = {p: p.stat().st_mtime_ns for p in workdir.glob("quick_*.txt")}
        assert len(quick) == 2
        run.signal(getattr(signal, how))
        first = run.wait(timeout=120)
        assert first.returncode != 0
        if how == "SIGINT":
            wait_for(lambda: job_state(slow.slurm_id) == "CANCELLED", 30, "slow to be cancelled")
        else:
            assert job_state(slow.slurm_id) == "RUNNING"  # orphaned, still on the cluster
            locked = snakemake(workdir, *args, snakefile=FAULTS, timeout=120)
            assert locked.returncode != 0 and "cannot be locked" in locked.stdout
            cancel_runs(run.output)  # scancel --name <SLURM run ID>
            wait_for(lambda: job_state(slow.slurm_id) == "CANCELLED", 30, "slow to be cancelled")
            assert snakemake(workdir, "--unlock", snakefile=FAULTS, timeout=120).returncode == 0
    finally:
        run.stop()

    (workdir / "release").touch()
    second = snakemake(workdir, *args, snakefile=FAULTS, timeout=300)
    assert second.returncode == 0, second.stdout[-4000:]
    assert [j.rule for j in submissions(second.stdout)] == ["slow"]
    assert {p: p.stat().st_mtime_ns for p in workdir.glob("quick_*.txt")} == quick
    assert (workdir / "gather.txt").read_text().split() == ["1", "2", "released"]
