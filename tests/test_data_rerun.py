"""A new human decision re-runs curate and everything downstream, and nothing upstream.

Checked with dry runs of the real Snakefile in a temporary working directory: every output of
the demo study is stood in for by an empty file (same modification time, newer than every
input), so `snakemake -n` first has nothing to do; after one line is appended to the decisions
file it must list curate, split and every job that depends on them, and not validate_raw,
verify_collection or sample_for_review. Three snakemake invocations: about 10 to 40 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
UPSTREAM = {"validate_raw", "verify_collection", "sample_for_review"}
DOWNSTREAM = {"curate", "split", "base_model", "train", "generate", "evaluate", "aggregate",
              "figures", "paper", "all"}


def snakemake(workdir: Path, *args: str) -> str:
    result = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
         str(workdir / "config.yaml"), *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def job_counts(text: str) -> dict[str, int]:
    table = text.split("Job stats:")[-1].split("Reasons:")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)
            if name != "total"}


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_new_decision_reruns_curate_and_downstream(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["raw"] = [str(REPO / "resources" / "demo" / "raw.jsonl")]
    decisions = tmp_path / "decisions.jsonl"
    config["curation"]["decisions"] = str(decisions)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    decisions.write_text('{"reply_id": "r00001", "decision": "keep"}\n', encoding="utf-8")

    summary = snakemake(tmp_path, "--summary")
    rows = [line.split("\t") for line in summary.splitlines() if "\t" in line]
    outputs = [row[0] for row in rows if row[0].startswith("results/")]
    assert "results/data/curated.jsonl" in outputs and len(outputs) > 20
    now = time.time()
    os.utime(decisions, (now - 100, now - 100))
    for output in outputs:
        path = tmp_path / output
        if path.suffix:  # files; the adapter and paper outputs are folders
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.mkdir(parents=True, exist_ok=True)
        os.utime(path, (now, now))
    assert "Nothing to be done" in snakemake(tmp_path, "-n")

    with open(decisions, "a", encoding="utf-8") as handle:
        handle.write('{"reply_id": "r00002", "decision": "discard"}\n')
    os.utime(decisions, (now + 10, now + 10))
    text = snakemake(tmp_path, "-n")
    jobs = job_counts(text)
    assert set(jobs) == DOWNSTREAM, jobs
    assert not UPSTREAM & set(jobs)
    assert jobs["curate"] == 1 and jobs["split"] == 1
    assert re.search(r"updated input files:\s+curate\s", text), text[-2000:]
