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


def _jsonl(*objs) -> bytes:
    return b"".join(json.dumps(obj).encode() + b"\n" for obj in objs)


CASES = {
    # name: (file bytes, kept reply_ids, {(line, reason)} rejected, blank)
    "truncated last line": (_jsonl(rec(0), rec(1)) + line(rec(2)).encode()[:40], ["r0", "r1"],
                            {(3, "truncated last line")}, 0),
    "cut line mid-file is not JSON": (line(rec(0)).encode()[:30] + b"\n" + _jsonl(rec(1)),
                                      ["r1"], {(1, "not JSON")}, 0),
    "non-UTF-8 bytes": (_jsonl(rec(0)) + line(rec(1)).encode().replace(b"Reply", b"R\xe9ply")
                        + b"\n", ["r0"], {(2, "non-UTF-8 bytes")}, 0),
    "lone surrogate escape": (_jsonl(rec(0)) + line(rec(1)).replace(
        "Reply", "\\ud83d Reply").encode() + b"\n", ["r0"], {(2, "lone surrogate escape")}, 0),
    "BOM": (b"\xef\xbb\xbf" + _jsonl(rec(0), rec(1)), ["r0", "r1"], set(), 0),
    "UTF-16 file": (json.dumps(rec(0)).encode("utf-16") , ["r0"], set(), 0),
    "empty file": (b"", [], set(), 0),
    "blank lines only": (b"\n  \n\n", [], set(), 3),
    "JSON array": (json.dumps([rec(0), rec(1)]).encode(), ["r0", "r1"], set(), 0),
    "JSON array cut short": (json.dumps([rec(0), rec(1), rec(2)]).encode()[:-60], ["r0", "r1"],
                             {(3, "truncated JSON array")}, 0),
    "JSON array cut after an element": (json.dumps([rec(0), rec(1)]).encode()[:-1], ["r0", "r1"],
                                        set(), 0),
    "JSON array with bad bytes in an element": (
        json.dumps([rec(0), rec(1)]).encode().replace(b"Reply number 1", b"Reply \xff 1"),
        ["r0"], {(2, "non-UTF-8 bytes")}, 0),
    "JSONL whose first line is a broken array": (b"[1, oops]\n" + _jsonl(rec(0), rec(1)),
                                                 ["r0", "r1"], {(1, "not JSON")}, 0),
    "pretty-printed object": (json.dumps(rec(0), indent=2).encode(), ["r0"], set(), 0),
    "numbers as strings": (_jsonl(rec(0, tweet_likes="1.2K", reply_likes="3,400",
                                      reply_author_followers="17"),
                                  rec(1, tweet_likes="many")), ["r0"],
                           {(2, "wrong type for tweet_likes")}, 0),
    "NaN": (_jsonl(rec(0)) + line(rec(1)).replace('"Reply number 1 about espresso"',
                                                  "NaN").encode() + b"\n",
            ["r0"], {(2, "not JSON")}, 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_case_keeps_the_count_identity(tmp_path, case):
    data, kept_ids, reasons, blank = CASES[case]
    path = tmp_path / "raw.jsonl"
    path.write_bytes(data)
    try:
        report, kept, rejected = run(tmp_path, [path])
    except ValueError as error:  # nothing kept: outputs are written before the error
        assert not kept_ids and "no valid record" in str(error)
        report = read_json(tmp_path / "report.json")
        kept, rejected = [], read_jsonl(tmp_path / "rejected.jsonl")
    assert_identity(report)
    totals = report["totals"]
    assert totals["kept"] + totals["rejected"] + totals["blank"] == totals["lines_read"]
    assert [r["reply_id"] for r in kept] == kept_ids
    assert {(r["line"], r["reason"]) for r in rejected} == reasons
    assert totals["blank"] == blank
    assert all(r["file"] == str(path) and r["reason"] and isinstance(r["raw"], str)
               for r in rejected)
    notes = " ".join(report["files"][0]["notes"])
    expected_note = {"BOM": "byte-order mark", "UTF-16 file": "UTF-16", "empty file": "empty",
                     "JSON array": "JSON array", "pretty-printed object": "one JSON object",
                     "JSON array cut short": "cut short",
                     "JSON array cut after an element": "no closing bracket"}.get(case)
    if expected_note:
        assert expected_note in notes
    if case == "numbers as strings":
        assert (kept[0]["tweet_likes"], kept[0]["reply_likes"],
                kept[0]["reply_author_followers"]) == (1200, 3400, 17)
    # the outputs are valid UTF-8 JSON (a lone surrogate must not break them)
    for name in ("validated.jsonl", "rejected.jsonl"):
        (tmp_path / name).read_text(encoding="utf-8")


def test_same_file_twice_is_an_error(tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text(line(rec(0)) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="more than once"):
        validate_raw([str(path), str(path)], str(tmp_path / "v.jsonl"),
                     str(tmp_path / "r.jsonl"), str(tmp_path / "rep.json"), 0.5)


def test_a_failed_run_keeps_its_evidence_where_a_failed_job_cannot_delete_it(tmp_path):
    """120 good lines and 20 cut ones: the run fails, and the rejected lines it tells the user
    to open are in the evidence folder (Snakemake deletes a failed job's outputs); a later run
    that passes removes that stale copy."""
    path = tmp_path / "raw.jsonl"
    bad = '{"tweet_id": "x0", "tweet": "t"'
    path.write_text("".join(line(rec(i)) + "\n" for i in range(120)) + (bad + "\n") * 20)
    evidence = tmp_path / "logs" / "validate_raw"
    with pytest.raises(ValueError) as caught:
        validate_raw([str(path)], str(tmp_path / "v.jsonl"), str(tmp_path / "r.jsonl"),
                     str(tmp_path / "rep.json"), 0.1, evidence=str(evidence))
    assert str(evidence / "rejected.jsonl") in str(caught.value)
    assert str(evidence / "validation_report.json") in str(caught.value)
    for output in ("v.jsonl", "r.jsonl", "rep.json"):  # what Snakemake then deletes
        (tmp_path / output).unlink()
    copied = read_jsonl(evidence / "rejected.jsonl")
    assert len(copied) == 20 and copied[0]["line"] == 121 and copied[0]["reason"] == "not JSON"
    assert not read_json(evidence / "validation_report.json")["passed"]
    validate_raw([str(path)], str(tmp_path / "v.jsonl"), str(tmp_path / "r.jsonl"),
                 str(tmp_path / "rep.json"), 0.2, evidence=str(evidence))
    assert not (evidence / "rejected.jsonl").exists()
    assert not (evidence / "validation_report.json").exists()


@pytest.mark.parametrize("compression", ["gzip", "bz2", "lzma"])
def test_compressed_input_is_read_transparently(tmp_path, compression):
    import importlib

    module = importlib.import_module(compression)
    plain = "".join(line(rec(i)) + "\n" for i in range(120)).encode()
    packed = tmp_path / "raw.jsonl.gz"
    packed.write_bytes(module.compress(plain))
    other = tmp_path / "other.jsonl"
    other.write_text(line(rec(200)) + "\n")
    report, kept, rejected = run(tmp_path, [packed, other])
    assert len(kept) == 121 and rejected == []
    assert report["files"][0]["lines_read"] == 120
    assert any("compressed file decompressed" in note for note in report["files"][0]["notes"])
    assert_identity(report)


def test_a_zip_or_a_cut_gzip_is_refused_by_name(tmp_path):
    import gzip
    import zipfile

    archive = tmp_path / "raw.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("raw.jsonl", line(rec(0)) + "\n")
    with pytest.raises(ValueError, match=r"raw\.zip: a zip archive"):
        run(tmp_path, [archive])
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(("".join(line(rec(i)) + "\n" for i in range(50))).encode())
                    [:-30])
    with pytest.raises(ValueError, match=r"cut\.jsonl\.gz: a gzip file that does not "
                                         r"decompress"):
        run(tmp_path, [cut])


def test_one_tweet_id_with_two_texts_is_rejected_naming_both_lines(tmp_path):
    path = tmp_path / "raw.jsonl"
    lines = [rec(0), rec(1), {**rec(2), "tweet": "A different tweet under the same id"},
             {**rec(3), "tweet_id": "t0", "tweet": "  Tweet number 0   about coffee "}]
    path.write_text("".join(line(obj) + "\n" for obj in lines))
    report, kept, rejected = run(tmp_path, [path])
    assert [r["reply_id"] for r in kept] == ["r0", "r1", "r3"]  # white space is no conflict
    assert [(r["line"], r["reason"]) for r in rejected] == [(3, "conflicting tweet text")]
    assert f"{path}:1" in rejected[0]["detail"]
    assert_identity(report)


def test_ids_are_stripped_before_any_check(tmp_path):
    path = tmp_path / "raw.jsonl"
    lines = [rec(0, tweet_author=" alice "), {**rec(1), "tweet_id": "t0 "},
             {**rec(0), "reply_id": " r0"}]
    path.write_text("".join(line(obj) + "\n" for obj in lines))
    report, kept, rejected = run(tmp_path, [path])
    assert [(r["tweet_id"], r["reply_id"]) for r in kept] == [("t0", "r0"), ("t0", "r1")]
    assert kept[0]["tweet_author"] == "alice"
    assert [(r["line"], r["reason"]) for r in rejected] == [(3, "duplicate reply_id")]


def test_messages_name_a_directory_keep_the_json_column_and_treat_nul_alike(tmp_path):
    with pytest.raises(IsADirectoryError, match="names a directory, not a file"):
        run(tmp_path, [tmp_path])
    path = tmp_path / "raw.jsonl"
    escaped = line(rec(1, reply="Reply with a \x00 inside"))
    assert "\\u0000" in escaped
    path.write_bytes((line(rec(0)) + "\n" + escaped + "\n").encode()
                     + line(rec(2, reply="raw \x00 byte")).replace("\\u0000", "\x00").encode()
                     + b"\n" + b'{"tweet_id": "t9", "tweet": "unterminated\n')
    report, kept, rejected = run(tmp_path, [path])
    assert [r["reply_id"] for r in kept] == ["r0"]
    reasons = {r["line"]: (r["reason"], r["detail"]) for r in rejected}
    assert reasons[2][0] == reasons[3][0] == "NUL character"
    assert "escape" in reasons[2][1] and "raw NUL byte at position" in reasons[3][1]
    assert reasons[4][0] == "not JSON" and "column" in reasons[4][1]
    assert_identity(report)


def test_a_killed_writes_temporary_file_is_removed_by_the_next_write(tmp_path):
    """A kill mid-write left `.validated.jsonl.XXXX.tmp` (0 bytes) forever; the next write of
    the same output removes it (and only its own)."""
    from polychromic.io import write_jsonl

    target = tmp_path / "validated.jsonl"
    stale = tmp_path / ".validated.jsonl.k1ll3d.tmp"
    stale.write_bytes(b"")
    other = tmp_path / ".rejected.jsonl.abcd.tmp"
    other.write_bytes(b"")
    write_jsonl(target, [rec(0)])
    assert not stale.exists() and other.exists()
    assert read_jsonl(target) == [rec(0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".rejected.jsonl.abcd.tmp",
                                                           "validated.jsonl"]
