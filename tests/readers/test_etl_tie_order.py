"""Equal timestamps in an ETL file: a CPU's records keep the order it logged them in;
across CPUs, equal times go by CPU number (docs/etl.md, "Event order")."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import EtlBatches, read_etl
from traceanalyzer.readers.etl import events as etl_events
from traceanalyzer.readers.etl import reader as etl_reader
from traceanalyzer.synth.etl_writer import write_etl

MDL = 0xFFFFC30A60000000


def _rows(n: int, seed: int = 7) -> list[dict]:
    """Calls, CSwitches and thread starts on three CPUs, times floored to 5 us (many ties);
    rows of one CPU in time order, the CPUs interleaved at random."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = rng.choice(["call", "call", "cswitch", "thread"])
        row = dict(time_ns=(i // 7) * 5000, cpu=rng.choice([0, 1, 2]), tag=i)
        if kind == "call":
            row.update(event="IoFreeMdl", pid=4, tid=8, mdl=MDL + 0x1000 * i)
        elif kind == "cswitch":
            row.update(event="CSwitch", new_tid=100 + i, old_tid=i)
        else:
            row.update(event="ThreadStart", pid=4, tid=100000 + i)
        rows.append(row)
    return rows


def _identity(row: dict) -> int:
    """Which input row a read-back row is (each row carries a unique id in one column)."""
    if row["event"] == "IoFreeMdl":
        return (row["mdl"] - MDL) // 0x1000
    if row["event"] == "CSwitch":
        return row["old_tid"]
    return row["tid"] - 100000


def _write(rows: list[dict], path: Path) -> None:
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "tag"} for r in rows],
                                 schema=pa.schema([(c, COLUMNS[c]) for c in names]))
    write_etl(table, path, perf_freq=10_000_000, buffer_size=2048)


def _expected(rows: list[dict]) -> list[int]:
    """Time order; equal times by CPU, then in the order the CPU logged them."""
    return [r["tag"] for r in sorted(rows, key=lambda r: (r["time_ns"], r["cpu"]))]


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk-decoder", "per-event"])
def test_equal_times_keep_each_cpus_logging_order(tmp_path: Path, monkeypatch, bulk: bool) -> None:
    if not bulk:
        monkeypatch.setattr(etl_events, "BULK_MIN_EVENTS", 10**12)
    rows = _rows(600)
    _write(rows, tmp_path / "t.etl")
    result = read_etl(tmp_path / "t.etl", ReadOptions())
    got = [_identity(r) for r in result.ordered_table().to_pylist()]
    assert got == _expected(rows)
    assert result.stats.total("time_disorder") == 0


def test_batches_carry_the_stream_order(tmp_path: Path, monkeypatch) -> None:
    """Sorting the batches' rows by (time_ns, stream_order) gives read_etl's order."""
    rows = _rows(600, seed=3)
    _write(rows, tmp_path / "t.etl")
    monkeypatch.setattr(etl_reader, "CHUNK_RECORDS", 100)
    batches = list(EtlBatches(tmp_path / "t.etl", ReadOptions()))
    assert len(batches) > 3
    merged = pa.concat_tables(batches)
    merged = merged.take(pc.sort_indices(merged, [("time_ns", "ascending"), ("stream_order", "ascending")]))
    assert [_identity(r) for r in merged.to_pylist()] == _expected(rows)


def test_load_uses_the_order(tmp_path: Path) -> None:
    """A call logged just before a context switch of the same tick ran in the old thread."""
    import traceanalyzer as ta

    rows = [dict(time_ns=0, event="ThreadStart", cpu=1, pid=100, tid=101),
            dict(time_ns=0, event="ThreadStart", cpu=1, pid=200, tid=201),
            dict(time_ns=1000, event="CSwitch", cpu=1, new_tid=101, old_tid=0),
            dict(time_ns=2000, event="IoFreeMdl", cpu=1, mdl=MDL),
            dict(time_ns=2000, event="CSwitch", cpu=1, new_tid=201, old_tid=101)]
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    write_etl(pa.Table.from_pylist(rows, schema=pa.schema([(c, COLUMNS[c]) for c in names])),
              tmp_path / "t.etl", perf_freq=10_000_000)
    calls = ta.load(tmp_path / "t.etl").calls
    assert calls["event"].astype(str).tolist() == ["IoFreeMdl"]
    seqs = ta.load(tmp_path / "t.etl").table("cswitch").column("seq").to_pylist()
    assert int(calls["seq"].iloc[0]) < seqs[-1]


def test_merged_files_keep_each_etl_files_order(tmp_path: Path) -> None:
    """With several files, each ETL file's equal times keep its order (Trace.from_tables)."""
    import traceanalyzer as ta
    from traceanalyzer.analysis import analyze

    sample = Path(__file__).resolve().parents[2] / "sample_traces" / "clean_call_then_cswitch_same_tick.etl"
    other = tmp_path / "other.csv"
    other.write_text("time_ns,event,cpu,pid,tid,image,parent_pid\n0,ProcessStart,,900,,c.exe,4\n"
                     "6000000,ThreadStart,,900,901,,\n")
    findings = analyze(ta.load([sample, other])).findings
    assert not findings[findings["severity"].astype(str) != "info"].shape[0], findings[["rule", "time_ns"]]
