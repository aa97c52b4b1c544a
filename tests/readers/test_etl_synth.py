"""ETL files written by our writer (synth/etl_writer.py) read back to their rows.

The writer's layouts are checked against dissect.etl and etl-parser in tests/synth; here
the reader must give back exactly the canonical rows the writer was given, except where
ETL cannot carry a value (docs/etl.md "What ETL cannot carry": cpu is never null,
Process v4 always states wow64, CSwitch new_pid/old_pid are not in the format).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from traceanalyzer.model.schema import COLUMNS

from traceanalyzer.readers import pick_reader, read_file
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import events as etl_events
from traceanalyzer.readers.etl import read_etl
from traceanalyzer.synth import etl_calls, etl_writer
from traceanalyzer.synth import tracelogging as synth_tl
from traceanalyzer.synth.etl_writer import write_etl

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
ADDR = 0xFFFFC30A4B2F1000
DRIVER = "\\SystemRoot\\System32\\drivers\\mydriver.sys"


def _rows() -> list[dict]:
    return [
        dict(time_ns=0, event="ProcessRundown", cpu=0, pid=4, parent_pid=0, image="System", wow64=0),
        dict(time_ns=7, event="ProcessRundown", cpu=0, pid=1300, parent_pid=500, image="app32.exe", wow64=1),
        dict(time_ns=10, event="ThreadRundown", cpu=0, pid=1300, tid=5678),
        dict(time_ns=21, event="ImageLoad", cpu=1, pid=4, tid=8, image=DRIVER, base=0xFFFFF80012340000,
             image_size=0x20000),
        dict(time_ns=1001, event="CSwitch", cpu=0, new_tid=5678, old_tid=0),
        dict(time_ns=1003, event="CSwitch", cpu=2, new_tid=8, old_tid=0),
        dict(time_ns=2000, event="IoAllocateMdl", cpu=0, pid=1300, tid=5678, mdl=ADDR, va=0x7FF612340000,
             size=8192, irp=0xFFFFC30A00001000, caller="mydriver.sys+0x1a2b", status="0x00000000"),
        dict(time_ns=3000, event="MmProbeAndLockPages", cpu=0, pid=1300, tid=5678, mdl=ADDR,
             access_mode="UserMode", operation="IoWriteAccess"),
        dict(time_ns=4000, event="MmMapLockedPagesSpecifyCache", cpu=1, pid=1300, tid=5678, mdl=ADDR,
             access_mode="KernelMode", cache_type="MmCached", mapped_va=0xFFFFA0001F0000,
             priority=0x40000010, bugcheck_on_failure=0, return_address=0xFFFFF80012341A2B),
        dict(time_ns=4500, event="KeStackAttachProcess", cpu=2, pid=4, tid=8, target_pid=1300, irql=2),
        dict(time_ns=6500, event="MmAllocateMappingAddress", cpu=2, pid=4, tid=8, tag=0x6C644D4D,
             mapped_va=0xFFFFA00000000000, size=4096),
        dict(time_ns=7000, event="ThreadEnd", cpu=0, pid=1300, tid=5678),
        dict(time_ns=8000, event="ProcessEnd", cpu=0, pid=1300, tid=5678, parent_pid=500, image="app32.exe", wow64=1),
        dict(time_ns=9000, event="ImageUnload", cpu=1, pid=4, tid=8, image=DRIVER, base=0xFFFFF80012340000,
             image_size=0x20000),
        dict(time_ns=9500, event="ProcessStart", cpu=0, pid=2000, parent_pid=1300, image="child.exe", wow64=0),
        dict(time_ns=9600, event="ThreadStart", cpu=0, pid=2000, tid=2004),
        dict(time_ns=9700, event="IoCompleteRequest", cpu=0, pid=2000, tid=2004, irp=0xFFFFC30A00001000),
    ]


def _table(rows: list[dict]) -> pa.Table:
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    return pa.Table.from_pylist(rows, schema=pa.schema([(c, COLUMNS[c]) for c in names]))


def _frame(table) -> pd.DataFrame:
    df = table.to_pandas()
    df["event"] = df["event"].astype(str)
    return df.sort_values(["time_ns", "event"], kind="stable").reset_index(drop=True)


def _records(table: pa.Table) -> list[dict]:
    """Non-null values of each row (exact integers: no pandas float round trip), by time, event."""
    rows = [{k: v for k, v in r.items() if v is not None} for r in table.to_pylist()]
    return sorted(rows, key=lambda r: (r["time_ns"], r["event"]))


@pytest.mark.parametrize("pointer_size", [8, 4])
def test_every_event_kind_round_trips(tmp_path: Path, pointer_size: int) -> None:
    rows = _rows()
    if pointer_size == 4:  # 32-bit layouts: addresses must fit 32 bits
        for r in rows:
            for k in ("mdl", "va", "irp", "mapped_va", "base", "return_address"):
                if k in r:
                    r[k] &= 0xFFFFFFFF
    path = tmp_path / "t.etl"
    start = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    write_etl(_table(rows), path, pointer_size=pointer_size, perf_freq=1_000_000_000, start_time=start,
              buffer_size=4096)
    result = read_etl(path, ReadOptions())
    assert result.metadata["pointer_size"] == pointer_size
    assert result.metadata["start_time_utc"] == start.isoformat()
    assert _records(result.table) == sorted(rows, key=lambda r: (r["time_ns"], r["event"]))


def test_sample_traces_etl_equals_csv() -> None:
    """Every sample_traces/<name>.etl gives its .csv rows (cpu null in CSV -> CPU 0 in ETL;
    a process without wow64 in CSV -> 0 from the Process v4 Flags)."""
    pairs = [(p, p.with_suffix(".csv")) for p in sorted(SAMPLES.glob("*.etl"))]
    assert len(pairs) >= 20
    for etl, csv in pairs:
        got = _records(read_file(etl).table)
        want = _records(read_file(csv).table)
        for row in want:
            row.setdefault("cpu", 0)
            if row["event"] in ("ProcessStart", "ProcessEnd", "ProcessRundown"):
                row.setdefault("wow64", 0)
        assert got == want, etl.name


def test_cswitch_heavy_bulk_path(tmp_path: Path) -> None:
    n = 5000
    df = pd.DataFrame({
        "time_ns": [i * 100 for i in range(n)], "event": ["CSwitch"] * n, "cpu": [i % 3 for i in range(n)],
        "new_tid": [1000 + (i * 7) % 50 for i in range(n)], "old_tid": [1000 + (i * 11) % 50 for i in range(n)],
    })
    path = tmp_path / "cs.etl"
    write_etl(df, path, buffer_size=8192)
    got = _frame(read_etl(path, ReadOptions()).table)
    assert got["pid"].isna().all() and got["tid"].isna().all()  # CSwitch headers carry -1
    cols = ["time_ns", "cpu", "new_tid", "old_tid"]
    assert (got["event"] == "CSwitch").all()
    pd.testing.assert_frame_equal(got[cols].astype("int64"), df[cols].astype("int64"))


def test_bulk_and_per_event_tracelogging_paths_agree(tmp_path: Path, monkeypatch) -> None:
    n = 400
    rows = [dict(time_ns=i * 100, event=("IoAllocateMdl", "MmProbeAndLockPages")[i % 2], cpu=i % 2,
                 pid=100 + i % 3, tid=200 + i % 5, mdl=ADDR + 0x1000 * i,
                 **({"va": 0x10000 * i, "size": 4096 * (i % 7 + 1)} if i % 2 == 0
                    else {"access_mode": ("KernelMode", "UserMode")[i % 4 // 2], "operation": "IoReadAccess"}))
            for i in range(n)]
    path = tmp_path / "calls.etl"
    write_etl(_table(rows), path)
    bulk = _frame(read_etl(path, ReadOptions()).table)
    monkeypatch.setattr(etl_events, "BULK_MIN_EVENTS", 10**9)
    slow = _frame(read_etl(path, ReadOptions()).table)
    pd.testing.assert_frame_equal(bulk, slow)
    assert _records(read_etl(path, ReadOptions()).table) == rows


def test_driver_names_through_a_mapping_file(tmp_path: Path, monkeypatch) -> None:
    """A driver logging as provider "Contoso.MdlTracer" with its own event and field names."""
    renamed_fields = {"mdl": "MdlAddress", "va": "Buffer", "size": "Length"}
    renamed_events = {"IoAllocateMdl": "AllocMdl"}
    metadata = synth_tl.event_metadata

    def own_names(event: str, fields: list) -> bytes:
        return metadata(renamed_events.get(event, event), [(renamed_fields.get(n, n), t) for n, t in fields])

    monkeypatch.setattr(synth_tl, "event_metadata", own_names)
    monkeypatch.setattr(etl_calls, "PROVIDER_NAME", "Contoso.MdlTracer")
    monkeypatch.setattr(etl_calls, "PROVIDER_GUID", synth_tl.provider_guid("Contoso.MdlTracer"))
    monkeypatch.setattr(etl_writer, "BULK_CALLS", False)
    etl_calls._extended_items.cache_clear()
    rows = [dict(time_ns=100, event="IoAllocateMdl", cpu=0, pid=10, tid=11, mdl=ADDR, va=0x5000, size=8192),
            dict(time_ns=200, event="IoFreeMdl", cpu=0, pid=10, tid=11, mdl=ADDR)]
    path = tmp_path / "driver.etl"
    try:
        write_etl(_table(rows), path)
    finally:
        etl_calls._extended_items.cache_clear()
    unmapped = read_etl(path, ReadOptions())
    assert unmapped.table.num_rows == 0
    assert unmapped.stats.by_detail("unknown_events") == {"Contoso.MdlTracer/AllocMdl": 1, "Contoso.MdlTracer/IoFreeMdl": 1}
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"providers": [{
        "provider": "Contoso.MdlTracer", "events": {"AllocMdl": "IoAllocateMdl"},
        "fields": {"MdlAddress": "mdl", "Buffer": "va"}, "event_fields": {"AllocMdl": {"Length": "size"}},
    }]}))
    mapped = read_etl(path, ReadOptions(field_map=mapping))
    assert _records(mapped.table) == rows
    # the text readers' "events" form is the same map to the ETL reader (one FieldMap)
    events_form = {"events": [
        {"provider": "Contoso.MdlTracer", "event": "AllocMdl", "canonical": "IoAllocateMdl",
         "fields": {"MdlAddress": "mdl", "Buffer": "va", "Length": "size"}},
        {"provider": "Contoso.MdlTracer", "event": "*", "canonical": "*", "fields": {"MdlAddress": "mdl"}},
    ]}
    assert _records(read_etl(path, ReadOptions(extra={"field_map": events_form})).table) == rows


def test_bad_mapping_file_names_the_file(tmp_path: Path) -> None:
    from traceanalyzer.errors import TraceFormatError

    bad = tmp_path / "map.json"
    bad.write_text("{\"providers\": 3}")
    path = next(SAMPLES.glob("*.etl"))
    with pytest.raises(TraceFormatError, match="map.json"):
        read_etl(path, ReadOptions(field_map=bad))


def test_registry_picks_etl_by_content(tmp_path: Path) -> None:
    etl = next(SAMPLES.glob("*.etl"))
    assert pick_reader(etl).name == "etl"
    disguised = tmp_path / "trace.bin"
    disguised.write_bytes(etl.read_bytes())
    assert pick_reader(disguised).name == "etl"
    csv_as_etl = tmp_path / "trace.etl"
    csv_as_etl.write_text("time_ns,event\n0,CSwitch\n")
    assert pick_reader(csv_as_etl).name != "etl"


@pytest.mark.parametrize("clock, mhz, expect", [
    (1, 3000, lambda t: t),                 # QPC at PerfFreq = 1 GHz: ticks are ns
    (2, 3000, lambda t: t * 100),           # system time: 100 ns ticks whatever PerfFreq says
    (3, 3000, lambda t: round(t / 3)),      # CPU cycles at CpuSpeedInMHz = 3000
])
def test_clock_types_of_the_logfile_header(tmp_path: Path, clock: int, mhz: int, expect) -> None:
    rows = [dict(time_ns=t, event="CSwitch", cpu=0, new_tid=1, old_tid=2) for t in (0, 1, 5, 1000, 123_456_789)]
    path = tmp_path / "clock.etl"
    write_etl(_table(rows), path, perf_freq=1_000_000_000)
    data = bytearray(path.read_bytes())
    payload = 0x48 + 0x20  # buffer header, then the logfile-header record's SYSTEM header
    data[payload + 0x34:payload + 0x38] = mhz.to_bytes(4, "little")     # CpuSpeedInMHz
    data[payload + 0x110:payload + 0x114] = clock.to_bytes(4, "little")  # ReservedFlags
    path.write_bytes(bytes(data))
    result = read_etl(path, ReadOptions())
    assert sorted(result.table.column("time_ns").to_pylist()) == [expect(r["time_ns"]) for r in rows]
    assert result.metadata["clock_type"] == {1: "QPC", 2: "SystemTime", 3: "CPUCycle"}[clock]


def test_batches_give_the_same_rows_and_stats_as_read_etl(tmp_path: Path, monkeypatch) -> None:
    from traceanalyzer.readers.etl import EtlBatches
    from traceanalyzer.readers.etl import reader as etl_reader

    rows = [dict(time_ns=i * 10, event="CSwitch", cpu=i % 4, new_tid=i % 9, old_tid=i % 7) for i in range(3000)]
    rows += [dict(time_ns=i * 10 + 5, event="IoFreeMdl", cpu=i % 4, pid=4, tid=8, mdl=ADDR + i) for i in range(0, 3000, 50)]
    rows += [dict(time_ns=20_000, event="ProcessStart", cpu=1, pid=99, parent_pid=4, image="x.exe", wow64=0)]
    path = tmp_path / "b.etl"
    write_etl(_table(rows), path, buffer_size=2048, perf_freq=1_000_000_000)
    monkeypatch.setattr(etl_reader, "CHUNK_RECORDS", 500)  # many batches
    whole = read_etl(path, ReadOptions())
    batches = EtlBatches(path, ReadOptions())
    tables = list(batches)
    assert len(tables) > 3
    assert all(t.schema.names[:len(COLUMNS)] == list(COLUMNS) for t in tables)
    assert all(t.schema.names[-1] == "stream_order" for t in tables)  # (see test_etl_tie_order)
    assert _records(pa.concat_tables(tables).drop_columns(["stream_order"])) == _records(whole.table) == sorted(rows, key=lambda r: (r["time_ns"], r["event"]))
    assert batches.metadata == whole.metadata
    assert {k: e.value for k, e in batches.stats.entries.items()} == {k: e.value for k, e in whole.stats.entries.items()}


def test_sample_traces_etl_and_csv_give_identical_findings() -> None:
    import traceanalyzer as ta
    from traceanalyzer.analysis import analyze

    pairs = sorted(SAMPLES.glob("*.etl"))
    assert len(pairs) >= 20
    some = 0
    for etl in pairs:
        ours = analyze(ta.load(etl)).findings.reset_index(drop=True)
        ref = analyze(ta.load(etl.with_suffix(".csv"))).findings.reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, ref, check_dtype=False, obj=etl.name)
        some += len(ref)
    assert some > 0  # the samples do have findings


def test_a_process_without_image_is_named_alike_from_csv_and_etl(tmp_path: Path) -> None:
    """A rundown of pid 4 without an image: CSV leaves it empty (null), the ETL Process
    record holds an empty ImageFileName; both are System (4) in every finding column."""
    import traceanalyzer as ta
    from traceanalyzer.analysis import analyze

    csv = tmp_path / "t.csv"
    csv.write_text(
        "time_ns,event,cpu,pid,tid,mdl,va,size,irp,access_mode,operation,irql\n"
        "0,ProcessRundown,,4,,,,,,,,\n"
        "1,ThreadRundown,,4,8,,,,,,,\n"
        "10,IoAllocateMdl,0,4,8,0xffffc30a40000100,0xffffd28f10000000,8192,0xffffc30a55550000,,,0\n"
        "20,MmProbeAndLockPages,0,4,8,0xffffc30a40000100,,,,KernelMode,IoReadAccess,0\n"
        "30,MmUnlockPages,0,4,8,0xffffc30a40000100,,,,,,0\n"
        "40,IoFreeMdl,0,4,8,0xffffc30a40000100,,,,,,0\n")
    write_etl(read_file(csv).table, tmp_path / "t.etl", perf_freq=1_000_000_000)
    ref = analyze(ta.load(csv)).findings.reset_index(drop=True)
    ours = analyze(ta.load(tmp_path / "t.etl")).findings.reset_index(drop=True)
    assert len(ref) >= 2 and set(ref["process"]) == {"System"}
    pd.testing.assert_frame_equal(ours, ref, check_dtype=False)
