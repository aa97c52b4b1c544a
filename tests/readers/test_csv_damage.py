"""A canonical CSV with damaged rows is read around them, never rejected whole.

Lenient (the default): a row with another number of fields than the header (one cut by
the end of the file too) is skipped and counted as ``bad_rows``; bytes that are not
UTF-8 are replaced by U+FFFD and counted as ``undecodable_bytes``; a ``.csv.gz`` cut
short is read up to the cut and counted as ``truncated_file``. The other rows, and so
the findings, are those of the same file without the damage. Strict: the first problem
is a ``TraceFormatError`` naming the file and its line. The same through ``ta.load`` and
the CLI (a loss WARNING, exit 0; ``--strict``: exit 2, one line naming the file).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer as ta
import traceanalyzer.readers.csv_canonical as csv_canonical
from traceanalyzer.cli.main import main
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import ReadOptions, read_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "sample_traces" / "seed_unlock_from_worker.csv").read_bytes()
LINES = SAMPLE.splitlines(keepends=True)  # LINES[0] is the header (line 1)
WIDTH = 15


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _with_line(at: int, row: bytes) -> bytes:
    """The sample with ``row`` inserted as line ``at`` (1-based)."""
    return b"".join(LINES[: at - 1] + [row] + LINES[at - 1:])


def _findings(path: Path) -> pd.DataFrame:
    return ta.analyze(ta.load(path)).findings.drop(columns=["trace"], errors="ignore")


def _rows(path: Path) -> list[dict]:
    return read_file(path).table.to_pylist()


def _same_rows(damaged: Path, clean: Path) -> None:
    assert _rows(damaged) == _rows(clean)
    pd.testing.assert_frame_equal(_findings(damaged), _findings(clean))


#: name -> (file content, counter, count, line of the first problem, what the strict error says)
CASES = {
    "cut_last_row": (SAMPLE + b"9500000,IoFreeMdl,4,88,0xffffc30a4b2f", "bad_rows", 1, 14,
                     "the last line has no line break at its end: the file may be cut short in it"),
    "short_row": (_with_line(4, b"1,2\n"), "bad_rows", 1, 4, "2 fields, the header has 15"),
    "long_row": (_with_line(8, LINES[6].rstrip(b"\n") + b",x,y\n"), "bad_rows", 1, 8,
                 "17 fields, the header has 15"),
    "not_utf8": (SAMPLE.replace(b"mydriver.sys+0x1a6b", b"mydriver\xe9.sys+0x1a6b"), "undecodable_bytes", 1, 11,
                 "a byte that is not UTF-8 (0xe9)"),
}
#: what each damaged file reads like without the damage
CLEAN = {
    "cut_last_row": SAMPLE,
    "short_row": SAMPLE,
    "long_row": SAMPLE,
    "not_utf8": SAMPLE.replace(b"mydriver.sys+0x1a6b", "mydriver\ufffd.sys+0x1a6b".encode()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lenient_reads_the_other_rows_and_counts_the_damage(case: str, tmp_path: Path) -> None:
    data, counter, count, line, _what = CASES[case]
    damaged = _write(tmp_path / f"{case}.csv", data)
    result = read_file(damaged)
    assert result.stats.total(counter) == count
    assert [e.detail for e in result.stats.entries.values() if e.name == counter][0].endswith(f"at line {line})")
    _same_rows(damaged, _write(tmp_path / "clean.csv", CLEAN[case]))
    assert ta.load(damaged).stats.total(counter) == count


@pytest.mark.parametrize("case", sorted(CASES))
def test_strict_names_the_file_and_the_line(case: str, tmp_path: Path) -> None:
    data, _counter, _count, line, what = CASES[case]
    damaged = _write(tmp_path / f"{case}.csv", data)
    for read in (lambda: read_file(damaged, options=ReadOptions(strict=True)),
                 lambda: ta.analyze(ta.load(damaged, strict=True))):
        with pytest.raises(TraceFormatError) as info:
            read()
        assert str(info.value) == f"{damaged}: line {line}: {what}"


def test_row_not_utf8_with_wrong_field_count(tmp_path: Path, capsys) -> None:
    """pyarrow cannot hand such a row to the handler: the read starts again repaired,
    the row counted once as a bad row and its byte as undecodable; no traceback."""
    damaged = _write(tmp_path / "both.csv", _with_line(5, b"7,\xe9\n"))
    result = read_file(damaged)
    assert result.stats.total("bad_rows") == 1 and result.stats.total("undecodable_bytes") == 1
    assert result.table.num_rows == len(LINES) - 1
    assert capsys.readouterr().err == ""
    with pytest.raises(TraceFormatError, match=r"both\.csv: line 5: "):
        read_file(damaged, options=ReadOptions(strict=True))


def _stored_gzip(text: bytes) -> bytes:
    """gzip without compression: byte ``k`` of the text is byte ``k + 15`` of the file."""
    data = gzip.compress(text, compresslevel=0, mtime=0)
    assert data[15:15 + len(text)] == text
    return data


@pytest.mark.parametrize("cut", ["inside_a_row", "inside_the_last_value", "after_a_newline"])
def test_cut_gzip_is_read_up_to_the_cut(cut: str, tmp_path: Path) -> None:
    """Rows 2-10 are whole; the cut falls in line 11 (``...,mydriver.sys+0x1a6b,``)."""
    whole = b"".join(LINES[:10])
    row = LINES[10]
    keep = {"inside_a_row": 20, "inside_the_last_value": len(row) - 6, "after_a_newline": len(row)}[cut]
    damaged = _write(tmp_path / "cut.csv.gz", _stored_gzip(SAMPLE)[: 15 + len(whole) + keep])
    clean_text = whole + (row if cut == "after_a_newline" else b"")
    result = read_file(damaged)
    assert result.stats.total("truncated_file") == 1
    assert result.stats.total("bad_rows") == (0 if cut == "after_a_newline" else 1)
    [detail] = [e.detail for e in result.stats.entries.values() if e.name == "truncated_file"]
    line = 12 if cut == "after_a_newline" else 11
    assert detail.startswith(f"cut.csv.gz: the gzip data ends early (after {15 + len(whole) + keep} compressed "
                             f"bytes, {len(whole) + keep} bytes of text), in line {line}")
    _same_rows(damaged, _write(tmp_path / "clean.csv", clean_text))
    with pytest.raises(TraceFormatError) as info:
        ta.load(damaged, strict=True)
    assert str(info.value).startswith(f"{damaged}: line {line}: the gzip data ends early")


def test_cut_gzip_of_a_compressed_file(tmp_path: Path) -> None:
    """A real deflate stream cut anywhere: what zlib gives up to the cut is read."""
    text = b"".join([LINES[0]] + [LINES[1 + i % 12].replace(b"mydriver", b"drv%d" % i) for i in range(4000)])
    data = gzip.compress(text, mtime=0)
    damaged = _write(tmp_path / "cut.csv.gz", data[: len(data) * 2 // 3])
    part = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[: len(data) * 2 // 3])
    complete = part[: part.rindex(b"\n") + 1]
    result = read_file(damaged)
    assert result.stats.total("truncated_file") == 1
    assert result.table.num_rows == complete.count(b"\n") - 1
    assert result.table.to_pylist() == _rows(_write(tmp_path / "clean.csv", complete))


def test_many_members_are_one_stream(tmp_path: Path) -> None:
    path = _write(tmp_path / "two.csv.gz", gzip.compress(b"".join(LINES[:6])) + gzip.compress(b"".join(LINES[6:])))
    assert _rows(path) == _rows(_write(tmp_path / "one.csv", SAMPLE))
    assert read_file(path).stats.total("truncated_file") == 0


@pytest.mark.parametrize("block", [None, 200])
def test_lines_after_skipped_rows_stay_exact(block: int | None, tmp_path: Path, monkeypatch) -> None:
    """A row of blanks is skipped without being counted; the lines of later problems
    count it (in one batch and across batches)."""
    if block is not None:
        monkeypatch.setattr(csv_canonical, "_BLOCK_BYTES", block)
    bad_size = LINES[6].replace(b",8192,", b",-5,")
    data = b"".join(LINES[:3] + [b"   \n", b"  \n"] + LINES[3:6] + [bad_size] + LINES[7:])
    path = _write(tmp_path / "blank.csv", data)
    result = read_file(path)
    assert result.stats.total("bad_rows") == 0 and result.stats.total("bad_values") == 1
    assert result.table.num_rows == len(LINES) - 1
    with pytest.raises(TraceFormatError, match=r"blank\.csv: line 9: column 'size': '-5'"):
        read_file(path, options=ReadOptions(strict=True))
    no_time = b"".join(LINES[:2] + [b"1,2\n"] * 3 + [b",ThreadStart,1,2" + b"," * 11 + b"\n"] + LINES[2:])
    path = _write(tmp_path / "no_time.csv", no_time)
    result = read_file(path)
    assert result.stats.total("bad_rows") == 4
    assert result.table.num_rows == len(LINES) - 1
    with pytest.raises(TraceFormatError, match=r"no_time\.csv: line 3: 2 fields"):
        read_file(path, options=ReadOptions(strict=True))
    details = {e.detail: e.value for e in result.stats.entries.values() if e.name == "bad_rows"}
    assert details == {"time_ns is empty": 1, "2 fields, the header has 15 (first at line 3)": 3}


def test_every_row_bad_names_the_first(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", LINES[0] + b"1,2\n3\n")
    with pytest.raises(TraceFormatError, match=r"bad\.csv: no readable rows \(line 2: 2 fields, the header has 15\)"):
        read_file(path)


@pytest.mark.parametrize("case", ["cut_last_row", "not_utf8", "gz"])
def test_cli_warns_lenient_and_exits_2_strict(case: str, tmp_path: Path, capsys) -> None:
    if case == "gz":
        whole = b"".join(LINES[:10])
        damaged = _write(tmp_path / "cut.csv.gz", _stored_gzip(SAMPLE)[: 15 + len(whole) + 20])
    else:
        damaged = _write(tmp_path / f"{case}.csv", CASES[case][0])
    assert main(["hazards", str(damaged)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    if case == "not_utf8":  # a replaced byte loses no row
        assert "of the trace were lost to damage" not in out and "1 critical" in out
    else:
        assert "of the trace were lost to damage" in out
        assert ("truncated_file: cut.csv.gz: the gzip data ends early" if case == "gz"
                else "bad_rows: 5 fields, the header has 15 (first at line 14)") in out
    assert main(["hazards", str(damaged), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"traceanalyzer: {damaged}: line ")


def test_reads_on_several_threads_share_one_hook_and_restore_it() -> None:
    """The unraisable hook that notes a bad row's non-UTF-8 text is installed by the first
    read and removed by the last, whatever order they end in (reads on threads)."""
    import sys

    from traceanalyzer.readers import csv_canonical as c

    before = sys.unraisablehook
    a, b = c._bad_row_text_noted(c._Damage(3)), c._bad_row_text_noted(c._Damage(3))
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert sys.unraisablehook is c._dispatch_unraisable  # b still reading
    b.__exit__(None, None, None)
    assert sys.unraisablehook is before


def test_replaced_bytes_are_a_data_quality_counter_of_hazards(tmp_path: Path, capsys) -> None:
    """undecodable_bytes is one of the data-quality counters: in the --json stats and in
    the text footer, not only in info."""
    import json

    damaged = _write(tmp_path / "not_utf8.csv", CASES["not_utf8"][0])
    assert main(["hazards", str(damaged), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["undecodable_bytes"] == 1
    assert main(["hazards", str(damaged)]) == 0
    assert "undecodable bytes 1" in " ".join(capsys.readouterr().out.split())


def test_a_stray_quote_in_the_header_is_a_clear_error(tmp_path: Path) -> None:
    """Found by the fuzz test: a quote opening the header joins lines into one column
    name; with bad rows skipped the table then lacked time_ns (an internal KeyError)."""
    from traceanalyzer.errors import TraceError
    from traceanalyzer.readers import read_file

    header = b'"' + LINES[0]
    path = _write(tmp_path / "quoted.csv", header + header + b"".join(LINES[1:]))
    with pytest.raises(TraceError, match="malformed CSV header") as err:
        read_file(path)
    assert str(path) in str(err.value)
