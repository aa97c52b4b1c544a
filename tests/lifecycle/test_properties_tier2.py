"""Property tests for the Tier-2 MDL families (hypothesis).

- random legal lifecycles of every family (nonpaged-built, page-allocated, partial,
  reserved mapping, IRP-owned), interleaved at random and at random legal IRQLs, yield
  no finding above info, free every MDL and leave nothing locked or mapped;
- random sequences of every call (Tier-2 calls, IoCompleteRequest, odd arguments) never
  raise, in either engine;
- the compiled kernel and the Python kernel give identical raw records.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.rows import PRELUDE, PROCS  # System worker 88 + 3 apps
from helpers.rows import analyze_rows

WORKER = {"pid": 4, "tid": 88}
TAGS = [0x5264634D, 0x6C6F6F50, 0x20202041]


def mdl_of(index: int, k: int = 0) -> int:
    return 0xFFFFC30A4B000000 + index * 0x10000 + k * 0x1000


def sysva_of(index: int, k: int = 0) -> int:
    return 0xFFFFA58012000000 + index * 0x1000000 + k * 0x100000


def user_va_of(index: int) -> int:
    return 0x000001D200000000 + index * 0x1000000


def kernel_va_of(index: int) -> int:
    return 0xFFFFB00012000000 + index * 0x1000000


def irql(draw, top: int) -> int:
    return draw(st.integers(0, top))


def kmap(draw, me: dict, va: int) -> dict:
    return {"event": "MmMapLockedPagesSpecifyCache", "access_mode": "KernelMode",
            "cache_type": "MmCached", "mapped_va": va, "priority": 0x40000010,
            "bugcheck_on_failure": 0, "irql": irql(draw, 2), **me}


@st.composite
def nonpaged_life(draw, index: int):
    """IoAllocateMdl over a nonpaged buffer, MmBuildMdlForNonPagedPool, IoFreeMdl."""
    me = {**WORKER, "mdl": mdl_of(index)}
    va = kernel_va_of(index) + draw(st.integers(0, 4095))
    size = draw(st.integers(1, 4 * 4096))
    return [
        {"event": "IoAllocateMdl", "va": va, "size": size, "irql": irql(draw, 2), **me},
        {"event": "MmBuildMdlForNonPagedPool", "va": va, "irql": irql(draw, 2), **me},
        {"event": "IoFreeMdl", "irql": irql(draw, 2), **me},
    ]


@st.composite
def pages_life(draw, index: int):
    """MmAllocatePagesForMdl(Ex) (maybe short), maybe mapped, maybe a partial of it used
    within what it returned, MmFreePagesFromMdl, ExFreePoolMdl."""
    me = {**WORKER, "mdl": mdl_of(index)}
    got_pages = draw(st.integers(1, 8))
    asked = got_pages * 4096 * draw(st.sampled_from([1, 1, 2]))
    ops = [{"event": draw(st.sampled_from(["MmAllocatePagesForMdl", "MmAllocatePagesForMdlEx"])),
            "requested_size": asked, "size": got_pages * 4096, "irql": irql(draw, 2), **me}]
    mapped = draw(st.booleans())
    if mapped:
        ops.append(kmap(draw, me, sysva_of(index)))
    if draw(st.booleans()):
        part = {**WORKER, "mdl": mdl_of(index, 1)}
        off = draw(st.integers(0, got_pages - 1)) * 4096
        size = draw(st.integers(1, got_pages * 4096 - off))
        ops += [{"event": "IoAllocateMdl", "va": off, "size": size, **part},
                {"event": "IoBuildPartialMdl", "source_mdl": me["mdl"], "va": off, "size": size,
                 **part}]
        if draw(st.booleans()):
            ops.append(kmap(draw, part, sysva_of(index, 1)))
        ops.append({"event": "IoFreeMdl", **part})  # releases the partial's own mapping
    if mapped and draw(st.booleans()):
        ops.append({"event": "MmUnmapLockedPages", "mapped_va": sysva_of(index), **me})
    ops += [{"event": "MmFreePagesFromMdl", "irql": irql(draw, 2), **me},  # releases the map
            {"event": "ExFreePoolMdl", **me}]
    return ops


@st.composite
def partial_life(draw, index: int):
    """A locked buffer (user buffer of the requester, or kernel) walked in chunks through
    one partial MDL; a mapped chunk is prepared or unmapped before the next build."""
    pid, _image, tid = draw(st.sampled_from(PROCS))
    user = draw(st.booleans())
    who = {"pid": pid, "tid": tid} if user else WORKER
    src, part = {**who, "mdl": mdl_of(index)}, {**who, "mdl": mdl_of(index, 1)}
    base = (user_va_of(index) if user else kernel_va_of(index)) + draw(st.integers(0, 4095))
    total = draw(st.integers(2, 16)) * 4096
    ops = [
        {"event": "IoAllocateMdl", "va": base, "size": total, **src},
        {"event": "MmProbeAndLockPages", "access_mode": "UserMode" if user else "KernelMode",
         "operation": "IoReadAccess", "irql": irql(draw, 2), **src},
        {"event": "IoAllocateMdl", "va": base, "size": 4096, **part},
    ]
    mapped = False
    for k in range(draw(st.integers(1, 4))):
        if mapped:
            ops.append(draw(st.sampled_from([
                {"event": "MmPrepareMdlForReuse", **part},
                {"event": "MmUnmapLockedPages", "mapped_va": sysva_of(index, k - 1), **part},
            ])))
        off = draw(st.integers(0, total - 1))
        size = draw(st.integers(1, total - off))
        ops.append({"event": "IoBuildPartialMdl", "source_mdl": src["mdl"], "va": base + off,
                    "size": size, **part})
        if draw(st.booleans()):  # a partial of this partial, used and freed
            sub = {**who, "mdl": mdl_of(index, 2 + k)}
            sub_off = draw(st.integers(0, size - 1))
            sub_va = base + off + sub_off
            sub_size = draw(st.integers(1, size - sub_off))
            ops += [{"event": "IoAllocateMdl", "va": sub_va, "size": sub_size, **sub},
                    {"event": "IoBuildPartialMdl", "source_mdl": part["mdl"], "va": sub_va,
                     "size": sub_size, **sub},
                    kmap(draw, sub, sysva_of(index, 8 + k)),
                    {"event": "IoFreeMdl", **sub}]
        mapped = draw(st.booleans())
        if mapped:
            ops.append(kmap(draw, part, sysva_of(index, k)))
    ops += [{"event": "IoFreeMdl", **part},
            {"event": "MmUnlockPages", "irql": irql(draw, 2), **src},
            {"event": "IoFreeMdl", **src}]
    return ops


@st.composite
def reserved_life(draw, index: int):
    """MmAllocateMappingAddress, an MDL mapped into it and unmapped n times,
    MmFreeMappingAddress; the reservation named in va or mapped_va."""
    tag = draw(st.sampled_from(TAGS))
    rsv = sysva_of(index) + 0x80000
    col = draw(st.sampled_from(["va", "mapped_va"]))
    me = {**WORKER, "mdl": mdl_of(index)}
    ops = [
        {"event": "MmAllocateMappingAddress", col: rsv, "size": 0x40000, "tag": tag, **WORKER},
        {"event": "IoAllocateMdl", "va": kernel_va_of(index), "size": draw(st.integers(1, 0x40000)),
         **me},
        {"event": "MmProbeAndLockPages", "access_mode": "KernelMode", **me},
    ]
    for _ in range(draw(st.integers(0, 3))):
        ops += [{"event": "MmMapLockedPagesWithReservedMapping", col: rsv, "tag": tag,
                 "cache_type": "MmCached", **me},
                {"event": "MmUnmapReservedMapping", col: rsv, "tag": tag, **me}]
    ops += [{"event": "MmUnlockPages", **me}, {"event": "IoFreeMdl", **me},
            {"event": "MmFreeMappingAddress", col: rsv, "tag": tag, **WORKER}]
    return ops


@st.composite
def irp_life(draw, index: int):
    """IoAllocateMdl with an irp over the requester's buffer, locked, maybe mapped to
    the kernel and (unmapped before completion) to the user; IoCompleteRequest."""
    pid, _image, tid = draw(st.sampled_from(PROCS))
    me = {"pid": pid, "tid": tid, "mdl": mdl_of(index)}
    irp = 0xFFFFC30A4D000000 + index * 0x1000
    ops = [
        {"event": "IoAllocateMdl", "va": user_va_of(index) + draw(st.integers(0, 4095)),
         "size": draw(st.integers(1, 3 * 4096)), "irp": irp, **me},
        {"event": "MmProbeAndLockPages", "access_mode": "UserMode", "irql": irql(draw, 2), **me},
    ]
    if draw(st.booleans()):
        ops.append(kmap(draw, me, sysva_of(index)))
    if draw(st.booleans()):
        uva = 0x0000020000000000 + index * 0x100000
        ops += [{"event": "MmMapLockedPagesSpecifyCache", "access_mode": "UserMode",
                 "cache_type": "MmCached", "mapped_va": uva, "irql": irql(draw, 1), **me},
                {"event": "MmUnmapLockedPages", "mapped_va": uva, "irql": irql(draw, 1), **me}]
    completer = draw(st.sampled_from([{"pid": pid, "tid": tid}, WORKER]))
    ops.append({"event": "IoCompleteRequest", "irp": irp, "irql": irql(draw, 2), **completer})
    return ops


FAMILIES = [nonpaged_life, pages_life, partial_life, reserved_life, irp_life]


@st.composite
def interleaved_legal(draw):
    n = draw(st.integers(1, 6))
    lives = [draw(draw(st.sampled_from(FAMILIES))(i)) for i in range(n)]
    order, cursors = [], [0] * n
    while any(c < len(life) for c, life in zip(cursors, lives)):
        i = draw(st.sampled_from([i for i in range(n) if cursors[i] < len(lives[i])]))
        order.append(lives[i][cursors[i]])
        cursors[i] += 1
    rows = list(PRELUDE) + [{"time_ns": 1000 * (k + 1), **op} for k, op in enumerate(order)]
    end = 1000 * (len(order) + 2)
    rows += [{"time_ns": end, "event": "ProcessEnd", "pid": pid, "image": im}
             for pid, im, _ in PROCS]
    return rows


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interleaved_legal())
def test_legal_tier2_lifecycles_yield_no_finding(rows):
    a = analyze_rows(rows)
    f = a.findings
    assert f.loc[f["severity"] != "info", "rule"].tolist() == []
    assert (a.lifecycles["end_state"] == "freed").all()
    assert (a.locks["end_reason"].isin(["unlock", "irp_completed"])).all()
    assert (a.mappings["end_reason"] != "live").all()
    assert a.leaks["bytes_at_end"] == 0


CALLS = [
    "IoAllocateMdl", "IoFreeMdl", "MmProbeAndLockPages", "MmUnlockPages",
    "MmMapLockedPagesSpecifyCache", "MmUnmapLockedPages", "MmBuildMdlForNonPagedPool",
    "MmAllocatePagesForMdl", "MmAllocatePagesForMdlEx", "MmFreePagesFromMdl", "ExFreePoolMdl",
    "IoBuildPartialMdl", "MmPrepareMdlForReuse", "MmAllocateMappingAddress",
    "MmFreeMappingAddress", "MmMapLockedPagesWithReservedMapping", "MmUnmapReservedMapping",
    "IoCompleteRequest",
]
MDLS = [mdl_of(0), mdl_of(1), mdl_of(2)]
RSVS = [sysva_of(5), sysva_of(6)]
IRPS = [0xFFFFC30A4D000000, 0xFFFFC30A4D001000]
maybe = st.none() | st.just(0)


@st.composite
def random_tier2_calls(draw):
    rows = list(PRELUDE)
    for k in range(draw(st.integers(1, 50))):
        ev = draw(st.sampled_from(CALLS + ["ProcessEnd"]))
        pid, image, tid = draw(st.sampled_from(PROCS + [(4, "System", 88)]))
        t = 1000 * (k + 1)
        if ev == "ProcessEnd":
            rows.append({"time_ns": t, "event": ev, "pid": pid, "image": image})
            continue
        row = {"time_ns": t, "event": ev, "pid": pid, "tid": tid,
               "mdl": draw(st.sampled_from(MDLS) | maybe.map(lambda _: None)),
               "irql": draw(st.none() | st.integers(0, 15))}
        if ev in ("IoAllocateMdl", "IoBuildPartialMdl", "MmBuildMdlForNonPagedPool"):
            row["va"] = draw(st.sampled_from([user_va_of(0), kernel_va_of(0), 0, 0x1000]))
            row["size"] = draw(st.integers(0, 4 * 4096))
        if ev == "IoAllocateMdl":
            row["irp"] = draw(st.none() | st.sampled_from(IRPS))
        if ev == "IoBuildPartialMdl":
            row["source_mdl"] = draw(st.none() | st.sampled_from(MDLS))
        if ev.startswith("MmAllocatePagesForMdl"):
            row["requested_size"] = draw(st.integers(0, 8 * 4096))
            row["size"] = draw(st.integers(0, 8 * 4096))
        if ev in ("MmMapLockedPagesSpecifyCache", "MmUnmapLockedPages"):
            row["mapped_va"] = draw(st.sampled_from([0, 0x20000000000, sysva_of(0), kernel_va_of(0)]))
            row["access_mode"] = draw(st.sampled_from(["KernelMode", "UserMode"]))
            row["cache_type"] = draw(st.sampled_from(["MmCached", "MmNonCached"]))
        if ev == "MmProbeAndLockPages":
            row["access_mode"] = draw(st.sampled_from(["KernelMode", "UserMode"]))
        if "Mapping" in ev:
            row[draw(st.sampled_from(["va", "mapped_va"]))] = draw(st.sampled_from(RSVS + [0]))
            row["tag"] = draw(st.none() | st.sampled_from(TAGS[:2]))
        if ev == "IoCompleteRequest":
            row["irp"] = draw(st.none() | st.sampled_from(IRPS))
        if draw(st.integers(0, 9)) == 0:
            row["status"] = draw(st.sampled_from(["0xC000009A", "exception", "0x0"]))
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_tier2_calls())
def test_random_tier2_calls_never_raise(rows):
    a = analyze_rows(rows)
    f = a.findings
    assert (f["severity"].isin(["critical", "high", "medium", "low", "info"])).all()
    # every reservation still held at the end is reported once, at its allocation
    assert (f.loc[f["rule"] == "RESERVED_LEAK", "mdl"].isna()).all()
    # a freed lifetime holds no lock and no system mapping
    freed = set(a.lifecycles.loc[a.lifecycles["end_state"] == "freed", "lifetime_id"])
    live_locks = a.locks[a.locks["end_reason"] == "live"]
    assert not (set(live_locks["lifetime_id"]) & freed) or (
        # a lock dropped with its MDL by IoFreeMdl (FREE_MDL_WHILE_LOCKED) stays held
        set(live_locks["lifetime_id"]) & freed
        <= set(f.loc[f["rule"] == "FREE_MDL_WHILE_LOCKED", "lifetime_id"].dropna().astype(int))
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_tier2_calls() | interleaved_legal())
def test_compiled_and_python_kernels_agree_on_tier2(rows):
    py = analyze_rows(rows, engine="python")
    jit = analyze_rows(rows, engine="jit")
    assert jit.replay.engine == "jit" and py.replay.engine == "python"
    for name in ("slots", "mappings", "locks", "findings"):
        assert np.array_equal(getattr(py.replay, name), getattr(jit.replay, name)), name
    assert py.findings.drop(columns=["message"]).equals(jit.findings.drop(columns=["message"]))
