"""LOCK_IN_WRONG_PROCESS: a user buffer probed and locked outside the process that issued
the request. The request's process is where IoAllocateMdl ran, unless that was System or
Idle (a worker allocating for a request says nothing about whose buffer it is); System and
Idle have no user buffers of a requester, so a user-va lock there is always wrong.

a.exe is pid 100 (thread 1000), b.exe pid 200 (thread 2000), System's worker thread 88.
"""

from __future__ import annotations

import pytest

from helpers.rows import PRELUDE, analyze_rows

MDL, BUF, KBUF = 0xFFFFC30A4B2F1000, 0x000001D2C3A40000, 0xFFFFC30A4C000000
APP, OTHER, WORKER = {"pid": 100, "tid": 1000}, {"pid": 200, "tid": 2000}, {"pid": 4, "tid": 88}


def alloc(who: dict, va: int = BUF) -> dict:
    return {"event": "IoAllocateMdl", **who, "mdl": MDL, "va": va, "size": 8192}


def lock(who: dict, event: str = "MmProbeAndLockPages", **fields) -> dict:
    return {"event": event, **who, "mdl": MDL, "access_mode": "UserMode",
            "operation": "IoWriteAccess", **fields}


ATTACH = {"event": "KeStackAttachProcess", **WORKER, "target_pid": 100}
DETACH = {"event": "KeUnstackDetachProcess", **WORKER}
WRONG = "LOCK_IN_WRONG_PROCESS"

CASES = {
    "a worker allocates, attaches to the app and locks": (
        [alloc(WORKER), ATTACH, lock(WORKER), DETACH], None),
    "a worker allocates and locks without attaching": (
        [alloc(WORKER), lock(WORKER)], "in System (4), which has no user address space"),
    "the app allocates, a worker locks without attaching": (
        [alloc(APP), lock(WORKER)], "but the MDL was allocated for a.exe (100)"),
    "the app allocates, another process locks": (
        [alloc(APP), lock(OTHER)], "in b.exe (200), but the MDL was allocated for a.exe (100)"),
    "the app allocates and locks": ([alloc(APP), lock(APP)], None),
    "first seen, locked by a worker": ([lock(WORKER, va=BUF, size=8192)], "in System (4)"),
    "first seen, locked by the app": ([lock(APP, va=BUF, size=8192)], None),
    "a kernel buffer locked by a worker": (
        [alloc(WORKER, KBUF), lock(WORKER, access_mode="KernelMode")], None),
    "MmProbeAndLockProcessPages of the app's buffer from a worker": (
        [alloc(WORKER), lock(WORKER, "MmProbeAndLockProcessPages", target_pid=100)], None),
}


@pytest.mark.parametrize("engine", ["python", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_lock_in_wrong_process(name: str, engine: str) -> None:
    calls, says = CASES[name]
    rows = list(PRELUDE) + [{"time_ns": 1_000_000 + 10_000 * k, **r} for k, r in enumerate(calls)]
    f = analyze_rows(rows, engine=engine).findings
    hits = f[f["rule"] == WRONG]
    if says is None:
        assert hits.empty, list(hits["message"])
    else:
        assert len(hits) == 1 and says in hits["message"].iloc[0]
        assert hits["event"].iloc[0].startswith("MmProbeAndLock")
