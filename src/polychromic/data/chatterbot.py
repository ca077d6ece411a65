"""A small real conversational corpus in the raw schema: chatterbot-corpus (BSD-3-Clause).

    python -m polychromic.data.chatterbot --out resources/real/chatterbot.jsonl

Why: the demo corpus is generated, with stances and paraphrased references by design; a
pipeline that only ever saw it has never met data where one prompt has one reply and the pass
criterion may never fire. The PyPI package `chatterbot-corpus` ships about 2,400 English
prompt -> reply pairs written by people (YAML conversations in 20 categories: food, history,
...), small enough for a test. Each conversation's consecutive utterances become pairs:

- `tweet` = an utterance, `reply` = the next one; a prompt that recurs (in any file) is one
  tweet, its `tweet_id` a hash of its text, so its replies are the references of one tweet;
- `reply_id` = category, conversation and turn; `topic` = the category;
- no authors, likes or dates: the collection report marks those checks unmeasured.

Utterances that are not text (a few YAML entries are numbers or lists) are skipped and counted:
`convert` returns the counts, and the command prints them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from polychromic.io import write_jsonl


def corpus_files(language: str = "english") -> list[Path]:
    """The YAML files of one language of the installed chatterbot-corpus package."""
    try:
        import chatterbot_corpus
    except ImportError as error:
        raise ImportError("the package chatterbot-corpus is not installed "
                          "(pip install -e '.[dev]')") from error
    folder = Path(chatterbot_corpus.__file__).parent / "data" / language
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise FileNotFoundError(f"no chatterbot-corpus files under {folder}")
    return files


def pairs(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(raw records, utterance pairs skipped because one side is not text) of one file."""
    import yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    records, skipped = [], 0
    for number, conversation in enumerate(document.get("conversations") or []):
        for turn, (said, answer) in enumerate(zip(conversation, conversation[1:],
                                                  strict=False)):
            if not (isinstance(said, str) and isinstance(answer, str)):
                skipped += 1
                continue
            text = " ".join(said.split())
            records.append({
                "tweet_id": "cb-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12],
                "tweet": text, "reply_id": f"cb-{path.stem}-{number}-{turn}",
                "reply": " ".join(answer.split()), "topic": path.stem})
    return records, skipped


def convert(out: str, language: str = "english") -> dict[str, int]:
    """Write the corpus as raw JSONL to `out`; {files, pairs, skipped, tweets}."""
    records, skipped = [], 0
    files = corpus_files(language)
    for path in files:
        found, missed = pairs(path)
        records += found
        skipped += missed
    write_jsonl(out, records)
    return {"files": len(files), "pairs": len(records), "skipped": skipped,
            "tweets": len({record["tweet_id"] for record in records})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polychromic.data.chatterbot",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the raw JSONL to write")
    parser.add_argument("--language", default="english", help="a folder of the corpus")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    counts = convert(args.out, args.language)
    print(f"{args.out}: {counts['pairs']} pairs of {counts['tweets']} prompts from "
          f"{counts['files']} files; {counts['skipped']} pairs skipped (not text)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
