"""The ETL walk on two threads reads what one pass reads.

The buffers are counted by two threads, and a walk chunk of many records is filled in
two halves at once (``walk.SPLIT_MIN_RECORDS``), the second half's order check joined
to the first's afterwards. Each case reads a file with steps back in time on every CPU,
calls, CSwitch and Thread records, in small buffers and small chunks, once in one pass
and once split everywhere, and compares rows, order and every counter."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import read_etl
from traceanalyzer.readers.etl import reader as etl_reader
from traceanalyzer.readers.etl import walk as etl_walk
from traceanalyzer.synth.etl_writer import write_etl

MDL = 0xFFFFC30A60000000


def _rows(n: int, seed: int) -> list[dict]:
    """Calls, CSwitch and Thread starts on four CPUs; about one row in 15 steps back in
    time (some by one tick, some far), so disorder sits everywhere, at the cuts too."""
    rng = random.Random(seed)
    rows, t = [], 1_000_000
    for i in range(n):
        t += rng.choice([0, 100, 700, 5000])
        time_ns = t - rng.choice([100, 30_000, 900_000]) if rng.random() < 1 / 15 else t
        row = dict(time_ns=max(time_ns, 0), cpu=rng.randrange(4))
        kind = rng.choice(["call", "call", "cswitch", "cswitch", "thread"])
        if kind == "call":
            row.update(event="IoFreeMdl", pid=4, tid=8, mdl=MDL + 0x1000 * i)
        elif kind == "cswitch":
            row.update(event="CSwitch", new_tid=100 + i % 50, old_tid=200 + i)
        else:
            row.update(event="ThreadStart", pid=4, tid=100000 + i)
        rows.append(row)
    return rows


def _write(rows: list[dict], path: Path) -> None:
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, COLUMNS[c]) for c in names]))
    write_etl(table, path, perf_freq=10_000_000, buffer_size=2048)


def _read(path: Path) -> tuple[list[dict], dict]:
    result = read_etl(path, ReadOptions())
    return result.ordered_table().to_pylist(), list(result.stats.entries.items())


@pytest.mark.parametrize("seed", range(6))
def test_split_walk_reads_like_one_pass(tmp_path: Path, monkeypatch, seed: int) -> None:
    rows = _rows(random.Random(seed).randint(300, 3000), seed)
    _write(rows, tmp_path / "t.etl")
    monkeypatch.setattr(etl_reader, "CHUNK_RECORDS", 700)  # several chunks: the state carries over

    monkeypatch.setattr(etl_walk, "SPLIT_MIN_RECORDS", 10**12)
    monkeypatch.setattr(etl_reader, "_COUNT_SEGMENTS", 10**9)
    one_pass, one_pass_stats = _read(tmp_path / "t.etl")

    splits = []
    in_two = etl_walk._Fill.in_two

    def spy(self, *args, **kwargs):
        splits.append(in_two(self, *args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(etl_walk._Fill, "in_two", spy)
    monkeypatch.setattr(etl_walk, "SPLIT_MIN_RECORDS", 0)
    monkeypatch.setattr(etl_reader, "_COUNT_SEGMENTS", 3)
    split, split_stats = _read(tmp_path / "t.etl")

    assert splits and all(splits)  # every chunk was filled in two halves
    assert split == one_pass
    assert split_stats == one_pass_stats
    assert len(one_pass) == len(rows)
    disorder = [entry.value for key, entry in one_pass_stats if key[0] == "time_disorder"]
    assert disorder and disorder[0] > 0  # the case really has steps back to count


def test_half_cuts_between_segments_by_records() -> None:
    assert etl_walk._half(np.array([5])) == 0  # one segment: no split
    assert etl_walk._half(np.array([5, 5])) == 1
    assert etl_walk._half(np.array([1, 1, 1, 10])) == 3
    assert etl_walk._half(np.array([10, 1, 1, 1])) == 1
