"""xperf ``-a dumper`` text reader on a hand-written file.

tests/data/xperf/seed_dumper.txt was written by hand in the layout of real xperf
output (header lines per event type, right-aligned cells, CRLF line ends) for the
seed scenario: app.exe (1234) thread 5678 allocates, locks and user-maps an MDL
through mydriver.sys, unmaps/unlocks/frees it; child.exe (2345) starts and ends.
Every expected value below was read off that file by eye (timestamps are in
microseconds in the file, so the expected time_ns is the cell value times 1000).
It also holds the awkward parts of real dumps: a command line with a comma outside
quotes (P-DCStart app.exe), quoted process names ("app.exe" (1234)), <none>, extra
trailing cells (T-DCStart, P-DCStart, P-DCEnd), a Stack row, an ``Error:`` line, two
bytes 0xE9 (Latin-1) in command lines, an event type without a header line, and three
broken rows (bad mdl cell, truncated CSwitch, TimeStamp ``abc``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.readers import ReadOptions, pick_reader, read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "xperf"
SEED = DATA / "seed_dumper.txt"
MDL = 0xFFFFC30A4B2F1000


@pytest.fixture(scope="module")
def seed():
    result = read_file(SEED)
    return result, result.ordered_table().to_pylist()


def rows_of(rows, event):
    return [r for r in rows if r["event"] == event]


def test_picked_by_content(seed):
    assert pick_reader(SEED).name == "xperf"
    result, _ = seed
    assert result.metadata["format"] == "xperf"


def test_row_count_and_file_order(seed):
    _, rows = seed
    # 27 lines after the FirstReliable line; Stack, Error:, the truncated CSwitch and the
    # TimeStamp "abc" row are not events -> 23 kept (P-DCEnd is a ProcessRundownEnd row).
    assert len(rows) == 27 - 4
    times = [r["time_ns"] for r in rows]
    assert times == sorted(times)
    assert [r["event"] for r in rows[:6]] == [
        "ProcessRundown", "ProcessRundown", "ThreadRundown", "ThreadRundown", "ImageLoad", "CSwitch",
    ]


def test_rows_stay_grouped_by_event_type_with_their_line_as_order_key(seed):
    """The reader never permutes its table: the order key (line number) orders it."""
    result, rows = seed
    lines = result.order_key.to_pylist()
    assert lines != sorted(lines) and len(set(lines)) == len(lines)  # grouped; one line each
    assert sorted(lines) != list(range(min(lines), min(lines) + len(lines)))  # the skipped lines
    assert result.table.take(np.argsort(lines, kind="stable")).to_pylist() == rows


def test_process_events(seed):
    _, rows = seed
    rundown = rows_of(rows, "ProcessRundown")
    assert [(r["pid"], r["parent_pid"], r["image"]) for r in rundown] == [(4, 0, "System"), (1234, 700, "app.exe")]
    assert [r["wow64"] for r in rundown] == [0, 0]  # Flags 0x00000000
    (start,) = rows_of(rows, "ProcessStart")
    assert (start["time_ns"], start["pid"], start["parent_pid"], start["image"]) == (3_000_000, 2345, 1234, "child.exe")
    (end,) = rows_of(rows, "ProcessEnd")
    assert (end["time_ns"], end["pid"], end["parent_pid"]) == (5_001_000, 2345, 1234)


def test_thread_and_image_events(seed):
    _, rows = seed
    assert [(r["pid"], r["tid"]) for r in rows_of(rows, "ThreadRundown")] == [(4, 8), (1234, 5678)]
    (start,) = rows_of(rows, "ThreadStart")
    assert (start["time_ns"], start["pid"], start["tid"]) == (3_001_000, 2345, 2346)
    (end,) = rows_of(rows, "ThreadEnd")
    assert (end["time_ns"], end["tid"]) == (5_000_000, 2346)
    (image,) = rows_of(rows, "ImageLoad")
    assert image["pid"] == 4
    assert image["base"] == 0xFFFFF80012340000
    assert image["image_size"] == 0xFFFFF80012360000 - 0xFFFFF80012340000
    assert image["image"] == "\\SystemRoot\\System32\\drivers\\mydriver.sys"


def test_cswitch(seed):
    _, rows = seed
    first, second = rows_of(rows, "CSwitch")
    assert (first["time_ns"], first["cpu"], first["new_tid"], first["new_pid"], first["old_tid"], first["old_pid"]) == (
        1_000_000, 1, 5678, 1234, 0, 0,
    )
    assert (second["new_tid"], second["new_pid"], second["old_tid"], second["old_pid"]) == (8, 4, 5678, 1234)
    assert first["pid"] is None and first["tid"] is None


def test_calls(seed):
    _, rows = seed
    alloc = rows_of(rows, "IoAllocateMdl")[0]
    assert (alloc["time_ns"], alloc["pid"], alloc["tid"], alloc["cpu"]) == (1_001_000, 1234, 5678, 1)
    assert (alloc["mdl"], alloc["va"], alloc["size"], alloc["irp"]) == (MDL, 0x7FF612340000, 8192, 0)
    assert alloc["caller"] == "mydriver.sys+0x1a2b"
    (lock,) = rows_of(rows, "MmProbeAndLockPages")
    # operation written as the number 1 -> IoWriteAccess
    assert (lock["mdl"], lock["access_mode"], lock["operation"]) == (MDL, "UserMode", "IoWriteAccess")
    (mapping,) = rows_of(rows, "MmMapLockedPagesSpecifyCache")
    # access_mode 1 -> UserMode, priority written in hex, bugcheck 'false' -> 0
    assert (mapping["access_mode"], mapping["cache_type"], mapping["mapped_va"]) == ("UserMode", "MmCached", 0x1F0000)
    assert (mapping["priority"], mapping["bugcheck_on_failure"]) == (0x40000010, 0)
    (unmap,) = rows_of(rows, "MmUnmapLockedPages")
    assert (unmap["mapped_va"], unmap["cpu"], unmap["caller"]) == (0x1F0000, 0, "mydriver.sys+0x1b10")
    assert [r["time_ns"] for r in rows_of(rows, "MmUnlockPages")] == [4_001_000]
    assert rows_of(rows, "IoFreeMdl")[0]["mdl"] == MDL


def test_bad_cell_keeps_row_with_null(seed):
    result, rows = seed
    broken = rows_of(rows, "IoAllocateMdl")[1]
    assert broken["time_ns"] == 6_000_000 and broken["mdl"] is None and broken["size"] == 4096
    assert result.stats.by_detail("bad_values") == {"MdlTrace/IoAllocateMdl/win:Info.mdl": 1}


def test_unknown_events_kept_and_counted_once(seed):
    result, rows = seed
    assert result.stats.total("unknown_events") == 0  # the reader keeps them; the Trace counts
    unknown = ta.load(SEED).stats.by_detail("unknown_events")
    assert unknown == {
        "SampledProfile": 1,
        "UnknownEvent/Classic": 1,
        "ThirdParty/Thing": 1,
        "Microsoft-Windows-Kernel-Process/ProcessStop": 1,
    }
    # the stop-time rundown is known, and not an end of anything: a ProcessRundownEnd row
    assert result.stats.by_detail("rundown_end_events") == {}
    (dcend,) = rows_of(rows, "ProcessRundownEnd")
    assert (dcend["time_ns"], dcend["pid"], dcend["parent_pid"], dcend["image"]) == (7_000_000, 1234, 700, "app.exe")
    # ... which app.exe's P-DCStart describes already: one instance, not ended
    procs = ta.load(SEED).processes
    (app,) = procs[procs["pid"] == 1234].itertuples()
    assert (app.source, app.image) == ("rundown", "app.exe") and pd.isna(app.end_ns)
    (sample,) = rows_of(rows, "SampledProfile")
    assert (sample["time_ns"], sample["pid"], sample["tid"], sample["cpu"]) == (1_500_000, 1234, 5678, 1)
    (headerless,) = rows_of(rows, "ThirdParty/Thing")
    assert headerless["time_ns"] == 1_900_000 and headerless["pid"] is None


def test_stats_for_skipped_lines(seed):
    result, _ = seed
    stats = result.stats
    assert stats.total("lost_events") == 3 and stats.total("lost_buffers") == 1
    assert stats.total("decode_errors") == 1  # the 'Error:' line
    assert stats.total("stack_rows") == 1
    assert stats.total("undecodable_bytes") == 2  # two 0xE9 bytes
    assert stats.total("bad_rows") == 2  # truncated CSwitch, TimeStamp 'abc'
    assert stats.by_detail("extra_columns") == {"P-DCStart": 1, "T-DCStart": 2, "P-DCEnd": 1}


def test_info_line_metadata(seed):
    result, _ = seed
    meta = result.metadata
    assert meta["os_version"] == "10.0.19045"
    assert meta["pointer_size"] == 8
    assert meta["trace_name"] == "seed.etl"
    # FILETIME 133500000000000000 = 13,350,000,000 s after 1601-01-01 = 2024-01-17 21:20 UTC
    assert meta["start_time_utc"] == "2024-01-17T21:20:00+00:00"
    assert meta["first_reliable_event_time_ns"] == 0


def test_strict_fails_on_first_problem_line():
    lines = SEED.read_bytes().split(b"\r\n")
    error_line = next(i for i, line in enumerate(lines, start=1) if line.startswith(b"Error:"))
    with pytest.raises(TraceFormatError) as info:
        read_file(SEED, options=ReadOptions(strict=True))
    assert f"line {error_line}:" in str(info.value)
    assert str(SEED) in str(info.value)


def test_field_map_maps_a_manifest_event(tmp_path):
    fmap = tmp_path / "map.json"
    fmap.write_text(
        '{"events": [{"provider": "Microsoft-Windows-Kernel-Process", "event": "ProcessStop",'
        ' "canonical": "ProcessEnd", "fields": {"ProcessID": "pid", "ImageName": "image"}}]}'
    )
    rows = read_file(SEED, options=ReadOptions(field_map=fmap)).table.to_pylist()
    ends = rows_of(rows, "ProcessEnd")
    assert [(r["time_ns"], r["pid"]) for r in ends] == [(5_001_000, 2345), (5_002_000, 2345)]
    assert ends[1]["image"] == "\\Device\\HarddiskVolume3\\Apps\\child.exe"


def test_columns_found_by_name_not_position(tmp_path):
    # CSwitch columns in another order with other spellings (NewThreadId, CPU first).
    text = (
        "BeginHeader\n"
        "CSwitch, TimeStamp, CPU, Old TID, Old Process Name ( PID), NewThreadId, New Process Name ( PID)\n"
        "MdlTrace/IoFreeMdl/win:Info, TimeStamp, caller, mdl, CPU, ThreadID, Process Name ( PID)\n"
        "EndHeader\n"
        "CSwitch, 7, 3, 11, a.exe ( 10), 22, b.exe ( 20)\n"
        "MdlTrace/IoFreeMdl/win:Info, 8, drv.sys+0x10, 0x10, 2, 22, b.exe ( 20)\n"
    )
    path = tmp_path / "t.txt"
    path.write_text(text)
    a, b = read_file(path).table.to_pylist()
    assert (a["cpu"], a["old_tid"], a["old_pid"], a["new_tid"], a["new_pid"]) == (3, 11, 10, 22, 20)
    assert (b["event"], b["caller"], b["mdl"], b["cpu"], b["tid"], b["pid"]) == ("IoFreeMdl", "drv.sys+0x10", 16, 2, 22, 20)


def test_two_header_versions_picked_by_field_count(tmp_path):
    text = (
        "BeginHeader\n"
        "P-Start, TimeStamp, Process Name ( PID), ParentPID\n"
        "P-Start, TimeStamp, Process Name ( PID), SessionID, ParentPID\n"
        "EndHeader\n"
        "P-Start, 1, a.exe (10), 5\n"
        "P-Start, 2, b.exe (20), 1, 6\n"
    )
    path = tmp_path / "t.txt"
    path.write_text(text)
    rows = read_file(path).table.to_pylist()
    assert [(r["pid"], r["parent_pid"]) for r in rows] == [(10, 5), (20, 6)]


def test_bad_input():
    with pytest.raises(TraceFormatError, match="BeginHeader"):
        read_file(DATA / "not_xperf.txt", format="xperf")


def test_empty_and_header_only(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(TraceEmptyError):
        read_file(empty, format="xperf")
    header_only = tmp_path / "h.txt"
    header_only.write_text("BeginHeader\nCSwitch, TimeStamp\nEndHeader\nOS Version: 10.0, Events Lost: 0\n")
    with pytest.raises(TraceEmptyError):
        read_file(header_only)
    no_end = tmp_path / "n.txt"
    no_end.write_text("BeginHeader\nCSwitch, TimeStamp\n")
    with pytest.raises(TraceFormatError, match="EndHeader"):
        read_file(no_end)


def test_every_row_bad_is_an_error(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("BeginHeader\nCSwitch, TimeStamp, CPU\nEndHeader\nCSwitch, x, 1\nCSwitch, y, 2\n")
    with pytest.raises(TraceFormatError, match="no readable event rows"):
        read_file(path)


def test_sniff_does_not_claim_canonical_csv():
    reader = pick_reader(SEED)
    assert not reader.sniff(b"time_ns,event,pid\n0,ProcessStart,4\n", Path("x.csv"))
    assert reader.sniff(b"\xef\xbb\xbf\r\nBeginHeader\r\n", Path("x.txt"))


def test_utf16_dump_with_bom(tmp_path):
    text = "BeginHeader\r\nT-Start, TimeStamp, Process Name ( PID), ThreadID\r\nEndHeader\r\nT-Start, 5, a.exe (10), 11\r\n"
    path = tmp_path / "u16.txt"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    assert pick_reader(path).name == "xperf"
    (row,) = read_file(path).table.to_pylist()
    assert (row["event"], row["time_ns"], row["pid"], row["tid"]) == ("ThreadStart", 5000, 10, 11)


def test_unmapped_payload_never_lands_in_a_canonical_column(tmp_path):
    # the map names only Mdl; the payload also has a field literally called 'size' (text)
    fmap = {"events": [{"provider": "MyDrv", "event": "Alloc", "canonical": "IoAllocateMdl", "fields": {"Mdl": "mdl"}}]}
    path = tmp_path / "t.txt"
    path.write_text(
        "BeginHeader\nMyDrv/Alloc/win:Info, TimeStamp, Process Name ( PID), ThreadID, CPU, Mdl, size\nEndHeader\n"
        "MyDrv/Alloc/win:Info, 3, a.exe (1), 2, 0, 0x10, big\n"
    )
    (row,) = read_file(path, options=ReadOptions(extra={"field_map": fmap})).table.to_pylist()
    assert (row["event"], row["mdl"], row["field:size"]) == ("IoAllocateMdl", 16, "big")
    assert row.get("size") is None


def test_etl_mapping_file_form_is_accepted(tmp_path):
    # the ETL reader's {"providers": [...]} form, so one --field-map file serves every reader
    fmap = tmp_path / "etl_map.json"
    fmap.write_text(
        '{"providers": [{"provider": "Contoso.MdlTracer", "events": {"AllocMdl": "IoAllocateMdl"},'
        ' "fields": {"Mdl": "mdl", "Length": "size"}, "event_fields": {"AllocMdl": {"Buf": "va"}}}]}'
    )
    path = tmp_path / "t.txt"
    path.write_text(
        "BeginHeader\n"
        "Contoso.MdlTracer/AllocMdl/win:Info, TimeStamp, Process Name ( PID), ThreadID, CPU, Mdl, Length, Buf, caller\n"
        "Contoso.MdlTracer/IoFreeMdl/win:Info, TimeStamp, Process Name ( PID), ThreadID, CPU, Mdl\n"
        "Contoso.MdlTracer/Hello/win:Info, TimeStamp, Process Name ( PID), ThreadID, CPU, Mdl\n"
        "EndHeader\n"
        "Contoso.MdlTracer/AllocMdl/win:Info, 1, a.exe (1), 2, 0, 0x10, 4096, 0x7000, d.sys+0x1\n"
        "Contoso.MdlTracer/IoFreeMdl/win:Info, 2, a.exe (1), 2, 0, 0x10\n"
        "Contoso.MdlTracer/Hello/win:Info, 3, a.exe (1), 2, 0, 0x10\n"
    )
    alloc, free, hello = read_file(path, options=ReadOptions(field_map=fmap)).table.to_pylist()
    assert (alloc["event"], alloc["mdl"], alloc["size"], alloc["va"], alloc["caller"]) == (
        "IoAllocateMdl", 16, 4096, 0x7000, "d.sys+0x1",
    )
    assert (free["event"], free["mdl"]) == ("IoFreeMdl", 16)  # unlisted but canonical: own name
    assert hello["event"] == "Contoso.MdlTracer/Hello" and hello.get("mdl") is None
