"""write_etl: byte layout against real Windows ETL files, determinism, buffers, errors."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from helpers.etl_oracles import dissect_records, etlparser_records, record_marker, scenario_frame, scenario_rows
from traceanalyzer.errors import TraceError
from traceanalyzer.synth.etl_bench import write_cswitch_heavy_etl
from traceanalyzer.synth.etl_writer import write_etl
from traceanalyzer.synth.tracelogging import provider_guid

from helpers.real_traces import in_repo_trace, real_traces_root

REAL = real_traces_root()
#: Header buffer + buffers 1 and 24 of ShutdownPerfDiagLogger.etl (tests/data/real/SOURCES.md):
#: every kernel hook the writer emits occurs in them.
KERNEL_REAL = in_repo_trace("airbus-cert__etl-parser/ShutdownPerfDiagLogger.buffers-0-1-24.etl")
TL_REAL = REAL / "jtmoon79__super-speedy-syslog-searcher" / "WindowsUpdate.20251008.140245.443.8.etl"


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("etl") / "ours.etl"
    write_etl(scenario_frame(), path)
    return path


def _buffers(path: Path) -> list[bytes]:
    data = path.read_bytes()
    size = struct.unpack_from("<I", data, 0)[0]
    return [data[i:i + size] for i in range(0, len(data), size)]


def _records(buf: bytes) -> list[tuple[int, int, bytes]]:
    """(header type, size, record bytes) of every record in a buffer."""
    filled = struct.unpack_from("<I", buf, 0x30)[0]
    out, pos = [], 0x48
    while pos < filled:
        htype, size = record_marker(buf, pos)
        out.append((htype, size, buf[pos:pos + size]))
        pos += (size + 7) & ~7
    assert pos == filled, "records end exactly at the filled length"
    return out


def _buffer_problems(path: Path, zero_gaps: bool = True) -> list[str]:
    """Invariants every real ETL buffer here satisfies (checked on real files too; the
    kernel leaves stale bytes in alignment gaps of later buffers, we write zeros)."""
    problems = []
    buffers = _buffers(path)
    for i, buf in enumerate(buffers):
        size, saved = struct.unpack_from("<II", buf, 0)
        filled = struct.unpack_from("<I", buf, 0x30)[0]
        flags, btype = struct.unpack_from("<HH", buf, 0x34)
        if size != len(buf) or saved != filled or filled > size:
            problems.append(f"buffer {i}: size/saved/filled {size}/{saved}/{filled}")
        if not flags & 0x20:
            problems.append(f"buffer {i}: PROC_INDEX flag missing")
        if (btype == 4) != (i == 0):
            problems.append(f"buffer {i}: type {btype}")
        if set(buf[filled:]) - {0xFF}:
            problems.append(f"buffer {i}: tail not 0xFF")
        pos = 0x48
        for _htype, rsize, _rec in _records(buf):
            gap = buf[pos + rsize:pos + ((rsize + 7) & ~7)]
            if zero_gaps and set(gap) - {0}:
                problems.append(f"buffer {i}: alignment gap not zero")
            pos += (rsize + 7) & ~7
    return problems


# --- provider GUID -------------------------------------------------------------------------

@pytest.mark.parametrize("real", [
    REAL / "jtmoon79__super-speedy-syslog-searcher" / "waasmedic.20251005_113019_195.etl",
    REAL / "microsoft__perfview" / "SelfDescribingSingleEvent.etl",
])
def test_provider_guid_is_the_name_hash_real_providers_use(real):
    _, records = dissect_records(real, limit=40)
    event = next(r for r in records if r["header"] == "EventHeader" and 0x0C in r["extensions"])
    name = event["extensions"][0x0C].ProviderName.decode()
    assert provider_guid(name) == uuid.UUID(bytes_le=event["provider"].bytes)


def test_provider_guid_of_eventsource_in_tracelogging_tester():
    # SOURCES.md: C# EventSource "CSharpTraceLoggingEventSource" logs as a214eced-...
    assert provider_guid("CSharpTraceLoggingEventSource") == uuid.UUID("a214eced-be64-5e23-fac1-1d7b9052efa4")
    assert provider_guid("mdltrace") == provider_guid("MdlTrace")


# --- layout against real files ------------------------------------------------------------

def test_buffers_keep_the_invariants_of_real_files(ours):
    assert _buffer_problems(KERNEL_REAL, zero_gaps=False) == []  # holds on Windows' output
    assert _buffer_problems(TL_REAL, zero_gaps=False) == []
    assert _buffer_problems(ours) == []


def test_logfile_header_record_has_the_real_layout(ours):
    real_header, _ = dissect_records(KERNEL_REAL, limit=1)
    header, records = dissect_records(ours)
    for buf, name in ((_buffers(KERNEL_REAL)[0], "PerfDiag Logger"), (_buffers(ours)[0], "NT Kernel Logger")):
        htype, size, rec = _records(buf)[0]
        assert (htype, rec[6:8]) == (0x02, b"\0\0")  # SYSTEM64, group 0 type 0
        # names follow the 0x118-byte TRACE_LOGFILE_HEADER (0x20 record header before it)
        assert rec[0x20 + 0x118:].decode("utf-16-le").startswith(name + "\0")
    assert (header.perf_freq, header.pointer_size, header.header.ReservedFlags) == (10_000_000, 8, 1)
    assert header.header.ReservedFlags == real_header.header.ReservedFlags  # QPC clock
    assert header.header.Version == real_header.header.Version
    assert header.logger_name == "NT Kernel Logger"
    assert header.log_filename == "C:\\Traces\\ours.etl"
    assert header.header.NumberOfProcessors == 3


def _hooks(path: Path) -> dict[tuple[int, int, int], set[int]]:
    """(header type, group, type) -> record sizes, for kernel records."""
    out: dict[tuple[int, int, int], set[int]] = {}
    for buf in _buffers(path)[1:]:
        for htype, size, rec in _records(buf):
            if htype in (0x02, 0x04, 0x11):
                out.setdefault((htype, rec[7], rec[6]), set()).add(size)
    return out


def test_kernel_records_use_the_headers_and_hooks_windows_uses(ours):
    real, mine = _hooks(KERNEL_REAL), _hooks(ours)
    for key in [(0x11, 0x03, 3),   # Process DCStart: PERFINFO64
                (0x02, 0x03, 1) if (0x02, 0x03, 1) in real else (0x02, 0x03, 2),  # Process Start/End
                (0x02, 0x05, 3), (0x02, 0x05, 1), (0x02, 0x05, 2),  # Thread DCStart/Start/End
                (0x02, 0x03, 10),  # Image load: hook 0x030A
                (0x02, 0x14, 2)]:  # Image unload
        assert key in real and key in mine, key
    # Thread v3 records of unnamed threads are 106 bytes (0x20 header + 72 + empty ThreadName)
    assert 106 in real[(0x02, 0x05, 3)] and mine[(0x02, 0x05, 3)] == {106}
    assert mine[(0x04, 0x05, 36)] == {48}  # CSwitch: COMPACT64 + 24-byte v2 payload


def test_tracelogging_records_have_the_real_layout(ours):
    def first_event(path):
        for buf in _buffers(path)[1:]:
            for htype, size, rec in _records(buf):
                if htype == 0x13:
                    return rec
        raise AssertionError("no EVENT_HEADER record")

    for rec in (first_event(TL_REAL), first_event(ours)):
        flags, = struct.unpack_from("<H", rec, 4)
        assert flags == 0x0001  # EXTENDED_INFO
        assert rec[0x2B] == 11  # TraceLogging channel
        items, pos = [], 0x50
        while True:
            size, ext, linkage, data = struct.unpack_from("<HHHH", rec, pos)
            assert size % 8 == 0 and 8 + data <= size
            items.append((ext, linkage))
            pos += size
            if not linkage:
                break
        assert items == [(0x0C, 1), (0x0B, 0)]  # provider traits, then the event schema


# --- behaviour ----------------------------------------------------------------------------

def test_same_input_same_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_etl(scenario_frame(), tmp_path / "a" / "t.etl", buffer_size=2048)
    write_etl(pa.Table.from_pandas(scenario_frame()), tmp_path / "b" / "t.etl", buffer_size=2048)
    assert (tmp_path / "a" / "t.etl").read_bytes() == (tmp_path / "b" / "t.etl").read_bytes()


def _per_cpu_stamps(path) -> dict[int, list[int]]:
    per_cpu: dict[int, list[int]] = {}
    for rec in dissect_records(path)[1][1:]:
        per_cpu.setdefault(rec["cpu"], []).append(rec["filetime"])
    return per_cpu


def test_each_cpu_logs_its_rows_in_the_order_given(tmp_path):
    """The writer does not sort: reversed input is a reversed stream on every CPU (equal
    times keep the given order; a step back in time stays one), as dissect.etl reads it."""
    frame = scenario_frame()
    write_etl(frame, tmp_path / "a.etl", perf_freq=1_000_000_000)
    write_etl(frame.iloc[::-1].reset_index(drop=True), tmp_path / "b.etl", perf_freq=1_000_000_000)
    forward, backward = _per_cpu_stamps(tmp_path / "a.etl"), _per_cpu_stamps(tmp_path / "b.etl")
    assert forward.keys() == backward.keys() and len(forward) > 1
    for cpu, stamps in forward.items():
        assert len(stamps) > 1 and backward[cpu] == stamps[::-1], cpu


def test_cpu_streams_are_time_ordered_and_interleaved(tmp_path):
    path = tmp_path / "heavy.etl"
    summary = write_cswitch_heavy_etl(path, 6000, cpus=3, buffer_size=1024, call_every=7)
    _, records = dissect_records(path)
    assert len(records) == summary["events"] + 1 == 6000 + 16 + 16 * 8 + 1
    assert sum(r["symbol"] == "Thread/CSwitch" for r in records) == 6000 - 6000 // 7
    per_cpu: dict[int, list[int]] = {}
    for rec in records[1:]:
        per_cpu.setdefault(rec["cpu"], []).append(rec["filetime"])
    assert all(times == sorted(times) for times in per_cpu.values())
    order = [r["cpu"] for r in records[1:]]
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches > len(_buffers(path)) // 2, "buffers of the CPUs interleave in the file"
    stamps = [struct.unpack_from("<Q", b, 0x10)[0] for b in _buffers(path)[1:]]
    assert stamps == sorted(stamps), "buffers are flushed in time order"


def test_time_is_rounded_to_ticks_and_counted(tmp_path):
    rows = [dict(time_ns=0, event="KeStackAttachProcess", cpu=0, pid=4, tid=8, target_pid=1),
            dict(time_ns=1234, event="KeStackAttachProcess", cpu=0, pid=4, tid=8, target_pid=2)]
    coarse = write_etl(scenario_frame(rows), tmp_path / "c.etl")
    fine = write_etl(scenario_frame(rows), tmp_path / "f.etl", perf_freq=1_000_000_000)
    assert (coarse["time_rounded"], fine["time_rounded"]) == (1, 0)
    for path, want in ((tmp_path / "c.etl", 12), (tmp_path / "f.etl", 1234)):
        stamps = [r["timestamp"] for r in etlparser_records(path)]
        assert stamps[1] - stamps[0] == want


def test_unknown_events_and_missing_ids(tmp_path):
    rows = [dict(time_ns=0, event="MyDriverTick", cpu=None, pid=None, tid=None, status="0x1"),
            dict(time_ns=100, event="IoFreeMdl", cpu=1, pid=10, tid=None, mdl=0x1000)]
    summary = write_etl(scenario_frame(rows), tmp_path / "u.etl")
    assert summary["cpu_missing"] == 1
    _, records = dissect_records(tmp_path / "u.etl")
    tick = next(r for r in records if r["header"] == "EventHeader" and b"MyDriverTick" in bytes(r["extensions"][0x0B].EventSchema))
    assert (tick["cpu"], tick["tid"], tick["pid"]) == (0, 0xFFFFFFFF, 0xFFFFFFFF)
    free = next(r for r in records if r["header"] == "EventHeader" and r is not tick)
    assert (free["cpu"], free["tid"], free["pid"]) == (1, 0xFFFFFFFF, 10)


def test_empty_input_gives_a_header_only_file(tmp_path):
    summary = write_etl(scenario_frame([dict(time_ns=0, event="CSwitch")]).iloc[:0], tmp_path / "e.etl")
    header, records = dissect_records(tmp_path / "e.etl")
    assert summary["buffers"] == header.buffers_written == 1 and len(records) == 1


@pytest.mark.parametrize("rows, options, message", [
    ([dict(time_ns=0, event="MmMapLockedPagesSpecifyCache", cpu=0, cache_type="MmFoo")], {}, "cache_type 'MmFoo'"),
    ([dict(time_ns=0, event="CSwitch", cpu=5, new_tid=1, old_tid=2)], {"cpus": 4}, "cpu 5"),
    ([dict(time_ns=-5, event="CSwitch", cpu=0)], {}, "negative time_ns"),
    ([dict(time_ns=0, event="IoFreeMdl", cpu=0, mdl=0xFFFFC30A4B2F1000)], {"pointer_size": 4}, "32 bits"),
    ([dict(time_ns=0, event="IoFreeMdl", cpu=0, caller="x" * 2000)], {"buffer_size": 1024}, "does not fit"),
])
def test_bad_input_raises_trace_error_naming_the_file(tmp_path, rows, options, message):
    with pytest.raises(TraceError) as info:
        write_etl(scenario_frame(rows), tmp_path / "bad.etl", **options)
    assert "bad.etl" in str(info.value) and message in str(info.value)


def test_scenario_covers_every_kernel_and_call_kind():
    kinds = {r["event"] for r in scenario_rows()}
    assert {"ProcessStart", "ProcessEnd", "ProcessRundown", "ThreadStart", "ThreadEnd",
            "ThreadRundown", "CSwitch", "ImageLoad", "ImageUnload", "IoCompleteRequest"} <= kinds


def test_bulk_calls_are_byte_identical_to_one_by_one(tmp_path, monkeypatch):
    from traceanalyzer.synth import etl_writer

    def both(name, write):
        write(tmp_path / "bulk" / name)
        monkeypatch.setattr(etl_writer, "BULK_CALLS", False)
        write(tmp_path / "rows" / name)
        monkeypatch.setattr(etl_writer, "BULK_CALLS", True)
        return (tmp_path / "bulk" / name).read_bytes(), (tmp_path / "rows" / name).read_bytes()

    (tmp_path / "bulk").mkdir()
    (tmp_path / "rows").mkdir()
    a, b = both("heavy.etl", lambda p: write_cswitch_heavy_etl(p, 3000, cpus=2, call_every=3, buffer_size=2048))
    assert a == b
    x86 = [dict(time_ns=100 * i, event=("IoAllocateMdl", "MmProbeAndLockPages")[i % 2], cpu=i % 2,
                pid=500, tid=None if i % 3 else 504, mdl=0x8A001000 + 0x100 * (i // 2),
                size=4096 if i % 2 == 0 else None, access_mode="KernelMode" if i % 2 else None,
                operation="IoReadAccess" if i % 2 else None) for i in range(40)]
    a, b = both("x86.etl", lambda p: write_etl(scenario_frame(x86), p, pointer_size=4, hex_addresses=False))
    assert a == b
    a, b = both("scenario.etl", lambda p: write_etl(scenario_frame(), p))
    assert a == b


def test_loss_counters_go_into_the_logfile_header(tmp_path):
    write_etl(scenario_frame(), tmp_path / "l.etl", events_lost=41, buffers_lost=2)
    header, _ = dissect_records(tmp_path / "l.etl", limit=1)
    assert (header.header.EventsLost, header.header.BufferLost) == (41, 2)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_step_back_in_time_on_one_cpu_survives(tmp_path, chunked):
    """Within a chunk or across chunks, a CPU that goes back in time is written as given
    (its buffers keep their stream order), so readers see the disorder."""
    from traceanalyzer.readers.base import ReadOptions
    from traceanalyzer.readers.etl import read_etl

    times = [5000, 6000, 1000, 7000] * 300  # 1200 records: several 1 KiB buffers per CPU
    frame = scenario_frame([dict(time_ns=t + 100 * (i // 4), event="CSwitch", cpu=i % 2, new_tid=1, old_tid=2)
                            for i, t in enumerate(times)])
    events = [frame.iloc[:601], frame.iloc[601:]] if chunked else frame
    write_etl(events, tmp_path / "t.etl", buffer_size=1024, perf_freq=1_000_000_000)
    per_cpu = _per_cpu_stamps(tmp_path / "t.etl")
    for cpu in (0, 1):
        given = frame[frame["cpu"] == cpu]["time_ns"].tolist()
        assert [100 * (t - per_cpu[cpu][0]) for t in per_cpu[cpu]] == [t - given[0] for t in given]  # FILETIME
    result = read_etl(tmp_path / "t.etl", ReadOptions())
    # CPU 0 logs 5000, 1000, 5100, 1100, ... (300 steps back), CPU 1 6000, 7000, 6100, ... (299)
    assert result.stats.total("time_disorder") == 599


def test_trace_time_disorder_fires_alike_on_csv_and_its_etl(tmp_path):
    """A scenario that goes back in time on one CPU survives the round trip through synth."""
    import pandas as pd

    import traceanalyzer as ta
    from traceanalyzer.analysis import analyze
    from traceanalyzer.readers.registry import read_file
    from traceanalyzer.synth.scenario import Scenario

    s = Scenario()
    app = s.process(pid=300, image="app.exe", tid=304, cpu=1)
    s.at(2_000_000).cswitch(1, new=app)
    s.at(3_000_000).call("IoAllocateMdl", app, mdl=0xFFFFC30A60000000, va=0x1F000000000, size=4096)
    s.at(2_500_000).call("IoFreeMdl", app, mdl=0xFFFFC30A60000000)  # back in time on cpu 1
    s.at(4_000_000).cswitch(0, new=app)
    csv = s.to_csv(tmp_path / "s.csv")
    write_etl(read_file(csv).table, tmp_path / "s.etl", perf_freq=10_000_000)
    found = {}
    for path in (csv, tmp_path / "s.etl"):
        df = analyze(ta.load(path)).findings
        found[path.suffix] = df[df["rule"].astype(str) == "TRACE_TIME_DISORDER"].reset_index(drop=True)
    assert len(found[".csv"]) == 1
    pd.testing.assert_frame_equal(found[".etl"], found[".csv"], check_dtype=False)
