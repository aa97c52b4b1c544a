"""Bytes that are not UTF-8 (UTF-16 for a text with a UTF-16 BOM) are handled alike by
the three text readers (canonical CSV, xperf dumper text, WPA CSV), and all three read
UTF-16 (LE or BE, with its BOM):

- lenient (the default): replaced by U+FFFD, the row kept, counted as
  ``undecodable_bytes`` (detail: the line of the first);
- strict: a ``TraceFormatError`` naming the file, the line and the bytes, as every other
  problem of these readers (``Problems.raise_if_strict``). The xperf and WPA readers
  used to count the bytes and read on in strict mode.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import traceanalyzer as ta
import traceanalyzer.readers.xperf_text as xperf_text
from traceanalyzer.cli.main import main
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import ReadOptions, read_file

ROOT = Path(__file__).resolve().parents[2]
CSV = (ROOT / "sample_traces" / "seed_unlock_from_worker.csv").read_bytes()
WPA = (ROOT / "tests" / "data" / "wpa" / "generic_events_seed.csv").read_bytes()
XPERF = b"""BeginHeader
              P-DCStart,  TimeStamp,     Process Name ( PID),  ParentPID,  SessionID,          UniqueKey, DirectoryTableBase,      Flags,    UserSid, Command Line, Package Full Name, Package Relative Application Id
                CSwitch,  TimeStamp, New Process Name ( PID),    New TID, NPri, NQnt, TmSinceLast, WaitTime, Old Process Name ( PID),    Old TID, OPri, OQnt,        OldState,      Wait Reason, Swapable, InSwitchTime, CPU, IdealProc,  OldRemQnt, NewPriDecr, PrevCState
EndHeader
OS Version: 10.0.19045, Trace Size: 1024KB, Events Lost: 0, Buffers lost: 0, Trace Start: 133500000000000000, Trace Length: 2 sec, PointerSize: 8, Trace Name: t.etl
              P-DCStart,          0,             System (   4),          0,          0, 0xffffc30a40000080, 0x00000000001ad000, 0x00000000, S-1-5-18, , <none>, <none>
              P-DCStart,          0,           app.exe (1234),        700,          1, 0xffffc30a4a2b0080, 0x000000012fc2e000, 0x00000000, S-1-5-21-1-2-3-1001, C:\\Apps\\app.exe, <none>, <none>
                CSwitch,       6001,           app.exe (1234),       5678,   8,  -1,  0,  0,  Idle (   0),  0,  0, -1, Running, Executive, 0, 0, 0, 0, 0, 0, 0
"""


def _utf16_with_lone_surrogate(text: bytes, before: bytes) -> bytes:
    """``text`` as UTF-16 LE with a BOM and a lone high surrogate (0xD800) before ``before``."""
    data = text.decode().encode("utf-16-le")
    at = data.index(before.decode().encode("utf-16-le"))
    return b"\xff\xfe" + data[:at] + b"\x00\xd8" + data[at:]


#: name -> (file name, damaged content, clean content, line of the bad bytes, what strict says)
CASES = {
    "csv": ("t.csv", CSV.replace(b"mydriver.sys+0x1a6b", b"mydriver\xe9.sys+0x1a6b"), CSV, 11,
            "a byte that is not UTF-8 (0xe9)"),
    "xperf_body": ("t.txt", XPERF.replace(b"C:\\Apps", b"C:\\\xffApps"), XPERF, 7,
                   "a byte that is not UTF-8 (0xff)"),
    "xperf_header": ("t.txt", XPERF.replace(b"Swapable", b"Swap\xe9ble"), XPERF, 3,
                     "a byte that is not UTF-8 (0xe9)"),
    "xperf_info_line": ("t.txt", XPERF.replace(b"Trace Name: t.etl", b"Trace Name: t\xe9.etl"), XPERF, 5,
                        "a byte that is not UTF-8 (0xe9)"),
    "xperf_utf16": ("t.txt", _utf16_with_lone_surrogate(XPERF, b"C:\\Apps"), XPERF.decode().encode("utf-16"), 7,
                    "bytes that are not UTF-16 (0x00 0xd8)"),
    "csv_utf16": ("t.csv", _utf16_with_lone_surrogate(CSV, b"mydriver.sys+0x1a6b"), CSV.decode().encode("utf-16"),
                  11, "bytes that are not UTF-16 (0x00 0xd8)"),
    "wpa": ("t.csv", WPA.replace(b"mydriver.sys+0x1a40", b"mydriver\xff.sys+0x1a40"), WPA, 3,
            "a byte that is not UTF-8 (0xff)"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _undecodable(result) -> list[tuple[int, str]]:
    return [(e.value, e.detail) for e in result.stats.entries.values() if e.name == "undecodable_bytes"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_lenient_replaces_and_counts(case: str, tmp_path: Path) -> None:
    name, damaged, clean, line, _what = CASES[case]
    path = _write(tmp_path / name, damaged)
    result = read_file(path)
    encoding = "UTF-16" if case.endswith("utf16") else "UTF-8"
    assert _undecodable(result) == [(1, f"non-{encoding} bytes replaced by U+FFFD (first at line {line})")]
    assert result.table.num_rows == read_file(_write(tmp_path / f"clean_{name}", clean)).table.num_rows
    assert ta.load(path).stats.total("undecodable_bytes") == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_strict_names_the_file_the_line_and_the_bytes(case: str, tmp_path: Path) -> None:
    name, damaged, _clean, line, what = CASES[case]
    path = _write(tmp_path / name, damaged)
    for read in (lambda: read_file(path, options=ReadOptions(strict=True)),
                 lambda: ta.load(path, strict=True)):
        with pytest.raises(TraceFormatError) as info:
            read()
        assert str(info.value) == f"{path}: line {line}: {what}"


@pytest.mark.parametrize("case", ["csv", "csv_utf16", "xperf_body", "xperf_utf16", "wpa"])
def test_cli_strict_exits_2_naming_the_file(case: str, tmp_path: Path, capsys) -> None:
    name, damaged, _clean, line, what = CASES[case]
    path = _write(tmp_path / name, damaged)
    assert main(["hazards", str(path)]) == 0
    assert "undecodable bytes 1" in " ".join(capsys.readouterr().out.split())
    assert main(["hazards", "--strict", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"traceanalyzer: {path}: line {line}: {what}"


def test_xperf_counts_every_block_once_and_names_the_first_line(tmp_path: Path, monkeypatch) -> None:
    """Body read in several blocks, bad bytes in two of them: one counter entry (the sum,
    the first line), whatever the block size."""
    monkeypatch.setattr(xperf_text, "_CHUNK_BYTES", 200)
    rows = XPERF.split(b"EndHeader\n")[1].split(b"\n", 1)[1]
    body = rows.replace(b"C:\\Apps", b"C:\\\xffApps") + rows + rows.replace(b"Executive", b"Exec\xe9\xe9utive")
    path = _write(tmp_path / "t.txt", XPERF + body)
    result = read_file(path)
    assert _undecodable(result) == [(3, "non-UTF-8 bytes replaced by U+FFFD (first at line 10)")]
    with pytest.raises(TraceFormatError, match=r"t\.txt: line 10: a byte that is not UTF-8 \(0xff\)$"):
        read_file(path, options=ReadOptions(strict=True))


def test_a_replacement_character_the_text_holds_is_not_counted(tmp_path: Path) -> None:
    """U+FFFD written as such (valid UTF-8 or UTF-16) is text, not a replaced byte."""
    for name, data in (("u8.txt", XPERF.replace(b"Executive", "Exec\ufffd".encode() + b"\xe9")),
                       ("u16.txt", XPERF.replace(b"Executive", "Exec\ufffd".encode()).decode().encode("utf-16"))):
        assert read_file(_write(tmp_path / name, data)).stats.total("undecodable_bytes") == (name == "u8.txt")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_a_utf16_canonical_csv_reads_as_its_utf8_twin(codec: str, tmp_path: Path, capsys) -> None:
    """It was refused ('header line is not valid UTF-8'); now transcoded on the way in,
    as .csv and .csv.gz, with what a damaged UTF-8 file reports (a last line without
    its line break, a .gz cut short) judged on the text, not on the UTF-16 bytes."""
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    want = read_file(_write(tmp_path / "u8.csv", CSV)).ordered_table()
    data = bom + CSV.decode().encode(codec)
    plain = _write(tmp_path / "u16.csv", data)
    packed = _write(tmp_path / "u16.csv.gz", gzip.compress(data))
    for path in (plain, packed):
        result = read_file(path)
        assert result.ordered_table().equals(want)
        assert not [e for e in result.stats.entries.values() if e.severity != "info"]
    assert main(["hazards", str(plain)]) == 0
    assert capsys.readouterr().out.startswith("3 problems: 1 critical, 1 high, 1 medium")

    open_end = read_file(_write(tmp_path / "open.csv", bom + CSV.decode().rstrip("\n").encode(codec)))
    assert open_end.stats.total("unterminated_last_line") == 1 and open_end.table.num_rows == want.num_rows
    assert open_end.stats.total("undecodable_bytes") == 0
    cut = gzip.compress(data)[:-30]  # the gzip data ends early: its text is UTF-16 all the same
    result = read_file(_write(tmp_path / "cut.csv.gz", cut))
    assert result.stats.total("truncated_file") == 1 and result.stats.total("unterminated_last_line") == 0
