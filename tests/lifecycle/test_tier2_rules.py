"""Tier-2 rules (docs/rules.md): each fires where it should, with the finding fields the
golden tests compare (rule, time_ns, pid, mdl, bytes), and not on the legal variant.

Every case is a small story written with the scenario builder, saved as canonical CSV
and read back with ``traceanalyzer.load`` (the whole pipeline). Expected values are
worked out from the rules text: bytes = ceil(((va mod 4096) + size) / 4096) x 4096 of the
MDL the finding names; pid = the effective process of the triggering call (the
mapping's process for user-mapping findings); end-of-trace leaks carry the time of the
originating call.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.synth.scenario import Scenario, Thread, pool_tag

MS = 1_000_000
US = 1_000
APP_PID = 4100
APP_BUF = 0x000001D2C3A40000
UMAP = 0x000001D2C7100000
RSV = 0xFFFFA58013000000
TAG, OTHER_TAG = pool_tag("MdlR"), pool_tag("MdlX")
IRP = 0xFFFFC30A4D100000


def mdl_at(n: int) -> int:
    return 0xFFFFC30A4B2F0000 + n * 0x1000


def sysva(n: int) -> int:
    return 0xFFFFA58012300000 + n * 0x10000


def kbuf(n: int) -> int:
    return 0xFFFFB00012340000 + n * 0x10000


def npbuf(n: int) -> int:
    return 0xFFFFC30A4C010000 + n * 0x10000


def analyze(s: Scenario, tmp_path: Path, engine: str = "python") -> ta.Analysis:
    """Write the scenario as canonical CSV, load it and analyze it."""
    path = s.to_csv(tmp_path / "scenario.csv")
    return ta.analyze(ta.load(path), engine=engine)


def hits(a: ta.Analysis, rule: str) -> list[tuple[int, int | None, int | None, int]]:
    """(time_ns, pid, mdl, bytes) of every finding of ``rule``, sorted by time."""
    f = a.findings[a.findings["rule"] == rule]
    out = [
        (int(r.time_ns), None if pd.isna(r.pid) else int(r.pid),
         None if pd.isna(r.mdl) else int(r.mdl), int(r.bytes))
        for r in f.itertuples()
    ]
    return sorted(out)


def serious(a: ta.Analysis) -> list[str]:
    """Rules of the findings above info (legal stories must have none)."""
    f = a.findings
    return sorted(f.loc[f["severity"] != "info", "rule"].tolist())


def worker(s: Scenario, tid: int = 300) -> Thread:
    s.system()
    return s.system_thread(tid=tid)


# --- nonpaged-built MDLs ------------------------------------------------------------------


def nonpaged(s: Scenario, bad: str | None) -> Thread:
    """IoAllocateMdl over an 8 KiB nonpaged buffer, MmBuildMdlForNonPagedPool, (misuse), free."""
    w = worker(s)
    m, pool = mdl_at(1), npbuf(1)
    s.at(1 * MS).allocate_mdl(w, m, va=pool, size=0x2000)
    s.at(2 * MS).call("MmBuildMdlForNonPagedPool", w, mdl=m, va=pool)
    if bad == "lock":
        s.at(3 * MS).probe_and_lock(w, m, mode="KernelMode")
    elif bad == "unlock":
        s.at(3 * MS).unlock(w, m)
    elif bad == "kunmap":
        s.at(3 * MS).unmap(w, m, pool)
    s.at(4 * MS).free_mdl(w, m)
    return w


@pytest.mark.parametrize("bad, rule", [
    ("lock", "LOCK_BUILT_OR_PARTIAL_MDL"),
    ("unlock", "UNLOCK_BUILT_OR_PARTIAL_MDL"),
    ("kunmap", "KUNMAP_NONPAGED_MDL"),
])
def test_nonpaged_misuse_fires(tmp_path, bad, rule):
    s = Scenario()
    nonpaged(s, bad)
    a = analyze(s, tmp_path)
    assert hits(a, rule) == [(3 * MS, 4, mdl_at(1), 0x2000)]
    assert serious(a) == [rule]


def test_nonpaged_legal_lifecycle_is_clean(tmp_path):
    s = Scenario()
    nonpaged(s, None)
    assert serious(analyze(s, tmp_path)) == []


def test_unlock_and_lock_of_partial_mdl(tmp_path):
    s = Scenario()
    w = worker(s)
    src, part = mdl_at(1), mdl_at(2)
    s.at(1 * MS).allocate_mdl(w, src, va=kbuf(1), size=0x8000)
    s.at(2 * MS).probe_and_lock(w, src, mode="KernelMode")
    s.at(3 * MS).allocate_mdl(w, part, va=kbuf(1) + 0x1800, size=0x1000)
    s.at(4 * MS).call("IoBuildPartialMdl", w, mdl=part, source_mdl=src,
                      va=kbuf(1) + 0x1800, size=0x1000)
    s.at(5 * MS).probe_and_lock(w, part, mode="KernelMode")
    s.at(6 * MS).unlock(w, part)
    s.at(7 * MS).free_mdl(w, part)
    s.at(8 * MS).unlock(w, src)
    s.at(9 * MS).free_mdl(w, src)
    a = analyze(s, tmp_path)
    # the partial spans 0x800 + 0x1000 bytes -> 2 pages
    assert hits(a, "LOCK_BUILT_OR_PARTIAL_MDL") == [(5 * MS, 4, part, 0x2000)]
    assert hits(a, "UNLOCK_BUILT_OR_PARTIAL_MDL") == [(6 * MS, 4, part, 0x2000)]
    assert serious(a) == ["LOCK_BUILT_OR_PARTIAL_MDL", "UNLOCK_BUILT_OR_PARTIAL_MDL"]


# --- page-allocated MDLs --------------------------------------------------------------------


def pages(s: Scenario, bad: str | None, got: int = 0x10000, asked: int = 0x10000) -> None:
    w = worker(s)
    a = mdl_at(3)
    s.at(1 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a, requested_size=asked, size=got)
    s.at(2 * MS).map_kernel(w, a, sysva(1))
    if bad == "unlock":
        s.at(3 * MS).unlock(w, a)
    if bad == "iofree":
        s.at(4 * MS).free_mdl(w, a)
        return
    if bad == "leak":
        return
    if bad == "exfree_only":
        s.at(5 * MS).call("ExFreePoolMdl", w, mdl=a)
        return
    s.at(5 * MS).call("MmFreePagesFromMdl", w, mdl=a)
    s.at(6 * MS).call("ExFreePoolMdl", w, mdl=a)


def test_unlock_allocated_pages_mdl(tmp_path):
    s = Scenario()
    pages(s, "unlock")
    a = analyze(s, tmp_path)
    assert hits(a, "UNLOCK_ALLOCATED_PAGES_MDL") == [(3 * MS, 4, mdl_at(3), 0x10000)]
    assert serious(a) == ["UNLOCK_ALLOCATED_PAGES_MDL"]


def test_page_allocated_legal_lifecycle_releases_mapping_implicitly(tmp_path):
    s = Scenario()
    pages(s, None)
    a = analyze(s, tmp_path)
    assert serious(a) == []  # MmFreePagesFromMdl released the system mapping: no KMAP_LEAK
    assert a.mappings["end_reason"].tolist() == ["pages_freed"]
    assert a.mappings["end_ns"].tolist() == [5 * MS]


def test_alloc_pages_leak_at_end_of_trace(tmp_path):
    s = Scenario()
    pages(s, "leak")
    a = analyze(s, tmp_path)
    # end-of-trace leaks carry the time of the allocation; the live map is a KMAP_LEAK too
    assert hits(a, "ALLOC_PAGES_LEAK") == [(1 * MS, 4, mdl_at(3), 0x10000)]
    assert hits(a, "KMAP_LEAK") == [(2 * MS, 4, mdl_at(3), 0x10000)]


def test_alloc_pages_wrong_free_also_leaks_the_pages(tmp_path):
    s = Scenario()
    pages(s, "iofree")
    a = analyze(s, tmp_path)
    assert hits(a, "ALLOC_PAGES_WRONG_FREE") == [(4 * MS, 4, mdl_at(3), 0x10000)]
    assert hits(a, "ALLOC_PAGES_LEAK") == [(1 * MS, 4, mdl_at(3), 0x10000)]


def test_pool_free_without_free_pages_leaks_the_pages(tmp_path):
    s = Scenario()
    pages(s, "exfree_only")
    a = analyze(s, tmp_path)
    assert hits(a, "ALLOC_PAGES_LEAK") == [(1 * MS, 4, mdl_at(3), 0x10000)]
    assert hits(a, "ALLOC_PAGES_WRONG_FREE") == []


def test_free_pages_wrong_mdl(tmp_path):
    s = Scenario()
    w = worker(s)
    m = mdl_at(4)
    s.at(1 * MS).allocate_mdl(w, m, va=kbuf(2) + 0x10, size=0x1000)
    s.at(2 * MS).probe_and_lock(w, m, mode="KernelMode")
    s.at(3 * MS).call("MmFreePagesFromMdl", w, mdl=m)
    s.at(4 * MS).unlock(w, m)
    s.at(5 * MS).free_mdl(w, m)
    a = analyze(s, tmp_path)
    assert hits(a, "FREE_PAGES_WRONG_MDL") == [(3 * MS, 4, m, 0x2000)]
    assert serious(a) == ["FREE_PAGES_WRONG_MDL"]


def test_free_pages_of_mdl_allocated_before_the_trace_is_not_wrong(tmp_path):
    s = Scenario()
    w = worker(s)
    s.at(1 * MS).call("MmFreePagesFromMdl", w, mdl=mdl_at(4))
    s.at(2 * MS).call("ExFreePoolMdl", w, mdl=mdl_at(4))
    assert serious(analyze(s, tmp_path)) == []


def short_pages(s: Scenario, use: int) -> Thread:
    """256 KiB returned of 1 MiB asked; a partial MDL of ``use`` bytes built from it."""
    w = worker(s)
    a, p = mdl_at(5), mdl_at(6)
    s.at(1 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a, requested_size=0x100000,
                      size=0x40000)
    s.at(2 * MS).allocate_mdl(w, p, va=0, size=use)
    s.at(3 * MS).call("IoBuildPartialMdl", w, mdl=p, source_mdl=a, va=0, size=use)
    s.at(4 * MS).free_mdl(w, p)
    s.at(5 * MS).call("MmFreePagesFromMdl", w, mdl=a)
    s.at(6 * MS).call("ExFreePoolMdl", w, mdl=a)
    return w


def test_alloc_pages_short_used_at_requested_size(tmp_path):
    s = Scenario()
    short_pages(s, 0x100000)
    a = analyze(s, tmp_path)
    # about the short MDL: its bytes are what it describes (256 KiB)
    assert hits(a, "ALLOC_PAGES_SHORT") == [(3 * MS, 4, mdl_at(5), 0x40000)]
    # and the 1 MiB partial range lies outside the 256 KiB source
    assert hits(a, "PARTIAL_RANGE_INVALID") == [(3 * MS, 4, mdl_at(6), 0x100000)]


def test_alloc_pages_short_used_within_returned_size_is_legal(tmp_path):
    s = Scenario()
    short_pages(s, 0x40000)
    assert serious(analyze(s, tmp_path)) == []


def test_alloc_pages_short_on_any_call_naming_the_requested_size(tmp_path):
    s = Scenario()
    w = worker(s)
    a = mdl_at(5)
    s.at(1 * MS).call("MmAllocatePagesForMdl", w, mdl=a, requested_size=0x8000, size=0x3000)
    s.at(2 * MS).map_kernel(w, a, sysva(2), size=0x8000)
    s.at(3 * MS).call("MmFreePagesFromMdl", w, mdl=a)
    s.at(4 * MS).call("ExFreePoolMdl", w, mdl=a)
    assert hits(analyze(s, tmp_path), "ALLOC_PAGES_SHORT") == [(2 * MS, 4, a, 0x3000)]


# --- partial MDLs ---------------------------------------------------------------------------


def partial_story(s: Scenario, *, lock_first: bool = True, offset: int = 0x4000,
                  size: int = 0x2000, unlock_before_map: bool = False,
                  free_before_map: bool = False) -> tuple[int, int]:
    """A 64 KiB user buffer of the app, locked; a partial MDL of it mapped and freed."""
    s.system()
    app = s.process(pid=APP_PID, image="app.exe", tid=APP_PID + 4)
    src, part = mdl_at(7), mdl_at(8)
    s.at(1 * MS).allocate_mdl(app, src, va=APP_BUF, size=0x10000)
    if lock_first:
        s.at(2 * MS).probe_and_lock(app, src)
    s.at(3 * MS).allocate_mdl(app, part, va=APP_BUF + offset, size=size)
    s.at(4 * MS).call("IoBuildPartialMdl", app, mdl=part, source_mdl=src,
                      va=APP_BUF + offset, size=size)
    if not lock_first:
        s.at(5 * MS).probe_and_lock(app, src)
    if unlock_before_map:
        s.at(6 * MS).unlock(app, src)
    if free_before_map:
        s.at(6 * MS).unlock(app, src)
        s.at(6 * MS + 1).free_mdl(app, src)
    s.at(7 * MS).map_kernel(app, part, sysva(3))
    s.at(8 * MS).free_mdl(app, part)  # IoFreeMdl of a partial releases its own mapping
    if not (unlock_before_map or free_before_map):
        s.at(9 * MS).unlock(app, src)
    if not free_before_map:
        s.at(10 * MS).free_mdl(app, src)
    s.at(20 * MS).process_end(app)
    return src, part


def test_partial_legal_lifecycle_is_clean(tmp_path):
    s = Scenario()
    partial_story(s)
    a = analyze(s, tmp_path)
    assert serious(a) == []
    kmaps = a.mappings[a.mappings["mode"] == "KernelMode"]
    assert kmaps["end_reason"].tolist() == ["mdl_freed"]


def test_partial_source_not_locked(tmp_path):
    s = Scenario()
    _src, part = partial_story(s, lock_first=False)
    a = analyze(s, tmp_path)
    assert hits(a, "PARTIAL_SOURCE_NOT_LOCKED") == [(4 * MS, APP_PID, part, 0x2000)]
    # nothing to outlive: the map after the late lock is not a second finding
    assert serious(a) == ["PARTIAL_SOURCE_NOT_LOCKED"]


@pytest.mark.parametrize("offset, size", [(0xF000, 0x2000), (-0x1000, 0x2000)])
def test_partial_range_invalid(tmp_path, offset, size):
    s = Scenario()
    _src, part = partial_story(s, offset=offset, size=size)
    a = analyze(s, tmp_path)
    # the finding names the partial MDL (its IoAllocateMdl va/size: 2 pages)
    assert hits(a, "PARTIAL_RANGE_INVALID") == [(4 * MS, APP_PID, part, 0x2000)]


def test_partial_range_at_the_end_of_the_source_is_valid(tmp_path):
    s = Scenario()
    partial_story(s, offset=0xE000, size=0x2000)
    assert serious(analyze(s, tmp_path)) == []


@pytest.mark.parametrize("how", ["unlocked", "freed"])
def test_partial_outlives_source(tmp_path, how):
    s = Scenario()
    _src, part = partial_story(s, unlock_before_map=how == "unlocked",
                               free_before_map=how == "freed")
    a = analyze(s, tmp_path)
    assert hits(a, "PARTIAL_OUTLIVES_SOURCE") == [(7 * MS, APP_PID, part, 0x2000)]
    assert serious(a) == ["PARTIAL_OUTLIVES_SOURCE"]


def test_partial_outlives_pages_of_its_source(tmp_path):
    s = Scenario()
    w = worker(s)
    a, p = mdl_at(5), mdl_at(6)
    s.at(1 * MS).call("MmAllocatePagesForMdl", w, mdl=a, requested_size=0x4000, size=0x4000)
    s.at(2 * MS).allocate_mdl(w, p, va=0x1000, size=0x1000)
    s.at(3 * MS).call("IoBuildPartialMdl", w, mdl=p, source_mdl=a, va=0x1000, size=0x1000)
    s.at(4 * MS).call("MmFreePagesFromMdl", w, mdl=a)
    s.at(5 * MS).map_kernel(w, p, sysva(4))
    s.at(6 * MS).free_mdl(w, p)
    s.at(7 * MS).call("ExFreePoolMdl", w, mdl=a)
    assert hits(analyze(s, tmp_path), "PARTIAL_OUTLIVES_SOURCE") == [(5 * MS, 4, p, 0x1000)]


def chunks(s: Scenario, prepare: bool, unmap_after: bool = False) -> int:
    """One partial MDL walks a locked 64 KiB kernel buffer in 16 KiB chunks."""
    w = worker(s)
    src, part = mdl_at(9), mdl_at(10)
    s.at(1 * MS).allocate_mdl(w, src, va=kbuf(3), size=0x10000)
    s.at(2 * MS).probe_and_lock(w, src, mode="KernelMode")
    s.at(3 * MS).allocate_mdl(w, part, va=kbuf(3), size=0x4000)
    s.at(4 * MS).call("IoBuildPartialMdl", w, mdl=part, source_mdl=src, va=kbuf(3), size=0x4000)
    s.at(5 * MS).map_kernel(w, part, sysva(5))
    if prepare:
        s.at(6 * MS).call("MmPrepareMdlForReuse", w, mdl=part)
    s.at(7 * MS).call("IoBuildPartialMdl", w, mdl=part, source_mdl=src, va=kbuf(3) + 0x4000,
                      size=0x4000)
    if unmap_after:
        s.at(8 * MS).unmap(w, part, sysva(5))
    s.at(9 * MS).free_mdl(w, part)
    s.at(10 * MS).unlock(w, src)
    s.at(11 * MS).free_mdl(w, src)
    return part


def test_partial_reuse_without_prepare(tmp_path):
    s = Scenario()
    part = chunks(s, prepare=False)
    a = analyze(s, tmp_path)
    assert hits(a, "PARTIAL_REUSE_WITHOUT_PREPARE") == [(7 * MS, 4, part, 0x4000)]
    assert serious(a) == ["PARTIAL_REUSE_WITHOUT_PREPARE"]


def test_partial_reuse_with_prepare_is_clean(tmp_path):
    s = Scenario()
    chunks(s, prepare=True)
    a = analyze(s, tmp_path)
    assert serious(a) == []
    assert a.mappings["end_reason"].tolist() == ["unmap"]  # released by the prepare
    assert a.mappings["end_ns"].tolist() == [6 * MS]


def test_partial_unmap_illegal_after_prepare_released_it(tmp_path):
    s = Scenario()
    part = chunks(s, prepare=True, unmap_after=True)
    a = analyze(s, tmp_path)
    assert hits(a, "PARTIAL_UNMAP_ILLEGAL") == [(8 * MS, 4, part, 0x4000)]
    assert serious(a) == ["PARTIAL_UNMAP_ILLEGAL"]


def test_partial_unmap_of_its_own_mapping_is_legal(tmp_path):
    s = Scenario()
    chunks(s, prepare=False, unmap_after=True)
    a = analyze(s, tmp_path)
    assert "PARTIAL_UNMAP_ILLEGAL" not in serious(a)


# --- reserved mappings ----------------------------------------------------------------------


def reserved(s: Scenario, steps: list[tuple[str, int]], free: bool = True,
             addr_column: str = "va") -> Thread:
    """A 64 KiB reservation tagged 'MdlR', an MDL over 12 KiB, then ``steps``:
    (call, tag) with call in map / unmap / free."""
    w = worker(s)
    m = mdl_at(11)
    s.at(1 * MS).call("MmAllocateMappingAddress", w, size=0x10000, tag=TAG, **{addr_column: RSV})
    s.at(2 * MS).allocate_mdl(w, m, va=kbuf(4), size=0x3000)
    s.at(3 * MS).probe_and_lock(w, m, mode="KernelMode")
    t = 4 * MS
    names = {"map": "MmMapLockedPagesWithReservedMapping", "unmap": "MmUnmapReservedMapping",
             "free": "MmFreeMappingAddress"}
    for what, tag in steps:
        extra = {"mdl": m} if what != "free" else {}
        if what == "map":
            extra["cache_type"] = "MmCached"
        s.at(t).call(names[what], w, tag=tag, **{addr_column: RSV}, **extra)
        t += MS
    s.at(t).unlock(w, m)
    s.at(t + MS).free_mdl(w, m)
    if free:
        s.at(t + 2 * MS).call("MmFreeMappingAddress", w, tag=TAG, **{addr_column: RSV})
    return w


@pytest.mark.parametrize("addr_column", ["va", "mapped_va"])
def test_reserved_legal_lifecycle_is_clean(tmp_path, addr_column):
    s = Scenario()
    reserved(s, [("map", TAG), ("unmap", TAG), ("map", TAG), ("unmap", TAG)],
             addr_column=addr_column)
    assert serious(analyze(s, tmp_path)) == []


def test_reserved_map_while_mapped(tmp_path):
    s = Scenario()
    reserved(s, [("map", TAG), ("map", TAG), ("unmap", TAG)])
    a = analyze(s, tmp_path)
    assert hits(a, "RESERVED_MAP_WHILE_MAPPED") == [(5 * MS, 4, mdl_at(11), 0x3000)]
    assert serious(a) == ["RESERVED_MAP_WHILE_MAPPED"]


def test_reserved_unmap_not_mapped(tmp_path):
    s = Scenario()
    reserved(s, [("map", TAG), ("unmap", TAG), ("unmap", TAG)])
    a = analyze(s, tmp_path)
    assert hits(a, "RESERVED_UNMAP_NOT_MAPPED") == [(6 * MS, 4, mdl_at(11), 0x3000)]
    assert serious(a) == ["RESERVED_UNMAP_NOT_MAPPED"]


def test_reserved_tag_mismatch_changes_nothing(tmp_path):
    s = Scenario()
    reserved(s, [("map", OTHER_TAG), ("map", TAG), ("unmap", OTHER_TAG), ("unmap", TAG)])
    a = analyze(s, tmp_path)
    assert hits(a, "RESERVED_TAG_MISMATCH") == [(4 * MS, 4, mdl_at(11), 0x3000),
                                                (6 * MS, 4, mdl_at(11), 0x3000)]
    assert serious(a) == ["RESERVED_TAG_MISMATCH"] * 2


def test_reserved_free_while_mapped_takes_effect(tmp_path):
    s = Scenario()
    reserved(s, [("map", TAG), ("free", TAG), ("unmap", TAG)], free=False)
    a = analyze(s, tmp_path)
    # no MDL is passed to MmFreeMappingAddress: mdl empty, bytes = the 64 KiB reservation
    assert hits(a, "RESERVED_FREE_WHILE_MAPPED") == [(5 * MS, 4, None, 0x10000)]
    # the illegal free did free the range: no RESERVED_LEAK, and the unmap after it names
    # a reservation that no longer exists (it changes nothing)
    assert serious(a) == ["RESERVED_FREE_WHILE_MAPPED"]


def test_reserved_free_with_wrong_tag_leaks_without_the_right_free(tmp_path):
    s = Scenario()
    reserved(s, [("free", OTHER_TAG)], free=False)
    a = analyze(s, tmp_path)
    # no reservation has that address and tag: the free changed nothing, the range leaks
    assert sorted(serious(a)) == ["RESERVED_LEAK", "RESERVED_TAG_MISMATCH"]


def test_reserved_free_with_wrong_tag(tmp_path):
    s = Scenario()
    reserved(s, [("free", OTHER_TAG)])
    a = analyze(s, tmp_path)
    assert hits(a, "RESERVED_TAG_MISMATCH") == [(4 * MS, 4, None, 0x10000)]
    assert hits(a, "RESERVED_LEAK") == []  # the right free came later


def test_reserved_leak(tmp_path):
    s = Scenario()
    reserved(s, [("map", TAG), ("unmap", TAG)], free=False)
    a = analyze(s, tmp_path)
    assert hits(a, "RESERVED_LEAK") == [(1 * MS, 4, None, 0x10000)]
    assert serious(a) == ["RESERVED_LEAK"]


def test_failed_reservation_is_not_a_leak(tmp_path):
    s = Scenario()
    w = worker(s)
    s.at(1 * MS).call("MmAllocateMappingAddress", w, size=0x10000, tag=TAG, va=0)
    assert serious(analyze(s, tmp_path)) == []


# --- IRP-owned MDLs ---------------------------------------------------------------------


def irp_story(s: Scenario, *, driver_unlock: bool = False, driver_free: bool = False,
              unmap_user: bool = True, use_after: bool = False) -> Thread:
    s.system()
    app = s.process(pid=APP_PID, image="app.exe", tid=APP_PID + 4)
    m = mdl_at(12)
    s.at(1 * MS).allocate_mdl(app, m, va=APP_BUF + 0x100, size=0x1000, irp=IRP)
    s.at(2 * MS).probe_and_lock(app, m)
    s.at(3 * MS).map_kernel(app, m, sysva(6))
    s.at(4 * MS).map_user(app, m, UMAP)
    if unmap_user:
        s.at(5 * MS).unmap(app, m, UMAP)
    if driver_unlock:
        s.at(6 * MS).unlock(app, m)
    if driver_free:
        s.at(6 * MS + 1).free_mdl(app, m)
    s.at(7 * MS).complete_request(app, IRP)
    if use_after:
        s.at(8 * MS).unlock(app, m)
    s.at(20 * MS).process_end(app)
    return app


def test_irp_owned_legal_lifecycle_released_by_completion(tmp_path):
    s = Scenario()
    irp_story(s)
    a = analyze(s, tmp_path)
    assert serious(a) == []  # no MDL_STRUCT_LEAK, no LOCKED_PAGES_AT_PROCESS_EXIT, no KMAP_LEAK
    assert a.locks["end_reason"].tolist() == ["irp_completed"]
    assert a.locks["end_ns"].tolist() == [7 * MS]
    kmap = a.mappings[a.mappings["mode"] == "KernelMode"]
    assert kmap["end_reason"].tolist() == ["irp_completed"]
    assert a.lifecycles["end_state"].tolist() == ["freed"]


def test_driver_frees_io_manager_mdl(tmp_path):
    s = Scenario()
    irp_story(s, driver_unlock=True, driver_free=True)
    a = analyze(s, tmp_path)
    assert hits(a, "DRIVER_FREES_IO_MANAGER_MDL") == [(6 * MS, APP_PID, mdl_at(12), 0x2000),
                                                      (6 * MS + 1, APP_PID, mdl_at(12), 0x2000)]
    # the illegal calls took effect: the driver's unlock ended the lock, its free freed
    # the MDL, and the completion had nothing left to release
    assert serious(a) == ["DRIVER_FREES_IO_MANAGER_MDL"] * 2
    assert a.locks["end_reason"].tolist() == ["unlock"]
    assert a.locks["end_ns"].tolist() == [6 * MS]
    assert a.lifecycles["free_ns"].tolist() == [6 * MS + 1]


def test_call_after_completion_is_use_after_free(tmp_path):
    s = Scenario()
    irp_story(s, use_after=True)
    a = analyze(s, tmp_path)
    assert hits(a, "MDL_USE_AFTER_FREE") == [(8 * MS, APP_PID, mdl_at(12), 0x2000)]
    assert hits(a, "DRIVER_FREES_IO_MANAGER_MDL") == []


def test_user_map_outlives_irp(tmp_path):
    s = Scenario()
    irp_story(s, unmap_user=False)
    a = analyze(s, tmp_path)
    assert hits(a, "USER_MAP_OUTLIVES_IRP") == [(7 * MS, APP_PID, mdl_at(12), 0x2000)]
    f = a.findings[a.findings["rule"] == "USER_MAP_OUTLIVES_IRP"].iloc[0]
    # exposure: from the completion until the process tore the mapping down
    assert (f["exposure_start_ns"], f["exposure_end_ns"]) == (7 * MS, 20 * MS)
    # the mapping then leaks at exit (a later finding of its own)
    assert hits(a, "USER_MAPPING_NOT_UNMAPPED_AT_EXIT") == [(20 * MS, APP_PID, mdl_at(12), 0x2000)]


def test_user_map_outlives_irp_names_the_mapping_process(tmp_path):
    s = Scenario()
    s.system()
    app = s.process(pid=APP_PID, image="app.exe", tid=APP_PID + 4)
    w = s.system_thread(tid=300)
    m = mdl_at(12)
    s.at(1 * MS).allocate_mdl(app, m, va=APP_BUF, size=0x3000, irp=IRP)
    s.at(2 * MS).probe_and_lock(app, m)
    s.at(3 * MS).map_user(app, m, UMAP)
    s.at(4 * MS).complete_request(w, IRP)  # completed from a System worker (a DPC)
    a = analyze(s, tmp_path)
    assert hits(a, "USER_MAP_OUTLIVES_IRP") == [(4 * MS, APP_PID, m, 0x3000)]


def test_completion_of_another_irp_releases_nothing(tmp_path):
    s = Scenario()
    s.system()
    app = s.process(pid=APP_PID, image="app.exe", tid=APP_PID + 4)
    m1, m2 = mdl_at(12), mdl_at(13)
    s.at(1 * MS).allocate_mdl(app, m1, va=APP_BUF, size=0x1000, irp=IRP)
    s.at(2 * MS).allocate_mdl(app, m2, va=APP_BUF + 0x1000, size=0x1000, irp=IRP + 0x1000)
    s.at(3 * MS).probe_and_lock(app, m1)
    s.at(4 * MS).probe_and_lock(app, m2)
    s.at(5 * MS).complete_request(app, IRP)
    s.at(6 * MS).process_end(app)
    a = analyze(s, tmp_path)
    # m2's IRP never completed: its user-buffer lock is still held at exit
    assert hits(a, "LOCKED_PAGES_AT_PROCESS_EXIT") == [(6 * MS, APP_PID, m2, 0x1000)]
    assert dict(zip(a.locks["mdl"], a.locks["end_reason"])) == {m1: "irp_completed", m2: "live"}


# --- IRQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, irql, fires", [
    ("lock", 2, False), ("lock", 3, True),
    ("umap", 1, False), ("umap", 2, True),
    ("uunmap", 1, False), ("uunmap", 2, True),
    ("kmap", 2, False), ("kunmap", 2, False),
    ("pages", 2, False), ("pages", 3, True),
    ("attach", 1, False), ("attach", 2, True),
])
def test_irql_violation(tmp_path, call, irql, fires):
    s = Scenario()
    s.system()
    app = s.process(pid=APP_PID, image="app.exe", tid=APP_PID + 4)
    w = s.system_thread(tid=300)
    m, pg = mdl_at(14), mdl_at(15)
    at = {c: 0 for c in ("lock", "umap", "uunmap", "kmap", "kunmap", "pages", "attach")}
    at[call] = irql
    s.at(1 * MS).allocate_mdl(app, m, va=APP_BUF + 0x800, size=0x1000)
    s.at(2 * MS).probe_and_lock(app, m, irql=at["lock"])
    s.at(3 * MS).map_user(app, m, UMAP, irql=at["umap"])
    s.at(4 * MS).map_kernel(app, m, sysva(7), irql=at["kmap"])
    s.at(5 * MS).unmap(app, m, UMAP, irql=at["uunmap"])
    s.at(6 * MS).unmap(app, m, sysva(7), irql=at["kunmap"])
    s.at(7 * MS).unlock(app, m, irql=2)
    s.at(8 * MS).free_mdl(app, m, irql=2)
    s.at(9 * MS).call("MmAllocatePagesForMdl", w, mdl=pg, requested_size=0x1000, size=0x1000,
                      irql=at["pages"])
    s.at(10 * MS).call("MmFreePagesFromMdl", w, mdl=pg, irql=2)
    s.at(11 * MS).call("ExFreePoolMdl", w, mdl=pg, irql=2)
    s.at(12 * MS).attach(w, app, irql=at["attach"])
    s.at(13 * MS).detach(w, irql=at["attach"])
    a = analyze(s, tmp_path)
    want = {"lock": (2 * MS, APP_PID, m, 0x2000), "umap": (3 * MS, APP_PID, m, 0x2000),
            "uunmap": (5 * MS, APP_PID, m, 0x2000), "pages": (9 * MS, 4, pg, 0x1000),
            "attach": (12 * MS, 4, None, 0)}
    assert hits(a, "IRQL_VIOLATION") == ([want[call]] if fires else [])
    assert [r for r in serious(a) if r != "IRQL_VIOLATION"] == []


def test_irql_absent_never_fires(tmp_path):
    s = Scenario()
    pages(s, None)
    assert hits(analyze(s, tmp_path), "IRQL_VIOLATION") == []


def test_partial_outlives_irp_owned_source(tmp_path):
    s = Scenario()
    app = irp_story_source(s)
    part = mdl_at(13)
    s.at(8 * MS).map_kernel(app, part, sysva(8))
    a = analyze(s, tmp_path)
    assert hits(a, "PARTIAL_OUTLIVES_SOURCE") == [(8 * MS, APP_PID, part, 0x1000)]


def irp_story_source(s: Scenario) -> Thread:
    """An IRP-owned locked MDL with a partial MDL built from it; the IRP completes at 7 ms."""
    s.system()
    app = s.process(pid=APP_PID, image="app.exe", tid=APP_PID + 4)
    m, part = mdl_at(12), mdl_at(13)
    s.at(1 * MS).allocate_mdl(app, m, va=APP_BUF, size=0x4000, irp=IRP)
    s.at(2 * MS).probe_and_lock(app, m)
    s.at(3 * MS).allocate_mdl(app, part, va=APP_BUF + 0x1000, size=0x1000)
    s.at(4 * MS).call("IoBuildPartialMdl", app, mdl=part, source_mdl=m, va=APP_BUF + 0x1000,
                      size=0x1000)
    s.at(7 * MS).complete_request(app, IRP)
    return app


@pytest.mark.parametrize("engine", ["python", "jit"])
def test_many_findings_grow_the_record_table(engine):
    """More findings than the kernel's first record table holds (it grows on demand)."""
    from helpers.rows import analyze_rows

    m = mdl_at(20)
    rows = [{"time_ns": 0, "event": "ProcessRundown", "pid": 4, "image": "System"},
            {"time_ns": 1, "event": "IoAllocateMdl", "pid": 4, "mdl": m, "va": kbuf(5),
             "size": 0x1000},
            {"time_ns": 2, "event": "MmBuildMdlForNonPagedPool", "pid": 4, "mdl": m}]
    rows += [{"time_ns": 10 + k, "event": "MmUnlockPages", "pid": 4, "mdl": m} for k in range(3000)]
    a = analyze_rows(rows, engine=engine)
    assert len(hits(a, "UNLOCK_BUILT_OR_PARTIAL_MDL")) == 3000


@pytest.mark.parametrize("unlock_first", [False, True])
def test_partial_of_a_partial_lives_on_the_first_source(tmp_path, unlock_first):
    s = Scenario()
    w = worker(s)
    src, p1, p2 = mdl_at(1), mdl_at(2), mdl_at(3)
    s.at(1 * MS).allocate_mdl(w, src, va=kbuf(1), size=0x8000)
    s.at(2 * MS).probe_and_lock(w, src, mode="KernelMode")
    s.at(3 * MS).allocate_mdl(w, p1, va=kbuf(1), size=0x4000)
    s.at(4 * MS).call("IoBuildPartialMdl", w, mdl=p1, source_mdl=src, va=kbuf(1), size=0x4000)
    s.at(5 * MS).allocate_mdl(w, p2, va=kbuf(1) + 0x1000, size=0x1000)
    s.at(6 * MS).call("IoBuildPartialMdl", w, mdl=p2, source_mdl=p1, va=kbuf(1) + 0x1000,
                      size=0x1000)
    if unlock_first:
        s.at(7 * MS).unlock(w, src)
    s.at(8 * MS).map_kernel(w, p2, sysva(1))
    s.at(9 * MS).free_mdl(w, p2)
    s.at(10 * MS).free_mdl(w, p1)
    if not unlock_first:
        s.at(11 * MS).unlock(w, src)
    s.at(12 * MS).free_mdl(w, src)
    a = analyze(s, tmp_path)
    if unlock_first:
        assert hits(a, "PARTIAL_OUTLIVES_SOURCE") == [(8 * MS, 4, p2, 0x1000)]
        assert serious(a) == ["PARTIAL_OUTLIVES_SOURCE"]
    else:
        assert serious(a) == []


@pytest.mark.parametrize("source", ["pages", "nonpaged"])
def test_user_map_of_a_partial_of_kernel_memory(tmp_path, source):
    """A partial MDL describes its source's pages: mapping a partial of page-allocated
    or nonpaged-pool memory into user space exposes kernel memory like the source would."""
    s = Scenario()
    app = s.process(1234, "app.exe", tid=10)
    src, part = mdl_at(5), mdl_at(6)
    if source == "pages":  # offsets, not addresses: va 0 on the source, 0x1000 on the partial
        s.at(1 * MS).call("MmAllocatePagesForMdl", app, mdl=src, requested_size=0x4000, size=0x4000)
        base = 0
    else:
        base = kbuf(7)
        s.at(1 * MS).allocate_mdl(app, src, va=base, size=0x4000)
        s.at(1 * MS + 10 * US).call("MmBuildMdlForNonPagedPool", app, mdl=src)
    s.at(2 * MS).allocate_mdl(app, part, va=base + 0x1000, size=0x1000)
    s.at(3 * MS).call("IoBuildPartialMdl", app, mdl=part, source_mdl=src, va=base + 0x1000,
                      size=0x1000)
    s.at(4 * MS).map_user(app, part, 0x1D2C3A40000)
    s.at(5 * MS).unmap(app, part, 0x1D2C3A40000)
    s.at(6 * MS).free_mdl(app, part)
    if source == "pages":
        s.at(7 * MS).call("MmFreePagesFromMdl", app, mdl=src)
        s.at(8 * MS).call("ExFreePoolMdl", app, mdl=src)
    else:
        s.at(7 * MS).free_mdl(app, src)
    a = analyze(s, tmp_path)
    assert hits(a, "USER_MAP_KERNEL_MEMORY") == [(4 * MS, 1234, part, 0x1000)]
    assert serious(a) == ["USER_MAP_KERNEL_MEMORY"]  # and nothing else: the lifecycle is legal
