"""Damaged and wrong input: lenient mode keeps every intact buffer and counts the rest;
strict mode raises TraceFormatError naming the file and the buffer offset; nothing else
ever escapes (a bounded hypothesis fuzz over mutated real and synthetic buffers)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceanalyzer.errors import TraceEmptyError, TraceError, TraceFormatError
from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import read_etl
from traceanalyzer.synth.etl_writer import write_etl

BUF = 4096


def _rows_table(n: int) -> pa.Table:
    rows = []
    for i in range(n):
        if i % 10 == 5:
            rows.append(dict(time_ns=i * 1000, event="IoAllocateMdl", cpu=i % 2, pid=100, tid=200,
                             mdl=0xFFFFC30A4B2F1000 + i * 0x100, va=0x10000 * i, size=4096,
                             caller="drv.sys+0x10"))
        else:
            rows.append(dict(time_ns=i * 1000, event="CSwitch", cpu=i % 2, new_tid=200 + i % 7, old_tid=200 + i % 5))
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    return pa.Table.from_pylist(rows, schema=pa.schema([(c, COLUMNS[c]) for c in names]))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("etl") / "good.etl"
    write_etl(_rows_table(1200), path, buffer_size=BUF)
    data = path.read_bytes()
    assert len(data) // BUF >= 8
    return data


def _read(tmp_path: Path, data: bytes, name: str = "t.etl", strict: bool = False):
    path = tmp_path / name
    path.write_bytes(data)
    return read_etl(path, ReadOptions(strict=strict))


def _rows(result) -> Counter:
    return Counter(tuple(sorted((k, v) for k, v in r.items() if v is not None)) for r in result.table.to_pylist())


def test_zero_length_file(tmp_path: Path) -> None:
    with pytest.raises(TraceEmptyError, match="empty"):
        _read(tmp_path, b"")


@pytest.mark.parametrize("content", [b"\x00" * 10, bytes(range(256)) * 40, b"time_ns,event\n0,CSwitch\n",
                                     b"PK\x03\x04" + b"\x00" * 5000])
def test_not_an_etl_file(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(TraceFormatError, match=r"t\.etl: not an ETL file"):
        _read(tmp_path, content)


def test_truncated_file_keeps_whole_buffers(tmp_path: Path, good: bytes) -> None:
    k = 5
    cut = good[: k * BUF + BUF // 2]
    n = len(good) // BUF
    before = _rows(_read(tmp_path, good[: k * BUF], "a.etl"))      # k whole buffers
    after = _rows(_read(tmp_path, good[: (k + 1) * BUF], "b.etl"))  # k + 1 buffers
    result = _read(tmp_path, cut)
    got = _rows(result)
    assert before <= got <= after and got != before  # the cut buffer's whole records are kept
    # the cut buffer, and the n - k - 1 buffers the logfile header announces after it
    assert result.stats.total("truncated_file") == n - k
    assert result.stats.total("truncated_records") == 1
    assert result.stats.total("corrupt_buffers") == 0
    with pytest.raises(TraceFormatError, match=rf"t\.etl: buffer at offset 0x{k * BUF:x}: the file ends inside"):
        _read(tmp_path, cut, strict=True)


def test_file_cut_at_a_buffer_boundary_is_truncated(tmp_path: Path, good: bytes) -> None:
    """``head -c`` at a buffer boundary leaves only whole buffers: the logfile header's
    BuffersWritten tells that the rest is missing."""
    n, k = len(good) // BUF, 1
    result = _read(tmp_path, good[: k * BUF])
    assert result.stats.total("truncated_file") == n - k
    assert result.stats.details(["truncated_file"]) == [
        f"truncated_file: the logfile header announces {n} buffers, the file holds {k} "
        f"(it ends at offset 0x{k * BUF:x}) ({n - k})"]
    assert _read(tmp_path, good, "full.etl").stats.total("truncated_file") == 0
    with pytest.raises(TraceFormatError, match=f"t\\.etl: the logfile header announces {n} buffers"):
        _read(tmp_path, good[: k * BUF], strict=True)


def test_corrupt_buffer_header_loses_only_that_buffer(tmp_path: Path, good: bytes) -> None:
    k = 3
    bad = bytearray(good)
    bad[k * BUF:k * BUF + 4] = b"\xff\xff\xff\xff"  # BufferSize
    lost = _rows(_read(tmp_path, good[:BUF] + good[k * BUF:(k + 1) * BUF], "only.etl"))
    assert sum(lost.values()) > 0
    result = _read(tmp_path, bytes(bad))
    assert _rows(result) == _rows(_read(tmp_path, good, "full.etl")) - lost
    assert result.stats.total("corrupt_buffers") == 1
    with pytest.raises(TraceFormatError, match=f"buffer at offset 0x{k * BUF:x}: bad buffer header"):
        _read(tmp_path, bytes(bad), strict=True)


def test_corrupt_record_stops_that_buffer_only(tmp_path: Path, good: bytes) -> None:
    k = 4
    bad = bytearray(good)
    bad[k * BUF + 0x48:k * BUF + 0x4C] = b"\x12\x34\x56\x78"  # first record's marker
    full = _rows(_read(tmp_path, good, "full.etl"))
    lost = _rows(_read(tmp_path, good[:BUF] + good[k * BUF:(k + 1) * BUF], "only.etl"))
    result = _read(tmp_path, bytes(bad))
    assert _rows(result) == full - lost
    assert result.stats.total("truncated_records") == 1 and result.stats.total("corrupt_buffers") == 0
    with pytest.raises(TraceFormatError, match=f"0x{k * BUF:x}"):
        _read(tmp_path, bytes(bad), strict=True)


def test_bad_compressed_buffer_is_counted(tmp_path: Path, real_traces: Path) -> None:
    data = bytearray((real_traces / "microsoft__perfview" / "SelfDescribingSingleEvent.etl").read_bytes())
    size = int.from_bytes(data[:4], "little")
    assert int.from_bytes(data[size + 0x34:size + 0x36], "little") & 0x40  # buffer 1 is compressed
    data[size + 0x48:size + 0x148] = b"\xff" * 256
    result = _read(tmp_path, bytes(data))
    assert result.stats.total("corrupt_buffers") + result.stats.total("truncated_records") >= 1
    with pytest.raises(TraceFormatError):
        _read(tmp_path, bytes(data), strict=True)


_SEEDS: dict[str, bytes] = {}


def _seed(name: str, real_traces: Path) -> bytes:
    if name not in _SEEDS:
        if name == "synthetic":
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "s.etl"
                write_etl(_rows_table(300), path, buffer_size=2048)
                _SEEDS[name] = path.read_bytes()
        else:
            _SEEDS[name] = (real_traces / name).read_bytes()
    return _SEEDS[name]


#: Examples per run; ETL_FUZZ_EXAMPLES=20000 for the longer run in docs/etl.md.
FUZZ_EXAMPLES = int(os.environ.get("ETL_FUZZ_EXAMPLES", "120"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(["synthetic", "airbus-cert__etl-parser/lxcore_kernel.etl",
                          "microsoft__perfview/SelfDescribingSingleEvent.etl",
                          "google__syzygy/process_data_32_v2.etl"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8)), max_size=12),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    strict=st.booleans(),
    fallback=st.booleans(),
)
def test_fuzz_only_trace_errors_escape(tmp_path: Path, real_traces: Path, seed: str, edits, cut, strict: bool,
                                       fallback: bool) -> None:
    data = bytearray(_seed(seed, real_traces))
    for where, blob in edits:
        at = int(where * len(data))
        data[at:at + len(blob)] = blob
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / "fuzz.etl"
    path.write_bytes(bytes(data))
    try:
        result = read_etl(path, ReadOptions(strict=strict, extra={"etlparser_fallback": fallback}))
    except TraceError as exc:
        assert str(exc).startswith(str(path))
        return
    assert result.table.num_rows >= 0 and "time_ns" in result.table.column_names


def test_short_cswitch_payload_is_counted_not_dropped(tmp_path: Path, good: bytes) -> None:
    """A CSwitch whose size field leaves under 8 payload bytes: counted as truncated."""
    data = bytearray(good)
    k = 2
    at = k * BUF + 0x48
    assert data[at + 6] == 36 and data[at + 7] == 0x05  # buffer k starts with a CSwitch
    data[at + 4:at + 6] = (0x18 + 4).to_bytes(2, "little")  # COMPACT header + 4 bytes
    # the walk goes on 32 bytes later, inside the old payload: that rest of the buffer
    # does not parse either, and is counted too (strict mode names whichever comes first)
    result = _read(tmp_path, bytes(data))
    assert result.stats.by_detail("truncated_records")[f"Thread record at 0x{at:x}: payload too short"] == 1
    assert result.stats.total("truncated_records") >= 1
    with pytest.raises(TraceFormatError, match="payload shorter than 8 bytes|does not fit"):
        _read(tmp_path, bytes(data), strict=True)


def test_buffers_of_one_cpu_out_of_order_count_time_disorder(tmp_path: Path, good: bytes) -> None:
    """Swapping two buffers of the same CPU keeps every row but steps back in time once
    (at the later buffer's start) and again after it - counted, not fixed."""
    assert _read(tmp_path, good, "clean.etl").stats.total("time_disorder") == 0
    cpu_of = [int.from_bytes(good[i * BUF + 0x28:i * BUF + 0x2A], "little") for i in range(len(good) // BUF)]
    first = next(i for i in range(1, len(cpu_of)) if cpu_of[i] == 0)
    second = next(i for i in range(first + 1, len(cpu_of)) if cpu_of[i] == 0)
    data = bytearray(good)
    a, b = good[first * BUF:(first + 1) * BUF], good[second * BUF:(second + 1) * BUF]
    data[first * BUF:(first + 1) * BUF], data[second * BUF:(second + 1) * BUF] = b, a
    result = _read(tmp_path, bytes(data))
    assert result.stats.total("time_disorder") >= 1
    assert _rows(result) == _rows(_read(tmp_path, good, "clean.etl"))
