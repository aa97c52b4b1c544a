"""The compiled scan of xperf text gives what the Arrow text path gives, row for row.

Every block of a dump is read either by the scan (:mod:`traceanalyzer.readers.xperf_scan`)
or by the text path; the rules (cells, bad values, counters, the first problem and its
line) must not depend on which. Each case reads a dump twice, once with the scan refused
for every block, and compares table, counters (in order), metadata and strict-mode error.
Small blocks put line ends, quotes and errors at block edges.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import traceanalyzer.readers.xperf_text as xperf_text
from traceanalyzer.errors import TraceError
from traceanalyzer.readers import ReadOptions, read_file

#: The hand-written dump, made UTF-8 (it has a Latin-1 byte, which sends a block to the text path).
SEED = (Path(__file__).resolve().parents[1] / "data" / "xperf" / "seed_dumper.txt").read_bytes().replace(b"\xe9", b"\xc3\xa9")
BLOBS = [b",", b'"', b"\r\n", b"\n", b"(", b")", b"0x", b"-", b"<none>", b"\t", b"\x0b", b"\xc2\xa0",
         b"\x1c", b"\nError: bad\n", b"\nStack, 1, 2\n", b"\xff", b"   ", b"\xc3\xa9", b"9" * 30,
         b"\nFirstReliableEventTimeStamp, 5\n"]


def mutated(seed: int) -> bytes:
    rng = random.Random(seed)
    data = SEED
    body = SEED.index(b"FirstReliable")
    for _ in range(rng.randint(1, 6)):
        pos = rng.randint(body, len(data))
        kind = rng.random()
        if kind < 0.3:
            data = data[:pos] + data[pos + rng.randint(1, 30):]
        elif kind < 0.7:
            data = data[:pos] + rng.choice(BLOBS) * rng.randint(1, 3) + data[pos:]
        else:  # repeat a line: event types with many rows, several field counts
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end + 1
            data = data[:end] + data[start:end] * rng.randint(1, 4) + data[end:]
    return data


def read_both(path: Path, strict: bool, monkeypatch) -> tuple[object, object]:
    def read() -> object:
        try:
            result = read_file(path, format="xperf", options=ReadOptions(strict=strict))
        except TraceError as exc:
            return type(exc).__name__, str(exc)
        return result.table, list(result.stats.entries.items()), result.metadata

    scanned = read()
    with monkeypatch.context() as m:
        m.setattr(xperf_text, "_scannable", lambda block, length: False)
        text = read()
    return scanned, text


@pytest.mark.parametrize("chunk", [16 << 20, 300])
@pytest.mark.parametrize("seed", range(40))
def test_scan_reads_like_the_text_path(tmp_path, monkeypatch, seed, chunk):
    monkeypatch.setattr(xperf_text, "_CHUNK_BYTES", chunk)
    path = tmp_path / "m.txt"
    path.write_bytes(SEED if seed == 0 else mutated(seed))
    for strict in (False, True):
        scanned, text = read_both(path, strict, monkeypatch)
        if isinstance(text[0], str):
            assert scanned == text
            continue
        assert scanned[0].equals(text[0]), f"seed {seed}: tables differ"
        assert scanned[1] == text[1]
        assert scanned[2] == text[2]


EDGES = [
    b"Error",  # the whole line
    b"                CSwitch,       2500,           app.exe (1234),       5678,    8,   -1,          55,       55,"
    b"             Idle (   0),          0,    0,   -1,         Running,        Executive,  NonSwap,   2216,   1,   1,"
    b"          0,    0,    1,   Important,   Important\xc2\xa0",  # ends in a Unicode blank
    b"\x1c                CSwitch,       2600,           app.exe (1234),       5678,    8,   -1,          55,       55,"
    b"             Idle (   0),          0,    0,   -1,         Running,        Executive,  NonSwap,   2216,   1,   1,"
    b"          0,    0,    1,   Important,   Important",  # starts with a control character
    b"         SampledProfile\xe2\x80\x83,       1500,           app.exe (1234),       5678, 0xfffff80012341a2b,"
    b"   1, app.exe!wmain, mydriver.sys!0xfffff80012341a2b,     1, Unbatched",  # name ends in a Unicode blank
    b"         SampledProfile,       x1500,           app.exe (1234),       5678, 0xfffff80012341a2b,"
    b"   1, app.exe!wmain, mydriver.sys!0xfffff80012341a2b,     1, Unbatched",  # bad time
    b"         SampledProfile,       1700,           app.exe (12x4),       5678, 0xfffff80012341a2b,"
    b"   1, app.exe!wmain, mydriver.sys!0xfffff80012341a2b",  # bad pid, fewer fields
    b"\t  \r",
    b"  \xc2\xa0 ",  # only blanks, one of them Unicode
    b"\x1c\x1f",  # only control characters Arrow counts as blanks
]


@pytest.mark.parametrize("edge", EDGES)
def test_scan_reads_edge_lines_like_the_text_path(tmp_path, monkeypatch, edge):
    path = tmp_path / "e.txt"
    path.write_bytes(SEED.rstrip(b"\r\n") + b"\r\n" + edge + b"\r\n" + SEED[SEED.index(b"  CSwitch,"):])
    for strict in (False, True):
        scanned, text = read_both(path, strict, monkeypatch)
        if isinstance(text[0], str):
            assert scanned == text
            continue
        assert scanned[0].equals(text[0])
        assert scanned[1] == text[1]
        assert scanned[2] == text[2]


def test_scan_takes_the_plain_blocks(tmp_path, monkeypatch):
    """The seed's unquoted event types are read by the scan, not by the text path."""
    path = tmp_path / "seed.txt"
    path.write_bytes(SEED)
    seen: list[str] = []
    real = xperf_text._parse_rows

    def spy(name, rows, numbers, state):
        if isinstance(rows, xperf_text.SpanCells):
            seen.append(name)
        return real(name, rows, numbers, state)

    monkeypatch.setattr(xperf_text, "_parse_rows", spy)
    read_file(path, format="xperf")
    assert {"CSwitch", "SampledProfile", "UnknownEvent/Classic"} <= set(seen)


def test_blocks_scanned_ahead_report_progress_in_order_and_leave_no_thread(tmp_path, monkeypatch):
    """The next block is read and scanned on a second thread: progress still comes in
    file order up to the file's size, and the thread is gone after the read, also after
    the read stopped part-way (here by the progress callback, as Ctrl-C would)."""
    import threading

    monkeypatch.setattr(xperf_text, "_CHUNK_BYTES", 300)
    path = tmp_path / "p.txt"
    path.write_bytes(SEED)
    seen: list[tuple[int, int]] = []
    before = threading.active_count()
    read_file(path, format="xperf", options=ReadOptions(progress=lambda done, total: seen.append((done, total))))
    assert len(seen) > 5 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (len(SEED), len(SEED))
    assert threading.active_count() == before
    calls: list[int] = []

    def stop_part_way(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:  # the scan thread is reading the next block by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_file(path, format="xperf", options=ReadOptions(progress=stop_part_way))
    assert len(calls) == 3 and calls[-1] < len(SEED)
    assert threading.active_count() == before


@pytest.mark.parametrize("seed", range(8))
def test_prefetched_fields_equal_fields_read_one_at_a_time(seed):
    """SpanCells.prefetch (every wanted field of a row in one pass) gives each field's
    cells exactly as SpanCells.column reads one field alone: empty cells, the first and
    the last field, rows of several lengths, rows picked out of order."""
    import numpy as np

    from traceanalyzer.readers.xperf_scan import SpanCells, scan_block

    rng = random.Random(seed)
    lines = []
    for _ in range(rng.randint(1, 300)):
        cells = ["Ev"] + [rng.choice(["", " ", "  7", "0xff", "a b", "é", "x" * rng.randint(0, 40)])
                          for _ in range(rng.randint(2, 9))]
        lines.append(",".join(cells))
    data = np.frombuffer(("\n".join(lines) + "\n").encode("utf-8"), dtype=np.uint8)
    scan = scan_block(data, 0)
    rows = np.array(rng.sample(range(len(lines)), rng.randint(1, len(lines))), dtype=np.int64)
    width = int(scan.n_fields[rows].min())
    fields = set(rng.sample(range(width), rng.randint(1, width)))
    alone, together = SpanCells(scan, rows), SpanCells(scan, rows)
    together.prefetch(fields)
    for index in sorted(fields):
        assert together.column(index).to_pylist() == alone.column(index).to_pylist()
        assert alone.column(index).to_pylist() == [lines[r].strip(" ").split(",")[index] for r in rows]  # lines are trimmed
