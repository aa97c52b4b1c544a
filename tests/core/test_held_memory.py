"""The memory a process holds: each MDL lifetime locked in it or user-mapped into it
counted once (an MDL locked and mapped into one process is one set of pages), in the
leak timeline's 'held' rows, the ranking, the leak figure and the report's interactive
curve. These were locked + user-mapped added up: 16 KiB for one 8 KiB MDL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traceanalyzer as ta
from helpers.rows import PRELUDE, analyze_rows
from traceanalyzer.analysis.timelines import rank_processes
from traceanalyzer.render.interactive import _leak_series

ROOT = Path(__file__).resolve().parents[2]
MDL, MDL2 = 0xFFFFC30A4B2F1000, 0xFFFFC30A4B2F3000
USER_VA, MAPPED, MAPPED2 = 0x000001D2C3A40000, 0x0000020000000000, 0x0000020000100000
A = {"pid": 100, "tid": 1000}  # a.exe of PRELUDE
B = {"pid": 200, "tid": 2000}  # b.exe
END = 10_000  # the trace's last event


def call(t: int, event: str, who: dict, **fields) -> dict:
    return {"time_ns": t, "event": event, **who, **fields}


def alloc(t: int, who: dict, mdl: int = MDL) -> dict:
    return call(t, "IoAllocateMdl", who, mdl=mdl, va=USER_VA, size=8192)


def lock(t: int, who: dict, mdl: int = MDL) -> dict:
    return call(t, "MmProbeAndLockPages", who, mdl=mdl, access_mode="UserMode",
                operation="IoWriteAccess")


def user_map(t: int, who: dict, mdl: int = MDL, mapped: int = MAPPED) -> dict:
    return call(t, "MmMapLockedPagesSpecifyCache", who, mdl=mdl, access_mode="UserMode",
                cache_type="MmCached", mapped_va=mapped)


def trace_end() -> dict:
    return {"time_ns": END, "event": "ProcessEnd", "pid": 300, "image": "c.exe"}


def held_rows(analysis: ta.Analysis, pid: int) -> list[tuple[int, int]]:
    lt = analysis.leak_timeline()
    h = lt[(lt["kind"] == "held") & (lt["pid"] == pid)]
    return list(zip(h["time_ns"].astype(int), h["bytes"].astype(int)))


def ranking(analysis: ta.Analysis) -> dict[int, tuple[float, float, float]]:
    r = rank_processes(analysis.leak_timeline(), analysis.trace_end_ns)
    return {int(x.pid): (x.impact_byte_seconds, x.peak_bytes, x.bytes_at_end)
            for x in r.itertuples()}


def figure_texts(fig) -> list[str]:
    return ([t.get_text() for ax in fig.axes for t in ax.texts]
            + [t.get_text() for leg in fig.legends for t in leg.get_texts()]
            + [fig._suptitle.get_text()])


def interactive_peaks(analysis: ta.Analysis) -> dict[str, float]:
    t0, t1 = (float(x) for x in analysis.trace.time_span_ns)
    return {label: float(np.max(s["bytes"]))
            for label, s in _leak_series(analysis, t0, t1, 1.0, 8)}


def test_one_mdl_locked_and_mapped_into_its_process_counts_once() -> None:
    """Locked and mapped into a.exe, which exits holding both: 8 KiB, not 16 KiB."""
    a = analyze_rows(PRELUDE + [
        alloc(1000, A), lock(2000, A), user_map(3000, A),
        {"time_ns": 6000, "event": "ProcessEnd", "pid": 100, "image": "a.exe"},
        trace_end()])
    assert held_rows(a, 100) == [(2000, 8192)]
    assert ranking(a)[100] == pytest.approx((8192 * (END - 2000) / 1e9, 8192, 8192))
    assert a.leaks["bytes_at_end"] == 8192
    texts = figure_texts(a.plot_leak_timeline())
    assert "exited holding 8 KiB" in texts
    assert "a.exe (100): 8 KiB at end" in texts
    assert any("8 KiB still held at trace end" in s for s in texts)
    assert not any("16 KiB" in s for s in texts)
    assert interactive_peaks(a) == {"a.exe (100)": 8192}


def test_the_sample_trace_unlocked_from_a_worker_peaks_at_one_mdl() -> None:
    a = ta.analyze(ta.load(ROOT / "sample_traces" / "seed_unlock_from_worker.csv"))
    impact, peak, at_end = ranking(a)[1234]
    assert (peak, at_end) == (8192, 8192)
    assert a.leaks["bytes_at_end"] == 8192


def test_an_mdl_locked_in_one_process_and_mapped_into_another_counts_in_both() -> None:
    a = analyze_rows(PRELUDE + [alloc(1000, A), lock(2000, A), user_map(3000, B),
                                trace_end()])
    assert held_rows(a, 100) == [(2000, 8192)]
    assert held_rows(a, 200) == [(3000, 8192)]
    r = ranking(a)
    assert r[100][1:] == (8192, 8192) and r[200][1:] == (8192, 8192)
    assert interactive_peaks(a) == {"a.exe (100)": 8192, "b.exe (200)": 8192}
    # the pages exist once: the title says what summary() says
    assert a.leaks["bytes_at_end"] == 8192
    assert "8 KiB still held at trace end" in a.plot_leak_timeline()._suptitle.get_text()


def test_an_mdl_left_mapped_in_two_exiting_processes_leaks_its_pages_once() -> None:
    """bytes_leaked_at_exit is physical memory: the MDL's pages, once, though each
    process's exit is its own finding (and each process's exit mark shows them)."""
    ends = [{"time_ns": 8000 + k, "event": "ProcessEnd", "pid": p, "image": i}
            for k, (p, i) in enumerate(((100, "a.exe"), (200, "b.exe")))]
    a = analyze_rows(PRELUDE + [alloc(1000, A), lock(2000, A), user_map(3000, A),
                                user_map(4000, B, mapped=MAPPED2)] + ends + [trace_end()])
    exits = a.findings[a.findings["rule"] == "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]
    assert sorted(exits["pid"]) == [100, 200]
    assert a.leaks["bytes_leaked_at_exit"] == 8192


def test_two_mdls_add() -> None:
    a = analyze_rows(PRELUDE + [
        alloc(1000, A), lock(2000, A), user_map(3000, A),
        alloc(1500, A, MDL2), lock(4000, A, MDL2), user_map(5000, A, MDL2, MAPPED2),
        trace_end()])
    assert held_rows(a, 100) == [(2000, 8192), (4000, 16384)]
    assert ranking(a)[100][1:] == (16384, 16384)
    assert a.leaks["bytes_at_end"] == 16384
    assert interactive_peaks(a) == {"a.exe (100)": 16384}
    assert "a.exe (100): 16 KiB at end" in figure_texts(a.plot_leak_timeline())


def test_an_unlock_while_mapped_holds_until_the_unmap() -> None:
    """Unlocked at 4000 while still mapped: the process holds the pages until the unmap
    at 6000, then nothing."""
    a = analyze_rows(PRELUDE + [
        alloc(1000, A), lock(2000, A), user_map(3000, A),
        call(4000, "MmUnlockPages", A, mdl=MDL),
        call(6000, "MmUnmapLockedPages", A, mdl=MDL, mapped_va=MAPPED),
        call(7000, "IoFreeMdl", A, mdl=MDL), trace_end()])
    lt = a.leak_timeline()
    kinds = {k: list(zip(g["time_ns"].astype(int), g["bytes"].astype(int)))
             for k, g in lt[lt["pid"] == 100].groupby("kind")}
    assert kinds == {"held": [(2000, 8192), (6000, 0)],
                     "locked": [(2000, 8192), (4000, 0)],
                     "user_mapped": [(3000, 8192), (6000, 0)]}
    assert ranking(a)[100] == pytest.approx((8192 * 4000 / 1e9, 8192, 0))


def test_views_keep_the_held_rows() -> None:
    """A window starts from the level held then, in the held kind too."""
    a = analyze_rows(PRELUDE + [alloc(1000, A), lock(2000, A), user_map(3000, A),
                                trace_end()])
    w = a.window(5000, END).leak_timeline()
    held = w[w["kind"] == "held"]
    assert list(zip(held["time_ns"], held["bytes"])) == [(5000, 8192)]
    assert (a.for_process("a.exe").leak_timeline()["kind"] == "held").sum() == 1


def test_held_matches_a_walk_through_random_intervals() -> None:
    """Per process and time: the sum over lifetimes of the largest interval held."""
    from traceanalyzer.analysis.leaks import leak_timeline

    rng = np.random.default_rng(3)
    end = 100
    for _ in range(150):
        n = int(rng.integers(1, 25))
        life = rng.integers(0, 5, n)
        start = rng.integers(0, end, n)
        held = pd.DataFrame({
            "pid": pd.array(rng.integers(1, 3, n), dtype="Int64"), "process": "p.exe",
            "kind": rng.choice(["locked", "user_mapped"], n), "lifetime_id": life,
            "bytes": pd.array((life + 1) * 4096, dtype="Int64"), "start_ns": start,
            "end_ns": np.minimum(start + rng.integers(0, 40, n), end)})
        lt = leak_timeline(held, end)
        for pid in (1, 2):
            g = lt[(lt["pid"] == pid) & (lt["kind"] == "held")]
            for t in range(end + 1):
                on = held[(held["pid"] == pid) & (held["start_ns"] <= t)
                          & ((held["end_ns"] > t) | (held["end_ns"] == end))]
                want = on.groupby("lifetime_id")["bytes"].max().sum()
                got = g[g["time_ns"] <= t]["bytes"]
                assert (int(got.iloc[-1]) if len(got) else 0) == want
