"""DbgID_RSDS (KernelTraceControl's ImageID class, opcode 36): which PDB build each image
is, as xperf and wpr write it when they merge a trace. Read as ``ImageDebugId`` rows,
checked against dissect.etl's walk of the same records (its header, our payload layout
parsed here with struct) on a real merged trace and on the writer's output.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pyarrow as pa

import traceanalyzer as ta
from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.synth.etl_writer import write_etl
from helpers.etl_oracles import dissect_records

IMAGE_ID = "b3e675d7-2554-4f18-830b-2762732560de"
#: PerfView's net.4.5.2.x64.etl cut to its logfile-header buffer and its first data buffer
#: (tests/data/real/SOURCES.md): 60 image loads of a Windows build 9200 machine, each with its PDB.
REAL = Path(__file__).parents[1] / "data" / "real" / "microsoft__perfview" / "net.4.5.2.x64.buffers-0-1.etl"


def _dissect_debug_ids(path: Path) -> list[tuple[int, int, str, str]]:
    """(base, pid, debug id, PDB name) of every DbgID_RSDS record dissect.etl walks."""
    _header, records = dissect_records(path)
    out = []
    for rec in records:
        if str(rec["provider"]) != IMAGE_ID or rec["version"] & 0xFF != 36:  # class type 36
            continue
        p = rec["payload"]
        base, pid = struct.unpack_from("<QI", p, 0)
        guid = uuid.UUID(bytes_le=p[12:28])
        (age,) = struct.unpack_from("<I", p, 28)
        out.append((base, pid, f"{guid}-{age:x}", p[32:p.index(b"\0", 32)].decode()))
    return out


def _ours(path: Path) -> list[tuple[int, int, str, str]]:
    images = ta.load(path).table("images").to_pandas()
    rows = images[images["event"] == "ImageDebugId"]
    return [(int(r.base), int(r.pid), r.debug_id, r.image) for r in rows.itertuples()]


def test_a_real_merged_trace_names_the_pdb_of_every_image() -> None:
    ours = _ours(REAL)
    assert len(ours) == 60 and ours == _dissect_debug_ids(REAL)
    kernel = [r for r in ours if r[3] == "ntkrnlmp.pdb"]
    assert kernel == [(0xFFFFF80021489000, 0, "72482100-1c1c-4a03-aed8-c4c71c2e8d1d-2", "ntkrnlmp.pdb")]
    images = ta.load(REAL).table("images").to_pylist()
    loads = {r["base"]: r["image"] for r in images if r["event"] == "ImageLoad"}
    assert set(b for b, *_ in ours) == set(loads)  # one per image
    assert loads[kernel[0][0]].endswith("ntoskrnl.exe")


def test_the_writer_writes_what_dissect_and_the_reader_read(tmp_path: Path) -> None:
    base = 0xFFFFF80012340000
    rows = [dict(time_ns=0, event="ImageLoad", pid=0, base=base, image_size=0x10000,
                 image="\\SystemRoot\\System32\\drivers\\mydriver.sys"),
            dict(time_ns=0, event="ImageDebugId", pid=0, base=base, image="mydriver.pdb",
                 debug_id="40b3ba70-f454-5d97-4c4c-44205044422e-1"),
            dict(time_ns=100, event="ImageDebugId", pid=1234, base=0x7FF612340000, image="app.pdb",
                 debug_id="0a0b0c0d-0001-0002-0304-05060708090a-1f")]
    cols = ("time_ns", "event", "pid", "base", "image_size", "image", "debug_id")
    table = pa.table({c: pa.array([r.get(c) for r in rows], COLUMNS[c]) for c in cols})
    path = tmp_path / "t.etl"
    write_etl(table, path)
    expected = [(r["base"], r["pid"], r["debug_id"], r["image"]) for r in rows[1:]]
    assert _dissect_debug_ids(path) == expected
    assert _ours(path) == expected


def test_the_writer_takes_a_debug_id_in_symbolics_form(tmp_path: Path) -> None:
    """symbolic writes an age-0 build as its GUID alone; the writer reads that form too
    (it took the GUID's last group for the age), and the reader writes ``-0``."""
    guid = "40b3ba70-f454-5d97-4c4c-44205044422e"
    table = pa.table({"time_ns": [0, 0], "event": ["ImageDebugId"] * 2, "pid": pa.array([0, 0], COLUMNS["pid"]),
                      "base": pa.array([0xFFFFF80012340000, 0xFFFFF80012350000], COLUMNS["base"]),
                      "image": ["a.pdb", "b.pdb"], "debug_id": [guid, guid.replace("-", "").upper() + "1A"]})
    path = tmp_path / "t.etl"
    write_etl(table, path)
    assert [r[2] for r in _ours(path)] == [f"{guid}-0", f"{guid}-1a"]


def test_a_build_record_without_its_debug_id_is_not_written(tmp_path: Path) -> None:
    """An ImageDebugId row with a null or NaN debug_id has no build to record: the writer
    writes no DbgID_RSDS record for it (it refused the whole file) and counts it."""
    import pandas as pd

    base = 0xFFFFF80012340000
    frame = pd.DataFrame({"time_ns": [0, 0, 5], "event": ["ImageLoad", "ImageDebugId", "ImageDebugId"],
                          "pid": [0, 0, 0], "base": pd.array([base] * 3, "UInt64"),
                          "image_size": [0x10000, None, None],
                          "image": ["\\SystemRoot\\mydriver.sys", "mydriver.pdb", "mydriver.pdb"],
                          "debug_id": [float("nan")] * 3})
    arrow = pa.table({"time_ns": [0, 0], "event": ["ImageLoad", "ImageDebugId"],
                      "base": pa.array([base] * 2, COLUMNS["base"]),
                      "image_size": pa.array([0x10000, None], COLUMNS["image_size"]),
                      "image": ["\\SystemRoot\\mydriver.sys", "mydriver.pdb"],
                      "debug_id": pa.array([None, None], pa.string())})
    for n, events in enumerate((frame, arrow, arrow.drop_columns(["debug_id"]))):
        path = tmp_path / f"t{n}.etl"
        summary = write_etl(events, path)
        assert summary["debug_id_missing"] == len(events) - 1, n
        assert summary["events_by_name"] == {"ImageLoad": 1} and _dissect_debug_ids(path) == []
        assert ta.load(path).table("images").column("event").to_pylist() == ["ImageLoad"]


def test_a_payload_that_does_not_fit_is_damage_not_a_build(tmp_path: Path, monkeypatch) -> None:
    """A DbgID_RSDS payload is ImageBase (the trace's pointer size), ProcessId, GUID, Age
    and the NUL-terminated PDB name that ends it. One cut inside the name, or with bytes
    after it, is counted (truncated_records) instead of read as a shorter name; a header
    whose pointer size is not the trace's does not shift the fields."""
    from traceanalyzer.synth import etl_kernel, etl_writer

    written = etl_kernel.debug_id_record
    debug_id = "40b3ba70-f454-5d97-4c4c-44205044422e-1"

    def read_back(name: str, change, pointer_size: int = 8, base: int = 0xFFFFF80012340000):
        def record(event, ptr, qpc, row):
            rec = change(written(event, ptr, qpc, row))
            return struct.pack("<H", len(rec)) + rec[2:]  # its header's Size
        monkeypatch.setitem(etl_writer._KERNEL_BUILDERS, "ImageDebugId", record)
        table = pa.table({"time_ns": [0], "event": ["ImageDebugId"], "pid": pa.array([0], COLUMNS["pid"]),
                          "base": pa.array([base], COLUMNS["base"]), "image": ["mydriver.pdb"],
                          "debug_id": [debug_id]})
        write_etl(table, tmp_path / name, pointer_size=pointer_size)
        trace = ta.load(tmp_path / name)
        return _ours(tmp_path / name), sum(trace.stats.by_detail("truncated_records").values())

    for name, change in (("cut", lambda rec: rec[:-5]), ("unterminated", lambda rec: rec[:-1]),
                         ("trailing", lambda rec: rec + b"\1\2\3")):
        assert read_back(f"{name}.etl", change) == ([], 1), name
    header_type = 2  # byte 2 of a full header: 0x0A 32-bit, 0x14 64-bit pointers
    as_32 = read_back("h32.etl", lambda rec: rec[:header_type] + b"\x0a" + rec[header_type + 1:])
    assert as_32 == ([(0xFFFFF80012340000, 0, debug_id, "mydriver.pdb")], 0)
    as_64 = read_back("h64.etl", lambda rec: rec[:header_type] + b"\x14" + rec[header_type + 1:],
                      pointer_size=4, base=0x80340000)
    assert as_64 == ([(0x80340000, 0, debug_id, "mydriver.pdb")], 0)
