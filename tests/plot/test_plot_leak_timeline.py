"""Leak timeline: ranking by impact, folding into 'others', exit marks, end labels."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from helpers.fake_analysis import S, seed_tables

from traceanalyzer.analysis.timelines import normalise_leak_timeline
from traceanalyzer.plot.leak_timeline import plot_leak_timeline, rank_processes
from traceanalyzer.plot.style import figure_png


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _legend_labels(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_rank_processes_integrates_bytes_over_time() -> None:
    t = seed_tables()
    ranked = rank_processes(t["leak_timeline"], t_end_ns=8 * S)
    assert list(ranked["process"]) == ["app.exe"]
    row = ranked.iloc[0]
    # one 8 KiB MDL locked at 1 s, mapped from 1.001 s to the end (8 s): its pages are
    # held once (the 'held' rows), not locked + mapped
    assert row["impact_byte_seconds"] == pytest.approx(8192 * 7.0)
    assert row["bytes_at_end"] == 8192
    assert row["peak_bytes"] == 8192


def test_a_table_without_held_rows_ranks_the_sum_of_its_kinds() -> None:
    """A timeline made by hand, with no lifetimes to tell: each row is pages of its own."""
    t = seed_tables()
    lt = t["leak_timeline"]
    row = rank_processes(lt[lt["kind"] != "held"], t_end_ns=8 * S).iloc[0]
    assert row["impact_byte_seconds"] == pytest.approx(8192 * 1.0 + 8192 * 6.999)
    assert row["peak_bytes"] == 16384  # both held between 1.001 s and 2 s


def test_rank_orders_by_impact_not_by_size() -> None:
    lt = pd.DataFrame([
        dict(time_ns=0, pid=1, process="big_short.exe", kind="locked", bytes=1 << 20),
        dict(time_ns=1 * S // 10, pid=1, process="big_short.exe", kind="locked", bytes=0),
        dict(time_ns=0, pid=2, process="small_long.exe", kind="user_mapped", bytes=1 << 16),
    ])
    ranked = rank_processes(lt, t_end_ns=10 * S)
    # 1 MiB x 0.1 s = 104858 B.s < 64 KiB x 10 s = 655360 B.s
    assert list(ranked["process"]) == ["small_long.exe", "big_short.exe"]


def _rank_by_hand(lt: pd.DataFrame, t_end: float) -> dict:
    """The ranking figures by walking each process's changes in time order."""
    out = {}
    for (pid, proc), g in lt.groupby(["pid", "process"]):
        level = {k: 0.0 for k in ("locked", "user_mapped")}
        area = peak = 0.0
        times = sorted(set(g["time_ns"]))
        for i, t in enumerate(times):
            for r in g[g["time_ns"] == t].itertuples():  # the last row of a time wins
                level[r.kind] = float(r.bytes)
            peak = max(peak, sum(level.values()))
            nxt = times[i + 1] if i + 1 < len(times) else max(t_end, times[-1])
            area += sum(level.values()) * (nxt - t)
        out[(float(pid), proc)] = (area / 1e9, peak, sum(level.values()))
    return out


def test_rank_processes_matches_a_walk_through_random_timelines() -> None:
    """Many processes, both kinds, several changes at one instant (the last holds)."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        lt = pd.DataFrame({
            "time_ns": rng.integers(0, 8, n) * S, "pid": rng.integers(1, 4, n),
            "process": rng.choice(["a.exe", "b.exe"], n),
            "kind": rng.choice(["locked", "user_mapped"], n),
            "bytes": rng.integers(0, 4, n) * 4096})
        ranked = rank_processes(lt, t_end_ns=10 * S)
        want = _rank_by_hand(lt, 10 * S)
        got = {(r.pid, r.process): (r.impact_byte_seconds, r.peak_bytes, r.bytes_at_end)
               for r in ranked.itertuples()}
        assert got.keys() == want.keys()
        for key, figures in want.items():
            assert got[key] == pytest.approx(figures), key
        impact = ranked["impact_byte_seconds"].tolist()
        assert impact == sorted(impact, reverse=True)
        # the figure and the interactive timeline rank a table they normalised already:
        # it is taken as it is (not converted again), with the same ranking
        normal = normalise_leak_timeline(lt)
        assert normalise_leak_timeline(normal) is normal
        pd.testing.assert_frame_equal(rank_processes(normal, t_end_ns=10 * S), ranked)


def test_seed_figure_marks_exit_with_memory_held_and_bytes_at_end() -> None:
    t = seed_tables()
    fig = plot_leak_timeline(t["leak_timeline"], t["processes"], time_span_ns=t["time_span_ns"])
    texts = _texts(fig)
    assert "exited holding 8 KiB" in texts
    assert "8 KiB at end" in texts
    assert any("app.exe (1234): 8 KiB at end" == s for s in _legend_labels(fig))
    assert "8 KiB still held at trace end" in fig._suptitle.get_text()
    # the exit marker sits at the exit time (5 s) on the lifetime lane
    life = fig.axes[2]
    xs = [x for line in life.get_lines() if line.get_marker() == "X"
          for x in line.get_xdata()]
    assert xs == [pytest.approx(5.0)]
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_a_process_that_released_everything_gets_no_exit_mark() -> None:
    lt = pd.DataFrame([
        dict(time_ns=1 * S, pid=7, process="tidy.exe", kind="locked", bytes=4096),
        dict(time_ns=2 * S, pid=7, process="tidy.exe", kind="locked", bytes=0),
    ])
    procs = pd.DataFrame([dict(pid=7, image="C:\\apps\\tidy.exe", start_ns=0, end_ns=3 * S)])
    fig = plot_leak_timeline(lt, procs, time_span_ns=(0, 4 * S))
    assert not any("exited holding" in s for s in _texts(fig))
    assert not any("at end" in s for s in _texts(fig))


@pytest.mark.parametrize("extra", [0, 200])
def test_readable_with_one_or_two_hundred_processes(extra: int) -> None:
    t = seed_tables(extra_processes=extra)
    fig = plot_leak_timeline(t["leak_timeline"], t["processes"], time_span_ns=t["time_span_ns"],
                             top_n=8)
    labels = [s for s in _legend_labels(fig) if not s.startswith("process exit")]
    n_proc = 1 + extra
    if extra:
        assert len(labels) == 9  # 8 processes + others
        assert labels[-1].startswith(f"others ({n_proc - 8} processes)")
    else:
        assert len(labels) == 1
    # one step line per drawn series and kind at most, whatever the number of processes
    for ax in fig.axes[:2]:
        steps = [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("None", "")]
        assert len(steps) <= len(labels)
    w, h = fig.get_size_inches()
    assert h < 14  # fits a screen page also with 200 processes


def test_others_series_is_the_sum_of_the_folded_processes() -> None:
    rows = []
    for i in range(5):
        rows.append(dict(time_ns=i * S, pid=100 + i, process=f"p{i}.exe", kind="locked",
                         bytes=4096 * (i + 1)))
    lt = pd.DataFrame(rows)
    fig = plot_leak_timeline(lt, None, time_span_ns=(0, 10 * S), top_n=2)
    locked = fig.axes[0]
    grey = [ln for ln in locked.get_lines() if ln.get_color() == "#9e9e9e"]
    assert len(grey) == 1
    y = np.asarray(grey[0].get_ydata())
    # impacts (bytes x s to 10 s): p0 4 KiB x 10, p1 8 KiB x 9, p2 12 KiB x 8,
    # p3 16 KiB x 7, p4 20 KiB x 6 -> p4, p3 drawn; p0..p2 folded, their levels add up
    assert y[-1] == 4096 + 8192 + 12288
    assert y.max() == 4096 + 8192 + 12288


def test_empty_timeline_says_so() -> None:
    fig = plot_leak_timeline(pd.DataFrame(columns=["time_ns", "pid", "process", "kind",
                                                   "bytes"]), None)
    assert any("no locked or user-mapped" in s for s in _texts(fig))


def test_decimated_steps_keep_every_pixel_columns_extremes() -> None:
    import numpy as np

    from traceanalyzer.plot.leak_timeline import decimate_steps

    rng = np.random.default_rng(7)
    t = np.sort(rng.uniform(0, 1e9, 200_000))
    v = np.cumsum(rng.choice([-4096.0, 4096.0], t.size)) + 1e6
    td, vd = decimate_steps(t, v, 0, 1e9, bins=1000)
    assert td.size <= 4 * 1000 and np.all(np.diff(td) >= 0)
    assert set(zip(td, vd)) <= set(zip(t, v))  # only original steps, none invented
    col, cold = (t // 1e6).astype(int), (td // 1e6).astype(int)
    for c in rng.choice(1000, 50, replace=False):  # per column: same lowest and highest level
        assert v[col == c].max() == vd[cold == c].max() and v[col == c].min() == vd[cold == c].min()
    assert (td[0], vd[0], td[-1], vd[-1]) == (t[0], v[0], t[-1], v[-1])
    short = t[:100], v[:100]
    assert decimate_steps(*short, 0, 1e9, bins=1000)[0] is short[0]  # short series untouched


def test_a_dense_comb_is_drawn_as_its_envelope() -> None:
    """Thousands of lock/unlock pairs (issue 14 item 6): the PNG's step line has at most
    four real steps per column of four pixels, and still reaches the comb's peak."""
    from traceanalyzer.plot import style

    n = 6000
    t = np.arange(2 * n) * (S // 1000)
    lt = pd.DataFrame({"time_ns": t, "pid": 7, "process": "comb.exe", "kind": "locked",
                       "bytes": np.where(np.arange(2 * n) % 2 == 0, 8192, 0)})
    lt.loc[len(lt) - 1, "bytes"] = 16384  # one higher step at the very end
    fig = plot_leak_timeline(lt, None, time_span_ns=(0, int(t[-1]) + S // 1000))
    ax = fig.axes[0]
    bins = int(fig.get_figwidth() * style.PNG_DPI) // 4
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    assert lines and all(len(ln.get_xdata()) <= 4 * bins + 2 for ln in lines)
    assert len(lines[0].get_xdata()) < 2 * n  # thinned
    ys = np.concatenate([ln.get_ydata() for ln in lines])
    assert ys.max() == 16384 and set(np.unique(ys)) <= {0, 8192, 16384}


def test_exit_marks_follow_the_exit_findings() -> None:
    """A process's exit is the end of its teardown (IRP_MJ_CLEANUP after its ProcessEnd
    event may release everything): the X and 'exited holding' come from the exit
    findings, not from what it held at its ProcessEnd time."""
    from pathlib import Path

    import traceanalyzer as ta

    samples = Path(__file__).resolve().parents[2] / "sample_traces"
    clean = ta.analyze(ta.load(samples / "clean_cleanup_after_process_end.csv"))
    fig = clean.plot_leak_timeline()
    assert not any("exited holding" in s for s in _texts(fig))
    assert "process exit with memory still held" not in _legend_labels(fig)
    view = clean.for_process("recorder.exe").plot_leak_timeline()  # views too
    assert not any("exited holding" in s for s in _texts(view))
    leaky = ta.analyze(ta.load(samples / "freed_while_locked_process_exit.csv"))
    assert "exited holding 8 KiB" in _texts(leaky.plot_leak_timeline())
    # given explicitly: a pid's bytes, NaN for memory of unknown size
    t = seed_tables()
    fig = plot_leak_timeline(t["leak_timeline"], t["processes"], exit_leaks={1234: float("nan")})
    assert "exited holding memory of unknown size" in _texts(fig)
    fig = plot_leak_timeline(t["leak_timeline"], t["processes"], exit_leaks={})
    assert not any("exited holding" in s for s in _texts(fig))
