"""Human commands of the pipeline: ``polychromic curate`` (and ``polychromic import``).

``polychromic curate`` is the human half of curation. It reads the validated records of a
results folder (``<results>/data/validated.jsonl``, or ``--input``), applies the rule filters of
the config's ``curation`` block in-process (the same code as the `curate` rule, without human
decisions), and shows each surviving pair with its tweet and metadata, asking::

    [k]eep  [d]iscard  [s]kip  [q]uit

Where stdin is a terminal one keypress answers (no Enter); piped or redirected input is read a
line at a time.

Every answer is appended at once (flushed and fsynced) to the decisions file (``--decisions``,
default the config's ``curation.decisions``) as ``{"reply_id", "decision", "tweet_id",
"reviewer", "decided_at"}``, so quitting (``q``, end of input, Ctrl-C) loses nothing, and a
later session never asks again about a reply_id that is already in the file (``skip`` included;
``--revisit-skipped`` asks about skipped ones again). The `curate` rule declares the decisions
file as an input: after a session, ``snakemake`` re-runs curate and everything downstream.

Reading from the validated file (not from ``curated.jsonl``) matters: with
``curation.undecided: drop`` the curated file holds only kept replies, so the undecided ones
would never be shown.

``polychromic import FILE... --out raw.jsonl`` converts scraper exports (Apify, Twitter API v2)
to raw JSONL with the same reader, pairing and checks as the `validate_raw` rule, and writes the
rejected items and a report next to the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from polychromic import __version__
from polychromic.config import Settings, load_settings

DEFAULT_CONFIG = "config.yaml"
ANSWERS = {"k": "keep", "keep": "keep", "d": "discard", "discard": "discard", "s": "skip",
           "skip": "skip", "q": "quit", "quit": "quit", "?": "help", "h": "help",
           "help": "help"}
WIDTH = 96
DESCRIPTION = ("Human commands of the polychromic pipeline. curate: review the pairs that pass "
               "the rule filters (keep / discard / skip); import: convert scraper exports "
               "(Apify, Twitter API v2) to raw JSONL.")
PROMPT = "[k]eep  [d]iscard  [s]kip  [q]uit  [?] help > "


def _load_config(path: str | None) -> dict[str, Any]:
    """The study config at `path` (default: config.yaml when present, else no config)."""
    import yaml

    if path is None:
        path = DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None
        if path is None:
            return {}
    if not Path(path).is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _wrap(text: str, indent: str = "    ") -> str:
    """`text` wrapped to WIDTH columns, every line indented by `indent`."""
    return "\n".join(textwrap.fill(part, WIDTH, initial_indent=indent, subsequent_indent=indent)
                     or indent for part in text.splitlines() or [""])


def _value(record: dict[str, Any], field: str) -> str:
    """A field of `record` as text for the screen ("?" when absent)."""
    value = record.get(field)
    return "?" if value is None else str(value)


def format_pair(record: dict[str, Any], position: int, total: int,
                others: list[dict[str, Any]]) -> str:
    """The screen for one pair: the tweet, the reply, their metadata, sibling replies."""
    where = f"{_value(record, 'source_file')}:{_value(record, 'source_line')}"
    lines = [
        "=" * WIDTH,
        f"[{position}/{total}]  tweet {record['tweet_id']}  reply {record['reply_id']}  "
        f"({where})",
        f"TWEET by @{_value(record, 'tweet_author')}  likes {_value(record, 'tweet_likes')}  "
        f"retweets {_value(record, 'tweet_retweets')}  at {_value(record, 'tweet_created_at')}",
        _wrap(record["tweet"]),
        f"REPLY by @{_value(record, 'reply_author')}  likes {_value(record, 'reply_likes')}  "
        f"retweets {_value(record, 'reply_retweets')}  followers "
        f"{_value(record, 'reply_author_followers')}  after "
        f"{_value(record, 'reply_time_diff_seconds')} s",
        _wrap(record["reply"]),
    ]
    if others:
        lines.append(f"({len(others)} other surviving repl{'y' if len(others) == 1 else 'ies'} "
                     "to this tweet, for context:)")
        lines += [_wrap("- " + other["reply"], "      ") for other in others[:3]]
        if len(others) > 3:
            lines.append(f"      ... and {len(others) - 3} more")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def append_decision(path: str | Path, entry: dict[str, Any]) -> None:
    """Append one decision line and force it to disk (a crash must not lose an answer). A
    file whose last line has no newline (edited by hand, cut by a crash) gets one first, so
    the new line never joins it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    with open(path, "ab+") as handle:
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _decided_ids(path: str) -> dict[str, str]:
    """reply_id -> last decision of the decisions file (empty when there is none)."""
    from polychromic.data.curate import read_decisions

    decided, _ = read_decisions(path)
    return decided


@dataclass
class _Session:
    """One review session: the pairs that pass the rule filters and where answers go."""

    survivors: list[dict[str, Any]]
    decisions: str  # the decisions file this session appends to
    configured: str  # the decisions file the curate rule reads
    revisit: set[str]  # decisions that are asked about again ("skip" or none)
    reviewer: str

    def pending(self) -> list[dict[str, Any]]:
        """The surviving pairs without a decision (or with one to revisit), in file order."""
        decided = _decided_ids(self.decisions)
        return [r for r in self.survivors
                if r["reply_id"] not in decided or decided[r["reply_id"]] in self.revisit]


def run_curate(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Ask about each pair that passes the rule filters; append every answer to the decisions."""
    study = load_settings(_load_config(args.config))
    settings = study.curation
    source = args.input or str(Path(args.results) / "data" / "validated.jsonl")
    if not Path(source).is_file():
        print(f"no validated records at {source}: run `snakemake --cores 1 "
              f"{Path(args.results) / 'data' / 'validated.jsonl'}` first (or give --input)",
              file=stdout)
        return 2
    records, survivors = _rule_filter_survivors(source, study, stdout)
    session = _Session(survivors=survivors,
                       decisions=args.decisions or settings.decisions,
                       configured=settings.decisions,
                       revisit={"skip"} if args.revisit_skipped else set(),
                       reviewer=args.reviewer)
    pending = session.pending()
    print(f"{len(records)} validated records in {source}; {len(survivors)} pass the rule "
          f"filters; {len(survivors) - len(pending)} already decided in {session.decisions}; "
          f"{len(pending)} to review.", file=stdout)
    if args.limit is not None:
        pending = pending[:args.limit]
    counts, quit_early = _review(session, pending, stdin, stdout)
    _print_outcome(session, counts, quit_early, stdout)
    return 0


def _rule_filter_survivors(source: str, study: Settings, stdout: TextIO
                           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of `source` and those of them that pass the study's rule filters."""
    from polychromic.data.curate import rule_filter_survivors
    from polychromic.io import read_jsonl

    records = read_jsonl(source)
    if study.curation.near_duplicate_threshold is not None:
        print("applying the rule filters (embedding replies for the near-duplicate filter)...",
              file=stdout)
        stdout.flush()
    return records, rule_filter_survivors(records, study.curation)


def _review(session: _Session, pending: list[dict[str, Any]], stdin: TextIO, stdout: TextIO
            ) -> tuple[dict[str, int], bool]:
    """Show each pending pair and save its answer; the counts and whether the reviewer quit."""
    by_tweet: dict[str, list[dict[str, Any]]] = {}
    for record in session.survivors:
        by_tweet.setdefault(record["tweet_id"], []).append(record)
    counts = {"keep": 0, "discard": 0, "skip": 0}
    for position, record in enumerate(pending, start=1):
        others = [r for r in by_tweet[record["tweet_id"]] if r["reply_id"] != record["reply_id"]]
        print(format_pair(record, position, len(pending), others), file=stdout)
        answer = _ask(stdin, stdout)
        if answer == "quit":
            return counts, True
        append_decision(session.decisions, {
            "reply_id": record["reply_id"],
            "decision": answer,
            "tweet_id": record["tweet_id"],
            "reviewer": session.reviewer,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        })
        counts[answer] += 1
    return counts, False


def _terminal(stdin: TextIO) -> bool:
    """Whether `stdin` is a terminal whose keypresses can be read one by one."""
    try:
        import termios  # noqa: F401  (POSIX only: elsewhere answers are lines)

        return os.isatty(stdin.fileno())
    except (ImportError, AttributeError, OSError, ValueError):  # StringIO, closed, Windows
        return False


def read_key(stdin: TextIO) -> str:
    """One keypress from the terminal `stdin` (cbreak mode: no Enter, Ctrl-C still
    interrupts), the terminal's mode restored after; "" at end of input (Ctrl-D)."""
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)  # TCSAFLUSH would drop keys typed ahead
        key = os.read(fd, 1).decode("utf-8", errors="replace")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return "" if key == "\x04" else key


def _answer(stdin: TextIO, stdout: TextIO) -> str | None:
    """The next answer's text: one keypress on a terminal (echoed), else one line; None at the
    end of input."""
    if not _terminal(stdin):
        return stdin.readline() or None
    key = read_key(stdin)
    print(key if key.isprintable() else "", file=stdout)
    return key or None


def _ask(stdin: TextIO, stdout: TextIO) -> str:
    """Prompt until a valid answer: keep, discard, skip or quit (end of input = quit)."""
    while True:
        print(PROMPT, end="", file=stdout)
        stdout.flush()
        line = _answer(stdin, stdout)
        if line is None:  # end of input: same as quit
            print("", file=stdout)
            return "quit"
        if not line.strip():  # Enter alone: ask again
            continue
        answer = ANSWERS.get(line.strip().lower())
        if answer == "help":
            print("keep: train on this reply; discard: remove it; skip: decide later "
                  "(counts as undecided, not asked again unless --revisit-skipped); "
                  "quit: stop here, every answer so far is saved.", file=stdout)
        elif answer is None:
            print(f"not an answer: {line.strip()!r}", file=stdout)
        else:
            return answer


def _print_outcome(session: _Session, counts: dict[str, int], quit_early: bool,
                   stdout: TextIO) -> None:
    """Say what the session saved, what is left, and whether the curate rule will see it."""
    done = sum(counts.values())
    left = len(session.pending())
    if not done:
        print(f"{'stopped' if quit_early else 'done'}: no answer given, nothing written; "
              f"{left} left to review.", file=stdout)
        return
    print(f"{'stopped' if quit_early else 'done'}: {done} decision(s) saved to "
          f"{session.decisions} (keep {counts['keep']}, discard {counts['discard']}, "
          f"skip {counts['skip']}); {left} left to review.", file=stdout)
    if done and Path(session.decisions).resolve() == Path(session.configured).resolve():
        print("`snakemake` now re-runs curate and everything downstream.", file=stdout)
    elif done:
        print(f"note: the curate rule reads curation.decisions ({session.configured}), not this "
              "file.", file=stdout)


def run_import(args: argparse.Namespace, stdout: TextIO) -> int:
    """Convert scraper exports to raw JSONL with its rejected items and report; say what it did."""
    from polychromic.data.validate import validate_raw

    out = Path(args.out)
    rejected = out.with_name(out.stem + ".rejected.jsonl")
    report_path = out.with_name(out.stem + ".report.json")
    try:
        report = validate_raw(list(args.files), str(out), str(rejected), str(report_path),
                              args.max_rejected_fraction, args.format)
    except ValueError as error:
        print(f"import failed: {error}", file=stdout)
        return 1
    totals = report["totals"]
    print(f"{totals['kept']} pairs written to {out}; {totals['rejected']} items rejected "
          f"({rejected}); {totals['used_as_tweet']} items used as tweets; report {report_path}",
          file=stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of `polychromic curate` and `polychromic import`."""
    parser = argparse.ArgumentParser(prog="polychromic", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    curate = commands.add_parser(
        "curate", help="review the pairs that pass the rule filters: keep / discard / skip",
        description="Show each pair that passes the rule filters and record keep / discard / "
                    "skip in the decisions file, one line per answer (one keypress answers on "
                    "a terminal; piped input is read line by line). Quit any time; the next "
                    "session continues where this one stopped.")
    curate.add_argument("--config", default=None,
                        help=f"study config (default: {DEFAULT_CONFIG} when present)")
    curate.add_argument("--results", default="results", help="results folder (default: results)")
    curate.add_argument("--input", default=None,
                        help="records to review (default: <results>/data/validated.jsonl)")
    curate.add_argument("--decisions", default=None,
                        help="decisions file (default: curation.decisions of the config)")
    curate.add_argument("--reviewer", default=os.environ.get("USER") or "unknown",
                        help="name recorded with each decision (default: $USER)")
    curate.add_argument("--revisit-skipped", action="store_true",
                        help="ask again about replies that were skipped")
    curate.add_argument("--limit", type=_positive_int, default=None,
                        help="review at most this many pairs in this session")
    importer = commands.add_parser(
        "import", help="convert scraper exports (Apify, Twitter API v2) to raw JSONL",
        description="Pair replies with their tweets and write raw JSONL, with the rejected items "
                    "(<out>.rejected.jsonl) and a report (<out>.report.json).")
    importer.add_argument("files", nargs="+", help="export files (JSON array, JSONL or JSON)")
    importer.add_argument("--out", required=True, help="raw JSONL to write")
    importer.add_argument("--format", default="auto",
                          choices=["auto", "raw", "apify", "twitter_v2"],
                          help="the export's format (default auto: detected per file from its "
                               "content, as data.format of the config)")
    importer.add_argument("--max-rejected-fraction", type=float, default=1.0,
                          help="fail above this rejected fraction (default 1.0: never)")
    return parser


def main(argv: list[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    """Entry point of the `polychromic` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    try:
        if args.command == "curate":
            return run_curate(args, stdin, stdout)
        return run_import(args, stdout)
    except KeyboardInterrupt:
        print("\ninterrupted: every answer given so far is saved.", file=stdout)
        return 130
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=stdout)
        return 2


if __name__ == "__main__":
    sys.exit(main())
