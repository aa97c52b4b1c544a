"""Build the sample scenarios: ``<name>.csv`` + ``<name>.expected.csv`` + README.md.

Run from the repository root::

    python sample_traces/build.py

Each scenario below is one story written with :class:`traceanalyzer.synth.scenario.Scenario`.
Its expected findings are written by hand beside it, reasoned from
``docs/rules.md`` and the replay semantics (bytes = pages spanned x 4096; time =
the triggering event, the ProcessEnd, or for end-of-trace leaks the originating call;
pid = the mapping's process for user-mapping findings, else the effective process).
They are NOT produced by running the analyzer: they are the independent check of it.
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from traceanalyzer.synth.scenario import NX_NORMAL_PRIORITY, Scenario, Thread, pool_tag

HERE = Path(__file__).resolve().parent

US = 1_000          # one microsecond in ns
MS = 1_000_000      # one millisecond in ns


def pages_bytes(va: int, size: int) -> int:
    """rules.md: pages spanned = ceil(((va mod 4096) + size) / 4096); bytes = pages x 4096."""
    return math.ceil(((va % 4096) + size) / 4096) * 4096


@dataclass(frozen=True)
class Expect:
    """One expected non-info finding."""

    rule: str
    time_ns: int
    pid: int | None
    mdl: int | None
    bytes: int


@dataclass
class Story:
    """A built scenario: rows, expected findings and its README entry."""

    name: str
    shows: str
    legal: str
    scenario: Scenario
    expected: list[Expect] = field(default_factory=list)


STORIES: list[Callable[[], Story]] = []


def story(fn: Callable[[], Story]) -> Callable[[], Story]:
    """Register a scenario function (in README order)."""
    STORIES.append(fn)
    return fn


# Plausible addresses ------------------------------------------------------------------
APP_BUF = 0x000001D2C3A40000      # a user buffer (heap of the requesting process)


def mdl_at(n: int) -> int:
    """The n-th MDL address of a scenario (nonpaged pool, 4 KiB apart)."""
    return 0xFFFFC30A4B2F0000 + n * 0x1000


def sysva(n: int, offset: int = 0) -> int:
    """The n-th system-PTE mapping address (plus the buffer's byte offset)."""
    return 0xFFFFA58012300000 + n * 0x10000 + offset


def kbuf(n: int) -> int:
    """The n-th kernel (paged pool) buffer."""
    return 0xFFFFB00012340000 + n * 0x10000


def npbuf(n: int) -> int:
    """The n-th nonpaged pool buffer."""
    return 0xFFFFC30A4C010000 + n * 0x10000


# ======================================================================================
# Tier 1
# ======================================================================================


@story
def seed_unlock_from_worker() -> Story:
    """The seed: kernel pages mapped into app.exe, unlocked from a System worker."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=88)
    app = s.process(pid=1234, image="app.exe", tid=5678)
    m, kva, user = mdl_at(1), kbuf(0), 0x000001D2C3A40000
    # app.exe's IOCTL: describe a kernel buffer, lock it, map it into app.exe
    s.at(1 * MS).allocate_mdl(app, m, va=kva, size=8192)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m, mode="KernelMode")
    s.at(1 * MS + 20 * US).map_user(app, m, user)
    # later a System work item tears down: unlock and free, but never unmaps
    s.at(5 * MS).unlock(worker, m)
    s.at(5 * MS + 10 * US).free_mdl(worker, m)
    s.at(9 * MS).process_end(app)
    b = pages_bytes(kva, 8192)
    return Story(
        "seed_unlock_from_worker",
        "kernel pages mapped UserMode into app.exe in its IOCTL; a System worker unlocks "
        "and frees the MDL while the mapping is live; app.exe exits without the unmap",
        "IoFreeMdl after the reported unlock gives no second FREE_PAGES_WHILE_USER_MAPPED",
        s,
        [
            Expect("USER_MAP_KERNEL_MEMORY", 1 * MS + 20 * US, 1234, m, b),
            Expect("UNLOCK_WHILE_USER_MAPPED", 5 * MS, 1234, m, b),
            Expect("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", 9 * MS, 1234, m, b),
        ],
    )


@story
def clean_ioctl_lifecycle() -> Story:
    """Two correct METHOD_NEITHER IOCTLs, the MDL address reused by the second."""
    s = Scenario()
    s.system()
    app = s.process(pid=2200, image="client.exe", tid=2204)
    m, buf, size = mdl_at(3), 0x000001D2C3A41200, 6000
    # IOCTL 1: lock, MmGetSystemAddressForMdlSafe, unlock (releases the system
    # mapping), free
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=size)
    s.after(10 * US).probe_and_lock(app, m, mode="UserMode")
    s.after(10 * US).map_kernel(app, m, sysva(1, 0x200))
    s.after(10 * US).unlock(app, m)
    s.after(10 * US).free_mdl(app, m)
    # IOCTL 2: the pool hands back the same MDL address (a new lifetime); map, unlock,
    # lock and map again, unmap explicitly, unlock, free
    s.at(2 * MS).allocate_mdl(app, m, va=buf, size=size)
    s.after(10 * US).probe_and_lock(app, m, mode="UserMode")
    s.after(10 * US).map_kernel(app, m, sysva(2, 0x200))
    s.after(10 * US).unlock(app, m)
    s.after(10 * US).probe_and_lock(app, m, mode="UserMode", operation="IoReadAccess")
    s.after(10 * US).map_kernel(app, m, sysva(3, 0x200), cache="MmNonCached")
    s.after(10 * US).unmap(app, m, sysva(3, 0x200))
    s.after(10 * US).unlock(app, m)
    s.after(10 * US).free_mdl(app, m)
    # IOCTL 3: under PTE pressure the map fails; the driver checks and bails out
    s.at(3 * MS).allocate_mdl(app, m, va=buf, size=size)
    s.after(10 * US).probe_and_lock(app, m, mode="UserMode")
    s.after(10 * US).map_kernel(app, m, 0)
    s.after(10 * US).unlock(app, m)
    s.after(10 * US).free_mdl(app, m)
    s.at(4 * MS).process_end(app)
    return Story(
        "clean_ioctl_lifecycle",
        "three correct IOCTLs on a user buffer (the MDL address reused each time): lock, "
        "kernel map (NX, no bugcheck), unlock releasing the system mapping; relock and "
        "remap with another cache type, explicit unmap; a failed map that is checked",
        "KMAP_SECOND_SYSTEM_MAPPING (remap after the unlock released the first), "
        "KUNMAP_NOT_MAPPED, MDL_USE_AFTER_FREE (address reused after IoAllocateMdl), "
        "FREE_MDL_WHILE_LOCKED, KMAP_LEAK, KMAP_EXECUTABLE, KMAP_BUGCHECK_ON_FAILURE, "
        "LOCKED_PAGES_AT_PROCESS_EXIT, DOUBLE_LOCK (relock), CACHE_TYPE_CONFLICT "
        "(mappings not live together), MAP_FAILED_UNCHECKED (checked failure)",
        s,
    )


@story
def clean_worker_attach_unmap() -> Story:
    """A System worker locks/maps/unmaps user buffers attached to the right processes."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=120)
    rec = s.process(pid=3100, image="recorder.exe", tid=3104)
    mon = s.process(pid=3200, image="monitor.exe", tid=3204, wow64=True)
    ma, ua, ua_map = mdl_at(5), 0x000001D2C3A40000, 0x000001D2C3C60000
    mb, ub, ub_map = mdl_at(6), 0x0000000031A00000, 0x0000000031C40000
    # each client's IOCTL only allocates the MDL and queues a work item
    s.at(1 * MS).allocate_mdl(rec, ma, va=ua, size=0x4000)
    s.at(1 * MS + 100 * US).allocate_mdl(mon, mb, va=ub, size=0x2000)
    # the work item attaches to each client to lock and map its buffer
    s.at(2 * MS).attach(worker, rec)
    s.after(10 * US).probe_and_lock(worker, ma, mode="UserMode")
    s.after(10 * US).map_user(worker, ma, ua_map)
    s.after(10 * US).detach(worker)
    s.at(2 * MS + 100 * US).attach(worker, mon)
    s.after(10 * US).probe_and_lock(worker, mb, mode="UserMode")
    s.after(10 * US).map_user(worker, mb, ub_map)
    s.after(10 * US).detach(worker)
    # teardown: nested attach, each mapping undone in its own process
    s.at(5 * MS).attach(worker, rec)
    s.after(10 * US).attach(worker, mon)
    s.after(10 * US).unmap(worker, mb, ub_map)
    s.after(10 * US).detach(worker)
    s.after(10 * US).unmap(worker, ma, ua_map)
    s.after(10 * US).detach(worker)
    s.after(10 * US).unlock(worker, ma)
    s.after(10 * US).free_mdl(worker, ma)
    s.after(10 * US).unlock(worker, mb)
    s.after(10 * US).free_mdl(worker, mb)
    s.at(8 * MS).process_end(rec)
    s.at(8 * MS + 100 * US).process_end(mon)
    return Story(
        "clean_worker_attach_unmap",
        "a System worker attaches (KeStackAttachProcess) to each client (one 64-bit, one "
        "WOW64 with 32-bit addresses) to lock and map its buffer, and later undoes both mappings under a nested attach, each in its "
        "own process, before unlocking",
        "LOCK_IN_WRONG_PROCESS, USER_MAP_IN_ARBITRARY_CONTEXT, USER_UNMAP_WRONG_PROCESS, "
        "UNLOCK_WHILE_USER_MAPPED, USER_MAPPING_NOT_UNMAPPED_AT_EXIT, "
        "USER_UNMAP_AFTER_OWNER_EXIT, USER_MAP_UNBALANCED, USER_MAP_KERNEL_MEMORY, "
        "FREE_PAGES_WHILE_USER_MAPPED, ATTACH_UNBALANCED, DETACH_MISMATCH, "
        "USER_MAP_OUTSIDE_USER_RANGE",
        s,
    )


@story
def clean_cswitch_only() -> Story:
    """Calls carry only cpu: the thread comes from the last CSwitch on that CPU."""
    s = Scenario()
    s.system()
    scan = s.process(pid=2468, image="scanner.exe", tid=2472)
    ed = s.process(pid=3690, image="editor.exe", tid=3700)
    ed2 = s.thread(ed, tid=3704)
    m1, u1, u1_map = mdl_at(7), 0x000001D2C3A40000, 0x000001D2C3D70000
    m2, u2 = mdl_at(8), 0x0000016F22B10000
    m3, u3 = mdl_at(9), 0x0000016F22B30000
    s.at(900 * US).cswitch(1, new=scan)
    s.at(950 * US).cswitch(0, new=ed)
    # scanner.exe on cpu 1: lock its buffer and map it into itself
    s.at(1 * MS).call("IoAllocateMdl", cpu=1, mdl=m1, va=u1, size=0x3000)
    s.after(10 * US).probe_and_lock(None, m1, cpu=1)
    s.after(10 * US).map_user(None, m1, u1_map, cpu=1)
    # editor.exe on cpu 0: a kernel-mapped request
    s.after(10 * US).call("IoAllocateMdl", cpu=0, mdl=m2, va=u2, size=0x1000)
    s.after(10 * US).probe_and_lock(None, m2, cpu=0)
    s.after(10 * US).map_kernel(None, m2, sysva(4), cpu=0)
    s.after(10 * US).unlock(None, m2, cpu=0)
    s.after(10 * US).free_mdl(None, m2, cpu=0)
    # editor's second thread takes cpu 1, scanner migrates to cpu 0
    s.at(2 * MS).cswitch(1, new=ed2, old=scan)
    s.at(2 * MS + 10 * US).cswitch(0, new=scan, old=ed)
    s.after(10 * US).unmap(None, m1, u1_map, cpu=0)
    s.after(10 * US).unlock(None, m1, cpu=0)
    s.after(10 * US).free_mdl(None, m1, cpu=0)
    s.after(10 * US).call("IoAllocateMdl", cpu=1, mdl=m3, va=u3, size=0x2000)
    s.after(10 * US).probe_and_lock(None, m3, cpu=1, operation="IoReadAccess")
    s.after(10 * US).unlock(None, m3, cpu=1)
    s.after(10 * US).free_mdl(None, m3, cpu=1)
    s.at(3 * MS).process_end(scan)
    s.at(3 * MS + 100 * US).process_end(ed)
    return Story(
        "clean_cswitch_only",
        "every call row has only `cpu` (no pid/tid): two processes, a thread migrating "
        "between CPUs; a user mapping made on cpu 1 is undone on cpu 0 by the same "
        "thread",
        "USER_MAP_IN_ARBITRARY_CONTEXT, USER_UNMAP_WRONG_PROCESS, LOCK_IN_WRONG_PROCESS "
        "(all need the CSwitch attribution to be right)",
        s,
    )


@story
def clean_trace_starts_mid_request() -> Story:
    """MDLs allocated and locked before the trace began (unknown origin)."""
    s = Scenario()
    s.system()
    app = s.running_process(pid=5520, image="backup.exe", tid=5524)
    mx, my = mdl_at(10), mdl_at(11)
    s.at(1 * MS).map_kernel(app, mx, sysva(5))
    s.after(10 * US).unlock(app, mx)
    s.after(10 * US).free_mdl(app, mx)
    s.at(2 * MS).unlock(app, my)
    s.after(10 * US).free_mdl(app, my)
    s.at(4 * MS).process_end(app)
    return Story(
        "clean_trace_starts_mid_request",
        "the trace starts while backup.exe's requests hold MDLs locked before the trace "
        "began: the driver maps, unlocks and frees them; backup.exe exits",
        "KMAP_UNLOCKED_MDL and UNLOCK_NOT_LOCKED (lock state unknown), MDL_STRUCT_LEAK",
        s,
    )


@story
def clean_trace_starts_mid_mapping() -> Story:
    """MDLs mapped before the trace began: their unmaps are the first calls seen."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=460)
    app = s.running_process(pid=6400, image="viewer.exe", tid=6404)
    frames, stats, umap = mdl_at(80), mdl_at(81), 0x000001D2C7800000
    # viewer.exe's IRP_MJ_CLEANUP: its frame buffer was locked and mapped into it and
    # into system space before the trace; both mappings are undone once, in its context
    s.at(1 * MS).unmap(app, frames, umap)
    s.after(10 * US).unmap(app, frames, sysva(50, 0x200))
    s.after(10 * US).unlock(app, frames)
    s.after(10 * US).free_mdl(app, frames)
    # a System work item undoes a system mapping made before the trace
    s.at(2 * MS).unmap(worker, stats, sysva(51))
    s.after(10 * US).unlock(worker, stats)
    s.after(10 * US).free_mdl(worker, stats)
    s.at(4 * MS).process_end(app)
    return Story(
        "clean_trace_starts_mid_mapping",
        "the trace starts while MDLs are locked and mapped (viewer.exe's frame buffer into "
        "viewer.exe and into system space, another into system space): the first call "
        "seen on each is its unmap; the driver unmaps each mapping once, unlocks and "
        "frees them; viewer.exe exits",
        "KUNMAP_NOT_MAPPED and USER_MAP_UNBALANCED (mapping state unknown, as the lock "
        "state is), UNLOCK_NOT_LOCKED, USER_MAPPING_NOT_UNMAPPED_AT_EXIT, MDL_STRUCT_LEAK",
        s,
    )


@story
def clean_trace_starts_mid_attach() -> Story:
    """System workers attached (KeStackAttachProcess) before the trace began."""
    s = Scenario()
    s.system()
    w1, w2 = s.system_thread(tid=470), s.system_thread(tid=474)
    app = s.running_process(pid=6600, image="sync.exe", tid=6604)
    s.running_process(pid=6700, image="indexer.exe", tid=6704)
    m1, m2 = mdl_at(82), mdl_at(83)
    u1, u2 = 0x000001D2C7A00000, 0x000001D2C7B00000
    # sync.exe's IOCTL allocates an MDL for its buffer and hands it to a work item that
    # attached to sync.exe before the trace began: it locks and maps the buffer there
    s.at(500 * US).allocate_mdl(app, m1, va=APP_BUF, size=0x2000)
    s.at(1 * MS).probe_and_lock(w1, m1, mode="UserMode")
    s.after(10 * US).map_user(w1, m1, u1)
    s.after(10 * US).detach(w1)
    # another work item attached to sync.exe and, nested, to indexer.exe before the trace:
    # it leaves indexer.exe, serves sync.exe's second buffer there, and leaves sync.exe
    s.at(1 * MS + 900 * US).allocate_mdl(app, m2, va=APP_BUF + 0x10000, size=0x1000)
    s.at(2 * MS).detach(w2)
    s.after(10 * US).probe_and_lock(w2, m2, mode="UserMode")
    s.after(10 * US).map_user(w2, m2, u2)
    s.after(10 * US).detach(w2)
    # sync.exe's IRP_MJ_CLEANUP undoes both in its own context
    s.at(3 * MS).unmap(app, m1, u1)
    s.after(10 * US).unlock(app, m1)
    s.after(10 * US).free_mdl(app, m1)
    s.after(10 * US).unmap(app, m2, u2)
    s.after(10 * US).unlock(app, m2)
    s.after(10 * US).free_mdl(app, m2)
    s.at(5 * MS).process_end(app)
    return Story(
        "clean_trace_starts_mid_attach",
        "the trace starts while two System work items are attached to sync.exe (one of "
        "them, nested, also to indexer.exe): each detach of an attach made before the "
        "trace comes with no attach in it; before it, the workers lock and map "
        "sync.exe's buffers (allocated in its IOCTLs) into sync.exe, which unmaps, "
        "unlocks and frees them in its own context",
        "DETACH_MISMATCH (threads alive at the trace start, which may have been attached "
        "then); USER_MAP_IN_ARBITRARY_CONTEXT, LOCK_IN_WRONG_PROCESS, "
        "USER_UNMAP_WRONG_PROCESS, UNLOCK_WHILE_USER_MAPPED (the calls before the last "
        "such detach ran in the attached process, which the trace does not name)",
        s,
    )


@story
def clean_effective_pid_logged() -> Story:
    """The instrumentation logs effective_pid: it wins over the row's own pid."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=440)
    vpn = s.process(pid=22100, image="vpn.exe", tid=22104)
    m, buf, umap = mdl_at(36), APP_BUF, 0x000001D2C7500000
    s.at(1 * MS).allocate_mdl(vpn, m, va=buf, size=0x2000, effective_pid=22100)
    s.after(10 * US).probe_and_lock(vpn, m, effective_pid=22100)
    s.after(10 * US).map_user(vpn, m, umap, effective_pid=22100)
    # the worker attaches through a helper library that is not instrumented: its
    # attach is not in the trace, but the unmap row says whose address space it used
    s.at(3 * MS).unmap(worker, m, umap, effective_pid=22100)
    s.after(10 * US).unlock(worker, m, effective_pid=4)
    s.after(10 * US).free_mdl(worker, m, effective_pid=4)
    s.at(5 * MS).process_end(vpn)
    return Story(
        "clean_effective_pid_logged",
        "the driver logs effective_pid; a System worker (pid 4 on the row) unmaps "
        "vpn.exe's mapping while attached by uninstrumented code: effective_pid=22100 "
        "says it ran in vpn.exe's address space",
        "USER_UNMAP_WRONG_PROCESS (effective_pid wins over the row's pid), "
        "UNLOCK_WHILE_USER_MAPPED",
        s,
    )


@story
def dpc_maps_into_idle_or_unknown() -> Story:
    """DPCs (cpu-only rows) map a client's buffers UserMode: into Idle, and unknown."""
    s = Scenario()
    s.system()
    idle = s.idle_thread()
    daq = s.process(pid=21100, image="daq.exe", tid=21104)
    m1, m2 = mdl_at(37), mdl_at(38)
    u1, u2 = 0x000001D2C7600000, 0x000001D2C7700000
    s.at(500 * US).cswitch(2, new=daq)
    s.at(600 * US).allocate_mdl(daq.on(2), m1, va=APP_BUF, size=0x2000)
    s.after(10 * US).probe_and_lock(daq.on(2), m1)
    s.after(10 * US).allocate_mdl(daq.on(2), m2, va=APP_BUF + 0x10000, size=0x1000)
    s.after(10 * US).probe_and_lock(daq.on(2), m2)
    s.at(900 * US).cswitch(2, new=idle, old=daq)   # daq.exe waits; cpu 2 goes idle
    # the completion DPC runs on idle cpu 2; another on cpu 3, of which the trace has
    # no context switch at all
    s.at(1 * MS).map_user(None, m1, u1, cpu=2)
    s.at(1 * MS + 100 * US).map_user(None, m2, u2, cpu=3)
    s.at(2 * MS).unmap(None, m1, u1, cpu=2)
    s.at(2 * MS + 10 * US).unlock(daq, m1)
    s.at(2 * MS + 20 * US).free_mdl(daq, m1)
    return Story(
        "dpc_maps_into_idle_or_unknown",
        "daq.exe locks two buffers; completion DPCs map them UserMode: one on a CPU "
        "running the idle thread (the mapping lands in Idle, pid 0), one on a CPU with no "
        "context switch in the trace (process unknown); the trace ends with the second "
        "still mapped, locked and allocated",
        "the unmap in the same (idle) context; LOCKED_MDL_NEVER_UNLOCKED for a user-va "
        "lock whose process is alive",
        s,
        [
            Expect("USER_MAP_IN_ARBITRARY_CONTEXT", 1 * MS, 0, m1, 0x2000),
            Expect("USER_MAP_IN_ARBITRARY_CONTEXT", 1 * MS + 100 * US, None, m2, 0x1000),
            Expect("MDL_STRUCT_LEAK", 620 * US, 21100, m2, 0x1000),
        ],
    )


@story
def nested_attach_unmap_wrong_process() -> Story:
    """A worker under a nested attach unmaps game.exe's mapping in overlay.exe."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=140)
    game = s.process(pid=4410, image="game.exe", tid=4414)
    ovl = s.process(pid=4520, image="overlay.exe", tid=4524)
    mg, ug, ug_map = mdl_at(12), 0x000001D2C3A40000, 0x000001D2C3E80000
    mo, uo, uo_map = mdl_at(13), 0x0000023A5C300000, 0x0000023A5C520000
    s.at(1 * MS).allocate_mdl(game, mg, va=ug, size=0x8000)
    s.after(10 * US).probe_and_lock(game, mg)
    s.after(10 * US).map_user(game, mg, ug_map)
    s.at(1 * MS + 100 * US).allocate_mdl(ovl, mo, va=uo, size=0x2000)
    s.after(10 * US).probe_and_lock(ovl, mo)
    s.after(10 * US).map_user(ovl, mo, uo_map)
    # teardown work item: attach game, nested attach overlay, unmap both while still
    # attached to overlay
    s.at(4 * MS).attach(worker, game)
    s.at(4 * MS + 10 * US).attach(worker, ovl)
    s.at(4 * MS + 20 * US).unmap(worker, mo, uo_map)
    s.at(4 * MS + 30 * US).unmap(worker, mg, ug_map)
    s.at(4 * MS + 40 * US).detach(worker)
    s.at(4 * MS + 50 * US).detach(worker)
    s.at(4 * MS + 100 * US).unlock(worker, mo)
    s.at(4 * MS + 110 * US).free_mdl(worker, mo)
    s.at(4 * MS + 200 * US).unlock(worker, mg)
    s.at(4 * MS + 210 * US).free_mdl(worker, mg)
    s.at(7 * MS).process_end(game)
    s.at(7 * MS + 100 * US).process_end(ovl)
    b = pages_bytes(ug, 0x8000)
    return Story(
        "nested_attach_unmap_wrong_process",
        "a teardown work item attaches to game.exe, then (nested) to overlay.exe, and "
        "unmaps game.exe's mapping while still in overlay.exe; the mapping stays live, "
        "is unlocked under it, and leaks at game.exe's exit",
        "overlay.exe's own unmap under the nested attach is legal",
        s,
        [
            Expect("USER_UNMAP_WRONG_PROCESS", 4 * MS + 30 * US, 4410, mg, b),
            Expect("UNLOCK_WHILE_USER_MAPPED", 4 * MS + 200 * US, 4410, mg, b),
            Expect("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", 7 * MS, 4410, mg, b),
        ],
    )


@story
def pid_reuse_unmap_after_exit() -> Story:
    """viewer.exe exits with a mapping; a new viewer.exe gets the same pid; late unmap."""
    s = Scenario()
    s.system()
    svc = s.process(pid=5100, image="camsvc.exe", tid=5104)
    viewer1 = s.process(pid=6000, image="viewer.exe", tid=6004)
    m, frame, vmap = mdl_at(14), 0x0000019B7D400000, 0x000001F0A2C00000
    s.at(1 * MS).allocate_mdl(svc, m, va=frame, size=0x20000)
    s.at(1 * MS + 10 * US).probe_and_lock(svc, m, operation="IoReadAccess")
    s.at(1 * MS + 500 * US).map_user(viewer1, m, vmap)
    s.at(3 * MS).process_end(viewer1)
    s.at(3 * MS + 500 * US)
    viewer2 = s.process(pid=6000, image="viewer.exe", tid=6012)
    s.at(4 * MS).unmap(viewer2, m, vmap)
    s.at(4 * MS + 500 * US).unlock(svc, m)
    s.at(4 * MS + 510 * US).free_mdl(svc, m)
    s.at(6 * MS).process_end(viewer2)
    s.at(6 * MS + 500 * US).process_end(svc)
    b = pages_bytes(frame, 0x20000)
    return Story(
        "pid_reuse_unmap_after_exit",
        "camsvc.exe's frame buffer is mapped into viewer.exe (pid 6000), which exits "
        "without the unmap; a new viewer.exe gets pid 6000 and the driver unmaps the old "
        "address there (pid reuse)",
        "USER_UNMAP_WRONG_PROCESS / USER_MAP_UNBALANCED (the torn-down mapping gives "
        "AFTER_OWNER_EXIT only); UNLOCK_WHILE_USER_MAPPED (the exit tore the mapping down)",
        s,
        [
            Expect("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", 3 * MS, 6000, m, b),
            Expect("USER_UNMAP_AFTER_OWNER_EXIT", 4 * MS, 6000, m, b),
        ],
    )


@story
def freed_while_locked_process_exit() -> Story:
    """IoFreeMdl of a locked user buffer; the owning process exits with it locked."""
    s = Scenario()
    s.system()
    app = s.process(pid=7100, image="uploader.exe", tid=7104)
    other = s.process(pid=7200, image="crashpad.exe", tid=7204)
    m, buf = mdl_at(15), 0x000001D2C3A40800
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=0x1800)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m, operation="IoReadAccess")
    s.at(1 * MS + 20 * US).free_mdl(app, m)
    s.at(2 * MS).process_end(other)
    s.at(5 * MS).process_end(app)
    b = pages_bytes(buf, 0x1800)  # 0x800 + 0x1800 = 2 pages
    return Story(
        "freed_while_locked_process_exit",
        "uploader.exe's buffer is locked and the MDL freed without MmUnlockPages; an "
        "unrelated process exits meanwhile; uploader.exe then exits with the pages locked",
        "the unrelated process's exit reports nothing; LOCKED_MDL_NEVER_UNLOCKED is not "
        "repeated for a user-va lock already reported at its process exit",
        s,
        [
            Expect("FREE_MDL_WHILE_LOCKED", 1 * MS + 20 * US, 7100, m, b),
            Expect("LOCKED_PAGES_AT_PROCESS_EXIT", 5 * MS, 7100, m, b),
        ],
    )


@story
def clean_cleanup_after_process_end() -> Story:
    """A killed process's buffer released in IRP_MJ_CLEANUP, after its ProcessEnd event."""
    s = Scenario()
    s.system()
    app = s.process(pid=7300, image="recorder.exe", tid=7304)
    m, buf, umap = mdl_at(18), 0x000001D2C3A60000, 0x000001D2C7900000
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=0x2000)
    s.after(10 * US).probe_and_lock(app, m)
    s.after(10 * US).map_user(app, m, umap)
    # recorder.exe is killed: Windows logs its end as it starts to exit, then runs down
    # its handles on its exiting thread; the driver's IRP_MJ_CLEANUP undoes everything
    # there, in recorder.exe's context, before the address space is deleted
    s.at(5 * MS).event("ProcessEnd", pid=app.pid, image=app.process.image)
    s.after(10 * US).unmap(app, m, umap)
    s.after(10 * US).unlock(app, m)
    s.after(10 * US).free_mdl(app, m)
    s.after(10 * US).thread_end(app)
    return Story(
        "clean_cleanup_after_process_end",
        "recorder.exe is killed while its buffer is locked and mapped into it: its "
        "ProcessEnd event comes first, then the driver's IRP_MJ_CLEANUP on its exiting "
        "thread unmaps, unlocks and frees",
        "LOCKED_PAGES_AT_PROCESS_EXIT, USER_MAPPING_NOT_UNMAPPED_AT_EXIT and "
        "USER_UNMAP_AFTER_OWNER_EXIT (the cleanup runs in the exiting process, before its "
        "address space is deleted)",
        s,
    )


@story
def double_lock_and_double_unlock() -> Story:
    """Lock twice, unlock twice; unlock of a never-probed MDL; legal relock."""
    s = Scenario()
    s.system()
    app = s.process(pid=8100, image="db.exe", tid=8104)
    m1, b1 = mdl_at(16), 0x000001D2C3A40000
    m2, b2 = mdl_at(17), 0x000001D2C3A50000
    s.at(1 * MS).allocate_mdl(app, m1, va=b1, size=0x5000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m1)
    s.at(1 * MS + 20 * US).probe_and_lock(app, m1)
    s.at(1 * MS + 30 * US).unlock(app, m1)
    s.at(1 * MS + 40 * US).unlock(app, m1)
    s.at(1 * MS + 50 * US).free_mdl(app, m1)
    s.at(2 * MS).allocate_mdl(app, m2, va=b2, size=0x1000)
    s.at(2 * MS + 10 * US).unlock(app, m2)
    s.at(2 * MS + 20 * US).probe_and_lock(app, m2)
    s.at(2 * MS + 30 * US).unlock(app, m2)
    s.at(2 * MS + 40 * US).probe_and_lock(app, m2)
    s.at(2 * MS + 50 * US).unlock(app, m2)
    s.at(2 * MS + 60 * US).free_mdl(app, m2)
    s.at(3 * MS).process_end(app)
    return Story(
        "double_lock_and_double_unlock",
        "db.exe's driver locks an MDL twice and unlocks it twice, and unlocks a second "
        "MDL before ever probing it; that MDL is then locked and relocked correctly",
        "DOUBLE_LOCK / UNLOCK_NOT_LOCKED on a lock-unlock-lock-unlock sequence",
        s,
        [
            Expect("DOUBLE_LOCK", 1 * MS + 20 * US, 8100, m1, 0x5000),
            Expect("UNLOCK_NOT_LOCKED", 1 * MS + 40 * US, 8100, m1, 0x5000),
            Expect("UNLOCK_NOT_LOCKED", 2 * MS + 10 * US, 8100, m2, 0x1000),
        ],
    )


@story
def cache_type_conflict() -> Story:
    """A capture buffer mapped cached for the user and write-combined for the kernel."""
    s = Scenario()
    s.system()
    app = s.process(pid=9100, image="capture.exe", tid=9104)
    m, buf, umap = mdl_at(18), APP_BUF, 0x000001D2C3F00000
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=0x10000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m)
    s.at(1 * MS + 20 * US).map_kernel(app, m, sysva(6), cache="MmNonCached")
    s.at(1 * MS + 30 * US).unmap(app, m, sysva(6))
    s.at(1 * MS + 40 * US).map_user(app, m, umap, cache="MmCached")
    s.at(1 * MS + 50 * US).map_kernel(app, m, sysva(7), cache="MmWriteCombined")
    s.at(2 * MS).unmap(app, m, umap)
    s.at(2 * MS + 10 * US).unlock(app, m)  # releases the system mapping
    s.at(2 * MS + 20 * US).free_mdl(app, m)
    s.at(3 * MS).process_end(app)
    return Story(
        "cache_type_conflict",
        "capture.exe's buffer: a non-cached kernel view is unmapped before a cached user "
        "view is made (fine), then a write-combined kernel view is made while the cached "
        "user view is live",
        "CACHE_TYPE_CONFLICT for mappings with different cache types that are not live "
        "at the same time",
        s,
        [Expect("CACHE_TYPE_CONFLICT", 1 * MS + 50 * US, 9100, m, 0x10000)],
    )


@story
def worker_maps_into_system() -> Story:
    """A System work item maps a client's buffer UserMode without attaching."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=160)
    app = s.process(pid=10100, image="telemetry.exe", tid=10104)
    m, buf, umap = mdl_at(19), APP_BUF, 0x000001D2C4100000
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=0x2000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m)
    s.at(2 * MS).map_user(worker, m, umap)
    s.at(3 * MS).unmap(worker, m, umap)
    s.at(3 * MS + 10 * US).unlock(worker, m)
    s.at(3 * MS + 20 * US).free_mdl(worker, m)
    s.at(5 * MS).process_end(app)
    return Story(
        "worker_maps_into_system",
        "telemetry.exe's buffer is locked in its IOCTL, then a System work item maps it "
        "UserMode without attaching: the mapping lands in System (pid 4); the same worker "
        "unmaps it there",
        "USER_UNMAP_WRONG_PROCESS (the unmap is in the process the mapping went to)",
        s,
        [Expect("USER_MAP_IN_ARBITRARY_CONTEXT", 2 * MS, 4, m, 0x2000)],
    )


@story
def wow64_client_high_address() -> Story:
    """A ring buffer mapped into three clients; the second WOW64 one gets a 64-bit address."""
    s = Scenario()
    s.system()
    svc = s.process(pid=11100, image="ringsvc.exe", tid=11104)
    c64 = s.process(pid=11200, image="client64.exe", tid=11204)
    c32 = s.process(pid=11300, image="client32.exe", tid=11304, wow64=True)
    legacy = s.process(pid=11400, image="legacy32.exe", tid=11404, wow64=True)
    m, ring = mdl_at(20), APP_BUF
    v64, v32, vbad = 0x00007FF6A1200000, 0x0000000012340000, 0x000001D2C5000000
    s.at(1 * MS).allocate_mdl(svc, m, va=ring, size=0x4000)
    s.at(1 * MS + 10 * US).probe_and_lock(svc, m)
    s.at(2 * MS).map_user(c64, m, v64)
    s.at(2 * MS + 100 * US).map_user(c32, m, v32)
    s.at(2 * MS + 200 * US).map_user(legacy, m, vbad)
    s.at(4 * MS).unmap(c64, m, v64)
    s.at(4 * MS + 100 * US).unmap(c32, m, v32)
    s.at(4 * MS + 200 * US).unmap(legacy, m, vbad)
    s.at(4 * MS + 500 * US).unlock(svc, m)
    s.at(4 * MS + 510 * US).free_mdl(svc, m)
    for i, p in enumerate((c64, c32, legacy, svc)):
        s.at(6 * MS + i * 100 * US).process_end(p)
    return Story(
        "wow64_client_high_address",
        "ringsvc.exe's ring buffer is mapped into a 64-bit client, a WOW64 client (below "
        "4 GiB) and a second WOW64 client that gets an address above 4 GiB",
        "USER_MAP_OUTSIDE_USER_RANGE for a 64-bit address below 0x7FFFFFFF0000 and a "
        "WOW64 address below 0xFFFFFFFF",
        s,
        [Expect("USER_MAP_OUTSIDE_USER_RANGE", 2 * MS + 200 * US, 11400, m, 0x4000)],
    )


@story
def kernel_map_misuse() -> Story:
    """A legacy driver's kernel mappings: unlocked, doubled, crash-on-failure, executable."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=180)
    m1, m2, m3, m4, m5 = (mdl_at(i) for i in range(21, 26))
    s.at(1 * MS).allocate_mdl(w, m1, va=kbuf(1), size=0x1000)
    s.at(1 * MS + 10 * US).map_kernel(w, m1, sysva(8))
    s.at(1 * MS + 20 * US).free_mdl(w, m1)
    s.at(2 * MS).allocate_mdl(w, m2, va=kbuf(2), size=0x2000)
    s.at(2 * MS + 10 * US).probe_and_lock(w, m2, mode="KernelMode")
    s.at(2 * MS + 20 * US).map_kernel(w, m2, sysva(9))
    s.at(2 * MS + 30 * US).map_kernel(w, m2, sysva(10))
    s.at(2 * MS + 40 * US).unlock(w, m2)
    s.at(2 * MS + 50 * US).free_mdl(w, m2)
    s.at(3 * MS).allocate_mdl(w, m3, va=kbuf(3), size=0x3000)
    s.at(3 * MS + 10 * US).probe_and_lock(w, m3, mode="KernelMode")
    s.at(3 * MS + 20 * US).call("MmMapLockedPages", w, mdl=m3, access_mode="KernelMode",
                                mapped_va=sysva(11))
    s.at(3 * MS + 30 * US).unlock(w, m3)
    s.at(3 * MS + 40 * US).free_mdl(w, m3)
    s.at(4 * MS).allocate_mdl(w, m4, va=kbuf(4), size=0x1000)
    s.at(4 * MS + 10 * US).probe_and_lock(w, m4, mode="KernelMode")
    s.at(4 * MS + 20 * US).map_kernel(w, m4, sysva(12), priority=16)
    s.at(4 * MS + 30 * US).unlock(w, m4)
    s.at(4 * MS + 40 * US).free_mdl(w, m4)
    s.at(5 * MS).allocate_mdl(w, m5, va=kbuf(5), size=0x1000)
    s.at(5 * MS + 10 * US).probe_and_lock(w, m5, mode="KernelMode")
    s.at(5 * MS + 20 * US).map_kernel(w, m5, sysva(13), bugcheck_on_failure=1)
    s.at(5 * MS + 30 * US).unlock(w, m5)
    s.at(5 * MS + 40 * US).free_mdl(w, m5)
    return Story(
        "kernel_map_misuse",
        "a legacy driver's System thread: maps an MDL it never locked, maps a locked MDL "
        "twice, uses MmMapLockedPages, maps without MdlMappingNoExecute, and maps with "
        "BugCheckOnFailure=TRUE",
        "each MDL is otherwise unlocked and freed correctly (no KMAP_LEAK: MmUnlockPages "
        "releases the mapping)",
        s,
        [
            Expect("KMAP_UNLOCKED_MDL", 1 * MS + 10 * US, 4, m1, 0x1000),
            Expect("KMAP_SECOND_SYSTEM_MAPPING", 2 * MS + 30 * US, 4, m2, 0x2000),
            Expect("KMAP_BUGCHECK_ON_FAILURE", 3 * MS + 20 * US, 4, m3, 0x3000),
            Expect("KMAP_EXECUTABLE", 4 * MS + 20 * US, 4, m4, 0x1000),
            Expect("KMAP_BUGCHECK_ON_FAILURE", 5 * MS + 20 * US, 4, m5, 0x1000),
        ],
    )


@story
def kernel_unmap_errors() -> Story:
    """Kernel unmaps after MmUnlockPages released the mapping, and with the wrong MDL."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=200)
    m1, m2, m3 = mdl_at(26), mdl_at(27), mdl_at(28)
    s.at(1 * MS).allocate_mdl(w, m1, va=kbuf(6), size=0x2000)
    s.at(1 * MS + 10 * US).probe_and_lock(w, m1, mode="KernelMode")
    s.at(1 * MS + 20 * US).map_kernel(w, m1, sysva(14))
    s.at(1 * MS + 30 * US).unlock(w, m1)
    s.at(1 * MS + 40 * US).unmap(w, m1, sysva(14))
    s.at(1 * MS + 50 * US).free_mdl(w, m1)
    s.at(2 * MS).allocate_mdl(w, m2, va=kbuf(7), size=0x1000)
    s.at(2 * MS + 10 * US).allocate_mdl(w, m3, va=kbuf(8), size=0x1000)
    s.at(2 * MS + 20 * US).probe_and_lock(w, m2, mode="KernelMode")
    s.at(2 * MS + 30 * US).probe_and_lock(w, m3, mode="KernelMode")
    s.at(2 * MS + 40 * US).map_kernel(w, m2, sysva(15))
    s.at(2 * MS + 50 * US).map_kernel(w, m3, sysva(16))
    s.at(2 * MS + 60 * US).unmap(w, m2, sysva(16))
    s.at(2 * MS + 70 * US).unmap(w, m2, sysva(15))
    s.at(2 * MS + 80 * US).unmap(w, m3, sysva(16))
    s.at(2 * MS + 90 * US).unlock(w, m2)
    s.at(2 * MS + 100 * US).unlock(w, m3)
    s.at(2 * MS + 110 * US).free_mdl(w, m2)
    s.at(2 * MS + 120 * US).free_mdl(w, m3)
    return Story(
        "kernel_unmap_errors",
        "a driver unmaps a system address after MmUnlockPages already released it, and "
        "unmaps one MDL's mapping naming another MDL",
        "the correct unmaps of both mappings that follow",
        s,
        [
            Expect("KUNMAP_NOT_MAPPED", 1 * MS + 40 * US, 4, m1, 0x2000),
            Expect("KUNMAP_WRONG_VA_OR_MDL", 2 * MS + 60 * US, 4, m2, 0x1000),
        ],
    )


@story
def user_unmap_twice() -> Story:
    """Cleanup unmaps a user mapping twice, then an address that was never returned."""
    s = Scenario()
    s.system()
    app = s.process(pid=12100, image="render.exe", tid=12104)
    m, buf, umap = mdl_at(29), APP_BUF, 0x000001D2C6200000
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=0x3000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m)
    s.at(1 * MS + 20 * US).map_user(app, m, umap)
    s.at(2 * MS).unmap(app, m, umap)
    s.at(2 * MS + 10 * US).unmap(app, m, umap)
    s.at(2 * MS + 20 * US).unmap(app, m, 0x000001D2C6300000)
    s.at(2 * MS + 30 * US).unlock(app, m)
    s.at(2 * MS + 40 * US).free_mdl(app, m)
    s.at(4 * MS).process_end(app)
    return Story(
        "user_unmap_twice",
        "render.exe's IRP_MJ_CLEANUP unmaps its user mapping (fine), then again, then an "
        "address no map of this MDL returned",
        "the first unmap, in the right process",
        s,
        [
            Expect("USER_MAP_UNBALANCED", 2 * MS + 10 * US, 12100, m, 0x3000),
            Expect("USER_MAP_UNBALANCED", 2 * MS + 20 * US, 12100, m, 0x3000),
        ],
    )


@story
def map_failure_paths() -> Story:
    """Kernel maps that fail under PTE pressure: one checked, one not."""
    s = Scenario()
    s.system()
    app = s.process(pid=13100, image="archiver.exe", tid=13104)
    m1, m2 = mdl_at(30), mdl_at(31)
    low_nx = NX_NORMAL_PRIORITY & ~0xFF  # LowPagePriority | MdlMappingNoExecute
    s.at(1 * MS).allocate_mdl(app, m1, va=APP_BUF, size=0x40000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m1, operation="IoReadAccess")
    s.at(1 * MS + 20 * US).map_kernel(app, m1, 0, priority=low_nx)
    s.at(1 * MS + 30 * US).unlock(app, m1)
    s.at(1 * MS + 40 * US).free_mdl(app, m1)
    s.at(2 * MS).allocate_mdl(app, m2, va=APP_BUF + 0x40000, size=0x40000)
    s.at(2 * MS + 10 * US).probe_and_lock(app, m2, operation="IoReadAccess")
    s.at(2 * MS + 20 * US).map_kernel(app, m2, 0, priority=low_nx)
    s.at(2 * MS + 30 * US).unmap(app, m2, 0)
    s.at(2 * MS + 40 * US).unlock(app, m2)
    s.at(2 * MS + 50 * US).free_mdl(app, m2)
    s.at(4 * MS).process_end(app)
    return Story(
        "map_failure_paths",
        "two 256 KiB requests whose MmGetSystemAddressForMdlSafe(LowPagePriority) returns "
        "NULL: the first path checks and bails out, the second unmaps the NULL mapping",
        "MAP_FAILED_UNCHECKED when the failed map is checked (no later use)",
        s,
        [Expect("MAP_FAILED_UNCHECKED", 2 * MS + 30 * US, 13100, m2, 0x40000)],
    )


@story
def free_before_unlock() -> Story:
    """Error path frees a locked kernel MDL, then unlocks it; another MDL leaks."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=220)
    m1, m2 = mdl_at(32), mdl_at(33)
    s.at(1 * MS).allocate_mdl(w, m1, va=kbuf(9), size=0x3000)
    s.at(1 * MS + 10 * US).probe_and_lock(w, m1, mode="KernelMode", operation="IoReadAccess")
    s.at(1 * MS + 20 * US).free_mdl(w, m1)
    s.at(1 * MS + 30 * US).unlock(w, m1)
    # the pool hands the address out again: a new, correct lifetime
    s.at(2 * MS).allocate_mdl(w, m1, va=kbuf(10), size=0x1000)
    s.at(2 * MS + 10 * US).probe_and_lock(w, m1, mode="KernelMode")
    s.at(2 * MS + 20 * US).unlock(w, m1)
    s.at(2 * MS + 30 * US).free_mdl(w, m1)
    s.at(3 * MS).allocate_mdl(w, m2, va=kbuf(11), size=0x2000)
    return Story(
        "free_before_unlock",
        "an error path calls IoFreeMdl before MmUnlockPages on a locked kernel buffer "
        "(the pages stay locked for good), the MDL address is then reused correctly, and "
        "a third MDL is never freed",
        "MDL_USE_AFTER_FREE after the address came back from IoAllocateMdl",
        s,
        [
            Expect("FREE_MDL_WHILE_LOCKED", 1 * MS + 20 * US, 4, m1, 0x3000),
            Expect("MDL_USE_AFTER_FREE", 1 * MS + 30 * US, 4, m1, 0x3000),
            Expect("MDL_STRUCT_LEAK", 3 * MS, 4, m2, 0x2000),
            Expect("LOCKED_MDL_NEVER_UNLOCKED", 1 * MS + 10 * US, 4, m1, 0x3000),
        ],
    )


@story
def lock_from_worker_wrong_process() -> Story:
    """METHOD_NEITHER buffer probed from a System work item without attaching."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=240)
    app = s.process(pid=14100, image="indexer.exe", tid=14104)
    m = mdl_at(34)
    s.at(1 * MS).allocate_mdl(app, m, va=APP_BUF, size=0x6000)
    s.at(1 * MS + 500 * US).probe_and_lock(w, m, mode="UserMode")
    s.at(1 * MS + 510 * US).map_kernel(w, m, sysva(17))
    s.at(2 * MS).unlock(w, m)
    s.at(2 * MS + 10 * US).free_mdl(w, m)
    s.at(4 * MS).process_end(app)
    return Story(
        "lock_from_worker_wrong_process",
        "indexer.exe's IOCTL allocates an MDL for its METHOD_NEITHER buffer; a System "
        "work item probes and locks it without attaching (so it locks whatever that "
        "address is in System)",
        "the unlock/free from the worker (no context needed)",
        s,
        [Expect("LOCK_IN_WRONG_PROCESS", 1 * MS + 500 * US, 4, m, 0x6000)],
    )


@story
def attach_imbalance() -> Story:
    """System threads that end attached, detach without attach, or attach at trace end."""
    s = Scenario()
    system = s.system()
    w1, w3 = s.system_thread(tid=260), s.system_thread(tid=268)
    app = s.process(pid=15100, image="agent.exe", tid=15104)
    s.at(1 * MS).attach(w1, app)
    s.at(1 * MS + 500 * US).thread_end(w1)
    # a thread that starts in the trace is not attached: its detach is provably unmatched
    w2 = s.at(1 * MS + 800 * US).thread(system, tid=264)
    s.at(2 * MS).detach(w2)
    s.at(3 * MS).attach(w3, app)
    s.at(3 * MS + 10 * US).detach(w3)
    s.at(3 * MS + 200 * US).attach(w3, app)
    return Story(
        "attach_imbalance",
        "one System thread exits while attached to agent.exe, another starts in the trace "
        "and detaches without an attach, a third attaches again after a balanced attach/detach and is still "
        "attached when the trace ends",
        "the balanced attach/detach pair of the third thread",
        s,
        [
            Expect("ATTACH_UNBALANCED", 1 * MS + 500 * US, 4, None, 0),
            Expect("DETACH_MISMATCH", 2 * MS, 4, None, 0),
            Expect("ATTACH_UNBALANCED", 3 * MS + 200 * US, 4, None, 0),
        ],
    )


@story
def nonpaged_buffer_freed_while_mapped() -> Story:
    """A nonpaged-pool buffer shared with dashboard.exe, MDL freed under the mapping."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=280)
    app = s.process(pid=16100, image="dashboard.exe", tid=16104)
    m, pool, umap = mdl_at(35), npbuf(0), 0x000001D2C6A00000
    s.at(1 * MS).allocate_mdl(app, m, va=pool, size=0x3000)
    s.at(1 * MS + 10 * US).call("MmBuildMdlForNonPagedPool", app, mdl=m, va=pool)
    s.at(1 * MS + 20 * US).map_user(app, m, umap)
    s.at(3 * MS).free_mdl(w, m)
    s.at(6 * MS).process_end(app)
    b = pages_bytes(pool, 0x3000)
    return Story(
        "nonpaged_buffer_freed_while_mapped",
        "a driver shares a nonpaged-pool statistics buffer with dashboard.exe by mapping "
        "its MDL UserMode; on device removal a worker frees the MDL while the mapping is "
        "live; dashboard.exe exits without the unmap",
        "FREE_MDL_WHILE_LOCKED (a nonpaged-built MDL is not locked)",
        s,
        [
            Expect("USER_MAP_KERNEL_MEMORY", 1 * MS + 20 * US, 16100, m, b),
            Expect("FREE_PAGES_WHILE_USER_MAPPED", 3 * MS, 16100, m, b),
            Expect("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", 6 * MS, 16100, m, b),
        ],
    )


# ======================================================================================
# Tier 2
# ======================================================================================


@story
def t2_nonpaged_pool_misuse() -> Story:
    """Lock/map/unmap/unlock calls that a nonpaged-built MDL must not get."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=300)
    m, pool = mdl_at(40), npbuf(1)
    s.at(1 * MS).allocate_mdl(w, m, va=pool, size=0x2000)
    s.at(1 * MS + 10 * US).call("MmBuildMdlForNonPagedPool", w, mdl=m, va=pool)
    s.at(1 * MS + 20 * US).probe_and_lock(w, m, mode="KernelMode")
    s.at(1 * MS + 30 * US).map_kernel(w, m, sysva(20))
    s.at(1 * MS + 40 * US).unmap(w, m, pool)
    s.at(1 * MS + 50 * US).unlock(w, m)
    s.at(1 * MS + 60 * US).free_mdl(w, m)
    return Story(
        "t2_nonpaged_pool_misuse",
        "a driver treats a MmBuildMdlForNonPagedPool MDL like a probed one: locks it, "
        "maps it again, unmaps its pool address and unlocks it",
        "(see t2_clean_families for the legal nonpaged lifecycle)",
        s,
        [
            Expect("LOCK_BUILT_OR_PARTIAL_MDL", 1 * MS + 20 * US, 4, m, 0x2000),
            Expect("KMAP_SECOND_SYSTEM_MAPPING", 1 * MS + 30 * US, 4, m, 0x2000),
            Expect("KUNMAP_NONPAGED_MDL", 1 * MS + 40 * US, 4, m, 0x2000),
            Expect("UNLOCK_BUILT_OR_PARTIAL_MDL", 1 * MS + 50 * US, 4, m, 0x2000),
        ],
    )


@story
def t2_alloc_pages_misuse() -> Story:
    """MmAllocatePagesForMdl(Ex) MDLs unlocked, freed the wrong way, or leaked."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=320)
    a1, b, a2, a3 = mdl_at(41), mdl_at(42), mdl_at(43), mdl_at(44)
    s.at(1 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a1, requested_size=0x10000,
                      size=0x10000)
    s.at(1 * MS + 10 * US).map_kernel(w, a1, sysva(21))
    s.at(1 * MS + 20 * US).unlock(w, a1)
    s.at(1 * MS + 30 * US).call("MmFreePagesFromMdl", w, mdl=a1)
    s.at(1 * MS + 40 * US).call("ExFreePoolMdl", w, mdl=a1)
    s.at(2 * MS).allocate_mdl(w, b, va=kbuf(12), size=0x3000)
    s.at(2 * MS + 10 * US).probe_and_lock(w, b, mode="KernelMode")
    s.at(2 * MS + 20 * US).call("MmFreePagesFromMdl", w, mdl=b)
    s.at(2 * MS + 30 * US).unlock(w, b)
    s.at(2 * MS + 40 * US).free_mdl(w, b)
    s.at(3 * MS).call("MmAllocatePagesForMdl", w, mdl=a2, requested_size=0x8000,
                      size=0x8000)
    s.at(3 * MS + 10 * US).free_mdl(w, a2)
    s.at(4 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a3, requested_size=0x4000,
                      size=0x4000)
    s.at(4 * MS + 10 * US).map_kernel(w, a3, sysva(22))
    return Story(
        "t2_alloc_pages_misuse",
        "page-allocated MDLs: one unlocked with MmUnlockPages, MmFreePagesFromMdl on a "
        "probed MDL, one freed with IoFreeMdl without MmFreePagesFromMdl (its pages "
        "leak), one mapped and never freed",
        "the first MDL's MmFreePagesFromMdl releases its system mapping (no KMAP_LEAK)",
        s,
        [
            Expect("UNLOCK_ALLOCATED_PAGES_MDL", 1 * MS + 20 * US, 4, a1, 0x10000),
            Expect("FREE_PAGES_WRONG_MDL", 2 * MS + 20 * US, 4, b, 0x3000),
            Expect("ALLOC_PAGES_WRONG_FREE", 3 * MS + 10 * US, 4, a2, 0x8000),
            Expect("ALLOC_PAGES_LEAK", 3 * MS, 4, a2, 0x8000),
            Expect("ALLOC_PAGES_LEAK", 4 * MS, 4, a3, 0x4000),
            Expect("KMAP_LEAK", 4 * MS + 10 * US, 4, a3, 0x4000),
        ],
    )


@story
def t2_alloc_pages_short() -> Story:
    """MmAllocatePagesForMdlEx returns 256 KiB of the 1 MiB asked; the driver uses 1 MiB."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=340)
    a, p = mdl_at(45), mdl_at(46)
    s.at(1 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a, requested_size=0x100000,
                      size=0x40000)
    s.at(1 * MS + 10 * US).map_kernel(w, a, sysva(23))
    s.at(1 * MS + 20 * US).allocate_mdl(w, p, va=0, size=0x100000)
    s.at(1 * MS + 30 * US).call("IoBuildPartialMdl", w, mdl=p, source_mdl=a, va=0,
                                size=0x100000)
    s.at(1 * MS + 40 * US).free_mdl(w, p)
    s.at(1 * MS + 50 * US).call("MmFreePagesFromMdl", w, mdl=a)
    s.at(1 * MS + 60 * US).call("ExFreePoolMdl", w, mdl=a)
    return Story(
        "t2_alloc_pages_short",
        "MmAllocatePagesForMdlEx asked for 1 MiB returns an MDL of 256 KiB; the driver "
        "builds a 1 MiB partial MDL from it",
        "(see t2_clean_families: a short allocation used within its returned size)",
        s,
        [
            Expect("ALLOC_PAGES_SHORT", 1 * MS + 30 * US, 4, a, 0x40000),
            Expect("PARTIAL_RANGE_INVALID", 1 * MS + 30 * US, 4, p, 0x100000),
        ],
    )


@story
def t2_partial_source_lifetime() -> Story:
    """A partial MDL built before its source is locked, and mapped after it is unlocked."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=360)
    src, part = mdl_at(47), mdl_at(48)
    sva, pva = kbuf(13), kbuf(13) + 0x4000
    s.at(1 * MS).allocate_mdl(w, src, va=sva, size=0x10000)
    s.at(1 * MS + 10 * US).allocate_mdl(w, part, va=pva, size=0x2000)
    s.at(1 * MS + 20 * US).call("IoBuildPartialMdl", w, mdl=part, source_mdl=src, va=pva,
                                size=0x2000)
    s.at(1 * MS + 30 * US).probe_and_lock(w, src, mode="KernelMode")
    s.at(1 * MS + 40 * US).call("IoBuildPartialMdl", w, mdl=part, source_mdl=src, va=pva,
                                size=0x2000)
    s.at(1 * MS + 50 * US).map_kernel(w, part, sysva(24))
    s.at(1 * MS + 60 * US).unmap(w, part, sysva(24))
    s.at(1 * MS + 70 * US).unlock(w, src)
    s.at(1 * MS + 80 * US).map_kernel(w, part, sysva(25))
    s.at(1 * MS + 90 * US).free_mdl(w, part)
    s.at(1 * MS + 100 * US).free_mdl(w, src)
    return Story(
        "t2_partial_source_lifetime",
        "a partial MDL is built from a source not yet locked; after locking, it is "
        "rebuilt, mapped and unmapped correctly; then the source is unlocked and the "
        "partial mapped again",
        "the rebuild after locking and the map/unmap of the partial's own mapping while "
        "the source is locked",
        s,
        [
            Expect("PARTIAL_SOURCE_NOT_LOCKED", 1 * MS + 20 * US, 4, part, 0x2000),
            Expect("PARTIAL_OUTLIVES_SOURCE", 1 * MS + 80 * US, 4, part, 0x2000),
        ],
    )


@story
def t2_partial_chunking() -> Story:
    """A 64 KiB user buffer sent down in 16 KiB chunks through one partial MDL."""
    s = Scenario()
    s.system()
    app = s.process(pid=17100, image="copier.exe", tid=17104)
    src, part, buf = mdl_at(49), mdl_at(50), APP_BUF
    chunk = 0x4000
    s.at(1 * MS).allocate_mdl(app, src, va=buf, size=0x10000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, src, operation="IoReadAccess")
    s.at(1 * MS + 20 * US).allocate_mdl(app, part, va=buf, size=chunk)

    def build(t: int, offset: int) -> None:
        s.at(t).call("IoBuildPartialMdl", app, mdl=part, source_mdl=src, va=buf + offset,
                     size=chunk)

    build(1 * MS + 30 * US, 0)
    s.at(1 * MS + 40 * US).map_kernel(app, part, sysva(26))
    build(1 * MS + 50 * US, chunk)
    s.at(1 * MS + 60 * US).call("MmPrepareMdlForReuse", app, mdl=part)
    build(1 * MS + 70 * US, chunk)
    s.at(1 * MS + 80 * US).unmap(app, part, sysva(26))
    build(1 * MS + 90 * US, 0xE000)
    s.at(1 * MS + 100 * US).free_mdl(app, part)
    s.at(1 * MS + 110 * US).unlock(app, src)
    s.at(1 * MS + 120 * US).free_mdl(app, src)
    s.at(3 * MS).process_end(app)
    return Story(
        "t2_partial_chunking",
        "copier.exe's buffer is split into chunks through one partial MDL: the mapped "
        "chunk is rebuilt without MmPrepareMdlForReuse, the stale mapping is unmapped "
        "after the prepare released it, and the last chunk runs past the source",
        "the rebuild after MmPrepareMdlForReuse",
        s,
        [
            Expect("PARTIAL_REUSE_WITHOUT_PREPARE", 1 * MS + 50 * US, 17100, part, chunk),
            Expect("PARTIAL_UNMAP_ILLEGAL", 1 * MS + 80 * US, 17100, part, chunk),
            Expect("PARTIAL_RANGE_INVALID", 1 * MS + 90 * US, 17100, part, chunk),
        ],
    )


@story
def t2_reserved_mapping_misuse() -> Story:
    """A reserved mapping range mapped twice, unmapped twice, wrong tag, freed mapped."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=380)
    rsv, tag, bad_tag = 0xFFFFA58013000000, pool_tag("MdlR"), pool_tag("MdlX")
    m1, m2 = mdl_at(51), mdl_at(52)

    def rsv_call(t: int, name: str, **kw: object) -> None:
        s.at(t).call(name, w, mapped_va=rsv, **kw)

    rsv_call(1 * MS, "MmAllocateMappingAddress", size=0x10000, tag=tag)
    rsv2 = rsv + 0x100000  # a second range, never freed
    s.at(1 * MS + 10 * US).call("MmAllocateMappingAddress", w, mapped_va=rsv2, size=0x8000,
                                tag=tag)
    s.at(2 * MS).allocate_mdl(w, m1, va=kbuf(14), size=0x4000)
    s.at(2 * MS + 10 * US).probe_and_lock(w, m1, mode="KernelMode")
    rsv_call(2 * MS + 20 * US, "MmMapLockedPagesWithReservedMapping", tag=tag, mdl=m1,
             cache_type="MmCached")
    rsv_call(2 * MS + 30 * US, "MmMapLockedPagesWithReservedMapping", tag=tag, mdl=m1,
             cache_type="MmCached")
    rsv_call(2 * MS + 40 * US, "MmUnmapReservedMapping", tag=tag, mdl=m1)
    rsv_call(2 * MS + 50 * US, "MmUnmapReservedMapping", tag=tag, mdl=m1)
    s.at(2 * MS + 60 * US).unlock(w, m1)
    s.at(2 * MS + 70 * US).free_mdl(w, m1)
    s.at(3 * MS).allocate_mdl(w, m2, va=kbuf(15), size=0x2000)
    s.at(3 * MS + 10 * US).probe_and_lock(w, m2, mode="KernelMode")
    rsv_call(3 * MS + 20 * US, "MmMapLockedPagesWithReservedMapping", tag=bad_tag, mdl=m2,
             cache_type="MmCached")
    rsv_call(3 * MS + 30 * US, "MmMapLockedPagesWithReservedMapping", tag=tag, mdl=m2,
             cache_type="MmCached")
    rsv_call(5 * MS, "MmFreeMappingAddress", tag=tag)
    rsv_call(5 * MS + 10 * US, "MmUnmapReservedMapping", tag=tag, mdl=m2)
    s.at(5 * MS + 20 * US).unlock(w, m2)
    s.at(5 * MS + 30 * US).free_mdl(w, m2)
    return Story(
        "t2_reserved_mapping_misuse",
        "a 64 KiB MmAllocateMappingAddress range ('MdlR'): mapped twice, unmapped twice, "
        "mapped with tag 'MdlX', and freed at unload while still mapped (illegal, but the "
        "free takes effect: the unmap after it names nothing); a second range is never "
        "freed",
        "the map/unmap pairs with the right tag",
        s,
        [
            Expect("RESERVED_MAP_WHILE_MAPPED", 2 * MS + 30 * US, 4, m1, 0x4000),
            Expect("RESERVED_UNMAP_NOT_MAPPED", 2 * MS + 50 * US, 4, m1, 0x4000),
            Expect("RESERVED_TAG_MISMATCH", 3 * MS + 20 * US, 4, m2, 0x2000),
            Expect("RESERVED_FREE_WHILE_MAPPED", 5 * MS, 4, None, 0x10000),  # the reservation
            Expect("RESERVED_LEAK", 1 * MS + 10 * US, 4, None, 0x8000),
        ],
    )


@story
def t2_irp_owned_mdls() -> Story:
    """IRP-owned MDLs: unlocked by the driver before completion; user-mapped at completion."""
    s = Scenario()
    s.system()
    app = s.process(pid=18100, image="mediaplayer.exe", tid=18104)
    irp1, irp2 = 0xFFFFC30A4D100000, 0xFFFFC30A4D101000
    m1, m2, umap = mdl_at(53), mdl_at(54), 0x000001D2C7100000
    s.at(1 * MS).allocate_mdl(app, m1, va=APP_BUF, size=0x2000, irp=irp1)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m1)
    s.at(1 * MS + 20 * US).map_kernel(app, m1, sysva(27))
    s.at(1 * MS + 30 * US).unlock(app, m1)
    s.at(1 * MS + 40 * US).complete_request(app, irp1)
    s.at(2 * MS).allocate_mdl(app, m2, va=APP_BUF + 0x20000, size=0x1000, irp=irp2)
    s.at(2 * MS + 10 * US).probe_and_lock(app, m2)
    s.at(2 * MS + 20 * US).map_user(app, m2, umap)
    s.at(2 * MS + 30 * US).complete_request(app, irp2)
    return Story(
        "t2_irp_owned_mdls",
        "mediaplayer.exe's IRPs carry MDLs allocated with the IRP: the driver unlocks one "
        "itself before IoCompleteRequest; another is still mapped into the player when "
        "its IRP completes (the trace ends with the player running)",
        "no MDL_STRUCT_LEAK for IRP-owned MDLs (IoCompleteRequest frees them)",
        s,
        [
            Expect("DRIVER_FREES_IO_MANAGER_MDL", 1 * MS + 30 * US, 18100, m1, 0x2000),
            Expect("USER_MAP_OUTLIVES_IRP", 2 * MS + 30 * US, 18100, m2, 0x1000),
        ],
    )


@story
def t2_irql_violations() -> Story:
    """User map/unmap at DISPATCH_LEVEL next to calls that are legal there."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=420)
    app = s.process(pid=19100, image="sensor.exe", tid=19104)
    m1, m2, a = mdl_at(55), mdl_at(56), mdl_at(57)
    u1, u2 = 0x000001D2C7200000, 0x000001D2C7300000
    # request 1: the driver holds a spin lock (IRQL 2) around the user map and unmap
    s.at(1 * MS).allocate_mdl(app, m1, va=APP_BUF, size=0x1000, irql=0)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m1, irql=1)
    s.at(1 * MS + 20 * US).map_user(app, m1, u1, irql=2)
    s.at(1 * MS + 30 * US).map_kernel(app, m1, sysva(28), irql=2)
    s.at(1 * MS + 40 * US).unmap(app, m1, u1, irql=2)
    s.at(1 * MS + 50 * US).unmap(app, m1, sysva(28), irql=2)
    s.at(1 * MS + 60 * US).unlock(app, m1, irql=2)
    s.at(1 * MS + 70 * US).free_mdl(app, m1, irql=2)
    # page allocation at DISPATCH_LEVEL is allowed
    s.at(2 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a, requested_size=0x2000,
                      size=0x2000, irql=2)
    s.at(2 * MS + 10 * US).call("MmFreePagesFromMdl", w, mdl=a, irql=2)
    s.at(2 * MS + 20 * US).call("ExFreePoolMdl", w, mdl=a, irql=2)
    # request 2 (fixed build): user map/unmap at APC_LEVEL, attach at APC_LEVEL
    s.at(3 * MS).allocate_mdl(app, m2, va=APP_BUF + 0x10000, size=0x1000, irql=0)
    s.at(3 * MS + 10 * US).probe_and_lock(app, m2, irql=0)
    s.at(3 * MS + 20 * US).map_user(app, m2, u2, irql=1)
    s.at(3 * MS + 30 * US).attach(w, app, irql=1)
    s.at(3 * MS + 40 * US).unmap(w, m2, u2, irql=1)
    s.at(3 * MS + 50 * US).detach(w, irql=1)
    s.at(3 * MS + 60 * US).unlock(app, m2, irql=0)
    s.at(3 * MS + 70 * US).free_mdl(app, m2, irql=0)
    s.at(5 * MS).process_end(app)
    return Story(
        "t2_irql_violations",
        "sensor.exe's driver maps and unmaps a user mapping while holding a spin lock "
        "(IRQL 2); kernel map/unmap, unlock and page allocation at IRQL 2, and user "
        "map/unmap and attach at APC_LEVEL, are legal",
        "IRQL_VIOLATION for kernel maps, unlock, free and MmAllocatePagesForMdlEx at "
        "DISPATCH_LEVEL, and user map/unmap/attach at APC_LEVEL",
        s,
        [
            Expect("IRQL_VIOLATION", 1 * MS + 20 * US, 19100, m1, 0x1000),
            Expect("IRQL_VIOLATION", 1 * MS + 40 * US, 19100, m1, 0x1000),
        ],
    )


@story
def t2_clean_families() -> Story:
    """Legal lifecycles of every Tier-2 family."""
    s = Scenario()
    s.system()
    w = s.system_thread(tid=400)
    app = s.process(pid=20100, image="studio.exe", tid=20104)
    n, a, p, src, q, r, irpm = (mdl_at(i) for i in range(60, 67))
    rsv, tag, irp = 0xFFFFA58013100000, pool_tag("MdlR"), 0xFFFFC30A4D200000
    # nonpaged pool: build, use its MappedSystemVa (no call), free
    s.at(1 * MS).allocate_mdl(w, n, va=npbuf(2), size=0x1000, irql=2)
    s.at(1 * MS + 10 * US).call("MmBuildMdlForNonPagedPool", w, mdl=n, va=npbuf(2), irql=2)
    s.at(1 * MS + 20 * US).free_mdl(w, n, irql=2)
    # pages: a short allocation used within what it returned, partial of it mapped
    s.at(2 * MS).call("MmAllocatePagesForMdlEx", w, mdl=a, requested_size=0x20000,
                      size=0x10000)
    s.at(2 * MS + 10 * US).map_kernel(w, a, sysva(30))
    s.at(2 * MS + 20 * US).allocate_mdl(w, p, va=0, size=0x8000)
    s.at(2 * MS + 30 * US).call("IoBuildPartialMdl", w, mdl=p, source_mdl=a, va=0,
                                size=0x8000)
    s.at(2 * MS + 40 * US).map_kernel(w, p, sysva(31))
    s.at(2 * MS + 50 * US).free_mdl(w, p)           # releases the partial's mapping
    s.at(2 * MS + 60 * US).call("MmFreePagesFromMdl", w, mdl=a)  # releases a's mapping
    s.at(2 * MS + 70 * US).call("ExFreePoolMdl", w, mdl=a)
    # partial chunks of a locked user buffer, with MmPrepareMdlForReuse between them
    s.at(3 * MS).allocate_mdl(app, src, va=APP_BUF, size=0x8000)
    s.at(3 * MS + 10 * US).probe_and_lock(app, src, operation="IoReadAccess")
    s.at(3 * MS + 20 * US).allocate_mdl(app, q, va=APP_BUF, size=0x4000)
    s.at(3 * MS + 30 * US).call("IoBuildPartialMdl", app, mdl=q, source_mdl=src,
                                va=APP_BUF, size=0x4000)
    s.at(3 * MS + 40 * US).map_kernel(app, q, sysva(32))
    s.at(3 * MS + 50 * US).call("MmPrepareMdlForReuse", app, mdl=q)
    s.at(3 * MS + 60 * US).call("IoBuildPartialMdl", app, mdl=q, source_mdl=src,
                                va=APP_BUF + 0x4000, size=0x4000)
    s.at(3 * MS + 70 * US).map_kernel(app, q, sysva(33))
    s.at(3 * MS + 80 * US).unmap(app, q, sysva(33))
    s.at(3 * MS + 90 * US).free_mdl(app, q)
    s.at(3 * MS + 100 * US).unlock(app, src)
    s.at(3 * MS + 110 * US).free_mdl(app, src)
    # reserved mapping: reserve, map, unmap, free the range
    s.at(4 * MS).call("MmAllocateMappingAddress", w, mapped_va=rsv, size=0x10000, tag=tag)
    s.at(4 * MS + 10 * US).allocate_mdl(w, r, va=kbuf(16), size=0x3000)
    s.at(4 * MS + 20 * US).probe_and_lock(w, r, mode="KernelMode")
    s.at(4 * MS + 30 * US).call("MmMapLockedPagesWithReservedMapping", w, mapped_va=rsv,
                                tag=tag, mdl=r, cache_type="MmCached")
    s.at(4 * MS + 40 * US).call("MmUnmapReservedMapping", w, mapped_va=rsv, tag=tag, mdl=r)
    s.at(4 * MS + 50 * US).unlock(w, r)
    s.at(4 * MS + 60 * US).free_mdl(w, r)
    s.at(4 * MS + 70 * US).call("MmFreeMappingAddress", w, mapped_va=rsv, tag=tag)
    # IRP-owned MDL: user view unmapped before completion; completion unlocks and frees
    s.at(5 * MS).allocate_mdl(app, irpm, va=APP_BUF + 0x10000, size=0x2000, irp=irp)
    s.at(5 * MS + 10 * US).probe_and_lock(app, irpm, irql=0)
    s.at(5 * MS + 20 * US).map_kernel(app, irpm, sysva(34), irql=2)
    s.at(5 * MS + 30 * US).map_user(app, irpm, 0x000001D2C7400000, irql=0)
    s.at(5 * MS + 40 * US).unmap(app, irpm, 0x000001D2C7400000, irql=1)
    s.at(5 * MS + 50 * US).complete_request(app, irp, irql=2)
    s.at(7 * MS).process_end(app)
    return Story(
        "t2_clean_families",
        "legal lifecycles of every Tier-2 family: nonpaged-built, page-allocated (a short "
        "allocation used within its returned size, with a mapped partial), partial "
        "chunks with MmPrepareMdlForReuse, a reserved mapping, an IRP-owned MDL "
        "completed by IoCompleteRequest, IRQLs at their documented maximum",
        "every Tier-2 rule; also KMAP_LEAK (implicit releases), KMAP_UNLOCKED_MDL "
        "(page-allocated and partial MDLs are mappable), MDL_STRUCT_LEAK (IRP-owned)",
        s,
    )


# ======================================================================================
# the independent tester's cases (issue 11) and their siblings
# ======================================================================================


@story
def null_irp_driver_owned_mdls() -> Story:
    """IoAllocateMdl(..., Irp=NULL) logged as irp=0: the driver owns the MDL."""
    s = Scenario()
    app = s.process(pid=100, image="a.exe", tid=101, parent_pid=4)
    m1, m2 = 0xFFFFC30A60046000, 0xFFFFC30A60047000
    s.at(1 * MS).allocate_mdl(app, m1, va=0x1F000000000, size=4096, irp=0)
    s.at(2 * MS).probe_and_lock(app, m1, mode="UserMode", operation="IoWriteAccess")
    s.at(3 * MS).unlock(app, m1)
    s.at(4 * MS).free_mdl(app, m1)
    s.at(5 * MS).allocate_mdl(app, m2, va=0xFFFFC30A4B2F1000, size=4096, irp=0)
    s.at(6 * MS).call("IoBuildPartialMdl", app, mdl=m2, source_mdl=0, va=0xFFFFC30A4B2F1000,
                      size=4096)
    # an IoAllocateMdl that failed returns NULL (mdl=0): no MDL exists, nothing leaks
    s.at(7 * MS).allocate_mdl(app, 0, va=0x1F000010000, size=4096, irp=0)
    # a kernel buffer locked and unlocked by the driver that owns the MDL (irp=0)
    s.at(8 * MS).allocate_mdl(app, m1, va=0xFFFFC30A4B2F3000, size=4096, irp=0)
    s.at(8 * MS + 10 * US).probe_and_lock(app, m1, mode="KernelMode")
    s.at(8 * MS + 20 * US).unlock(app, m1)
    s.at(8 * MS + 30 * US).free_mdl(app, m1)
    return Story(
        "null_irp_driver_owned_mdls",
        "a driver allocates its MDLs with Irp=NULL, logged as irp=0 (a TraceLogging pointer "
        "has no null); it frees the first and forgets the second; a partial build logs "
        "source_mdl=0 (NULL); an IoAllocateMdl that failed logs mdl=0",
        "DRIVER_FREES_IO_MANAGER_MDL: no IRP owns these MDLs; MDL_STRUCT_LEAK is not hidden",
        s,
        [Expect("MDL_STRUCT_LEAK", 5 * MS, 100, m2, 4096)],
    )


@story
def t2_irp_owned_mdl_freed_by_driver() -> Story:
    """The driver unlocks and frees an MDL its IRP owns: both calls take effect."""
    s = Scenario()
    w = s.system_thread(tid=8)
    m, irp = 0xFFFFC30A40000100, 0xFFFFC30A55550000
    s.at(10 * US).allocate_mdl(w, m, va=0xFFFFD28F10000000, size=8192, irp=irp, irql=0)
    s.at(20 * US).probe_and_lock(w, m, mode="KernelMode", operation="IoReadAccess", irql=0)
    s.at(30 * US).unlock(w, m, irql=0)
    s.at(40 * US).free_mdl(w, m, irql=0)
    s.at(50 * US).complete_request(w, irp)
    # the legal variant: the next IRP's MDL is left to the I/O manager
    m2, irp2 = 0xFFFFC30A40000200, 0xFFFFC30A55551000
    s.at(60 * US).allocate_mdl(w, m2, va=0xFFFFD28F10004000, size=4096, irp=irp2, irql=0)
    s.at(70 * US).probe_and_lock(w, m2, mode="KernelMode", operation="IoReadAccess", irql=0)
    s.at(80 * US).complete_request(w, irp2)
    return Story(
        "t2_irp_owned_mdl_freed_by_driver",
        "a System thread unlocks and frees an MDL allocated with an IRP before the IRP "
        "completes: illegal, but MmUnlockPages does unlock and IoFreeMdl does free",
        "LOCKED_MDL_NEVER_UNLOCKED and MDL_STRUCT_LEAK: nothing is held after the free; the "
        "completion releases nothing twice",
        s,
        [
            Expect("DRIVER_FREES_IO_MANAGER_MDL", 30 * US, 4, m, 8192),
            Expect("DRIVER_FREES_IO_MANAGER_MDL", 40 * US, 4, m, 8192),
        ],
    )


@story
def unlock_twice_while_user_mapped() -> Story:
    """Two exposure windows of one user mapping; an unlock of an unlocked MDL; a UserMode
    map of an unlocked MDL from a worker."""
    s = Scenario()
    s.system()
    worker = s.system_thread(tid=96)
    app = s.process(pid=2600, image="viewer.exe", tid=2604)
    m, m2, buf, umap = mdl_at(60), mdl_at(61), APP_BUF, 0x000001D2C7400000
    s.at(1 * MS).allocate_mdl(app, m, va=buf, size=0x2000)
    s.at(1 * MS + 10 * US).probe_and_lock(app, m)
    s.at(1 * MS + 20 * US).map_user(app, m, umap)
    s.at(2 * MS).unlock(app, m)            # window 1 opens
    s.at(3 * MS).probe_and_lock(app, m)    # ... and closes
    s.at(4 * MS).unlock(app, m)            # window 2 opens
    s.at(5 * MS).unlock(app, m)            # not locked: UNLOCK_NOT_LOCKED only
    s.at(6 * MS).unmap(app, m, umap)
    s.at(6 * MS + 10 * US).free_mdl(app, m)
    # an unlocked MDL mapped UserMode from a worker: the map fails, no mapping exists
    s.at(7 * MS).allocate_mdl(app, m2, va=buf + 0x10000, size=0x1000)
    s.at(7 * MS + 10 * US).map_user(worker, m2, umap + 0x100000)
    s.at(7 * MS + 20 * US).free_mdl(app, m2)
    b = pages_bytes(buf, 0x2000)
    return Story(
        "unlock_twice_while_user_mapped",
        "viewer.exe's buffer stays mapped into it while the driver unlocks, re-locks and "
        "unlocks it again (two exposure windows), then unlocks it a third time; a System "
        "worker maps an MDL that was never locked into user space",
        "USER_MAP_IN_ARBITRARY_CONTEXT, FREE_PAGES_WHILE_USER_MAPPED, "
        "USER_MAPPING_NOT_UNMAPPED_AT_EXIT: the map of an unlocked MDL creates no mapping",
        s,
        [
            Expect("UNLOCK_WHILE_USER_MAPPED", 2 * MS, 2600, m, b),
            Expect("UNLOCK_WHILE_USER_MAPPED", 4 * MS, 2600, m, b),
            Expect("UNLOCK_NOT_LOCKED", 5 * MS, 2600, m, b),
            Expect("KMAP_UNLOCKED_MDL", 7 * MS + 10 * US, 4, m2, 4096),
        ],
    )


def _locked_mdls(s: Scenario, t0: int) -> tuple[Callable[[], Scenario], Callable[..., None],
                                               Callable[[Thread, int], None]]:
    """Helpers for scenarios made of many small lock/map/unlock stories: ``at()`` (the
    next time, 10 us apart), ``locked(thread, mdl, va, size, mode)``, ``done(thread, mdl)``
    (MmUnlockPages, which also ends the system mapping, then IoFreeMdl)."""
    clock = [t0]

    def at() -> Scenario:
        clock[0] += 10 * US
        return s.at(clock[0])

    def locked(th: Thread, m: int, va: int, size: int, mode: str = "UserMode") -> None:
        at().allocate_mdl(th, m, va=va, size=size)
        at().probe_and_lock(th, m, mode=mode)

    def done(th: Thread, m: int) -> None:
        at().unlock(th, m)
        at().free_mdl(th, m)

    return at, locked, done


@story
def clean_call_then_cswitch_same_tick() -> Story:
    """Calls and context switches of one CPU logged in the same clock tick (issue 11 #3)."""
    s = Scenario()
    a = s.process(pid=100, image="a.exe", tid=101, parent_pid=4)
    b = s.process(pid=200, image="b.exe", tid=201, parent_pid=4)
    m, buf, umap, umap2 = 0xFFFFC30A6000D000, 0x1F000000000, 0x23A11000000, 0x23A11100000
    s.at(1 * MS).cswitch(1, new=a)
    s.at(2 * MS).call("IoAllocateMdl", cpu=1, mdl=m, va=buf, size=4096)
    s.at(3 * MS).probe_and_lock(None, m, cpu=1, operation="IoReadAccess")
    s.at(4 * MS).map_user(None, m, umap, cpu=1)
    # the unmap, then a switch to b.exe in the same tick: the unmap ran in a.exe
    s.at(6 * MS).unmap(None, m, umap, cpu=1)
    s.at(6 * MS).cswitch(1, new=b, old=a)
    # a switch back to a.exe, then a map in the same tick: the map runs in a.exe
    s.at(7 * MS).cswitch(1, new=a, old=b)
    s.at(7 * MS).map_user(None, m, umap2, cpu=1)
    s.at(8 * MS).unmap(None, m, umap2, cpu=1)
    s.at(8 * MS).cswitch(1, new=b, old=a)
    s.at(9 * MS).unlock(None, m, cpu=1)
    s.at(9 * MS).free_mdl(None, m, cpu=1)
    return Story(
        "clean_call_then_cswitch_same_tick",
        "every call row has only `cpu`; a.exe's user mappings are undone in the same clock "
        "tick as the context switch to b.exe, logged just before it, and one is made in the "
        "tick of the switch back, logged just after it (on ETL, ties keep each CPU's order)",
        "USER_UNMAP_WRONG_PROCESS, USER_MAP_IN_ARBITRARY_CONTEXT (the rows of one tick run "
        "in the order the CPU logged them)",
        s,
    )


@story
def cache_type_conflict_across_mdls() -> Story:
    """The same pages mapped with two cache types through two MDLs."""
    s = Scenario()
    s.system()
    app = s.process(pid=2700, image="capture.exe", tid=2704)
    a, b, c, d, e, part = (mdl_at(n) for n in range(62, 68))
    buf, buf2 = APP_BUF, APP_BUF + 0x100000
    at, locked, done = _locked_mdls(s, 1 * MS)
    # 1. overlapping va ranges of two locked MDLs in one process
    locked(app, a, buf, 0x4000)
    locked(app, b, buf + 0x2000, 0x4000)
    at().map_kernel(app, a, sysva(30))
    at().map_kernel(app, b, sysva(31), cache="MmNonCached")
    t_ab = s.rows[-1]["time_ns"]
    # 2. disjoint byte ranges that share a page (the hardware maps pages)
    locked(app, c, buf2, 0x800)
    locked(app, d, buf2 + 0x800, 0x800)
    at().map_kernel(app, c, sysva(32))
    at().map_kernel(app, d, sysva(33, 0x800), cache="MmWriteCombined")
    t_cd = s.rows[-1]["time_ns"]
    # 3. a partial MDL mapped NonCached while its source is mapped Cached
    locked(app, e, kbuf(16), 0x8000, mode="KernelMode")
    at().map_kernel(app, e, sysva(34))
    at().allocate_mdl(app, part, va=kbuf(16) + 0x2000, size=0x2000)
    at().call("IoBuildPartialMdl", app, mdl=part, source_mdl=e, va=kbuf(16) + 0x2000,
              size=0x2000)
    at().map_kernel(app, part, sysva(35), cache="MmNonCached")
    t_part = s.rows[-1]["time_ns"]
    at().free_mdl(app, part)
    for m in (a, b, c, d, e):
        done(app, m)
    return Story(
        "cache_type_conflict_across_mdls",
        "capture.exe's buffers locked through two MDLs each and mapped Cached and "
        "NonCached/WriteCombined: overlapping ranges, byte ranges sharing a page, a "
        "partial MDL and its source",
        "(see clean_cache_types_per_process)",
        s,
        [
            Expect("CACHE_TYPE_CONFLICT", t_ab, 2700, b, 0x4000),
            Expect("CACHE_TYPE_CONFLICT", t_cd, 2700, d, 0x1000),
            Expect("CACHE_TYPE_CONFLICT", t_part, 2700, part, 0x2000),
        ],
    )


@story
def clean_cache_types_per_process() -> Story:
    """Two cache types on pages that are not the same: per-process user va, next page."""
    s = Scenario()
    s.system()
    app = s.process(pid=2900, image="capture.exe", tid=2904)
    other = s.process(pid=3000, image="capture.exe", tid=3004)
    f, g, h, k = (mdl_at(n) for n in range(72, 76))
    buf = APP_BUF + 0x200000
    at, locked, done = _locked_mdls(s, 1 * MS)
    # the same user va in two processes: two different sets of pages
    locked(app, f, buf, 0x1000)
    locked(other, g, buf, 0x1000)
    at().map_kernel(app, f, sysva(36))
    at().map_kernel(other, g, sysva(37), cache="MmNonCached")
    # adjacent pages of one process
    locked(app, h, buf + 0x10000, 0x1000)
    locked(app, k, buf + 0x11000, 0x1000)
    at().map_kernel(app, h, sysva(38))
    at().map_kernel(app, k, sysva(39), cache="MmNonCached")
    for th, m in ((app, f), (other, g), (app, h), (app, k)):
        done(th, m)
    # the second MDL over f's pages maps after f is unlocked: nothing is live any more
    locked(app, f, buf, 0x1000)
    at().map_kernel(app, f, sysva(40), cache="MmNonCached")
    done(app, f)
    return Story(
        "clean_cache_types_per_process",
        "capture.exe (two instances) maps the same user address of each process, and two "
        "adjacent pages of one, with different cache types; then maps the first buffer "
        "again NonCached after its Cached mapping ended",
        "CACHE_TYPE_CONFLICT: different processes' user pages, adjacent pages, a mapping "
        "that ended",
        s,
        [],
    )


# ======================================================================================
# where each rule must NOT fire: a scenario with the legal variant of its pattern
# ======================================================================================

_T2_LEGAL = "t2_clean_families"
NEAR_MISS: dict[str, tuple[str, ...]] = {
    "UNLOCK_WHILE_USER_MAPPED": ("clean_worker_attach_unmap", "clean_trace_starts_mid_attach"),
    "USER_UNMAP_WRONG_PROCESS": ("clean_worker_attach_unmap", "clean_cswitch_only",
                                 "clean_effective_pid_logged", "clean_call_then_cswitch_same_tick",
                                 "clean_trace_starts_mid_attach"),
    "USER_UNMAP_AFTER_OWNER_EXIT": ("clean_worker_attach_unmap",
                                    "clean_cleanup_after_process_end"),
    "LOCKED_PAGES_AT_PROCESS_EXIT": ("clean_ioctl_lifecycle", "clean_cleanup_after_process_end"),
    "USER_MAPPING_NOT_UNMAPPED_AT_EXIT": ("clean_worker_attach_unmap",
                                          "clean_cleanup_after_process_end"),
    "FREE_PAGES_WHILE_USER_MAPPED": ("seed_unlock_from_worker", "clean_worker_attach_unmap"),
    "USER_MAP_IN_ARBITRARY_CONTEXT": ("clean_worker_attach_unmap", "clean_cswitch_only",
                                      "unlock_twice_while_user_mapped",
                                      "clean_call_then_cswitch_same_tick",
                                      "clean_trace_starts_mid_attach"),
    "USER_MAP_KERNEL_MEMORY": ("clean_worker_attach_unmap",),
    "USER_MAP_OUTSIDE_USER_RANGE": ("clean_worker_attach_unmap",),
    "CACHE_TYPE_CONFLICT": ("clean_ioctl_lifecycle", "clean_cache_types_per_process"),
    "UNLOCK_NOT_LOCKED": ("clean_trace_starts_mid_request", "clean_ioctl_lifecycle"),
    "DOUBLE_LOCK": ("clean_ioctl_lifecycle",),
    "FREE_MDL_WHILE_LOCKED": ("clean_ioctl_lifecycle", "nonpaged_buffer_freed_while_mapped"),
    "LOCKED_MDL_NEVER_UNLOCKED": ("freed_while_locked_process_exit",
                                  "t2_irp_owned_mdl_freed_by_driver"),
    "LOCK_IN_WRONG_PROCESS": ("clean_worker_attach_unmap", "clean_cswitch_only",
                              "clean_trace_starts_mid_attach"),
    "KMAP_UNLOCKED_MDL": ("clean_trace_starts_mid_request", _T2_LEGAL),
    "KMAP_SECOND_SYSTEM_MAPPING": ("clean_ioctl_lifecycle",),
    "KUNMAP_NOT_MAPPED": ("clean_ioctl_lifecycle", "clean_trace_starts_mid_mapping"),
    "KUNMAP_WRONG_VA_OR_MDL": ("clean_ioctl_lifecycle",),
    "USER_MAP_UNBALANCED": ("clean_worker_attach_unmap", "pid_reuse_unmap_after_exit",
                            "clean_trace_starts_mid_mapping"),
    "KMAP_LEAK": ("clean_ioctl_lifecycle", _T2_LEGAL),
    "MDL_USE_AFTER_FREE": ("clean_ioctl_lifecycle",),
    "MDL_STRUCT_LEAK": ("clean_trace_starts_mid_request", _T2_LEGAL),
    "KMAP_BUGCHECK_ON_FAILURE": ("clean_ioctl_lifecycle",),
    "KMAP_EXECUTABLE": ("clean_ioctl_lifecycle",),
    "MAP_FAILED_UNCHECKED": ("clean_ioctl_lifecycle",),
    "ATTACH_UNBALANCED": ("clean_worker_attach_unmap",),
    "DETACH_MISMATCH": ("clean_worker_attach_unmap", "clean_trace_starts_mid_attach"),
    **{rule: (_T2_LEGAL,) for rule in (
        "UNLOCK_BUILT_OR_PARTIAL_MDL", "LOCK_BUILT_OR_PARTIAL_MDL", "KUNMAP_NONPAGED_MDL",
        "UNLOCK_ALLOCATED_PAGES_MDL", "ALLOC_PAGES_LEAK", "ALLOC_PAGES_WRONG_FREE",
        "FREE_PAGES_WRONG_MDL", "ALLOC_PAGES_SHORT", "PARTIAL_SOURCE_NOT_LOCKED",
        "PARTIAL_RANGE_INVALID", "PARTIAL_OUTLIVES_SOURCE", "PARTIAL_REUSE_WITHOUT_PREPARE",
        "PARTIAL_UNMAP_ILLEGAL", "RESERVED_MAP_WHILE_MAPPED", "RESERVED_UNMAP_NOT_MAPPED",
        "RESERVED_FREE_WHILE_MAPPED", "RESERVED_TAG_MISMATCH", "RESERVED_LEAK",
        "DRIVER_FREES_IO_MANAGER_MDL", "USER_MAP_OUTLIVES_IRP")},
    "IRQL_VIOLATION": (_T2_LEGAL,),
}


# ======================================================================================
# output
# ======================================================================================

EXPECTED_COLUMNS = ("rule", "time_ns", "pid", "mdl", "bytes")


def write_expected(path: Path, expected: list[Expect]) -> None:
    """Write ``<name>.expected.csv`` (mdl as 0x hex, empty when none), time order."""
    rows = sorted(expected, key=lambda e: (e.time_ns, e.rule, e.mdl or 0))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(EXPECTED_COLUMNS)
        for e in rows:
            out.writerow([
                e.rule,
                e.time_ns,
                "" if e.pid is None else e.pid,
                "" if e.mdl is None else f"0x{e.mdl:x}",
                e.bytes,
            ])


def readme(stories: list[Story]) -> str:
    """README.md text: one table row per scenario."""
    lines = [
        "# Sample traces",
        "",
        "Small scenarios in the canonical CSV of `docs/trace-format.md`, each with the",
        "findings it must produce beside it (`<name>.expected.csv`: `rule,time_ns,pid,mdl,bytes`,",
        "one row per expected finding above `info`). The expectations are reasoned from",
        "`docs/rules.md` and the replay semantics, not copied from the analyzer;",
        "`tests/golden/test_scenarios.py` compares them with what `traceanalyzer.analyze`",
        "finds. Scenarios named `clean_*` / `t2_clean_*` must have nothing above `low`.",
        "Files named `t2_*` exercise the Tier-2 families.",
        "",
        "Regenerate (from the repository root): `python sample_traces/build.py`.",
        "The stories are written with `traceanalyzer.synth.scenario.Scenario`.",
        "`<name>.etl` is the same scenario as an ETL file, written by",
        "`python sample_traces/build.py`, which writes the CSVs and then the ETL files.",
        "",
        "Column conventions used here (docs/trace-format.md leaves them open for reserved mappings):",
        "MmAllocateMappingAddress / MmMapLockedPagesWithReservedMapping /",
        "MmUnmapReservedMapping / MmFreeMappingAddress carry the reservation's base address",
        "in `mapped_va`, its pool tag in `tag` (hex ULONG, first character lowest byte) and",
        "MmAllocateMappingAddress its byte count in `size`.",
        "",
        "| scenario | rows | what it shows | fires | must not fire (legal variant shown) |",
        "|---|---|---|---|---|",
    ]
    for st in stories:
        fired = sorted({e.rule for e in st.expected})
        counts = {r: sum(1 for e in st.expected if e.rule == r) for r in fired}
        fires = ", ".join(f"{r}" + (f" x{counts[r]}" if counts[r] > 1 else "") for r in fired)
        lines.append(f"| `{st.name}` | {len(st.scenario.rows)} | {st.shows} | "
                     f"{fires or '(clean)'} | {st.legal} |")
    lines += [
        "",
        "## Where each rule must not fire",
        "",
        "A scenario holding the legal variant of the rule's pattern, in which the rule is",
        "not expected (checked by the golden test).",
        "",
        "| rule | fires in | must not fire in |",
        "|---|---|---|",
    ]
    for rule, legal in NEAR_MISS.items():
        fires_in = sorted({st.name for st in stories for e in st.expected if e.rule == rule})
        lines.append(f"| {rule} | {', '.join(f'`{n}`' for n in fires_in)} | "
                     f"{', '.join(f'`{n}`' for n in legal)} |")
    lines.append("")
    return "\n".join(lines)


def main(out_dir: Path = HERE) -> list[Story]:
    """Write every scenario, its expectations and the README into ``out_dir``."""
    stories = [make() for make in STORIES]
    names = [st.name for st in stories]
    assert len(names) == len(set(names)), "duplicate scenario names"
    for st in stories:
        st.scenario.to_csv(out_dir / f"{st.name}.csv")
        write_expected(out_dir / f"{st.name}.expected.csv", st.expected)
    (out_dir / "README.md").write_text(readme(stories), encoding="utf-8")
    return stories


if __name__ == "__main__":
    from traceanalyzer.synth.make_sample_etls import make_sample_etls

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    built = main(target)
    print(f"wrote {len(built)} scenarios")
    for summary in make_sample_etls(target):  # the same scenarios as real ETL files
        print(f"wrote {summary['path']} ({summary['events']} events, {summary['buffers']} buffers)")
