"""Context attribution: thread/process from ThreadStart, CSwitch-only calls, pid reuse,
nested attach, effective_pid."""

from __future__ import annotations

from traceanalyzer.context.attribution import SOURCE_NAMES, attribute

from helpers.rows import trace_from_rows

SYS = [
    {"time_ns": 0, "event": "ProcessRundown", "pid": 4, "image": "System"},
    {"time_ns": 0, "event": "ThreadRundown", "pid": 4, "tid": 88},
]


def _ctx(rows):
    trace = trace_from_rows(rows)
    ctx = attribute(trace)
    return trace, ctx


def test_thread_owner_wins_over_missing_pid_and_cswitch_gives_thread():
    rows = SYS + [
        {"time_ns": 1, "event": "ProcessStart", "pid": 100, "image": "a.exe"},
        {"time_ns": 2, "event": "ThreadStart", "pid": 100, "tid": 1000},
        {"time_ns": 3, "event": "CSwitch", "cpu": 1, "new_tid": 1000, "old_tid": 0},
        # call with only cpu: its thread is the one switched in on cpu 1
        {"time_ns": 10, "event": "IoAllocateMdl", "cpu": 1, "mdl": 0x10},
        {"time_ns": 11, "event": "CSwitch", "cpu": 1, "new_tid": 88, "old_tid": 1000},
        {"time_ns": 12, "event": "IoFreeMdl", "cpu": 1, "mdl": 0x10},
    ]
    trace, ctx = _ctx(rows)
    assert ctx.tid.tolist() == [1000, 88]
    assert ctx.pid.tolist() == [100, 4]
    assert [SOURCE_NAMES[s] for s in ctx.source] == ["thread", "thread"]


def test_pid_reuse_gives_distinct_process_instances():
    rows = SYS + [
        {"time_ns": 1, "event": "ProcessStart", "pid": 100, "image": "old.exe"},
        {"time_ns": 2, "event": "IoAllocateMdl", "pid": 100, "tid": 7, "mdl": 0x10},
        {"time_ns": 3, "event": "ProcessEnd", "pid": 100, "image": "old.exe"},
        {"time_ns": 4, "event": "ProcessStart", "pid": 100, "image": "new.exe"},
        {"time_ns": 5, "event": "IoFreeMdl", "pid": 100, "tid": 9, "mdl": 0x10},
    ]
    trace, ctx = _ctx(rows)
    procs = trace.processes.set_index("proc_id")
    images = [procs.loc[p, "image"] for p in ctx.proc_id]
    assert images == ["old.exe", "new.exe"]
    assert procs.loc[ctx.proc_id[0], "end_ns"] == 3


def test_nested_attach_uses_top_of_stack_and_detach_pops():
    rows = SYS + [
        {"time_ns": 1, "event": "ProcessStart", "pid": 100, "image": "a.exe"},
        {"time_ns": 1, "event": "ProcessStart", "pid": 200, "image": "b.exe"},
        {"time_ns": 10, "event": "KeStackAttachProcess", "pid": 4, "tid": 88, "target_pid": 100},
        {"time_ns": 11, "event": "IoAllocateMdl", "pid": 4, "tid": 88, "mdl": 0x10},
        {"time_ns": 12, "event": "KeStackAttachProcess", "pid": 4, "tid": 88, "target_pid": 200},
        {"time_ns": 13, "event": "IoFreeMdl", "pid": 4, "tid": 88, "mdl": 0x10},
        {"time_ns": 14, "event": "KeUnstackDetachProcess", "pid": 4, "tid": 88},
        {"time_ns": 15, "event": "IoAllocateMdl", "pid": 4, "tid": 88, "mdl": 0x20},
        {"time_ns": 16, "event": "KeUnstackDetachProcess", "pid": 4, "tid": 88},
        {"time_ns": 17, "event": "IoFreeMdl", "pid": 4, "tid": 88, "mdl": 0x20},
    ]
    trace, ctx = _ctx(rows)
    # rows in calls order: attach, alloc, attach, free, detach, alloc, detach, free
    assert ctx.pid.tolist() == [4, 100, 100, 200, 200, 100, 100, 4]
    assert ctx.attach_findings == []


def test_effective_pid_wins_and_unresolved_is_counted():
    rows = SYS + [
        {"time_ns": 1, "event": "ProcessStart", "pid": 100, "image": "a.exe"},
        {"time_ns": 2, "event": "IoAllocateMdl", "pid": 4, "tid": 88, "effective_pid": 100, "mdl": 0x10},
        {"time_ns": 3, "event": "IoFreeMdl", "mdl": 0x10},
    ]
    trace, ctx = _ctx(rows)
    assert ctx.pid.tolist() == [100, -1]
    assert ctx.unresolved.tolist() == [False, True]


def test_detach_without_attach_and_unbalanced_attach_are_reported():
    rows = SYS + [
        {"time_ns": 1, "event": "ProcessStart", "pid": 100, "image": "a.exe"},
        {"time_ns": 2, "event": "ThreadStart", "pid": 100, "tid": 5},
        {"time_ns": 3, "event": "KeUnstackDetachProcess", "pid": 100, "tid": 5},
        {"time_ns": 4, "event": "KeStackAttachProcess", "pid": 100, "tid": 5, "target_pid": 4},
        {"time_ns": 9, "event": "ThreadEnd", "pid": 100, "tid": 5},
    ]
    trace, ctx = _ctx(rows)
    got = sorted((f.rule, f.time_ns, f.end_time_ns) for f in ctx.attach_findings)
    assert got == [("ATTACH_UNBALANCED", 4, 9), ("DETACH_MISMATCH", 3, None)]


def test_attach_on_a_thread_id_near_2_63_stays_a_thread_of_its_own():
    """A tid the trace never started (so no thread instance) is keyed apart from the
    instances without arithmetic: 2**63 - 1 used to wrap into an instance index
    (hypothesis find in test_fuzz_parquet: tid set to 9223372036854775807)."""
    big = 2**63 - 1
    rows = SYS + [
        {"time_ns": 1, "event": "ProcessStart", "pid": 100, "image": "a.exe"},
        {"time_ns": 2, "event": "ThreadStart", "pid": 100, "tid": 5},
        {"time_ns": 3, "event": "KeStackAttachProcess", "pid": 4, "tid": big, "target_pid": 100},
        {"time_ns": 4, "event": "IoAllocateMdl", "pid": 4, "tid": big, "mdl": 0x10},
        {"time_ns": 5, "event": "IoFreeMdl", "pid": 4, "tid": 5, "mdl": 0x10},
        {"time_ns": 6, "event": "ThreadEnd", "pid": 100, "tid": 5},
    ]
    trace, ctx = _ctx(rows)
    assert ctx.pid.tolist() == [4, 100, 100]
    assert [(f.rule, f.time_ns, f.end_time_ns) for f in ctx.attach_findings] == [("ATTACH_UNBALANCED", 3, None)]
