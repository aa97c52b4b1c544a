"""The CSwitch rows a single-file ETL load leaves out of its table (``ReadResult.left_out``):
delta-coded times and keys that decode to exactly what was added, ranks around them equal
to the ranks of a sort of every row, and a trace equal to the one that kept the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers.etl_oracles import scenario_frame, scenario_rows

import traceanalyzer as ta
from traceanalyzer.model.left_out import LeftOut
from traceanalyzer.model.order import ranks_around
from traceanalyzer.readers import ReadOptions, read_file
from traceanalyzer.readers.etl.reader import ORDER_KEY
from traceanalyzer.synth.etl_writer import write_etl


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times and keys mostly stepping a little, with every kind of step that does not fit:
    back in time, a gap over 2**32 ns, a key jumping back or by more than 255."""
    step_t = rng.integers(0, 3000, n)
    step_k = rng.integers(1, 4, n)
    odd = rng.random(n) < 0.05
    step_t[odd] = rng.choice([-5, -(1 << 40), 1 << 32, (1 << 32) - 1, 1 << 45], odd.sum())
    odd = rng.random(n) < 0.05
    step_k[odd] = rng.choice([-1, 0, 255, 256, 1 << 41], odd.sum())
    times = (1 << 50) + np.cumsum(step_t)
    keys = np.cumsum(step_k)
    cpus = rng.choice([0, 1, 7, 65535, 65536, -1], n, p=[0.4, 0.3, 0.2, 0.04, 0.03, 0.03])
    return times.astype(np.int64), keys.astype(np.int64), cpus


def test_parts_decode_to_the_rows_added() -> None:
    rng = np.random.default_rng(5)
    left = LeftOut("CSwitch")
    added = []
    for n in (1, 0, 700, 3, 5000, 4000):
        times, keys, cpus = _rows(rng, n)
        if n == 4000:  # only the rows of a mask (the reader's CSwitch rows among Thread rows)
            select = rng.random(n) < 0.7
            left.add(times, keys, cpus, select)
            times, keys, cpus = times[select], keys[select], cpus[select]
        else:
            left.add(times, keys, cpus)
        added.append((times, keys, cpus))
    got = list(left.parts())
    want = [(t, k) for t, k, _ in added if t.size]
    assert len(got) == len(want)
    for (t, k), (wt, wk) in zip(got, want):
        assert t.tolist() == wt.tolist() and k.tolist() == wk.tolist()
    every = np.concatenate([t for t, _, _ in added])
    assert left.count == every.size and (left.t_min, left.t_max) == (every.min(), every.max())
    assert left.cpus() == set(np.concatenate([c for _, _, c in added]).tolist())
    # steps that fit cost 5 bytes a row; each anchor 24 more
    assert left.nbytes < every.size * 5 + every.size * 0.2 * 24


def test_ranks_around_left_out_parts_are_the_ranks_of_the_whole_sort() -> None:
    rng = np.random.default_rng(8)
    for _ in range(300):
        n = int(rng.integers(1, 90))
        times = rng.integers(0, int(rng.integers(1, 15)), n)
        keys = rng.permutation(n * 4)[:n]
        left_out = rng.random(n) < rng.random()
        kept = np.flatnonzero(~left_out)
        rows = np.flatnonzero(left_out)
        cuts = sorted(set(rng.integers(0, rows.size + 1, 3).tolist()) | {0, rows.size})
        parts = [(times[rows[a:b]], keys[rows[a:b]]) for a, b in zip(cuts, cuts[1:])]
        seq = ranks_around(times[kept], keys[kept], iter(parts))
        rank = np.empty(n, np.int64)
        rank[np.lexsort((keys, times))] = np.arange(n)
        assert seq.tolist() == rank[kept].tolist()


def _trace_file(tmp_path: Path) -> Path:
    rows = scenario_rows()
    rows += [dict(time_ns=t, event="CSwitch", cpu=i % 3, new_tid=2004, old_tid=8)
             for i, t in enumerate(range(120, 9800, 97))]
    rows += [dict(time_ns=r["time_ns"], event="CSwitch", cpu=1, new_tid=8, old_tid=2004)
             for r in scenario_rows()[::3]]  # at the time of other events: ties by key
    path = tmp_path / "t.etl"
    write_etl(scenario_frame(sorted(rows, key=lambda r: r["time_ns"])), path, buffer_size=1024)
    return path


def test_the_reader_leaves_out_exactly_the_cswitch_rows(tmp_path: Path) -> None:
    path = _trace_file(tmp_path)
    deferred = read_file(path, options=ReadOptions(defer_cswitch=True))
    lean = read_file(path, options=ReadOptions(defer_cswitch=True, leave_out_deferred=True))
    table = deferred.table.append_column(ORDER_KEY, deferred.order_key).to_pandas()
    cs = table[table["event"] == "CSwitch"]
    assert lean.table.num_rows == len(table) - len(cs) and "CSwitch" not in set(lean.table.column("event").to_pylist())
    times = np.concatenate([t for t, _ in lean.left_out.parts()])
    keys = np.concatenate([k for _, k in lean.left_out.parts()])
    assert sorted(zip(times.tolist(), keys.tolist())) == sorted(zip(cs["time_ns"], cs[ORDER_KEY]))
    assert lean.left_out.cpus() == set(cs["cpu"]) and lean.left_out.count == len(cs)
    assert lean.stats.total("events") == deferred.stats.total("events") == len(table)


def _loaded_both(path: Path, monkeypatch, **kwargs) -> tuple[ta.Trace, ta.Trace]:
    """(the trace ``ta.load`` gives, checked to have taken the left-out path; the one
    that kept every CSwitch row)."""
    from traceanalyzer import session

    left: list[int] = []
    real = session.read_file

    def spy(*args, **kw):
        result = real(*args, **kw)
        left.append(-1 if result.left_out is None else result.left_out.count)
        return result

    with monkeypatch.context() as m:
        m.setattr(session, "read_file", spy)
        lean = ta.load(path, **kwargs)
    assert left and left[0] > 0, "ta.load did not leave the CSwitch rows out"
    return lean, ta.load(path, keep_cswitch=True, **kwargs)


def _assert_same(lean: ta.Trace, whole: ta.Trace) -> None:
    assert lean.n_events == whole.n_events and lean.time_span_ns == whole.time_span_ns
    assert list(lean.events_by_name.items()) == list(whole.events_by_name.items())  # order too
    assert lean.stats.to_frame().equals(whole.stats.to_frame())
    for family in ("calls", "processes", "threads", "images", "other"):
        assert lean.table(family).equals(whole.table(family)), family
        assert lean.table(family, all_columns=False).equals(whole.table(family, all_columns=False)), family
    assert lean.cpus() == whole.cpus()
    a, b = ta.analyze(lean), ta.analyze(whole)
    assert a.findings.drop(columns="evidence").equals(b.findings.drop(columns="evidence"))
    assert lean.cswitch.equals(whole.cswitch)


def test_a_loaded_trace_is_the_one_that_kept_the_rows(tmp_path: Path, monkeypatch) -> None:
    _assert_same(*_loaded_both(_trace_file(tmp_path), monkeypatch))


def test_a_file_without_thread_records(tmp_path: Path, monkeypatch) -> None:
    """Every bulk record left out: the table still has the bulk columns and names."""
    rows = [r for r in scenario_rows() if not r["event"].startswith("Thread")]
    rows += [dict(time_ns=t, event="CSwitch", cpu=t % 2, new_tid=5, old_tid=6) for t in range(150, 9000, 170)]
    path = tmp_path / "nothreads.etl"
    write_etl(scenario_frame(sorted(rows, key=lambda r: r["time_ns"])), path, buffer_size=1024)
    _assert_same(*_loaded_both(path, monkeypatch))


def test_cswitch_rows_a_field_map_makes_keep_their_cpus(tmp_path: Path, monkeypatch) -> None:
    """A provider event mapped to CSwitch stays in the table (it is not a bulk record):
    its CPUs count with those of the left-out rows."""
    import json

    from traceanalyzer.synth.etl_writer import PROVIDER_NAME

    rows = scenario_rows() + [dict(time_ns=5000 + 100 * i, event="MyCs", cpu=5, pid=4, tid=8) for i in range(3)]
    rows += [dict(time_ns=t, event="CSwitch", cpu=1, new_tid=5, old_tid=6) for t in range(150, 9000, 170)]
    path = tmp_path / "mapped.etl"
    write_etl(scenario_frame(sorted(rows, key=lambda r: r["time_ns"])), path, buffer_size=1024)
    fmap = tmp_path / "fm.json"
    fmap.write_text(json.dumps({"providers": [{"provider": PROVIDER_NAME, "events": {"MyCs": "CSwitch"}}]}))
    lean, whole = _loaded_both(path, monkeypatch, field_map=fmap)
    assert 5 in lean.cpus()
    _assert_same(lean, whole)


def test_progress_counts_the_rows_left_out(tmp_path: Path) -> None:
    path = _trace_file(tmp_path)
    seen: list[tuple[int, int]] = []
    ta.load(path, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]


def test_a_file_of_cswitch_rows_only(tmp_path: Path, monkeypatch) -> None:
    rows = [dict(time_ns=t, event="CSwitch", cpu=t % 3, new_tid=5, old_tid=6) for t in range(100, 2000, 50)]
    path = tmp_path / "cs.etl"
    write_etl(scenario_frame(rows), path, buffer_size=1024)
    lean, whole = _loaded_both(path, monkeypatch)
    assert lean.n_events == whole.n_events == len(rows) and lean.events_by_name == {"CSwitch": len(rows)}
    assert lean.cpus() == whole.cpus() == [0, 1, 2]
    assert len(ta.analyze(lean).findings) == 0
    _assert_same(lean, whole)


def test_merged_files_keep_their_rows_and_equal_the_whole_merge(tmp_path: Path, monkeypatch) -> None:
    """Several files are merged with ties in row order: their readers are not asked to
    leave rows out, and the merged trace equals the one that kept every CSwitch row."""
    from traceanalyzer import session

    first = _trace_file(tmp_path)
    second = tmp_path / "second.etl"
    rows = [dict(time_ns=t, event="CSwitch", cpu=i % 2, new_tid=2004, old_tid=8)
            for i, t in enumerate(range(100, 9900, 61))]
    rows += [dict(r, cpu=r.get("cpu", 0)) for r in scenario_rows()[:6]]
    write_etl(scenario_frame(sorted(rows, key=lambda r: r["time_ns"])), second, buffer_size=1024)
    asked: list[bool] = []
    real = session.read_file

    def spy(path, *args, **kwargs):
        asked.append(kwargs["options"].leave_out_deferred)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(session, "read_file", spy)
    lean = ta.load([first, second])
    assert asked == [False, False]
    whole = ta.load([first, second], keep_cswitch=True)
    assert lean.n_events == whole.n_events and lean.events_by_name == whole.events_by_name
    for family in ("calls", "processes", "threads", "images", "other"):
        assert lean.table(family).equals(whole.table(family)), family
    assert lean.cswitch.equals(whole.cswitch)
