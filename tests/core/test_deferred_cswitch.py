"""CSwitch rows of an ETL trace are numbered but not kept until asked for
(docs/architecture.md, "Model"): every table, seq and finding is the same as with
``keep_cswitch=True``, and ``trace.cswitch`` reads the file again, once."""

from __future__ import annotations

from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer import session
from traceanalyzer.context.attribution import attribute
from traceanalyzer.synth.etl_writer import write_etl

from helpers.etl_oracles import scenario_frame, scenario_rows

FAMILIES = ("calls", "cswitch", "processes", "threads", "images", "other")


def _rows(call_without_tid: bool) -> list[dict]:
    rows = scenario_rows()
    # context switches on every CPU (CPU 3 has nothing else), some at the time of a call
    rows += [dict(time_ns=t, event="CSwitch", cpu=i % 4, new_tid=2004, old_tid=8)
             for i, t in enumerate(range(150, 9700, 250))]
    rows += [dict(time_ns=6500, event="CSwitch", cpu=2, new_tid=8, old_tid=2004)]
    if call_without_tid:  # its thread comes from the last CSwitch on its CPU
        rows += [dict(time_ns=9900, event="IoFreeMdl", cpu=1, mdl=0xFFFFC30A60001000)]
    return sorted(rows, key=lambda r: r["time_ns"])


def _write(tmp_path: Path, call_without_tid: bool) -> Path:
    path = tmp_path / "t.etl"
    write_etl(scenario_frame(_rows(call_without_tid)), path, buffer_size=1024)
    return path


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    reads: list[Path] = []
    real = session.read_file

    def counting(path, *args, **kwargs):
        reads.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(session, "read_file", counting)
    return reads


@pytest.mark.parametrize("call_without_tid", [False, True])
def test_deferred_trace_equals_the_whole_one(tmp_path: Path, call_without_tid: bool) -> None:
    path = _write(tmp_path, call_without_tid)
    lean, whole = ta.load(path), ta.load(path, keep_cswitch=True)
    assert lean.n_events == whole.n_events and lean.time_span_ns == whole.time_span_ns
    assert lean.events_by_name == whole.events_by_name and lean.events_by_name["CSwitch"] > 30
    assert lean.cpus() == whole.cpus() == [0, 1, 2, 3]
    a, b = ta.analyze(lean), ta.analyze(whole)
    assert attribute(lean).to_frame().equals(attribute(whole).to_frame())
    assert a.findings.drop(columns="evidence").equals(b.findings.drop(columns="evidence"))
    assert a.findings["evidence"].tolist() == b.findings["evidence"].tolist()
    for family in FAMILIES:
        assert lean.table(family).equals(whole.table(family)), family
    assert lean.events_table().equals(whole.events_table())
    assert lean.cswitch.equals(whole.cswitch) and len(lean.cswitch) == lean.events_by_name["CSwitch"]


def test_cswitch_is_read_again_once_and_only_when_asked(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path, call_without_tid=False)
    reads = _count_reads(monkeypatch)
    trace = ta.load(path)
    ta.analyze(trace).findings  # every call carries its thread: no CSwitch needed
    assert reads == [path]
    assert len(trace.cswitch) == trace.events_by_name["CSwitch"]
    assert len(trace.table("cswitch")) == len(trace.cswitch)
    assert reads == [path, path]


def test_events_at_reads_cswitch_rows_again_only_when_asked_for_one(tmp_path: Path,
                                                                    monkeypatch) -> None:
    path = _write(tmp_path, call_without_tid=False)
    whole = ta.load(path, keep_cswitch=True).events_table().to_pandas()
    reads = _count_reads(monkeypatch)
    trace = ta.load(path)
    calls = trace.calls["seq"].tolist()[:3]
    assert trace.events_at(calls).to_pandas()["seq"].tolist() == calls
    assert reads == [path]  # no CSwitch asked for: not read again
    switch = int(whole.loc[whole["event"] == "CSwitch", "seq"].iloc[0])
    got = trace.events_at([switch, *calls]).to_pandas()
    assert reads == [path, path]
    assert got["seq"].tolist() == sorted([switch, *calls])
    assert got.loc[got["seq"] == switch, "event"].tolist() == ["CSwitch"]


def test_a_call_without_thread_reads_the_cswitch_rows(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path, call_without_tid=True)
    reads = _count_reads(monkeypatch)
    trace = ta.load(path)
    ctx = attribute(trace).to_frame()
    assert reads == [path, path]
    last = ctx.iloc[-1]
    assert (last["tid"], last["pid"], last["source"]) == (2004, 2000, "thread")


def test_window_of_a_deferred_trace_keeps_the_switch_before_it(tmp_path: Path) -> None:
    path = _write(tmp_path, call_without_tid=False)
    lean, whole = ta.load(path), ta.load(path, keep_cswitch=True)
    w1, w2 = lean.window(5000, 8000), whole.window(5000, 8000)
    assert w1.cswitch.equals(w2.cswitch) and len(w1.cswitch) > 3
    assert w1.calls.equals(w2.calls)


def test_kept_ranks_are_the_ranks_of_a_stable_sort_of_every_row() -> None:
    """Many equal times, rows left out at random, several chunks: each kept row's seq is
    its position in the stable time sort of all rows."""
    import numpy as np
    import pyarrow as pa

    from traceanalyzer.model.order import kept_ranks

    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 80))
        times = rng.integers(0, int(rng.integers(1, 12)), n)
        left_out = rng.random(n) < rng.random()
        cuts = sorted(set(rng.integers(0, n, 3).tolist()) | {0, n})
        column = pa.chunked_array([pa.array(times[a:b], pa.int64()) for a, b in zip(cuts, cuts[1:])],
                                  pa.int64())
        kept, seq = kept_ranks(column, left_out)
        rank = np.empty(n, np.int64)
        rank[np.argsort(times, kind="stable")] = np.arange(n)
        assert kept.tolist() == np.flatnonzero(~left_out).tolist()
        assert seq.tolist() == rank[kept].tolist()


def _other_etl(tmp_path: Path) -> Path:
    """A different ETL trace: fewer CSwitch rows, so other seq numbers."""
    rows = [r for r in _rows(call_without_tid=True) if r["event"] != "CSwitch" or r["time_ns"] < 3000]
    path = tmp_path / "other.etl"
    write_etl(scenario_frame(rows), path, buffer_size=1024)
    return path


def _replace(path: Path, by: Path) -> None:
    path.write_bytes(by.read_bytes())


def _truncate(path: Path, by: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _delete(path: Path, by: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("change, word", [(_replace, "changed"), (_truncate, "changed"),
                                          (_delete, "vanished")])
def test_a_file_changed_after_load_is_an_error_naming_it(tmp_path: Path, change, word) -> None:
    path = _write(tmp_path, call_without_tid=True)
    other = _other_etl(tmp_path)
    for access in (lambda t: t.cswitch, lambda t: ta.analyze(t).findings,
                   lambda t: t.window(0, 10**9), lambda t: t.events):
        trace = ta.load(path)
        change(path, other)
        for _ in range(2):  # still an error the second time, never an empty CSwitch table
            with pytest.raises(ta.TraceFileChangedError) as err:
                access(trace)
            assert err.value.path == str(path) and str(err.value).startswith(str(path))
            assert f"{word} since it was loaded" in str(err.value)
            assert "keep_cswitch=True" in str(err.value)
        path = _write(tmp_path, call_without_tid=True)  # back, for the next access


def test_kept_cswitch_does_not_read_the_file_again(tmp_path: Path) -> None:
    path = _write(tmp_path, call_without_tid=True)
    whole = ta.load(path, keep_cswitch=True)
    expected = ta.load(path, keep_cswitch=True).cswitch
    path.unlink()
    assert whole.cswitch.equals(expected) and len(ta.analyze(whole).findings)


def test_a_pickled_trace_carries_its_cswitch_rows(tmp_path: Path) -> None:
    import pickle

    path = _write(tmp_path, call_without_tid=True)
    whole = ta.load(path, keep_cswitch=True)
    data = pickle.dumps(ta.load(path))
    path.unlink()  # the unpickled trace never reads the file
    back = pickle.loads(data)
    assert back.cswitch.equals(whole.cswitch) and back.events_table().equals(whole.events_table())
    a, b = ta.analyze(back), ta.analyze(whole)
    assert a.findings.drop(columns="evidence").equals(b.findings.drop(columns="evidence"))


def test_pickling_a_trace_whose_file_changed_is_an_error(tmp_path: Path) -> None:
    import pickle

    path = _write(tmp_path, call_without_tid=False)
    trace = ta.load(path)
    _replace(path, _other_etl(tmp_path))
    with pytest.raises(ta.TraceFileChangedError, match="changed since it was loaded"):
        pickle.dumps(trace)


def test_kept_ranks_with_a_tie_key_are_the_ranks_of_the_sort_by_time_then_key() -> None:
    """Equal times ordered by a per-row key (the ETL stream key), not by row order: each
    kept row's seq is its position in the sort of all rows by (time, key)."""
    import numpy as np
    import pyarrow as pa

    from traceanalyzer.model.order import kept_ranks

    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 80))
        times = rng.integers(0, int(rng.integers(1, 12)), n)
        keys = rng.permutation(n * 3)[:n]  # unique, unrelated to row order
        left_out = rng.random(n) < rng.random()
        cuts = sorted(set(rng.integers(0, n, 3).tolist()) | {0, n})
        key_cuts = sorted(set(rng.integers(0, n, 2).tolist()) | {0, n})  # chunked differently
        column = pa.chunked_array([pa.array(times[a:b], pa.int64()) for a, b in zip(cuts, cuts[1:])], pa.int64())
        ties = pa.chunked_array([pa.array(keys[a:b], pa.int64()) for a, b in zip(key_cuts, key_cuts[1:])],
                                pa.int64())
        kept, seq = kept_ranks(column, left_out, ties)
        rank = np.empty(n, np.int64)
        rank[np.lexsort((keys, times))] = np.arange(n)
        assert kept.tolist() == np.flatnonzero(~left_out).tolist()
        assert seq.tolist() == rank[kept].tolist()


def test_kept_ranks_count_long_chunks_a_slice_at_a_time(monkeypatch) -> None:
    """A reader's deferred CSwitch rows come as one long chunk; they are counted in
    slices (bounded scratch memory): the ranks do not depend on the slice length."""
    from traceanalyzer.model import order

    monkeypatch.setattr(order, "_SLICE_ROWS", 3)
    test_kept_ranks_are_the_ranks_of_a_stable_sort_of_every_row()
    test_kept_ranks_with_a_tie_key_are_the_ranks_of_the_sort_by_time_then_key()
