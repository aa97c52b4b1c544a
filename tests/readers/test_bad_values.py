"""Numbers are never wrapped (issue 10 item 4): in every reader an out-of-range or
non-numeric cell is null and counted as ``bad_values`` (lenient) or an error naming the
line/row and column (strict). Null tokens are null and not counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import read_file
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import read_etl
from traceanalyzer.synth.etl_writer import write_etl

#: The values issue 10 found wrapped, one per row, with the column they go in.
WRAPPED = [
    ("size", "90000000000000000000"),   # read as 16213023705161793536
    ("size", "-8192"),                  # read as 18446744073709543424
    ("irql", "300"),                    # read as 44
    ("cpu", "4294967296"),              # read as 0
]


def _csv(path: Path, header: str, rows: list[str], gz: bool = False) -> Path:
    text = header + "\n" + "\n".join(rows) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_canonical_csv_out_of_range_cells_are_null_and_counted(tmp_path: Path, gz: bool) -> None:
    rows = [f"{i + 1},IoAllocateMdl,{v if c == 'size' else 1},{v if c == 'irql' else 0},{v if c == 'cpu' else 0}"
            for i, (c, v) in enumerate(WRAPPED)]
    path = _csv(tmp_path / ("t.csv.gz" if gz else "t.csv"), "time_ns,event,size,irql,cpu", rows, gz)
    result = read_file(path)
    got = result.table.select(["size", "irql", "cpu"]).to_pylist()
    assert got == [{"size": None, "irql": 0, "cpu": 0}, {"size": None, "irql": 0, "cpu": 0},
                   {"size": 1, "irql": None, "cpu": 0}, {"size": 1, "irql": 0, "cpu": None}]
    assert result.stats.by_detail("bad_values") == {"size": 2, "irql": 1, "cpu": 1}
    with pytest.raises(TraceFormatError, match=r"line 2: column 'size': '90000000000000000000' is out of range"):
        read_file(path, options=ReadOptions(strict=True))


def test_canonical_csv_time_beyond_int64_drops_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "time_ns,event", ["1,IoFreeMdl", f"{2**63},IoFreeMdl", ",IoFreeMdl", "3,"])
    result = read_file(path)
    assert result.table.column("time_ns").to_pylist() == [1]
    assert result.stats.by_detail("bad_rows") == {"time_ns is not a valid time": 1, "time_ns is empty": 1,
                                                  "event is empty": 1}
    with pytest.raises(TraceFormatError, match=r"line 3: column 'time_ns': '9223372036854775808' is out of range"):
        read_file(path, options=ReadOptions(strict=True))


def test_canonical_csv_text_in_a_number_column_and_null_tokens(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "time_ns,event,pid,mdl,access_mode",
                ["1,IoFreeMdl,12x,0x10,Sideways", "2,IoFreeMdl,NaN,NULL,N/A", "3,IoFreeMdl,<none>,,UserMode"])
    result = read_file(path)
    assert result.table.select(["pid", "mdl", "access_mode"]).to_pylist() == [
        {"pid": None, "mdl": 16, "access_mode": None},
        {"pid": None, "mdl": None, "access_mode": None},
        {"pid": None, "mdl": None, "access_mode": "UserMode"},
    ]
    assert result.stats.by_detail("bad_values") == {"pid": 1, "access_mode": 1}


def test_pointer_columns_take_a_signed_address_byte_counts_do_not(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "time_ns,event,va,size", [f"1,IoAllocateMdl,-8192,-8192",
                                                            f"2,IoAllocateMdl,{-2**63},{2**64 - 1}",
                                                            f"3,IoAllocateMdl,{-2**63 - 1},{2**64}"])
    result = read_file(path)
    assert result.table.select(["va", "size"]).to_pylist() == [
        {"va": 2**64 - 8192, "size": None}, {"va": 2**63, "size": 2**64 - 1}, {"va": None, "size": None}]
    assert result.stats.by_detail("bad_values") == {"va": 1, "size": 2}


def test_parquet_typed_columns_are_range_checked(tmp_path: Path) -> None:
    table = pa.table({"time_ns": pa.array([1, 2, 3], pa.int64()), "event": ["IoFreeMdl"] * 3,
                      "size": pa.array([-8192, 4096, 0], pa.int64()), "irql": pa.array([300, 2, 1], pa.int64()),
                      "pid": pa.array([1.0, float("nan"), 1.5])})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    result = read_file(path)
    assert result.table.select(["size", "irql", "pid"]).to_pylist() == [
        {"size": None, "irql": None, "pid": 1}, {"size": 4096, "irql": 2, "pid": None},
        {"size": 0, "irql": 1, "pid": None}]
    assert result.stats.by_detail("bad_values") == {"size": 1, "irql": 1, "pid": 1}
    with pytest.raises(TraceFormatError, match=r"row 0: column 'size': -8192 is out of range"):
        read_file(path, options=ReadOptions(strict=True))


XPERF = """BeginHeader
MdlTrace/IoAllocateMdl/win:Info, TimeStamp, Process Name ( PID), ThreadID, CPU, mdl, va, size, irql
EndHeader
MdlTrace/IoAllocateMdl/win:Info, 10, a.exe (4), 8, 0, 0x10, 0x20, 90000000000000000000, 1
MdlTrace/IoAllocateMdl/win:Info, 20, a.exe (4), 8, 4294967296, 0x10, 0x20, 4096, 300
MdlTrace/IoAllocateMdl/win:Info, 30, a.exe (4), 8, 0, NULL, N/A, NaN, <none>
"""


XP = "MdlTrace/IoAllocateMdl/win:Info"


def test_xperf_text_out_of_range_cells(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(XPERF)
    result = read_file(path)
    assert result.table.select(["cpu", "mdl", "size", "irql"]).to_pylist() == [
        {"cpu": 0, "mdl": 16, "size": None, "irql": 1}, {"cpu": None, "mdl": 16, "size": 4096, "irql": None},
        {"cpu": 0, "mdl": None, "size": None, "irql": None}]
    assert result.stats.by_detail("bad_values") == {f"{XP}.size": 1, f"{XP}.cpu": 1, f"{XP}.irql": 1}
    with pytest.raises(TraceFormatError, match=r"line 4: bad MdlTrace/IoAllocateMdl/win:Info.size value '90000000000000000000'"):
        read_file(path, options=ReadOptions(strict=True))


def test_xperf_timestamp_beyond_int64_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(XPERF.replace(", 20, a.exe", ", 100000000000000000000, a.exe"))
    result = read_file(path)
    assert result.table.column("time_ns").to_pylist() == [10_000, 30_000]
    assert result.stats.total("bad_rows") == 1


WPA_MAP = {"events": [{"provider": "MdlTrace", "event": "IoAllocateMdl", "fields": ["mdl", "size", "irql"]}]}


def test_wpa_csv_out_of_range_cells(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Provider Name,Task Name,Time (s),Process,Field 1,Field 2,Field 3\n"
                    'MdlTrace,IoAllocateMdl,0.000001,a.exe (4),0x10,"90,000,000,000,000,000,000",1\n'
                    "MdlTrace,IoAllocateMdl,0.000002,a.exe (4),0x10,4096,300\n"
                    "MdlTrace,IoAllocateMdl,1e300,a.exe (4),0x10,4096,1\n")
    result = read_file(path, options=ReadOptions(extra={"field_map": WPA_MAP}))
    assert result.table.select(["time_ns", "size", "irql"]).to_pylist() == [
        {"time_ns": 1000, "size": None, "irql": 1}, {"time_ns": 2000, "size": 4096, "irql": None}]
    assert result.stats.by_detail("bad_values") == {"IoAllocateMdl.size": 1, "IoAllocateMdl.irql": 1}
    assert result.stats.total("bad_rows") == 1


@pytest.mark.parametrize("n", [3, 40])  # per-event path and bulk path
def test_etl_payload_value_out_of_its_column_range(tmp_path: Path, n: int) -> None:
    rows = [dict(time_ns=100 * (i + 1), event="IoAllocateMdl", cpu=0, pid=4, tid=8, mdl=0x1000 + i,
                 size=4096 if i else 77) for i in range(n)]
    path = tmp_path / "t.etl"
    write_etl(pa.Table.from_pylist(rows, schema=pa.schema([("time_ns", pa.int64()), ("event", pa.string()),
                                                           ("cpu", pa.int32()), ("pid", pa.int64()),
                                                           ("tid", pa.int64()), ("mdl", pa.uint64()),
                                                           ("size", pa.uint64())])), path)
    fmap = tmp_path / "map.json"
    fmap.write_text(json.dumps({"providers": [{"provider": "MdlTrace", "fields": {"size": "irql"}}]}))
    result = read_etl(path, ReadOptions(field_map=fmap))
    assert result.table.column("irql").to_pylist() == [77] + [None] * (n - 1)
    assert result.stats.by_detail("bad_values") == {"MdlTrace/IoAllocateMdl.irql": n - 1}
    with pytest.raises(TraceFormatError, match=r"record at 0x[0-9a-f]+: MdlTrace/IoAllocateMdl field 'size' "
                                               r"-> column 'irql': 4096 is out of range"):
        read_etl(path, ReadOptions(field_map=fmap, strict=True))


def test_times_near_the_int64_limit_stay_exact_through_the_analysis(tmp_path: Path) -> None:
    import traceanalyzer as ta

    top = 2**63 - 1
    path = _csv(tmp_path / "t.csv", "time_ns,event,pid,tid,target_pid",
                [f"{top - 2},ThreadStart,10,11,", f"{top - 1},KeStackAttachProcess,10,11,20", f"{top},ThreadEnd,10,11,"])
    trace = ta.load(path)
    assert trace.threads["end_ns"].tolist() == [top]  # not 2**63 through a float
    found = ta.analyze(trace).findings
    assert found.loc[found["rule"] == "ATTACH_UNBALANCED", "time_ns"].tolist() == [top]  # at the thread's end


def test_damaged_parquet_and_gzip_name_the_file(tmp_path: Path) -> None:
    table = pa.table({"time_ns": [1], "event": ["IoFreeMdl"], "caller": ["drv.sys"]})
    good = tmp_path / "good.parquet"
    pq.write_table(table, good, compression="none", use_dictionary=False, write_statistics=False)
    data = good.read_bytes()
    assert data.count(b"drv.sys") == 1
    bad_utf8 = tmp_path / "utf8.parquet"
    bad_utf8.write_bytes(data.replace(b"drv.sys", b"drv\x80sys"))
    with pytest.raises(TraceFormatError, match=r"utf8\.parquet: not a readable Parquet file"):
        read_file(bad_utf8)
    meta = tmp_path / "meta.parquet"
    pq.write_table(table.replace_schema_metadata({b"traceanalyzer.metadata": b"[1, 2"}), meta)
    with pytest.raises(TraceFormatError, match=r"meta\.parquet: Parquet metadata traceanalyzer.metadata"):
        read_file(meta)
    cut = tmp_path / "cut.csv.gz"  # cut short: read up to the cut (tests/readers/test_csv_damage.py)
    cut.write_bytes(gzip.compress(b"time_ns,event\n" + b"1,IoFreeMdl\n" * 5000)[:100])
    with pytest.raises(TraceFormatError, match=r"cut\.csv\.gz: line \d+: the gzip data ends early"):
        read_file(cut, options=ReadOptions(strict=True))
    corrupt = tmp_path / "corrupt.csv.gz"  # damaged inside: still an error
    data = gzip.compress(b"time_ns,event,caller\n" + b"".join(b"%d,IoFreeMdl,d.sys+0x%x\n" % (i, i * 7919 % 65521)
                                                              for i in range(100_000)))
    at = len(data) // 2  # past the head the reader is picked by
    corrupt.write_bytes(data[:at] + bytes(b ^ 0xFF for b in data[at:at + 30]) + data[at + 30:])
    with pytest.raises(TraceFormatError, match=r"corrupt\.csv\.gz: cannot read: corrupt gzip data"):
        read_file(corrupt)
