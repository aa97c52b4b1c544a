"""A process's ProcessEnd event is logged as it starts to exit (PspExitProcess), before
its handles are run down (IRP_MJ_CLEANUP, on its exiting thread, in its context) and its
address space is deleted: a driver's cleanup there, after the event, is no exit finding.
A release from another context after the event still is.

Each case: a.exe (pid 100, thread 1000) locks and maps its buffer at 1 ms; its ProcessEnd
at 5 ms; then the calls listed (times 5.01 ms, 5.02 ms, ...). Expected: the rules above
info, in time order, with the time of each.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.rows import PRELUDE, analyze_rows

MDL, BUF, UMAP = 0xFFFFC30A4B2F1000, 0x000001D2C3A40000, 0x000001D2C7500000
MS = 1_000_000
END = 5 * MS
APP = {"pid": 100, "tid": 1000}
WORKER = {"pid": 4, "tid": 88}


def call(event: str, who: dict = APP, **fields) -> dict:
    return {"event": event, **who, "mdl": MDL, **fields}


SETUP = [
    call("IoAllocateMdl", va=BUF, size=8192),
    call("MmProbeAndLockPages", access_mode="UserMode", operation="IoWriteAccess"),
    call("MmMapLockedPagesSpecifyCache", access_mode="UserMode", cache_type="MmCached",
         mapped_va=UMAP),
]
ATTACH = {"event": "KeStackAttachProcess", **WORKER, "target_pid": 100}
DETACH = {"event": "KeUnstackDetachProcess", **WORKER}


def unmap(who: dict = APP) -> dict:
    return call("MmUnmapLockedPages", who, mapped_va=UMAP)


def unlock(who: dict = APP) -> dict:
    return call("MmUnlockPages", who)


def free(who: dict = APP) -> dict:
    return call("IoFreeMdl", who)


def at(k: int) -> int:
    return END + (k + 1) * 10_000


CASES = {
    # the exiting thread's IRP_MJ_CLEANUP
    "cleanup on the exiting thread": ([unmap(), unlock(), free()], []),
    # the last reference's ObKillProcess, or a worker, attached to the exiting process
    "cleanup by a worker attached to it": ([ATTACH, unmap(WORKER), unlock(WORKER), DETACH,
                                            free(WORKER)], []),
    # after the event, from another context: the exit came first
    "a System worker unlocks after the exit": (
        [unmap(), {"event": "ThreadEnd", **APP}, unlock(WORKER), free(WORKER)],
        [("LOCKED_PAGES_AT_PROCESS_EXIT", END)]),
    "a System worker unmaps after the exit": (
        [unmap(WORKER), unlock(WORKER), free(WORKER)],
        [("LOCKED_PAGES_AT_PROCESS_EXIT", END), ("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", END),
         ("USER_UNMAP_AFTER_OWNER_EXIT", at(0))]),
    # a worker's unlock while the teardown goes on ran before the address space went
    # (the exit is after the process's last call); it was under the live mapping
    "a System worker unlocks during the teardown": (
        [unlock(WORKER), unmap(), free()], [("UNLOCK_WHILE_USER_MAPPED", at(0))]),
    "nothing released": ([], [("MDL_STRUCT_LEAK", MS), ("LOCKED_PAGES_AT_PROCESS_EXIT", END),
                              ("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", END)]),
}


def rows_of(after_end: list[dict]) -> list[dict]:
    setup = [{"time_ns": MS + 10_000 * k, **r} for k, r in enumerate(SETUP)]
    end = [{"time_ns": END, "event": "ProcessEnd", "pid": 100, "image": "a.exe"}]
    return list(PRELUDE) + setup + end + [{"time_ns": at(k), **r}
                                          for k, r in enumerate(after_end)]


@pytest.mark.parametrize("engine", ["python", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_release_after_process_end(name: str, engine: str) -> None:
    after, expected = CASES[name]
    f = analyze_rows(rows_of(after), engine=engine).findings
    f = f[f["severity"].astype(str) != "info"].sort_values(["time_ns", "rule"])
    assert list(zip(f["rule"], f["time_ns"])) == expected


def test_the_exit_is_kept_where_the_trace_has_it() -> None:
    """The lock record ends at the unlock, its evidence keeps the ProcessEnd's own seq."""
    a = analyze_rows(rows_of(CASES["a System worker unlocks after the exit"][0]))
    hit = a.findings[a.findings["rule"] == "LOCKED_PAGES_AT_PROCESS_EXIT"].iloc[0]
    events = a.trace.events
    end_seq = int(events.loc[events["event"] == "ProcessEnd", "seq"].iloc[0])
    assert end_seq in list(hit["evidence"])
    assert hit["end_ns"] == at(2)  # the worker's unlock ends the exposure
    assert np.isclose(hit["impact_byte_seconds"], 8192 * (at(2) - END) / 1e9)
