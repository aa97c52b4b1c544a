"""Trace.window keeps the KeStackAttachProcess calls open at its start: a thread attached
before the window is attached in it, as in the whole trace (no DETACH_MISMATCH on its
detach, its calls in the attached process)."""

from __future__ import annotations

from pathlib import Path

import traceanalyzer as ta
from helpers.rows import PRELUDE, trace_from_rows
from traceanalyzer.context.attribution import attribute

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MDL = 0xFFFFC30A4B2F1000
USER_VA, MAPPED = 0x000001D2C3A40000, 0x0000020000000000
OWNER = {"pid": 100, "tid": 1000}  # a.exe of PRELUDE
WORKER = {"pid": 4, "tid": 88}  # System's worker of PRELUDE


def mapped_by_a() -> list[dict]:
    """a.exe locks and maps an MDL into itself (1..3 us)."""
    return PRELUDE + [
        {"time_ns": 1000, "event": "IoAllocateMdl", "mdl": MDL, "va": USER_VA, "size": 4096, **OWNER},
        {"time_ns": 2000, "event": "MmProbeAndLockPages", "mdl": MDL, "access_mode": "UserMode",
         "operation": "IoWriteAccess", **OWNER},
        {"time_ns": 3000, "event": "MmMapLockedPagesSpecifyCache", "mdl": MDL,
         "access_mode": "UserMode", "cache_type": "MmCached", "mapped_va": MAPPED, **OWNER},
    ]


def unmapped_by_worker(who: dict) -> list[dict]:
    """The worker unmaps (attached to a.exe), detaches, unlocks and frees (6..9 us)."""
    return [
        {"time_ns": 6000, "event": "MmUnmapLockedPages", "mdl": MDL, "mapped_va": MAPPED, **who},
        {"time_ns": 7000, "event": "KeUnstackDetachProcess", **who},
        {"time_ns": 8000, "event": "MmUnlockPages", "mdl": MDL, **who},
        {"time_ns": 9000, "event": "IoFreeMdl", "mdl": MDL, **who},
    ]


def sources(trace: ta.Trace) -> list[tuple[str, int, str]]:
    """(event, effective pid, source) of every call."""
    ctx = attribute(trace).to_frame()
    return list(zip(trace.calls["event"].astype(str), ctx["pid"], ctx["source"].astype(str)))


def rules(trace: ta.Trace) -> list[str]:
    return sorted(ta.analyze(trace).findings["rule"])


def test_a_window_cut_after_the_attach_of_a_clean_sample_is_clean():
    """clean_worker_attach_unmap: System's worker attaches to recorder.exe at 2 ms, locks
    and maps for it; the window from just after the attach used to report
    DETACH_MISMATCH and a user map in an arbitrary context."""
    trace = ta.load(SAMPLES / "clean_worker_attach_unmap.csv")
    assert rules(trace) == []
    w = trace.window(2_000_001, trace.time_span_ns[1])
    assert w.time_span_ns == (2_000_001, trace.time_span_ns[1])
    assert rules(w) == []
    first = sources(w)[:4]
    assert first == [("KeStackAttachProcess", 4, "thread"),
                     ("MmProbeAndLockPages", 3100, "attach"),
                     ("MmMapLockedPagesSpecifyCache", 3100, "attach"),
                     ("KeUnstackDetachProcess", 3100, "attach")]


def test_only_the_attach_still_open_at_the_window_start_is_kept():
    """At 5.035 ms the worker is attached to recorder.exe (5.000 ms) while its nested
    attach to monitor.exe (5.010 ms) was popped at 5.030 ms: the unmap at 5.040 ms runs in
    recorder.exe, the process it was mapped into."""
    trace = ta.load(SAMPLES / "clean_worker_attach_unmap.csv")
    w = trace.window(5_035_000, trace.time_span_ns[1])
    calls = w.calls
    early = calls[calls["time_ns"] < 5_035_000]
    assert list(zip(early["time_ns"], early["event"].astype(str), early["target_pid"])) == [
        (5_000_000, "KeStackAttachProcess", 3100)]
    assert sources(w)[1:3] == [("MmUnmapLockedPages", 3100, "attach"),
                               ("KeUnstackDetachProcess", 3100, "attach")]
    assert rules(w) == []


def test_an_attach_without_tid_keeps_the_context_switch_that_names_its_thread():
    """The attach on cpu 0 has no tid: its thread is the one the CSwitch before it switched
    in (88), not the one running on cpu 0 when the window starts; that CSwitch is kept."""
    cpu = {"cpu": 0}
    rows = mapped_by_a() + [
        {"time_ns": 3500, "event": "CSwitch", "new_tid": 88, "new_pid": 4, "old_tid": 1000, **cpu},
        {"time_ns": 4000, "event": "KeStackAttachProcess", "target_pid": 100, **cpu},
        {"time_ns": 4500, "event": "CSwitch", "new_tid": 1000, "new_pid": 100, "old_tid": 88, **cpu},
        {"time_ns": 4800, "event": "CSwitch", "new_tid": 88, "new_pid": 4, "old_tid": 1000, **cpu},
    ] + unmapped_by_worker(cpu)
    trace = trace_from_rows(rows)
    assert rules(trace) == []
    w = trace.window(5000, 9000)
    assert list(w.cswitch["time_ns"]) == [3500, 4800]
    assert sources(w)[:3] == [("KeStackAttachProcess", 4, "thread"),
                              ("MmUnmapLockedPages", 100, "attach"),
                              ("KeUnstackDetachProcess", 100, "attach")]
    assert rules(w) == []


def test_an_attach_balanced_before_the_window_is_not_kept():
    rows = mapped_by_a() + [
        {"time_ns": 4000, "event": "KeStackAttachProcess", "target_pid": 100, **WORKER},
        {"time_ns": 4500, "event": "KeUnstackDetachProcess", **WORKER},
        {"time_ns": 6000, "event": "MmUnmapLockedPages", "mdl": MDL, "mapped_va": MAPPED, **WORKER},
    ]
    w = trace_from_rows(rows).window(5000, 6000)
    assert "KeStackAttachProcess" not in set(w.calls["event"].astype(str))
    assert sources(w) == [("MmUnmapLockedPages", 4, "thread")]


def test_an_attach_of_a_thread_that_ended_before_the_window_is_not_kept():
    """Thread 77 attached and ended attached (ATTACH_UNBALANCED of the whole trace, at its
    end); tid 77 is reused by a new thread that runs in the window, unattached."""
    rows = PRELUDE + [
        {"time_ns": 1000, "event": "ThreadStart", "pid": 4, "tid": 77},
        {"time_ns": 2000, "event": "KeStackAttachProcess", "target_pid": 100, "pid": 4, "tid": 77},
        {"time_ns": 3000, "event": "ThreadEnd", "pid": 4, "tid": 77},
        {"time_ns": 4000, "event": "ThreadStart", "pid": 200, "tid": 77},
        {"time_ns": 6000, "event": "IoAllocateMdl", "mdl": MDL, "va": USER_VA, "size": 4096,
         "pid": 200, "tid": 77},
    ]
    trace = trace_from_rows(rows)
    assert "ATTACH_UNBALANCED" in rules(trace)
    w = trace.window(5000, 6000)
    assert "KeStackAttachProcess" not in set(w.calls["event"].astype(str))
    assert sources(w) == [("IoAllocateMdl", 200, "thread")]
    assert "ATTACH_UNBALANCED" not in rules(w)


def test_an_attach_open_at_the_window_end_is_unbalanced_and_its_irql_not_the_windows():
    """The attach before the window is held to its end: ATTACH_UNBALANCED (the window end
    is the end of the analysis), at the attach. Its IRQL_VIOLATION is the whole trace's:
    no rule fires on a call the window keeps only for its context."""
    rows = mapped_by_a() + [
        {"time_ns": 4000, "event": "KeStackAttachProcess", "target_pid": 100, "irql": 2, **WORKER},
    ] + unmapped_by_worker(WORKER)
    trace = trace_from_rows(rows)
    assert rules(trace) == ["IRQL_VIOLATION"]
    assert rules(trace.window(5000, 9000)) == []
    f = ta.analyze(trace.window(5000, 6000)).findings
    assert list(zip(f["rule"], f["time_ns"], f["pid"])) == [("ATTACH_UNBALANCED", 4000, 4)]


def test_a_kept_attach_of_an_unknown_process_is_not_the_windows_unresolved_call():
    """Thread 55 is known only by its calls' tid (no pid, no thread event): the attach's own
    context is unresolved, which the whole trace reports; the window only uses its target."""
    who = {"tid": 55}
    rows = mapped_by_a() + [
        {"time_ns": 4000, "event": "KeStackAttachProcess", "target_pid": 100, **who},
        {"time_ns": 6000, "event": "MmUnmapLockedPages", "mdl": MDL, "mapped_va": MAPPED, **who},
        {"time_ns": 7000, "event": "KeUnstackDetachProcess", **who},
        {"time_ns": 8000, "event": "MmUnlockPages", "mdl": MDL, **OWNER},
        {"time_ns": 9000, "event": "IoFreeMdl", "mdl": MDL, **OWNER},
    ]
    trace = trace_from_rows(rows)
    assert rules(trace) == ["TRACE_CONTEXT_UNRESOLVED"]
    w = trace.window(5000, 9000)
    assert sources(w)[:3] == [("KeStackAttachProcess", -1, "unresolved"),
                              ("MmUnmapLockedPages", 100, "attach"),
                              ("KeUnstackDetachProcess", 100, "attach")]
    assert rules(w) == []
    # ... nor counted as one (summary() and info's unresolved_context)
    from traceanalyzer.info import trace_info

    assert ta.analyze(w).summary()["stats"]["unresolved_context"] == 0
    assert trace_info(w)["quality"]["unresolved_context"] == 0
    assert ta.analyze(trace).summary()["stats"]["unresolved_context"] == 1
