"""A rule's library inputs are computed from its script's imports: editing a module re-runs
exactly the rules that use it, and what follows them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from polychromic.dependencies import script_dependencies

from conftest import REPO, SNAKEMAKE, job_counts, snakemake, stand_in_outputs

SCRIPTS = REPO / "workflow" / "scripts"
SRC = str(REPO / "src")


def deps(script: str, extra: tuple[str, ...] = ()) -> set[str]:
    return {str(Path(path).relative_to(SRC)) for path in
            script_dependencies(str(SCRIPTS / f"{script}.py"), SRC, extra)}


def test_dependencies_follow_imports_and_named_registries():
    aggregate = deps("aggregate")
    assert {"polychromic/evaluation/stats.py", "polychromic/reporting/significance.py",
            "polychromic/reporting/verdict.py", "polychromic/evaluation/registry.py",
            "polychromic/systems.py", "polychromic/__init__.py"} <= aggregate
    assert "polychromic/training/polychromic.py" not in aggregate
    train = deps("train", ("polychromic.objectives", "polychromic.sampling",
                           "polychromic.training.launch"))
    assert {"polychromic/training/polychromic.py", "polychromic/training/sft.py",
            "polychromic/sampling/hf.py", "polychromic/embeddings.py",
            "polychromic/training/launch.py", "polychromic/similarity.py"} <= train
    assert "polychromic/evaluation/diversity.py" not in train  # metrics do not re-train
    # the quality gate shares the calibration's rule (pairs.py), not the judge's calibration
    assert "polychromic/evaluation/pairs.py" in train
    assert "polychromic/evaluation/calibration.py" not in train
    for rule in ("curate", "split", "verify_collection", "generate", "evaluate"):
        assert "polychromic/objectives.py" not in deps(rule), rule
    generate = deps("generate", ("polychromic.sampling",))
    assert "polychromic/sampling/hf.py" in generate
    assert "polychromic/training/polychromic.py" not in generate
    assert deps("validate_raw") == {
        "polychromic/__init__.py", "polychromic/steps.py", "polychromic/io.py",
        "polychromic/settings.py", "polychromic/data/__init__.py", "polychromic/data/validate.py",
        "polychromic/data/schema.py", "polychromic/data/importers.py"}


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_editing_stats_reruns_evaluate_aggregate_and_what_follows(tmp_path):
    """A copy of the workflow and library with every output standing in as an empty file:
    touching evaluation/stats.py makes `snakemake -n` list evaluate, aggregate and what
    follows, and none of the data, training or generation jobs."""
    for name in ("Snakefile", "workflow", "src", "resources"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, tmp_path / name)
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["seeds"] = [42]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakefile = tmp_path / "Snakefile"
    now = stand_in_outputs(tmp_path, snakefile)
    assert "Nothing to be done" in snakemake(tmp_path, "-n", snakefile=snakefile)

    stats = tmp_path / "src" / "polychromic" / "evaluation" / "stats.py"
    os.utime(stats, (now + 10, now + 10))
    jobs = job_counts(snakemake(tmp_path, "-n", snakefile=snakefile))
    assert {"evaluate", "aggregate", "figures", "paper", "all"} <= set(jobs), jobs
    assert not {"validate_raw", "curate", "split", "base_model", "train", "generate"} & set(jobs)
