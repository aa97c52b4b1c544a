"""Damage is loud: what the ETL reader cross-checks (file size vs BuffersWritten, buffer
sizes vs the logfile header, each buffer's filled length vs where its records stop,
record sizes vs the buffer, implausible header values, compressed buffers that expand
beyond their declared size) is counted, and raises under strict mode; a hypothesis fuzz
asserts that a mutated file that lost events moved a counter."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceanalyzer.errors import TraceError, TraceFormatError
from traceanalyzer.model.stats import LOSS_COUNTERS
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import lzxpress, read_etl

SEED = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.etl"
#: counters that account for events a damaged file no longer yields
DROP_COUNTERS = LOSS_COUNTERS + ("unknown_events", "wpp_events")


def _read(tmp_path: Path, data: bytes, name: str = "t.etl", strict: bool = False):
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return read_etl(path, ReadOptions(strict=strict))


def _counted(result) -> dict[str, int]:
    return {n: result.stats.total(n) for n in DROP_COUNTERS if result.stats.total(n)}


def _records(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(offset, offset of its size field, size) of the records of one uncompressed buffer."""
    out, p = [], start
    while p + 4 <= end:
        marker, = struct.unpack_from("<I", data, p)
        if marker == 0xFFFFFFFF:
            break
        htype = (marker >> 16) & 0xFF
        at = p + 4 if htype <= 4 or htype in (0x10, 0x11) else p
        size, = struct.unpack_from("<H", data, at)
        out.append((p, at, size))
        p += (size + 7) & ~7
    return out


@pytest.fixture(scope="module")
def seed() -> bytes:
    return SEED.read_bytes()


def test_head_c_4096_of_the_seed_is_counted_and_strict_names_it(tmp_path: Path, seed: bytes) -> None:
    result = _read(tmp_path, seed[:4096])
    # the header announces 2 buffers of 8 KB: the first is cut at 4 KB, the second absent
    assert result.stats.total("truncated_file") == 2
    details = "\n".join(result.stats.details(["truncated_file"]))
    assert "buffer at offset 0x0: the file ends inside this buffer: 8192 bytes expected, 4096 present" in details
    assert "the logfile header announces 2 buffers, the file holds 1 (it ends at offset 0x1000)" in details
    with pytest.raises(TraceFormatError, match=r"t\.etl: buffer at offset 0x0: the file ends inside this buffer"):
        _read(tmp_path, seed[:4096], strict=True)


def test_file_ending_in_a_buffers_unused_space_is_truncated(tmp_path: Path, seed: bytes) -> None:
    """Fuzz case 1411: the file ends after the last buffer's filled length but before its
    BufferSize, and LogFileMode says circular (BuffersWritten is no check then). ETW
    writes whole buffers, so a cut buffer is counted even when its records are whole."""
    size = int.from_bytes(seed[:4], "little")
    filled = int.from_bytes(seed[size + 0x30:size + 0x34], "little")
    bad = bytearray(seed[:size + filled + 16])
    struct.pack_into("<I", bad, PAYLOAD + 0x20, 0x2)  # LogFileMode: EVENT_TRACE_FILE_MODE_CIRCULAR
    result = _read(tmp_path, bad)
    assert result.table.num_rows == _read(tmp_path, seed, "clean.etl").table.num_rows
    assert result.stats.details(["truncated_file"]) == [
        f"truncated_file: buffer at offset 0x{size:x}: the file ends inside this buffer: {size} bytes expected, "
        f"{filled + 16} present"]


@pytest.mark.parametrize("buffer", [0, 1])
def test_enlarged_buffer_size_is_corrupt_and_the_walk_keeps_its_step(tmp_path: Path, seed: bytes,
                                                                     buffer: int) -> None:
    size = int.from_bytes(seed[:4], "little")
    bad = bytearray(seed)
    struct.pack_into("<I", bad, buffer * size, size * 2)
    result = _read(tmp_path, bad)
    assert result.stats.details(["corrupt_buffers"]) == [
        f"corrupt_buffers: buffer at offset 0x{buffer * size:x}: BufferSize {2 * size} differs from the "
        f"logfile header's {size}"]
    assert result.table.num_rows == _read(tmp_path, seed, "clean.etl").table.num_rows  # the records are intact
    with pytest.raises(TraceFormatError, match=f"buffer at offset 0x{buffer * size:x}: BufferSize"):
        _read(tmp_path, bad, strict=True)


def test_every_record_size_edit_that_loses_events_is_counted(tmp_path: Path, seed: bytes) -> None:
    """One record-size field changed (every record of the file, several edits): a walk
    that lands on a -1 thread id inside the filled length no longer ends the buffer
    silently; whatever rows go missing show in a counter."""
    clean = _read(tmp_path, seed, "clean.etl").table.num_rows
    size = int.from_bytes(seed[:4], "little")
    lost = 0
    for b in range(len(seed) // size):
        filled = int.from_bytes(seed[b * size + 0x30:b * size + 0x34], "little")
        for _pos, at, rsize in _records(seed, b * size + 0x48, b * size + filled):
            for delta in (-16, -8, -1, 1, 8, 16, 0x100):
                bad = bytearray(seed)
                struct.pack_into("<H", bad, at, (rsize + delta) & 0xFFFF)
                result = _read(tmp_path, bad)
                if result.table.num_rows < clean:
                    lost += 1
                    assert _counted(result), f"record size at 0x{at:x} {rsize} -> {rsize + delta}: silent loss"
    assert lost > 20


def test_end_marker_inside_the_filled_length_is_corrupt(tmp_path: Path, seed: bytes) -> None:
    size = int.from_bytes(seed[:4], "little")
    filled = int.from_bytes(seed[size + 0x30:size + 0x34], "little")
    recs = _records(seed, size + 0x48, size + filled)
    pos = recs[len(recs) // 2][0]
    bad = bytearray(seed)
    bad[pos:pos + 4] = b"\xff\xff\xff\xff"
    result = _read(tmp_path, bad)
    assert result.stats.total("corrupt_buffers") == 1
    detail = result.stats.details(["corrupt_buffers"])[0]
    assert f"buffer at offset 0x{size:x}, record at +0x{pos - size:x}: an end marker stops the records" in detail
    with pytest.raises(TraceFormatError, match="an end marker stops the records"):
        _read(tmp_path, bad, strict=True)


@pytest.mark.parametrize("edit", ["cut_bytes", "ff_overwrite"])
def test_unused_space_pulled_inside_the_filled_length_is_corrupt(tmp_path: Path, seed: bytes, edit: str) -> None:
    """Fuzz finds (campaign cases 13, 371, 858): bytes cut out of the last buffer's
    records, or its tail overwritten with 0xFF, put an end marker before the filled
    length with only 0xFF after it. ETW's records end exactly at the filled length, so
    the records that were there are lost and counted, not read as unused space."""
    size = int.from_bytes(seed[:4], "little")
    filled = int.from_bytes(seed[size + 0x30:size + 0x34], "little")
    recs = _records(seed, size + 0x48, size + filled)
    cut_at = recs[-3][0] + 8  # inside the third-last record
    bad = bytearray(seed)
    if edit == "cut_bytes":
        del bad[cut_at:size + filled + 8]  # the 0xFF after the filled length moves in
    else:
        bad[cut_at:size + filled] = b"\xff" * (size + filled - cut_at)
    result = _read(tmp_path, bad)
    assert result.table.num_rows < _read(tmp_path, seed, "clean.etl").table.num_rows
    assert _counted(result), "records lost inside the filled length and no counter moved"
    with pytest.raises(TraceFormatError, match=f"buffer at offset 0x{size:x}"):
        _read(tmp_path, bad, strict=True)


def test_filled_length_cut_at_a_record_boundary_is_corrupt(tmp_path: Path, seed: bytes) -> None:
    size = int.from_bytes(seed[:4], "little")
    filled = int.from_bytes(seed[size + 0x30:size + 0x34], "little")
    last = _records(seed, size + 0x48, size + filled)[-1][0]
    bad = bytearray(seed)
    struct.pack_into("<I", bad, size + 0x30, last - size)  # the last record now lies past it
    result = _read(tmp_path, bad)
    assert result.table.num_rows < _read(tmp_path, seed, "clean.etl").table.num_rows
    assert "data after the filled length" in result.stats.details(["corrupt_buffers"])[0]


PAYLOAD = 0x48 + 0x20  # logfile header payload (after the first buffer and record headers)


@pytest.mark.parametrize("field, offset, fmt, value, words", [
    ("PerfFreq", 0x100, "<Q", 0, "PerfFreq 0 is implausible"),
    ("PerfFreq", 0x100, "<Q", 1, "PerfFreq 1 is implausible"),
    ("PerfFreq", 0x100, "<Q", 1 << 60, "is implausible"),
    ("PointerSize", 0x2C, "<I", 3, "PointerSize 3 is neither 4 nor 8"),
    ("StartTime", 0x108, "<Q", 1, "outside 1990-2100"),
    ("StartTime", 0x108, "<Q", (1 << 63) - 1, "outside 1990-2100"),
])
def test_implausible_logfile_header_values(tmp_path: Path, seed: bytes, field: str, offset: int, fmt: str,
                                           value: int, words: str) -> None:
    bad = bytearray(seed)
    struct.pack_into(fmt, bad, PAYLOAD + offset, value)
    result = _read(tmp_path, bad)
    assert result.stats.total("implausible_header") == 1, field
    assert words in result.stats.details(["implausible_header"])[0]
    assert [e.severity for e in result.stats.entries.values() if e.name == "implausible_header"] == ["warning"]
    clean = _read(tmp_path, seed, "clean.etl")
    if field == "PerfFreq":  # times fall back to 10 MHz: the same as the clean seed's clock
        assert result.table.column("time_ns").to_pylist() == clean.table.column("time_ns").to_pylist()
    with pytest.raises(TraceFormatError, match=f"t\\.etl: logfile header at offset 0x48: .*{words}"):
        _read(tmp_path, bad, strict=True)


def _bomb(length_u32: int = 0xFFFFFFFF, size: int = 8192) -> bytes:
    """LZXpress: one literal, then one match of offset 1 and length ``length_u32 + 3``."""
    stream = struct.pack("<I", 0x40000000) + b"A" + struct.pack("<H", 7) + bytes([15, 255]) + \
        struct.pack("<HI", 0, length_u32)
    return stream + b"\0" * (size - len(stream))


def test_decompression_stops_at_the_declared_size_compiled_and_python() -> None:
    src = np.frombuffer(_bomb(), np.uint8)
    for fn in (lzxpress.decompress_into, lzxpress.decompress_into.py_func):
        out = np.zeros(65536, np.uint8)
        written, outcome = fn(src, out)
        assert (written, outcome) == (65536, lzxpress.OVERFLOW)
        assert out.tobytes() == b"A" * 65536


def test_decompression_matches_dissect_on_real_compressed_buffers(real_traces: Path) -> None:
    from dissect.util.compression import lzxpress as reference

    data = (real_traces / "microsoft__perfview" / "SelfDescribingSingleEvent.etl").read_bytes()
    off, checked = 0, 0
    while off < len(data):
        size, = struct.unpack_from("<I", data, off)
        filled, flags = struct.unpack_from("<IH", data, off + 0x30)
        if flags & 0x40:
            stored = data[off + 0x48:off + size]
            assert lzxpress.decompress(stored, filled - 0x48) == (reference.decompress(stored), lzxpress.OK)
            got, outcome = lzxpress.decompress(stored, filled - 0x49)  # one byte short of it
            assert outcome == lzxpress.OVERFLOW and len(got) == filled - 0x49
            checked += 1
        off += size
    assert checked == 2


def test_bad_match_offset_and_cut_input_are_bad_input() -> None:
    before_output = struct.pack("<I", 0x80000000) + struct.pack("<H", 0x10)  # match before any byte
    assert lzxpress.decompress(before_output, 100)[1] == lzxpress.BAD_INPUT
    assert lzxpress.decompress(_bomb()[:9], 100)[1] == lzxpress.BAD_INPUT  # ends inside the length


def test_compressed_bomb_buffer_is_corrupt_not_a_hang(tmp_path: Path, real_traces: Path) -> None:
    """An 8 KB compressed buffer holding one match of length 2^32 (dissect's decompressor
    would run for minutes and take gigabytes): counted corrupt, the other buffers read."""
    data = (real_traces / "microsoft__perfview" / "SelfDescribingSingleEvent.etl").read_bytes()
    first = int.from_bytes(data[:4], "little")
    header = bytearray(data[first:first + 0x48])
    assert int.from_bytes(header[0x34:0x36], "little") & 0x40
    struct.pack_into("<I", header, 0, 8192 + 0x48)
    bomb = bytes(header) + _bomb()
    result = _read(tmp_path, data[:first] + bomb + data[first:])
    assert result.stats.details(["corrupt_buffers"]) == [
        f"corrupt_buffers: buffer at offset 0x{first:x}: compressed buffer decompresses beyond its declared "
        f"{int.from_bytes(header[0x30:0x34], 'little') - 0x48} bytes"]
    clean = _read(tmp_path, data, "clean.etl")
    assert result.table.num_rows == clean.table.num_rows
    with pytest.raises(TraceFormatError, match="decompresses beyond"):
        _read(tmp_path, data[:first] + bomb + data[first:], strict=True)


def test_real_traces_read_without_damage_counters(real_traces: Path) -> None:
    files = sorted(real_traces.rglob("*.etl"))
    assert files
    for path in files:
        result = read_etl(path, ReadOptions())
        moved = {n: result.stats.total(n) for n in LOSS_COUNTERS + ("implausible_header",)
                 if result.stats.total(n)}
        assert not moved, f"{path}: {moved} {result.stats.details(moved)}"


#: Examples per run; ETL_DAMAGE_EXAMPLES=5000 for a longer run.
FUZZ_EXAMPLES = int(os.environ.get("ETL_DAMAGE_EXAMPLES", "150"))
_SEEDS: dict[str, bytes] = {}


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(["seed", "microsoft__perfview/SelfDescribingSingleEvent.etl",
                          "airbus-cert__etl-parser/lxcore_kernel.etl", "google__syzygy/process_data_32_v2.etl"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=4)),
                   min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_fewer_events_means_a_counter_moved(tmp_path: Path, real_traces: Path, seed: str, edits,
                                                 cut) -> None:
    if seed not in _SEEDS:
        _SEEDS[seed] = SEED.read_bytes() if seed == "seed" else (real_traces / seed).read_bytes()
    original = _SEEDS[seed]
    data = bytearray(original)
    for where, blob in edits:
        at = int(where * len(data))
        data[at:at + len(blob)] = blob
    if cut is not None:
        data = data[: max(1, int(cut * len(data)))]
    try:
        result = _read(tmp_path, data, "fuzz.etl")
    except TraceError:
        return
    before = _read(tmp_path, original, "orig.etl")
    if result.table.num_rows < before.table.num_rows:
        moved = {n: v for n, v in _counted(result).items() if v > before.stats.total(n)}
        assert moved, "events lost, no counter moved"
