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

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, job_counts, snakemake, stand_in_outputs

UPSTREAM = {"validate_raw", "verify_collection", "sample_for_review"}
# the search's rounds re-run from its first scored round; their new proposals, and so the
# validation generations, are known once each round has run (Snakemake checkpoints)
DOWNSTREAM = {"curate", "split", "release", "base_model", "calibrate", "train", "search",
              "select_sampling", "generate", "evaluate", "aggregate", "figures", "paper", "all"}


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to python")
def test_new_decision_reruns_curate_and_downstream(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["raw"] = [str(REPO / "resources" / "demo" / "raw.jsonl")]
    decisions = tmp_path / "decisions.jsonl"
    config["curation"]["decisions"] = str(decisions)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    decisions.write_text('{"reply_id": "r00001", "decision": "keep"}\n', encoding="utf-8")

    now = stand_in_outputs(tmp_path)
    os.utime(decisions, (now - 100, now - 100))
    assert (tmp_path / "results" / "data" / "curated.jsonl").is_file()
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
