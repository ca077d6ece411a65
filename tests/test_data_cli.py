"""`polychromic curate` (interactive, scripted stdin here) and `polychromic import`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import yaml

from polychromic.cli import main
from polychromic.data.curate import curate
from polychromic.io import read_jsonl, write_jsonl
from polychromic.settings import section

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def records() -> list[dict]:
    out = [{"tweet_id": f"t{i // 2}", "tweet": f"Tweet {i // 2} about coffee and mornings",
            "reply_id": f"r{i}", "reply": f"A thoughtful reply number {i} about the beans.",
            "tweet_author": "alice", "reply_author": f"user{i}", "reply_likes": i,
            "tweet_likes": 10} for i in range(5)]
    out.insert(2, {**out[0], "reply_id": "spam", "reply": "Huge giveaway, dm me for beans"})
    return out


def setup(tmp_path: Path) -> tuple[Path, Path]:
    write_jsonl(tmp_path / "results" / "data" / "validated.jsonl", records())
    decisions = tmp_path / "decisions.jsonl"
    config = {"curation": {"spam_keywords": ["giveaway"], "decisions": str(decisions),
                           "undecided": "keep"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path / "config.yaml", decisions


def session(tmp_path: Path, answers: str, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(["curate", "--config", str(tmp_path / "config.yaml"), "--results",
                   str(tmp_path / "results"), "--reviewer", "tester", *extra],
                  stdin=io.StringIO(answers), stdout=out)
    return status, out.getvalue()


def decided(path: Path) -> list[tuple[str, str]]:
    return [(entry["reply_id"], entry["decision"]) for entry in read_jsonl(path)]


def test_decisions_are_saved_after_every_answer_and_resume_never_reasks(tmp_path):
    _, decisions = setup(tmp_path)
    status, text = session(tmp_path, "k\nd\nmaybe\n?\ns\nq\n")
    assert status == 0
    assert decided(decisions) == [("r0", "keep"), ("r1", "discard"), ("r2", "skip")]
    assert "spam" not in text  # the rule filters ran first: the spam reply is never shown
    assert "not an answer: 'maybe'" in text and "quit: stop here" in text
    assert "TWEET by @alice" in text and "REPLY by @user0" in text
    assert "5 pass the rule filters; 0 already decided" in text and "2 left to review" in text
    assert "re-runs curate and everything downstream" in text
    entry = read_jsonl(decisions)[0]
    assert entry["reviewer"] == "tester" and entry["tweet_id"] == "t0" and entry["decided_at"]

    # resume: the first three are never asked again; end of input quits and keeps the answer
    status, text = session(tmp_path, "d\n")
    assert status == 0
    assert "reply r3" in text and "reply r0" not in text and "reply r2" not in text
    assert "3 already decided" in text and "1 left to review" in text
    assert decided(decisions)[-1] == ("r3", "discard")

    status, text = session(tmp_path, "k\n")
    assert decided(decisions)[-1] == ("r4", "keep") and "0 left to review" in text
    status, text = session(tmp_path, "")
    assert "0 to review" in text and len(decided(decisions)) == 5

    # a skipped reply comes back only when asked for
    status, text = session(tmp_path, "k\n", "--revisit-skipped")
    assert "reply r2" in text and decided(decisions)[-1] == ("r2", "keep")

    # the curate rule applies the file: discards removed, the last decision wins
    report = curate(str(tmp_path / "results" / "data" / "validated.jsonl"),
                    str(tmp_path / "curated.jsonl"), str(tmp_path / "report.json"),
                    section("curation", {"spam_keywords": ["giveaway"]}), str(decisions))
    assert [r["reply_id"] for r in read_jsonl(tmp_path / "curated.jsonl")] == ["r0", "r2", "r4"]
    assert report["filters"]["human_discard"]["dropped"] == 2


def test_limit_and_missing_input(tmp_path):
    _, decisions = setup(tmp_path)
    status, text = session(tmp_path, "k\nk\nk\n", "--limit", "1")
    assert decided(decisions) == [("r0", "keep")] and "4 left to review" in text
    out = io.StringIO()
    status = main(["curate", "--config", str(tmp_path / "config.yaml"), "--results",
                   str(tmp_path / "nowhere")], stdin=io.StringIO(""), stdout=out)
    assert status == 2 and "no validated records" in out.getvalue()


def test_a_decisions_file_without_a_final_newline_is_appended_to_safely(tmp_path):
    """A hand-edited decisions file whose last line has no newline: the next answer goes on a
    line of its own (it used to join the last line, and every later read failed)."""
    _, decisions = setup(tmp_path)
    decisions.write_text('{"reply_id": "r0", "decision": "keep"}', encoding="utf-8")
    status, text = session(tmp_path, "d\nq\n")
    assert status == 0 and "1 already decided" in text
    assert decided(decisions) == [("r0", "keep"), ("r1", "discard")]
    assert decisions.read_text(encoding="utf-8").count("\n") == 2
    status, text = session(tmp_path, "k\nq\n")  # and the file stays readable
    assert decided(decisions)[-1] == ("r2", "keep")


def test_limit_must_be_positive(tmp_path, capsys):
    setup(tmp_path)
    import pytest

    with pytest.raises(SystemExit):
        session(tmp_path, "k\n", "--limit", "-1")
    assert "must be at least 1" in capsys.readouterr().err


def test_console_script_runs_with_piped_stdin(tmp_path):
    config, decisions = setup(tmp_path)
    script = Path(sys.executable).with_name("polychromic")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "polychromic.cli"]
    result = subprocess.run(
        [*command, "curate", "--config", str(config), "--results", str(tmp_path / "results")],
        input="s\nk\nq\n", capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert decided(decisions) == [("r0", "skip"), ("r1", "keep")]


def test_import_command(tmp_path):
    out = io.StringIO()
    status = main(["import", str(FIXTURES / "apify_dataset.json"), "--out",
                   str(tmp_path / "raw.jsonl")], stdout=out)
    assert status == 0 and "3 pairs written" in out.getvalue()
    assert len(read_jsonl(tmp_path / "raw.jsonl")) == 3
    assert len(read_jsonl(tmp_path / "raw.rejected.jsonl")) == 5
    report = json.loads((tmp_path / "raw.report.json").read_text())
    assert report["identity"]["holds"]


def test_quitting_with_no_answer_writes_nothing_and_says_so(tmp_path):
    _, decisions = setup(tmp_path)
    status, text = session(tmp_path, "q\n")
    assert status == 0 and not decisions.exists()
    assert "stopped: no answer given, nothing written; 5 left to review." in text
    assert "saved to" not in text and "re-runs curate" not in text


def test_a_terminal_answers_with_one_keypress(tmp_path):
    """On a terminal (a pseudo-terminal here) k, d, Enter (ignored) and q answer without Enter;
    the terminal's mode is restored afterwards."""
    import os
    import pty
    import signal
    import termios
    import tty

    _, decisions = setup(tmp_path)
    master, slave = pty.openpty()
    tty.setcbreak(slave)  # keys typed before the prompt reach it one by one, as on a terminal
    before = termios.tcgetattr(slave)
    os.write(master, b"kd\rq")
    out = io.StringIO()

    def stuck(*_):  # a read that waits for a key never typed fails the test, not the suite
        raise TimeoutError("curate waited for a key on the terminal")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        with open(slave, encoding="utf-8", closefd=True) as stdin:
            status = main(["curate", "--config", str(tmp_path / "config.yaml"), "--results",
                           str(tmp_path / "results"), "--reviewer", "tester"],
                          stdin=stdin, stdout=out)
            assert termios.tcgetattr(stdin.fileno()) == before
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.close(master)
    assert status == 0 and decided(decisions) == [("r0", "keep"), ("r1", "discard")]
    assert "not an answer" not in out.getvalue()


def test_help_version_and_import_format(capsys):
    import pytest

    from polychromic import __version__

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "`" not in text and "curate: review the pairs" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"polychromic {__version__}"
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    assert "the export's format (default auto" in " ".join(capsys.readouterr().out.split())
