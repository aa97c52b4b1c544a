"""An MDL first seen part-way through its life (the trace, or a ``trace.window``, starts
after its IoAllocateMdl) has unknown mappings, as it has an unknown lock state: an unmap
of a mapping made before the trace is no finding, nor is a system mapping left when it
may be probe-locked (KMAP_LEAK). A second unmap the trace does show still is, and so is
every finding on a sequence the trace shows whole.

Each case is one MDL's calls (after the PRELUDE of helpers.rows), in a.exe (pid 100)
unless it says otherwise; the expected rules are those above info, in call order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import traceanalyzer as ta
from helpers.rows import PRELUDE, analyze_rows

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"

MDL, OTHER_MDL = 0xFFFFC30A4B2F1000, 0xFFFFC30A4B2F2000
SYS_VA = 0xFFFFA58012350000
USER_MAP, OTHER_USER_MAP = 0x000001D2C7500000, 0x000001D2C7600000
IN_B = {"pid": 200, "tid": 2000}  # b.exe


def call(event: str, **fields) -> dict:
    return {"event": event, "pid": 100, "tid": 1000, "mdl": MDL, **fields}


def kmap(**fields) -> dict:
    return call("MmMapLockedPagesSpecifyCache", access_mode="KernelMode", cache_type="MmCached",
                mapped_va=SYS_VA, priority=0x40000010, bugcheck_on_failure=0, **fields)


def umap(va: int = USER_MAP) -> dict:
    return call("MmMapLockedPagesSpecifyCache", access_mode="UserMode", cache_type="MmCached",
                mapped_va=va)


def unmap(va: int, **fields) -> dict:
    return call("MmUnmapLockedPages", mapped_va=va, **fields)


ALLOC = call("IoAllocateMdl", va=0x1D2C3A40000, size=8192)
LOCK = call("MmProbeAndLockPages", access_mode="UserMode", operation="IoWriteAccess")
UNLOCK, FREE = call("MmUnlockPages"), call("IoFreeMdl")
PARTIAL = call("IoBuildPartialMdl", source_mdl=OTHER_MDL, va=0x1D2C3A40000, size=4096)

CASES = {
    # mappings made before the trace, each unmapped once: nothing to report
    "kernel unmap first": ([unmap(SYS_VA), UNLOCK, FREE], []),
    "user unmap first": ([unmap(USER_MAP), UNLOCK, FREE], []),
    "user unmaps of two addresses": ([unmap(USER_MAP), unmap(OTHER_USER_MAP), UNLOCK, FREE], []),
    "the same address in two processes": ([unmap(USER_MAP, **IN_B), unmap(USER_MAP), UNLOCK,
                                           FREE], []),
    "unmap of a partial MDL's own mapping": ([PARTIAL, unmap(SYS_VA), FREE], []),
    # a second unmap the trace shows
    "kernel unmap twice": ([unmap(SYS_VA), unmap(SYS_VA), UNLOCK, FREE], ["KUNMAP_NOT_MAPPED"]),
    "user unmap twice": ([unmap(USER_MAP), unmap(USER_MAP), UNLOCK, FREE],
                         ["USER_MAP_UNBALANCED"]),
    "user unmap twice, another between": (
        [unmap(USER_MAP), unmap(OTHER_USER_MAP), unmap(USER_MAP), UNLOCK, FREE],
        ["USER_MAP_UNBALANCED"]),
    "kernel map, unmap, unmap": ([kmap(), unmap(SYS_VA), unmap(SYS_VA), UNLOCK, FREE],
                                 ["KUNMAP_NOT_MAPPED"]),
    "user map, unmap, unmap": ([umap(), unmap(USER_MAP), unmap(USER_MAP), UNLOCK, FREE],
                               ["USER_MAP_UNBALANCED"]),
    # a call that the trace shows released the system mapping
    "kernel unmap after the unlock": ([UNLOCK, unmap(SYS_VA), FREE], ["KUNMAP_NOT_MAPPED"]),
    "kernel unmap after MmFreePagesFromMdl": ([call("MmFreePagesFromMdl"), unmap(SYS_VA), FREE],
                                             ["KUNMAP_NOT_MAPPED"]),
    "partial unmap after MmPrepareMdlForReuse": ([PARTIAL, call("MmPrepareMdlForReuse"),
                                                  unmap(SYS_VA)], ["PARTIAL_UNMAP_ILLEGAL"]),
    # an address the trace shows is another MDL's live mapping
    "kernel unmap of another MDL's mapping": ([kmap(mdl=OTHER_MDL), unmap(SYS_VA), FREE],
                                              ["KUNMAP_WRONG_VA_OR_MDL"]),
    # a mapping the trace shows, unmapped from another process
    "user map, unmap in another process": ([umap(), unmap(USER_MAP, **IN_B), UNLOCK, FREE],
                                           ["USER_UNMAP_WRONG_PROCESS",
                                            "UNLOCK_WHILE_USER_MAPPED"]),
    # a system mapping of an MDL whose lock state is unknown is no KMAP_LEAK (it may be
    # probe-locked: the unlock releases it); of a partial MDL it is
    "kernel map, IoFreeMdl": ([kmap(), FREE], []),
    "kernel map, still mapped at the end": ([kmap()], []),
    "partial MDL mapped, still mapped at the end": ([PARTIAL, kmap()], ["KMAP_LEAK"]),
    # a mapping made before the trace, unmapped after the trace showed the unlock: it was
    # live at the unlock (the pages were released under it)
    "user unmap after the unlock": ([UNLOCK, unmap(USER_MAP), FREE],
                                    ["UNLOCK_WHILE_USER_MAPPED"]),
    "two user mappings unmapped after the unlock": (
        [UNLOCK, unmap(USER_MAP), unmap(OTHER_USER_MAP), FREE],
        ["UNLOCK_WHILE_USER_MAPPED", "UNLOCK_WHILE_USER_MAPPED"]),
    "unlock, re-lock, user unmap": ([UNLOCK, LOCK, unmap(USER_MAP), UNLOCK, FREE],
                                    ["UNLOCK_WHILE_USER_MAPPED"]),
    "user unmap, then the unlock": ([unmap(USER_MAP), UNLOCK, FREE], []),
    "user map in the trace, unlock, unmap": ([umap(), UNLOCK, unmap(USER_MAP), FREE],
                                             ["UNLOCK_WHILE_USER_MAPPED"]),
    "unlock, the same address unmapped twice": (
        [UNLOCK, unmap(USER_MAP), unmap(USER_MAP), FREE],
        ["UNLOCK_WHILE_USER_MAPPED", "USER_MAP_UNBALANCED"]),
    # ... and after MmFreePagesFromMdl (page-allocated MDL): its pages were freed under it
    "user unmap after MmFreePagesFromMdl": (
        [call("MmFreePagesFromMdl"), unmap(USER_MAP), call("ExFreePool")],
        ["FREE_PAGES_WHILE_USER_MAPPED"]),
    "user unmap, then MmFreePagesFromMdl": (
        [unmap(USER_MAP), call("MmFreePagesFromMdl"), call("ExFreePool")], []),
    # an MDL allocated in the trace: its mapping state is known
    "allocated in the trace, user unmap": ([ALLOC, LOCK, unmap(USER_MAP), UNLOCK, FREE],
                                           ["USER_MAP_UNBALANCED"]),
    "allocated in the trace, kernel unmap": ([ALLOC, LOCK, unmap(SYS_VA), UNLOCK, FREE],
                                             ["KUNMAP_NOT_MAPPED"]),
}


def rows_of(calls: list[dict]) -> list[dict]:
    return list(PRELUDE) + [{"time_ns": 1_000_000 + 10_000 * k, **r} for k, r in enumerate(calls)]


def rules_in_order(analysis: ta.Analysis) -> list[str]:
    f = analysis.findings
    f = f[f["severity"].astype(str) != "info"].sort_values(["time_ns", "rule"], kind="stable")
    return list(f["rule"])


@pytest.mark.parametrize("name", list(CASES))
def test_first_seen_mdl(name: str):
    calls, expected = CASES[name]
    assert rules_in_order(analyze_rows(rows_of(calls))) == expected


def test_compiled_and_python_kernels_agree_on_first_seen_mdls():
    for name, (calls, _expected) in CASES.items():
        py = analyze_rows(rows_of(calls), engine="python").replay
        jit = analyze_rows(rows_of(calls), engine="jit").replay
        for table in ("slots", "mappings", "locks", "findings"):
            assert np.array_equal(getattr(py, table), getattr(jit, table)), (name, table)


def test_window_that_cuts_a_mapping_is_clean():
    """clean_ioctl_lifecycle cut after the second IOCTL's kernel map (2.050 ms): its unmap
    (2.060 ms) is the first call of the window on that MDL."""
    trace = ta.load(SAMPLES / "clean_ioctl_lifecycle.csv").window(2_055_000, 4_000_000)
    assert rules_in_order(ta.analyze(trace)) == []


@pytest.mark.parametrize("name", ["clean_ioctl_lifecycle", "clean_trace_starts_mid_mapping",
                                  "clean_worker_attach_unmap", "clean_trace_starts_mid_attach"])
def test_every_window_start_of_a_clean_sample_is_clean(name: str):
    """A window may start anywhere in a clean lifecycle without a finding above low."""
    trace = ta.load(SAMPLES / f"{name}.csv")
    times = sorted(set(trace.table("calls").column("time_ns").to_pylist()))
    for t0 in times:
        f = ta.analyze(trace.window(t0 + 1, times[-1] + 1_000_000)).findings
        bad = f[f["severity"].astype(str).isin(["critical", "high", "medium"])]
        assert bad.empty, (t0, list(bad["rule"]))


def test_unlock_under_a_mapping_made_before_the_trace_is_an_exposure_from_the_unlock():
    """The finding is the unlock's (its time, thread and process), its exposure window
    runs to the unmap that shows the mapping was live, or to a re-lock before it; the
    unmap is evidence."""
    for calls, end_k in (([UNLOCK, unmap(USER_MAP), FREE], 1),
                         ([UNLOCK, LOCK, unmap(USER_MAP), UNLOCK, FREE], 1),
                         ([UNLOCK, call("MmBuildMdlForNonPagedPool"), unmap(USER_MAP)], 2)):
        rows = rows_of(calls)
        a = analyze_rows(rows)
        f = a.findings[a.findings["rule"] == "UNLOCK_WHILE_USER_MAPPED"]
        assert len(f) == 1, calls
        hit = f.iloc[0]
        t_unlock = rows[len(PRELUDE)]["time_ns"]
        assert hit["time_ns"] == hit["start_ns"] == t_unlock
        assert hit["end_ns"] == rows[len(PRELUDE) + end_k]["time_ns"]
        assert hit["exposure_start_ns"] == t_unlock and hit["exposure_end_ns"] == hit["end_ns"]
        assert hit["pid"] == 100 and hit["tid"] == 1000 and hit["severity"] == "critical"
        assert hit["event"] == "MmUnlockPages" and f"at 0x{USER_MAP:x}." in hit["message"]
        calls_table = a.trace.table("calls").to_pandas()
        unmap_seq = calls_table.loc[calls_table["event"] == "MmUnmapLockedPages", "seq"].iloc[0]
        assert unmap_seq in list(hit["evidence"])


@pytest.mark.parametrize("name", ["t2_irp_owned_mdl_freed_by_driver", "t2_irp_owned_mdls",
                                  "null_irp_driver_owned_mdls"])
def test_a_window_keeps_irp_ownership(name: str):
    """An MDL allocated for an IRP before the window is still the IRP's in it: its
    IoCompleteRequest releases it (no LOCKED_MDL_NEVER_UNLOCKED, LOCKED_PAGES_AT_PROCESS_EXIT
    or MDL_STRUCT_LEAK the whole trace does not have), and a driver's own unlock of it is
    DRIVER_FREES_IO_MANAGER_MDL as in the whole trace. Every window start, both engines."""
    trace = ta.load(SAMPLES / f"{name}.csv")
    whole = set(ta.analyze(trace).findings["rule"].astype(str))
    times = sorted(set(trace.table("calls").column("time_ns").to_pylist()))
    for t0 in times[:-1]:
        for engine in ("python", "jit"):
            f = ta.analyze(trace.window(t0 + 1, times[-1] + 1_000_000), engine=engine).findings
            assert set(f["rule"].astype(str)) <= whole, (t0, engine, list(f["rule"]))
    early = ta.analyze(ta.load(SAMPLES / "t2_irp_owned_mdl_freed_by_driver.csv").window(
        10_001, 100_000)).findings
    assert list(early["rule"]) == ["DRIVER_FREES_IO_MANAGER_MDL"] * 2
