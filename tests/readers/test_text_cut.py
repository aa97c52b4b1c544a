"""A text trace whose last line has no line break may be cut short in that line: the
three text readers (canonical CSV, xperf dumper text, WPA CSV) count it as
``unterminated_last_line`` (a warning, not a loss; the detail names the file and the line), read the row as it is
(nothing readable is lost) and, in strict mode, raise naming the file and the line.

Before, a canonical CSV whose ``...,0x1234\\n`` became ``...,0x12`` read as a valid row
with a wrong value and nothing said so (only a ``.csv.gz`` cut short was detected).
Every tool that writes these formats (xperf, WPA, ours) ends its last line with a line
break; everything we ship does (checked below).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import ReadOptions, read_file
from traceanalyzer.synth.xperf_writer import write_xperf_text

ROOT = Path(__file__).resolve().parents[2]
CSV = (ROOT / "sample_traces" / "seed_unlock_from_worker.csv").read_bytes()
#: the seed export, its last row ending in a value (``...,0x1234``: Field 7 of ProcessStop)
WPA = (ROOT / "tests" / "data" / "wpa" / "generic_events_seed.csv").read_bytes().replace(
    b"app.exe,,,\n", b"app.exe,,,0x1234\n")
XPERF = b"""BeginHeader
              P-DCStart,  TimeStamp,     Process Name ( PID),  ParentPID,  SessionID,          UniqueKey, DirectoryTableBase,      Flags,    UserSid, Command Line, Package Full Name, Package Relative Application Id
  MdlTrace/IoFreeMdl/win:Info,  TimeStamp,     Process Name ( PID),   ThreadID, CPU, mdl, caller
EndHeader
OS Version: 10.0.19045, Trace Size: 1024KB, Events Lost: 0, Buffers lost: 0, Trace Start: 133500000000000000, Trace Length: 2 sec, PointerSize: 8, Trace Name: t.etl
              P-DCStart,          0,           app.exe (1234),        700,          1, 0xffffc30a4a2b0080, 0x000000012fc2e000, 0x00000000, S-1-5-21-1-2-3-1001, C:\\Apps\\app.exe, <none>, <none>
  MdlTrace/IoFreeMdl/win:Info,       6001,           app.exe (1234),       5678,   0, 0xffffc30a4b2f1234, mydriver.sys+0x1b20
"""
MAP = ROOT / "tests" / "data" / "wpa" / "seed_field_map.json"

#: name -> (file name, whole content, line of its last row, reader options)
FORMATS = {
    "csv": ("t.csv", CSV, 13, {}),
    "csv_gz": ("t.csv.gz", CSV, 13, {}),
    "xperf": ("t.txt", XPERF, 7, {}),
    "xperf_utf16": ("t.txt", XPERF, 7, {}),
    "wpa": ("t.csv", WPA, 7, {"field_map": MAP}),
}


def _encode(fmt: str, text: bytes) -> bytes:
    if fmt == "csv_gz":
        return gzip.compress(text, mtime=0)  # whole gzip data: only the text lacks its line break
    if fmt == "xperf_utf16":
        return text.decode().replace("\n", "\r\n").encode("utf-16")
    return text


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _options(fmt: str, strict: bool = False) -> ReadOptions:
    return ReadOptions(strict=strict, **FORMATS[fmt][3])


def _truncated(result) -> list[tuple[int, str]]:
    return [(e.value, e.detail) for e in result.stats.entries.values() if e.name == "unterminated_last_line"]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_last_value_cut_is_kept_and_counted(fmt: str, tmp_path: Path) -> None:
    """The cut row keeps all its fields (only its last value is short): it is read as it
    is, and the file is counted as possibly cut; strict raises naming the file."""
    name, text, line, _ = FORMATS[fmt]
    cut = text.rstrip(b"\n")[:-2]  # "...+0x1b20" -> "...+0x1b", "...,," -> "...,"
    path = _write(tmp_path / name, _encode(fmt, cut))
    whole = read_file(_write(tmp_path / f"whole_{name}", _encode(fmt, text)), options=_options(fmt))
    result = read_file(path, options=_options(fmt))
    assert _truncated(whole) == []
    what = "the last line has no line break at its end: the file may be cut short in it"
    assert _truncated(result) == [(1, f"{name}: {what} (line {line}; read as it is)")]
    assert result.table.num_rows == whole.table.num_rows  # the row is kept
    assert result.stats.total("bad_rows") == 0
    for read in (lambda: read_file(path, options=_options(fmt, strict=True)),
                 lambda: ta.load(path, strict=True, **FORMATS[fmt][3])):
        with pytest.raises(TraceFormatError) as info:
            read()
        assert str(info.value) == f"{path}: line {line}: {what}"


@pytest.mark.parametrize("fmt", ["csv", "xperf", "wpa"])
def test_a_cut_that_leaves_a_short_row_says_the_file_may_be_cut(fmt: str, tmp_path: Path) -> None:
    """A last row cut before its last field is a bad row, as before, and the file counts
    as cut; strict names the cut (it explains the short row) rather than the row."""
    name, text, line, _ = FORMATS[fmt]
    last = text.rstrip(b"\n").rsplit(b"\n", 1)[1]
    path = _write(tmp_path / name, text[: text.rindex(last) + len(last) // 3])
    result = read_file(path, options=_options(fmt))
    assert result.stats.total("unterminated_last_line") == 1 and result.stats.total("bad_rows") == 1
    with pytest.raises(TraceFormatError, match=rf": line {line}: the last line has no line break"):
        read_file(path, options=_options(fmt, strict=True))


_ENDS = [b"\n", b"\r\n", b"\n\n", b"\n  \t"]


@pytest.mark.parametrize(("fmt", "end"), [(fmt, end) for fmt in ("csv", "csv_gz", "xperf", "wpa") for end in _ENDS]
                         + [("csv", b"\r")])  # old-Mac line ends: the CSV reader only
def test_a_file_ending_with_a_line_break_or_blanks_is_whole(fmt: str, end: bytes, tmp_path: Path) -> None:
    name, text, _line, _ = FORMATS[fmt]
    path = _write(tmp_path / name, _encode(fmt, text.rstrip(b"\n") + end))
    assert _truncated(read_file(path, options=_options(fmt))) == []
    read_file(path, options=_options(fmt, strict=True))


def test_cli_warns_without_calling_it_a_loss_and_strict_exits_2(tmp_path: Path, capsys) -> None:
    """A missing line break is a warning in the footer, not a loss: ``check`` passes it
    without ``--allow-loss`` (a forgotten line break looks the same as a cut)."""
    path = _write(tmp_path / "t.csv", CSV.rstrip(b"\n")[:-2])
    assert main(["hazards", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "unterminated last line 1" in out and "lost to damage" not in out
    assert main(["check", str(path), "--baseline", str(tmp_path / "base.json"), "--update-baseline"]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--baseline", str(tmp_path / "base.json")]) == 0
    assert "loss" not in capsys.readouterr().out.lower()
    assert main(["hazards", "--strict", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (f"traceanalyzer: {path}: line 13: the last line has no line "
                                               "break at its end: the file may be cut short in it")


def _shipped_text_traces() -> list[Path]:
    found = [p for p in (ROOT / "sample_traces").glob("*.csv")]
    for folder in ("tests/data/xperf", "tests/data/wpa", "tests/data/real"):
        found += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".csv", ".txt") and p.name != "SOURCES.md"]
    return sorted(found)


def test_every_text_trace_we_ship_ends_with_a_line_break() -> None:
    traces = _shipped_text_traces()
    assert len(traces) >= 80
    assert [p for p in traces if not p.read_bytes().endswith(b"\n")] == []


def test_our_writers_end_with_a_line_break(tmp_path: Path) -> None:
    from traceanalyzer.synth.scenario import Scenario

    assert Scenario().csv_text().endswith("\n")
    table = read_file(ROOT / "sample_traces" / "seed_unlock_from_worker.csv").table
    written = write_xperf_text(table, tmp_path / "t.txt")
    assert written.read_bytes().endswith(b"\r\n")
    assert _truncated(read_file(written)) == []
