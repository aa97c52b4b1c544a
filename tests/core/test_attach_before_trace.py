"""A trace that starts while a thread is inside KeStackAttachProcess: its detach pops an
attach made before the trace (no DETACH_MISMATCH), and its calls up to that detach ran
in a process the trace does not name (source ``attach_before_trace``), on which no rule
assumes a context. Only a thread the trace shows start is provably not attached."""

from __future__ import annotations

import pytest

import traceanalyzer as ta
from helpers.rows import PRELUDE, trace_from_rows
from traceanalyzer.context.attribution import attribute

MDL = 0xFFFFC30A4B2F1000
USER_VA, MAPPED = 0x000001D2C3A40000, 0x0000020000000000
APP = {"pid": 100, "tid": 1000}  # a.exe of PRELUDE (started at 0)
WORKER = {"pid": 4, "tid": 88}  # System's worker of PRELUDE (ThreadRundown: alive at start)
NEW_WORKER = {"pid": 4, "tid": 90}  # a System thread that starts in the trace (at 500 ns)
NEW_WORKER_START = {"time_ns": 500, "event": "ThreadStart", **NEW_WORKER}


def call(t: int, event: str, who: dict, **fields) -> dict:
    return {"time_ns": t, "event": event, **who, **fields}


def lock(t: int, who: dict) -> dict:
    return call(t, "MmProbeAndLockPages", who, mdl=MDL, access_mode="UserMode",
                operation="IoWriteAccess")


def user_map(t: int, who: dict) -> dict:
    return call(t, "MmMapLockedPagesSpecifyCache", who, mdl=MDL, access_mode="UserMode",
                cache_type="MmCached", mapped_va=MAPPED)


def attach(t: int, who: dict, target: int = 100) -> dict:
    return call(t, "KeStackAttachProcess", who, target_pid=target)


def detach(t: int, who: dict) -> dict:
    return call(t, "KeUnstackDetachProcess", who)


def sources(trace: ta.Trace) -> list[tuple[str, int, str]]:
    """(event, effective pid, source) of every call."""
    ctx = attribute(trace).to_frame()
    return list(zip(trace.calls["event"].astype(str), ctx["pid"], ctx["source"].astype(str)))


def all_rules(trace: ta.Trace, engine: str = "python") -> list[tuple[str, int]]:
    """(rule, time) of every finding, info included."""
    f = ta.analyze(trace, engine=engine).findings
    return sorted(zip(f["rule"], f["time_ns"]))


def worker_attached_before_the_trace() -> list[dict]:
    """The tester's case: a.exe allocates an MDL for its buffer; System's worker, attached
    to a.exe before the trace began, locks and maps it there and detaches; a.exe unmaps,
    unlocks and frees it."""
    return PRELUDE + [
        call(1000, "IoAllocateMdl", APP, mdl=MDL, va=USER_VA, size=8192),
        lock(2000, WORKER),
        user_map(3000, WORKER),
        detach(4000, WORKER),
        call(5000, "MmUnmapLockedPages", APP, mdl=MDL, mapped_va=MAPPED),
        call(6000, "MmUnlockPages", APP, mdl=MDL),
        call(7000, "IoFreeMdl", APP, mdl=MDL),
    ]


@pytest.mark.parametrize("engine", ["python", "jit"])
def test_a_trace_starting_while_a_worker_is_attached_is_clean(engine: str):
    """Used to give DETACH_MISMATCH, LOCK_IN_WRONG_PROCESS, USER_MAP_IN_ARBITRARY_CONTEXT,
    USER_UNMAP_WRONG_PROCESS and UNLOCK_WHILE_USER_MAPPED (the worker's calls taken as
    System's); nothing at all now, no TRACE_CONTEXT_UNRESOLVED nor mapping open at the end."""
    trace = trace_from_rows(worker_attached_before_the_trace())
    assert sources(trace) == [
        ("IoAllocateMdl", 100, "thread"),
        ("MmProbeAndLockPages", -1, "attach_before_trace"),
        ("MmMapLockedPagesSpecifyCache", -1, "attach_before_trace"),
        ("KeUnstackDetachProcess", -1, "attach_before_trace"),
        ("MmUnmapLockedPages", 100, "thread"),
        ("MmUnlockPages", 100, "thread"),
        ("IoFreeMdl", 100, "thread"),
    ]
    ctx = attribute(trace)
    assert ctx.attach_findings == []
    assert ctx.attached.tolist() == [False, True, True, True, False, False, False]
    assert not ctx.unresolved.any()
    assert all_rules(trace, engine) == []


def test_the_worker_unmapping_before_its_detach_is_not_in_the_wrong_process():
    """a.exe maps its buffer; the worker, attached before the trace, unmaps it: the unmap
    ends the mapping (the unlock after it is no UNLOCK_WHILE_USER_MAPPED)."""
    rows = PRELUDE + [
        call(1000, "IoAllocateMdl", APP, mdl=MDL, va=USER_VA, size=8192),
        lock(1500, APP),
        user_map(2000, APP),
        call(3000, "MmUnmapLockedPages", WORKER, mdl=MDL, mapped_va=MAPPED),
        detach(4000, WORKER),
        call(5000, "MmUnlockPages", WORKER, mdl=MDL),
        call(6000, "IoFreeMdl", WORKER, mdl=MDL),
    ]
    trace = trace_from_rows(rows)
    assert [s for _e, _p, s in sources(trace)][3:] == [
        "attach_before_trace", "attach_before_trace", "thread", "thread"]
    assert all_rules(trace) == []


def test_two_attaches_before_the_trace_take_two_detaches():
    """Attached twice before the trace (nested): both detaches pop one; the calls up to the
    second ran attached, the call after it in the worker's own process."""
    rows = PRELUDE + [
        call(1000, "IoAllocateMdl", WORKER, mdl=MDL, va=USER_VA, size=4096),
        detach(2000, WORKER),
        call(3000, "IoFreeMdl", WORKER, mdl=MDL),
        detach(4000, WORKER),
        call(5000, "IoAllocateMdl", WORKER, mdl=MDL, va=USER_VA, size=4096),
        call(6000, "IoFreeMdl", WORKER, mdl=MDL),
    ]
    trace = trace_from_rows(rows)
    assert [(p, s) for _e, p, s in sources(trace)] == [(-1, "attach_before_trace")] * 4 + [
        (4, "thread")] * 2
    assert all_rules(trace) == []


def test_an_attach_in_the_trace_nested_inside_one_made_before_it():
    """The worker, attached before the trace, attaches to b.exe and detaches (the pair the
    trace shows), then detaches the earlier attach: legal, so no DETACH_MISMATCH. A thread
    alive at the trace start may always have been attached then: a balanced pair does not
    show that it was not."""
    rows = PRELUDE + [
        call(1000, "IoAllocateMdl", WORKER, mdl=MDL, va=USER_VA, size=4096),
        attach(2000, WORKER, target=200),
        call(3000, "IoFreeMdl", WORKER, mdl=MDL),
        detach(4000, WORKER),
        call(5000, "IoAllocateMdl", WORKER, mdl=MDL, va=USER_VA, size=4096),
        detach(6000, WORKER),
        call(7000, "IoFreeMdl", WORKER, mdl=MDL),
    ]
    trace = trace_from_rows(rows)
    assert [(p, s) for _e, p, s in sources(trace)] == [
        (-1, "attach_before_trace"), (-1, "attach_before_trace"),  # up to the attach
        (200, "attach"), (200, "attach"),  # inside the pair (the detach sees b.exe)
        (-1, "attach_before_trace"), (-1, "attach_before_trace"),  # back in the earlier one
        (4, "thread"),
    ]
    assert all_rules(trace) == []


def test_a_map_in_an_unattributed_context_still_is_arbitrary():
    """The same user map from a thread the trace cannot attribute (no pid, no thread
    event) is USER_MAP_IN_ARBITRARY_CONTEXT: only an attach before the trace names none."""
    rows = PRELUDE + [
        call(1000, "IoAllocateMdl", APP, mdl=MDL, va=USER_VA, size=8192),
        lock(2000, APP),
        user_map(3000, {"tid": 55}),
    ]
    f = ta.analyze(trace_from_rows(rows), engine="python").findings
    assert "USER_MAP_IN_ARBITRARY_CONTEXT" in set(f["rule"])


def test_a_mapping_into_an_unknown_process_is_not_unmapped_in_the_wrong_one():
    """A user mapping whose process the trace does not name (mapped from an unattributed
    context) unmapped in a.exe: which process it went to is unknown, so the unmap is not
    USER_UNMAP_WRONG_PROCESS and it ends the mapping (no UNLOCK_WHILE_USER_MAPPED after);
    the map itself stays USER_MAP_IN_ARBITRARY_CONTEXT."""
    rows = PRELUDE + [
        call(1000, "IoAllocateMdl", APP, mdl=MDL, va=USER_VA, size=8192),
        lock(2000, APP),
        user_map(3000, {"tid": 55}),
        call(4000, "MmUnmapLockedPages", APP, mdl=MDL, mapped_va=MAPPED),
        call(5000, "MmUnlockPages", APP, mdl=MDL),
        call(6000, "IoFreeMdl", APP, mdl=MDL),
    ]
    rules = [r for r, _t in all_rules(trace_from_rows(rows))]
    assert rules == ["TRACE_CONTEXT_UNRESOLVED", "USER_MAP_IN_ARBITRARY_CONTEXT"]


def test_a_thread_started_in_the_trace_detaching_without_an_attach_is_a_mismatch():
    """A new thread is not attached: its detach is DETACH_MISMATCH, and its calls before it
    ran in its own process (a user map there is USER_MAP_IN_ARBITRARY_CONTEXT)."""
    rows = PRELUDE + [
        NEW_WORKER_START,
        call(1000, "IoAllocateMdl", APP, mdl=MDL, va=USER_VA, size=8192),
        lock(2000, APP),
        user_map(3000, NEW_WORKER),
        detach(4000, NEW_WORKER),
    ]
    trace = trace_from_rows(rows)
    assert sources(trace)[2:] == [("MmMapLockedPagesSpecifyCache", 4, "thread"),
                                  ("KeUnstackDetachProcess", 4, "thread")]
    rules = all_rules(trace)
    assert ("DETACH_MISMATCH", 4000) in rules
    assert ("USER_MAP_IN_ARBITRARY_CONTEXT", 3000) in rules


def test_a_detach_after_a_balanced_pair_of_a_thread_started_in_the_trace_is_a_mismatch():
    rows = PRELUDE + [
        NEW_WORKER_START,
        attach(1000, NEW_WORKER),
        detach(2000, NEW_WORKER),
        detach(3000, NEW_WORKER),
    ]
    trace = trace_from_rows(rows)
    assert all_rules(trace) == [("DETACH_MISMATCH", 3000)]
    assert [s for _e, _p, s in sources(trace)] == ["thread", "attach", "thread"]


def test_a_reused_tid_known_only_from_the_end_rundown_started_in_the_trace():
    """Thread 90 ends; a thread with its tid alive at the trace end (ThreadRundownEnd only)
    started after that end, so in the trace: its lone detach is a mismatch."""
    rows = PRELUDE + [
        NEW_WORKER_START,
        {"time_ns": 1000, "event": "ThreadEnd", **NEW_WORKER},
        detach(2000, NEW_WORKER),
        {"time_ns": 3000, "event": "ThreadRundownEnd", **NEW_WORKER},
    ]
    rules = all_rules(trace_from_rows(rows))
    assert rules == [("DETACH_MISMATCH", 2000)]


def test_a_window_of_the_trace_attributes_as_the_trace_does():
    """A window that starts after a.exe's allocation: the worker's calls up to its detach
    still ran attached before the window's own start, and it is clean."""
    trace = trace_from_rows(worker_attached_before_the_trace())
    w = trace.window(1500, 7000)
    assert [s for _e, _p, s in sources(w)][:3] == ["attach_before_trace"] * 3
    assert all_rules(w) == []
