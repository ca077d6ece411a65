"""validate_raw: every line kept or rejected (or blank), reasons, report, failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polychromic.data.validate import validate_raw
from polychromic.io import read_json, read_jsonl


def rec(i: int, **extra) -> dict:
    return {"tweet_id": f"t{i // 3}", "tweet": f"Tweet number {i // 3} about coffee",
            "reply_id": f"r{i}", "reply": f"Reply number {i} about espresso", **extra}


def line(obj) -> str:
    return json.dumps(obj)


def run(tmp_path: Path, files: list[Path], max_fraction: float = 1.0) -> tuple[dict, list, list]:
    report = validate_raw([str(f) for f in files], str(tmp_path / "validated.jsonl"),
                          str(tmp_path / "rejected.jsonl"), str(tmp_path / "report.json"),
                          max_fraction)
    assert read_json(tmp_path / "report.json") == report
    return report, read_jsonl(tmp_path / "validated.jsonl"), read_jsonl(tmp_path / "rejected.jsonl")


def assert_identity(report: dict) -> None:
    totals = report["totals"]
    assert totals["kept"] + totals["rejected"] + totals["blank"] == totals["lines_read"]
    assert report["identity"]["holds"] is True
    for entry in report["files"]:
        assert entry["kept"] + entry["rejected"] + entry["blank"] == entry["lines_read"]


def test_each_bad_line_is_rejected_with_reason(tmp_path):
    lines = [
        line(rec(0)),
        "{not json",
        line([rec(1)]),
        line({k: v for k, v in rec(2).items() if k != "reply"}),
        line(rec(3, tweet_likes="lots")),
        line(rec(4, reply=17)),
        line(rec(0, reply="same id again")),  # duplicate reply_id
        "",
        "   ",
        line(rec(5, tweet_likes="1.2K")),
        '{"tweet_id": "t9", "tweet": "x", "reply_id": "r99", "reply": NaN}',
    ]
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report, kept, rejected = run(tmp_path, [path])
    assert_identity(report)
    totals = report["totals"]
    assert (totals["lines_read"], totals["kept"], totals["rejected"], totals["blank"]) == (
        11, 2, 7, 2)
    reasons = {(r["line"], r["reason"]) for r in rejected}
    assert reasons == {
        (2, "not JSON"),
        (3, "not an object"),
        (4, "missing required field reply"),
        (5, "wrong type for tweet_likes"),
        (6, "wrong type for reply"),
        (7, "duplicate reply_id"),
        (11, "not JSON"),
    }
    assert all(r["file"] == str(path) and isinstance(r["raw"], str) for r in rejected)
    assert kept[0]["reply"] == "Reply number 0 about espresso"  # the first r0 is kept
    assert kept[0]["source_file"] == str(path) and kept[0]["source_line"] == 1
    assert kept[1]["tweet_likes"] == 1200 and kept[1]["source_line"] == 10
    assert report["totals"]["reasons"]["not JSON"] == 2


def test_bom_crlf_and_missing_final_newline(tmp_path):
    path = tmp_path / "raw.jsonl"
    bom = b"\xef\xbb\xbf"  # at the start, and again mid-file (files concatenated with cat)
    path.write_bytes(bom + line(rec(0)).encode() + b"\r\n" + bom + line(rec(1)).encode() + b"\n"
                     + line(rec(2)).encode())
    report, kept, rejected = run(tmp_path, [path])
    assert_identity(report)
    assert [r["reply_id"] for r in kept] == ["r0", "r1", "r2"] and not rejected
    assert any("byte-order mark" in note for note in report["files"][0]["notes"])


def test_non_utf8_line_is_rejected(tmp_path):
    path = tmp_path / "raw.jsonl"
    bad = line(rec(1)).encode().replace(b"Reply", b"R\xff\xfeply")
    path.write_bytes(line(rec(0)).encode() + b"\n" + bad + b"\n")
    report, kept, rejected = run(tmp_path, [path])
    assert_identity(report)
    assert len(kept) == 1
    assert rejected[0]["reason"] == "non-UTF-8 bytes" and rejected[0]["line"] == 2


def test_json_array_file(tmp_path):
    path = tmp_path / "raw.json"
    path.write_text(json.dumps([rec(0), rec(1), {"tweet_id": "t"}, rec(2)]), encoding="utf-8")
    report, kept, rejected = run(tmp_path, [path])
    assert_identity(report)
    assert report["files"][0]["format"] == "json-array"
    assert any("JSON array" in note for note in report["files"][0]["notes"])
    assert [r["source_line"] for r in kept] == [1, 2, 4]
    assert rejected[0]["line"] == 3 and rejected[0]["reason"] == "missing required field tweet"


def test_empty_file_reported_and_duplicates_across_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    first = tmp_path / "a.jsonl"
    first.write_text(line(rec(0)) + "\n" + line(rec(1)) + "\n", encoding="utf-8")
    second = tmp_path / "b.jsonl"
    second.write_text(line(rec(1)) + "\n" + line(rec(2)) + "\n", encoding="utf-8")
    report, kept, rejected = run(tmp_path, [empty, first, second])
    assert_identity(report)
    assert report["files"][0]["lines_read"] == 0 and "empty file" in report["files"][0]["notes"]
    assert [r["reply_id"] for r in kept] == ["r0", "r1", "r2"]
    assert rejected == [{"file": str(second), "line": 1, "reason": "duplicate reply_id",
                         "raw": line(rec(1)), "detail": rejected[0]["detail"]}]
    assert str(first) in rejected[0]["detail"]


def test_nothing_kept_is_an_error(tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no valid record"):
        validate_raw([str(path)], str(tmp_path / "v.jsonl"), str(tmp_path / "r.jsonl"),
                     str(tmp_path / "rep.json"), 0.5)
    report = read_json(tmp_path / "rep.json")
    assert report["totals"]["blank"] == 2 and report["identity"]["holds"]


def test_too_many_rejected_names_fraction_and_worst_reasons(tmp_path):
    lines = [line(rec(i)) for i in range(6)] + ["oops"] * 3 + [line(rec(9, tweet_likes="x"))] * 2
    lines += [line({"tweet_id": "t", "tweet": "t", "reply_id": "z"})]
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        validate_raw([str(path)], str(tmp_path / "v.jsonl"), str(tmp_path / "r.jsonl"),
                     str(tmp_path / "rep.json"), 0.25)
    message = str(caught.value)
    assert "0.5000" in message  # 6 rejected of 12
    for reason in ("not JSON (3)", "wrong type for tweet_likes (2)",
                   "missing required field reply (1)"):
        assert reason in message
    # the same input passes with a looser limit
    report = validate_raw([str(path)], str(tmp_path / "v.jsonl"), str(tmp_path / "r.jsonl"),
                          str(tmp_path / "rep.json"), 0.5)
    assert report["rejected_fraction"] == 0.5 and report["passed"]
