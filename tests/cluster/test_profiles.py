"""The execution profiles and conda environments, without a cluster (the dry run needs the plugin).

- profiles/slurm-test is profiles/slurm with small sizes: same keys, same rules, same partitions
  per rule, so the live test (test_cluster.py) exercises the profile users run.
- Every rule the profiles name exists; GPU work is asked for with `gpu` only, never with task
  counts (one task per GPU would run the training script once per GPU).
- Every rule names an envs/*.yaml whose packages are all pinned.
- `snakemake --profile profiles/slurm -n` prints each pending job with its cluster resources, and
  a target file or `--config` narrows the plan (README, "Running on a SLURM cluster").
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "workflow" / "rules"


def profile(name: str) -> dict:
    return yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text())


def rules() -> dict[str, str]:
    """Rule name -> its text, from workflow/rules/*.smk (checkpoints are rules too)."""
    found = {}
    for path in sorted(RULES.glob("*.smk")):
        text = path.read_text()
        for match in re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", text,
                                 re.M):
            found[match[1]] = match[2]
    return found


def localrules() -> set[str]:
    names = set()
    for path in RULES.glob("*.smk"):
        for block in re.findall(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", path.read_text(), re.M):
            names |= set(re.findall(r"\w+", block))
    return names


def test_test_profile_mirrors_the_slurm_profile():
    real, test = profile("slurm"), profile("slurm-test")
    assert real["executor"] == test["executor"] == "slurm"
    shared = {"jobs", "local-cores", "latency-wait", "retries", "rerun-incomplete", "keep-going"}
    assert shared <= set(real) and shared <= set(test)
    assert real["retries"] >= 1 and test["retries"] >= 1
    assert set(real["default-resources"]) == set(test["default-resources"])
    assert set(real["set-resources"]) == set(test["set-resources"])
    for rule, resources in real["set-resources"].items():
        assert set(resources) == set(test["set-resources"][rule]), rule
        assert resources["slurm_partition"] == test["set-resources"][rule]["slurm_partition"]
        # Memory grows with the attempt, so an out-of-memory job is resubmitted with more.
        assert re.fullmatch(r"attempt \* \d+", resources["mem_mb"]), rule
        assert re.fullmatch(r"attempt \* \d+", test["set-resources"][rule]["mem_mb"]), rule


def test_profiles_name_existing_rules_and_ask_gpus_portably():
    known, local = rules(), localrules()
    for name in ["slurm", "slurm-test"]:
        for rule, resources in profile(name)["set-resources"].items():
            assert rule in known, (name, rule)
            assert rule not in local, (name, rule)  # resources of a local rule do nothing
            assert not {"tasks", "tasks_per_gpu", "ntasks", "mpi"} & set(resources), (name, rule)
    # The GPU rules declare `gpu` themselves; cluster details stay out of the rules.
    for rule in ["base_model", "train", "generate"]:
        assert re.search(r"^\s+gpu=", known[rule], re.M), rule
    for rule, text in known.items():
        assert "slurm" not in text, rule
    # A `profiles/default` is picked up by every plain `snakemake` call: never a cluster there.
    default = REPO / "profiles" / "default" / "config.yaml"
    assert not default.exists() or "slurm" not in default.read_text()


def test_every_rule_names_a_pinned_conda_environment():
    for rule, text in rules().items():
        if rule == "all":
            continue
        match = re.search(r"^\s+conda:\n\s+(?:\"([^\"]+)\"|(GENERATE_ENV)$)", text, re.M)
        assert match, f"rule {rule} names no conda environment"
        # GENERATE_ENV (common.smk): the generate rules' environment, by generation.engine
        envs = ([(RULES / match[1]).resolve()] if match[1] else
                [REPO / "envs" / "model.yaml", REPO / "envs" / "vllm.yaml"])
        for env in envs:
            assert env.parent == REPO / "envs" and env.is_file(), (rule, env)
            spec = yaml.safe_load(env.read_text())
            pins = [d for d in spec["dependencies"] if isinstance(d, str) and d != "pip"]
            pins += [p for d in spec["dependencies"] if isinstance(d, dict) for p in d["pip"]]
            for pin in pins:
                assert re.fullmatch(r"[\w.\-\[\]]+==?[\w.+]+", pin), (env.name, pin)


@pytest.fixture(scope="module")
def small_workdir(tmp_path_factory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'")
    from polychromic.data.demo import generate_demo
    from test_end_to_end import small_config

    workdir = tmp_path_factory.mktemp("plan")
    generate_demo(workdir / "raw.jsonl", n_tweets=90, seed=3)
    config = small_config(str(workdir / "raw.jsonl"))
    config["seeds"] = [1, 2]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def dry_run(workdir: Path, *args: str, overrides: str | None = None) -> str:
    """`snakemake --profile profiles/slurm -n` on the small config (plus an overrides file)."""
    configfiles = [str(workdir / "config.yaml")]
    if overrides:
        (workdir / "overrides.yaml").write_text(overrides)
        configfiles.append(str(workdir / "overrides.yaml"))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
               str(workdir), "--configfile", *configfiles, "--profile",
               str(REPO / "profiles" / "slurm"), "-n", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def resources_of(output: str, rule: str) -> dict[str, str]:
    block = re.search(rf"^rule {rule}:\n(?:    .*\n)*?    resources: (.*)$", output, re.M)
    assert block, f"no pending {rule} job"
    return dict(item.split("=", 1) for item in block[1].split(", "))


def test_dry_run_shows_each_job_with_its_cluster_resources(small_workdir):
    output = dry_run(small_workdir)
    counts = job_counts(output)
    assert counts["train"] == 4 and counts["generate"] == 8 and counts["evaluate"] == 2
    train = resources_of(output, "train")
    assert train["slurm_partition"] == "gpu" and train["gpu"] == "1", train
    assert train["mem_mb"] == "64000" and train["runtime"] == "720", train
    assert train["cpus_per_gpu"] == "8", train
    assert resources_of(output, "evaluate")["slurm_partition"] == "cpu"
    assert resources_of(output, "base_model")["gpu"] == "1"  # the tiny model trains


def test_dry_run_narrowed_to_one_seed_or_one_experiment(small_workdir):
    # A later config file overrides the earlier ones key by key (`--config seeds=[2]` does not
    # work: Snakemake reads --config lists as strings, which the config schema rejects).
    one_seed = job_counts(dry_run(small_workdir, overrides="seeds: [2]\n"))
    assert one_seed["train"] == 2 and one_seed["generate"] == 4 and one_seed["evaluate"] == 1
    one_model = job_counts(dry_run(small_workdir, "results/models/polychromic/seed_1/run.json"))
    assert one_model["train"] == 1 and "generate" not in one_model
