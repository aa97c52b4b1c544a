"""Property tests on the replay state machine (hypothesis).

- a random set of legal lifecycles, interleaved at random, yields no finding above info
  and leaves nothing open, nor does a window of it that starts part-way through (also
  inside a worker's attached section);
- a random sequence of calls never raises, and every lock/mapping ends released or is
  reported (open at end, or by a leak rule);
- the compiled kernel and the Python kernel give identical records.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import traceanalyzer as ta
from helpers.rows import PRELUDE, PROCS, analyze_rows, rules_of, trace_from_rows

USER_VA = 0x000001D2C3A40000
KERNEL_VA = 0xFFFFB00012340000


@st.composite
def legal_lifecycle(draw, index: int):
    """One MDL's legal life: allocate, lock, optional kernel/user maps, unmap, unlock, free."""
    pid, _image, tid = draw(st.sampled_from(PROCS))
    mdl = 0xFFFFC30A4B2F0000 + index * 0x1000
    user_buffer = draw(st.booleans())
    va = (USER_VA + index * 0x10000 if user_buffer else KERNEL_VA + index * 0x10000) + draw(
        st.integers(0, 4095)
    )
    size = draw(st.integers(1, 5 * 4096))
    me = {"pid": pid, "tid": tid, "mdl": mdl}
    ops = [
        {"event": "IoAllocateMdl", "va": va, "size": size, **me},
        {"event": "MmProbeAndLockPages", "access_mode": "UserMode" if user_buffer else "KernelMode",
         "operation": "IoWriteAccess", **me},
    ]
    kmap = draw(st.booleans())
    if kmap:
        ops.append({"event": "MmMapLockedPagesSpecifyCache", "access_mode": "KernelMode",
                    "cache_type": "MmCached", "mapped_va": 0xFFFFF80000000000 + index * 0x10000,
                    "priority": 0x40000010, "bugcheck_on_failure": 0, **me})
    umap = user_buffer and draw(st.booleans())
    if umap:
        uva = 0x0000020000000000 + index * 0x100000
        ops.append({"event": "MmMapLockedPagesSpecifyCache", "access_mode": "UserMode",
                    "cache_type": "MmCached", "mapped_va": uva, **me})
        if draw(st.booleans()):
            ops.append({"event": "MmUnmapLockedPages", "mapped_va": uva, **me})
        else:  # undone by a System worker attached to the right process
            w = {"pid": 4, "tid": 88}
            ops += [
                {"event": "KeStackAttachProcess", "target_pid": pid, **w},
                {"event": "MmUnmapLockedPages", "mapped_va": uva, "mdl": mdl, **w},
                {"event": "KeUnstackDetachProcess", **w},
            ]
    if kmap and draw(st.booleans()):
        ops.append({"event": "MmUnmapLockedPages", "mapped_va": 0xFFFFF80000000000 + index * 0x10000, **me})
    ops += [{"event": "MmUnlockPages", **me}, {"event": "IoFreeMdl", **me}]
    return ops


@st.composite
def interleaved(draw):
    n = draw(st.integers(1, 5))
    lives = [draw(legal_lifecycle(i)) for i in range(n)]
    # attach/detach of the worker must not interleave with another lifecycle's worker ops
    order = []
    cursors = [0] * n
    while any(c < len(l) for c, l in zip(cursors, lives)):
        choices = [i for i in range(n) if cursors[i] < len(lives[i])]
        i = draw(st.sampled_from(choices))
        op = lives[i][cursors[i]]
        cursors[i] += 1
        order.append(op)
        if op["event"] == "KeStackAttachProcess":  # keep the attached section together
            while lives[i][cursors[i] - 1]["event"] != "KeUnstackDetachProcess":
                order.append(lives[i][cursors[i]])
                cursors[i] += 1
    rows = list(PRELUDE)
    for k, op in enumerate(order):
        rows.append({"time_ns": 1000 * (k + 1), **op})
    end = 1000 * (len(order) + 2)
    rows += [{"time_ns": end, "event": "ProcessEnd", "pid": pid, "image": im} for pid, im, _ in PROCS]
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interleaved())
def test_legal_lifecycles_yield_no_finding(rows):
    a = analyze_rows(rows)
    assert rules_of(a, "low") == []
    assert (a.lifecycles["end_state"] == "freed").all()
    assert (a.locks["end_reason"] == "unlock").all()
    assert a.leaks["bytes_at_end"] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interleaved(), st.data())
def test_a_window_of_legal_lifecycles_yields_no_finding(rows, data):
    """A trace.window may start part-way through every lifecycle, also inside a worker's
    attached section (the window keeps the attach open at its start), without a finding
    above info: an MDL first seen there has an unknown lock state and unknown mappings."""
    starts, inside, depth = [], [], 0
    for r in rows[len(PRELUDE):]:
        if r["event"] != "ProcessEnd":
            (inside if depth else starts).append(r["time_ns"])
        depth += {"KeStackAttachProcess": 1, "KeUnstackDetachProcess": -1}.get(r["event"], 0)
    # half the windows start inside an attached section when there is one
    pool = data.draw(st.sampled_from([starts, inside] if inside else [starts]))
    start = data.draw(st.sampled_from(pool))
    a = ta.analyze(trace_from_rows(rows).window(start, rows[-1]["time_ns"]))
    assert rules_of(a, "low") == [], start


CALLS = [
    "IoAllocateMdl", "IoFreeMdl", "MmProbeAndLockPages", "MmUnlockPages",
    "MmMapLockedPagesSpecifyCache", "MmUnmapLockedPages", "MmBuildMdlForNonPagedPool",
    "MmAllocatePagesForMdl", "MmFreePagesFromMdl", "ExFreePoolMdl", "IoBuildPartialMdl",
    "MmPrepareMdlForReuse", "KeStackAttachProcess", "KeUnstackDetachProcess",
]


@st.composite
def random_calls(draw):
    n = draw(st.integers(1, 40))
    rows = list(PRELUDE)
    for k in range(n):
        ev = draw(st.sampled_from(CALLS + ["ProcessEnd"]))
        pid, image, tid = draw(st.sampled_from(PROCS + [(4, "System", 88)]))
        t = 1000 * (k + 1)
        if ev == "ProcessEnd":
            rows.append({"time_ns": t, "event": ev, "pid": pid, "image": image})
            continue
        row = {"time_ns": t, "event": ev, "pid": pid, "tid": tid,
               "mdl": draw(st.sampled_from([0xFFFFC30A00001000, 0xFFFFC30A00002000]))}
        if ev in ("IoAllocateMdl", "IoBuildPartialMdl", "MmBuildMdlForNonPagedPool"):
            row["va"] = draw(st.sampled_from([USER_VA, KERNEL_VA]))
            row["size"] = draw(st.integers(1, 3 * 4096))
        if ev == "MmAllocatePagesForMdl":
            row["size"] = 8192
            row["requested_size"] = 8192
        if ev in ("MmMapLockedPagesSpecifyCache", "MmUnmapLockedPages"):
            row["mapped_va"] = draw(st.sampled_from([0, 0x20000000000, 0xFFFFF80000001000]))
            row["access_mode"] = draw(st.sampled_from(["KernelMode", "UserMode"]))
            row["cache_type"] = draw(st.sampled_from(["MmCached", "MmNonCached"]))
        if ev == "MmProbeAndLockPages":
            row["access_mode"] = draw(st.sampled_from(["KernelMode", "UserMode"]))
        if ev == "KeStackAttachProcess":
            row["target_pid"] = draw(st.sampled_from([100, 200, 300]))
        rows.append(row)
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_calls())
def test_random_calls_never_raise_and_nothing_is_lost(rows):
    a = analyze_rows(rows)
    f = a.findings
    open_locks = a.locks[a.locks["end_reason"] == "live"]
    open_maps = a.mappings[a.mappings["end_reason"] == "live"]
    n_open = len(open_locks) + len(open_maps)
    reported = f.loc[f["rule"] == "TRACE_OPEN_AT_END", "count"]
    assert int(reported.sum()) == n_open
    # every kernel-va lock still held at the end is reported as never unlocked
    kernel_open = set(open_locks.loc[~open_locks["user_va"], "lifetime_id"])
    never = set(f.loc[f["rule"] == "LOCKED_MDL_NEVER_UNLOCKED", "lifetime_id"].dropna().astype(int))
    assert kernel_open <= never
    # every mapping torn down at process exit was reported
    exited = a.mappings[a.mappings["end_reason"] == "process_exit"]
    leak_rows = f[f["rule"] == "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]
    assert set(exited["mapping_id"]) == set(leak_rows["mapping_id"].dropna().astype(int))
    assert (f["severity"].isin(["critical", "high", "medium", "low", "info"])).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_calls())
def test_compiled_and_python_kernels_agree(rows):
    py = analyze_rows(rows, engine="python").replay
    jit = analyze_rows(rows, engine="jit").replay
    for name in ("slots", "mappings", "locks", "findings"):
        assert np.array_equal(getattr(py, name), getattr(jit, name)), name
