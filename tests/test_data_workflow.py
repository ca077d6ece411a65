"""The data stage through the real Snakefile: what a user sees when the input is hostile.

A failed `validate_raw` keeps its evidence (Snakemake deletes a failed job's outputs, so the
report and rejected lines are copied to results/logs/validate_raw/); seeds from `--config` are
refused by the schema naming `seeds` instead of being cast; a corpus too small for a test split
fails at the split step, not after every fine-tune.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE

pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(),
                                reason="snakemake is not installed next to python")


def record(i: int, tweets: int = 60) -> dict:
    t = i % tweets
    return {"tweet_id": f"t{t}", "tweet": f"Tweet {t} about the morning coffee queue",
            "reply_id": f"r{i}", "reply": f"A careful reply number {i} about the beans",
            "tweet_author": f"a{t % 7}", "reply_author": f"u{i}", "tweet_likes": 10,
            "reply_likes": 2}


def workdir(tmp_path: Path, lines: list[str], **split: int) -> Path:
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["raw"] = [str(raw)]
    config["curation"]["decisions"] = "no_decisions.jsonl"
    config["split"].update(split)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(folder),
                           "--configfile", str(folder / "config.yaml"), *args],
                          capture_output=True, text=True, timeout=300, check=False, cwd=folder)


def test_a_failed_validation_keeps_the_rejected_lines_it_points_to(tmp_path):
    bad = '{"tweet_id": "x0", "tweet": "t"'
    folder = workdir(tmp_path, [json.dumps(record(i)) for i in range(120)] + [bad] * 20)
    done = run(folder, "--cores", "1", "results/data/validation_report.json")
    assert done.returncode != 0
    assert "rejected fraction 0.1429 exceeds max_rejected_fraction" in done.stderr + done.stdout
    data, evidence = folder / "results" / "data", folder / "results" / "logs" / "validate_raw"
    assert not (data / "rejected.jsonl").exists()  # Snakemake removed the failed job's outputs
    rejected = [json.loads(line) for line in
                (evidence / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rejected) == 20 and {entry["line"] for entry in rejected} == set(range(121, 141))
    log = (folder / "results" / "logs" / "validate_raw.log").read_text(encoding="utf-8")
    assert "see results/logs/validate_raw/rejected.jsonl" in log  # where the error sends you


def test_seeds_from_the_command_line_are_validated_not_cast(tmp_path):
    folder = workdir(tmp_path, [json.dumps(record(i)) for i in range(10)])
    for seeds in ("[42.9,7.5]", "[true]", "[forty-two]"):
        done = run(folder, "-n", "--config", f"seeds={seeds}")
        assert done.returncode != 0, seeds
        assert "schema['properties']['seeds']" in done.stderr + done.stdout, seeds
    assert run(folder, "-n", "--config", "seeds=[42,7]").returncode == 0


def test_a_corpus_too_small_for_its_splits_fails_at_the_split_step(tmp_path):
    folder = workdir(tmp_path, [json.dumps(record(i, tweets=40)) for i in range(120)])
    done = run(folder, "--cores", "1", "results/data/split_report.json")
    assert done.returncode != 0
    log = (folder / "results" / "logs" / "split.log").read_text(encoding="utf-8")
    assert "too few tweets in split(s) val 4, test 4 (split.min_tweets: 20)" in log
    assert (folder / "results" / "data" / "curated.jsonl").is_file()  # what came before stays
    workdir(tmp_path, [json.dumps(record(i, tweets=40)) for i in range(120)], min_tweets=4)
    assert run(folder, "--cores", "1", "results/data/split_report.json").returncode == 0
