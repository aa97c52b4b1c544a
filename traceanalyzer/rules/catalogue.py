"""The rule catalogue: every rule ID with its texts (docs/rules.md is generated from it).

Generated once from rules.md (tables transcribed; ``advice`` written for driver
developers). IDs are stable: tests, baselines, JSON, JUnit and SARIF key on them.
``CALL_EFFECTS`` states what an offending call does to the replayed state: an illegal
call the routine carries out takes effect; a call on something that does not exist
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


#: What an offending call does to the replayed state (the same for every rule).
CALL_EFFECTS: Final[str] = (
    "An illegal call that the routine carries out takes effect: IoFreeMdl under a live "
    "user mapping does free the MDL (FREE_PAGES_WHILE_USER_MAPPED), MmUnlockPages under a "
    "live user mapping does unlock (the exposure window of UNLOCK_WHILE_USER_MAPPED exists "
    "because the unlock happened; each unlock of a locked MDL opens its own window, a "
    "re-lock closes it), a driver's MmUnlockPages / IoFreeMdl of an IRP-owned MDL unlocks "
    "and frees it (DRIVER_FREES_IO_MANAGER_MDL), IoFreeMdl of a locked MDL frees the MDL and "
    "leaves its pages locked (FREE_MDL_WHILE_LOCKED), MmFreeMappingAddress of a mapped "
    "reservation frees it (RESERVED_FREE_WHILE_MAPPED). A call on something that does not "
    "exist changes nothing: an MDL that is not locked (UNLOCK_NOT_LOCKED), freed "
    "(MDL_USE_AFTER_FREE) or of the wrong kind (UNLOCK_BUILT_OR_PARTIAL_MDL, "
    "LOCK_BUILT_OR_PARTIAL_MDL, UNLOCK_ALLOCATED_PAGES_MDL, FREE_PAGES_WRONG_MDL), a "
    "mapping that is not live or not in this process (KUNMAP_*, USER_MAP_UNBALANCED, "
    "USER_UNMAP_WRONG_PROCESS, PARTIAL_UNMAP_ILLEGAL), a reservation with another tag or "
    "nothing mapped (RESERVED_TAG_MISMATCH, RESERVED_UNMAP_NOT_MAPPED). A map or lock the "
    "rules forbid makes no mapping or lock (KMAP_UNLOCKED_MDL, so no "
    "USER_MAP_IN_ARBITRARY_CONTEXT for it; KMAP_SECOND_SYSTEM_MAPPING; "
    "RESERVED_MAP_WHILE_MAPPED; PARTIAL_OUTLIVES_SOURCE; DOUBLE_LOCK keeps the first lock)."
)


#: Leaks that nothing can release before reboot: the process the pages were mapped into
#: is gone (no context to unmap in), or the MDL that described the pages is freed. They
#: are marked ``permanent`` and rank by their bytes (their bytes x seconds never ends).
PERMANENT_LEAKS: Final[frozenset[str]] = frozenset({
    "USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "ALLOC_PAGES_WRONG_FREE",
})


@dataclass(frozen=True)
class Rule:
    """One rule. ``severity`` is the default; ``FREE_MDL_WHILE_LOCKED`` is raised to
    critical for a user-va lock (``severity_user_va``)."""

    id: str
    severity: str
    tier: int  # 1, 2, or 0 for trace-quality findings
    fires_when: str
    consequence: str
    reference: str
    advice: str
    severity_user_va: str | None = None


RULES: Final[dict[str, Rule]] = {r.id: r for r in [
    Rule('UNLOCK_WHILE_USER_MAPPED', 'critical', 1, 'MmUnlockPages that unlocks a locked MDL while a user-mode mapping of it is live, from any thread: every such unlock (each opens an exposure window). An unlock of an MDL that is not locked is UNLOCK_NOT_LOCKED only; a free under a live user mapping is FREE_PAGES_WHILE_USER_MAPPED only. Of an MDL first seen part-way through its life, also its first unlock when the trace later shows a user mapping made before the trace unmapped (it was live then)', 'Pages can be trimmed and reused while the user PTEs still point at them: the process reads/writes memory now owned by someone else (security hole); a new owner mapping them with another cache type corrupts memory', 'MmUnlockPages docs; MmMapLockedPagesSpecifyCache docs ("must not be freed while still mapped to user space")', 'Unmap the user mapping (MmUnmapLockedPages in the process it was mapped into) before MmUnlockPages; if the unlock runs in a worker thread, do the unmap first in the owning process (IRP_MJ_CLEANUP / an IOCTL in its context, or KeStackAttachProcess to it).'),
    Rule('USER_UNMAP_WRONG_PROCESS', 'critical', 1, 'MmUnmapLockedPages of a user address while the effective process is not the process it was mapped into', 'The unmap runs in the current address space and can delete the address range of an unrelated process', 'MmUnmapLockedPages docs; Verifier 0xC4/0xB9', 'Call MmUnmapLockedPages only in the process the pages were mapped into: from IRP_MJ_CLEANUP or an IOCTL of that process, or after KeStackAttachProcess to it.'),
    Rule('USER_UNMAP_AFTER_OWNER_EXIT', 'critical', 1, 'MmUnmapLockedPages of a user address after the owning process ended', 'The unmap runs in whatever address space is current and can delete the address range of an unrelated process; the only legal context no longer exists', 'MmUnmapLockedPages docs', 'Unmap before the owning process can exit: do it in IRP_MJ_CLEANUP of the handle that requested the mapping, which runs in that process.'),
    Rule('LOCKED_PAGES_AT_PROCESS_EXIT', 'critical', 1, 'A process ends while an MDL probed-and-locked in its address space is still locked', 'Bug check 0x76 PROCESS_HAS_LOCKED_PAGES (P1=0, P3=locked page count), or 0xCB DRIVER_LEFT_LOCKED_PAGES_IN_PROCESS with locked-page tracking / Verifier pool tracking', 'Bug check 0x76, 0xCB docs', 'Unlock (MmUnlockPages) every user buffer before the request completes or, at the latest, in IRP_MJ_CLEANUP of the process; never keep user pages locked across process lifetime.'),
    Rule('USER_MAPPING_NOT_UNMAPPED_AT_EXIT', 'high', 1, 'A process ends while a user mapping into it is live', 'Physical memory leak: the pages are never reusable, even after the process is gone. Fix: unmap in the original process (IOCTL or IRP_MJ_CLEANUP in its context, or KeStackAttachProcess to it)', "ntdev thread in the project's seed; MmUnmapLockedPages docs", 'Unmap in the original process: handle IRP_MJ_CLEANUP (runs in the process context) or unmap in an IOCTL of that process, or KeStackAttachProcess to it before MmUnmapLockedPages.'),
    Rule('FREE_PAGES_WHILE_USER_MAPPED', 'critical', 1, 'IoFreeMdl, MmFreePagesFromMdl, or pool free under a nonpaged-pool MDL while a user mapping is live. Of an MDL first seen part-way through its life, also its MmFreePagesFromMdl when the trace later shows a user mapping made before the trace unmapped (it was live then)', 'Freed pages go to new owners while user PTEs still reference them', 'MmMapLockedPagesSpecifyCache docs', 'Unmap every user mapping (in its process) before freeing the MDL or its pages.'),
    Rule('USER_MAP_IN_ARBITRARY_CONTEXT', 'high', 1, 'MmMapLockedPagesSpecifyCache(UserMode) while the effective process is System (pid 4), Idle (pid 0), or no process could be attributed (DPC/worker thread)', 'The mapping lands in whatever process happens to be current and must later be unmapped there', 'MmMapLockedPagesSpecifyCache docs ("valid in the context of the process in which the driver is running")', 'Map into user space only from a dispatch routine running in the requesting process (e.g. IRP_MJ_DEVICE_CONTROL at PASSIVE_LEVEL), or after KeStackAttachProcess to it; never from a DPC, system worker or System thread.'),
    Rule('USER_MAP_KERNEL_MEMORY', 'medium', 1, 'A user mapping of an MDL that describes kernel memory (MmBuildMdlForNonPagedPool, MmAllocatePagesForMdl(Ex), or a kernel va)', 'Exposes kernel pages to user mode; security guidance prefers mapping a user buffer into kernel space instead', 'MmMapLockedPagesSpecifyCache docs; driver security checklist', 'Prefer the reverse design: have the application pass a buffer, probe-and-lock it and map it into system space.'),
    Rule('USER_MAP_OUTSIDE_USER_RANGE', 'low', 1, "A user mapping returned an address outside the target process's user range (above 0x7FFFFFFF0000 for 64-bit, above 0xFFFFFFFF for a WOW64 process)", 'Trace inconsistency or wrong target process: a 32-bit process gets an address in its 32-bit range', 'MmMapLockedPagesSpecifyCache docs', "Check that the mapping targets the intended process and that the trace's process information (WOW64, pid) is right."),
    Rule('CACHE_TYPE_CONFLICT', 'high', 1, 'Two live mappings of the same physical pages (same MDL, or overlapping page ranges of live locked MDLs: a partial MDL shares the pages of its source; user va ranges are compared within one process) with different cache types', 'Conflicting cache attributes for one page: random corruption; 0x1A/0x1000 on some paths', 'MEMORY_CACHING_TYPE docs; Bug check 0x1A', 'Map the same physical pages with one cache type everywhere (usually MmCached for RAM).'),
    Rule('UNLOCK_NOT_LOCKED', 'critical', 1, 'MmUnlockPages on an MDL that is not locked (never probed, already unlocked)', '0x76 with P1=1 for user pages, or 0x4E PFN_LIST_CORRUPT P1=7; Verifier 0xC4/0x7C', 'Bug check 0x76, 0x4E docs', 'Pair every MmUnlockPages with exactly one successful MmProbeAndLockPages; track the lock state with the MDL and do not unlock on error paths where the probe raised.'),
    Rule('DOUBLE_LOCK', 'high', 1, 'MmProbeAndLockPages on an MDL that is already locked', 'Unbalanced page lock counts: pages never fully unlocked', 'MmProbeAndLockPages docs', 'Probe-and-lock an MDL once; reuse needs MmUnlockPages (and MmPrepareMdlForReuse for partial MDLs) first.'),
    Rule('FREE_MDL_WHILE_LOCKED', 'high', 1, 'IoFreeMdl on a locked MDL', 'Nothing can unlock the pages any more; for a user buffer the owning process will hit 0x76 at exit', 'IoFreeMdl docs', 'Call MmUnlockPages (after unmapping) before IoFreeMdl.', severity_user_va='critical'),
    Rule('LOCKED_MDL_NEVER_UNLOCKED', 'high', 1, 'An MDL is still locked at end of trace (kernel va), not covered by LOCKED_PAGES_AT_PROCESS_EXIT', 'Pinned physical pages until reboot', 'MmProbeAndLockPages docs', 'Unlock the pages on every path (completion, cancellation, unload).'),
    Rule('LOCK_IN_WRONG_PROCESS', 'high', 1, "MmProbeAndLockPages of a user va while the effective process is not the process that issued the request (the mdl's IoAllocateMdl process or the request's process)", 'Locks whatever that va maps to in the wrong address space', 'User-space buffers docs', 'Probe and lock a user buffer in the context of the requesting process (its dispatch routine), before queueing work to another thread.'),
    Rule('KMAP_UNLOCKED_MDL', 'critical', 1, 'MmMapLockedPagesSpecifyCache / MmMapLockedPages (any mode) on an MDL that is neither locked, nor built for nonpaged pool, nor page-allocated. The call makes no mapping (so a UserMode one is not also USER_MAP_IN_ARBITRARY_CONTEXT)', '0x1A/0x1233 or 0x1A/0x1236; Verifier 0xC4/0x85, 0xC4/0xB3', 'MmMapLockedPagesSpecifyCache docs; Bug check 0x1A', 'Map only locked MDLs (MmProbeAndLockPages), nonpaged-pool MDLs (MmBuildMdlForNonPagedPool) or MmAllocatePagesForMdl(Ex) MDLs.'),
    Rule('KMAP_SECOND_SYSTEM_MAPPING', 'high', 1, 'A kernel-mode map of an MDL that already has a live system mapping (or is built for nonpaged pool)', 'Duplicate system PTEs, undefined behaviour; Verifier 0xC4/0xB2', 'MmMapLockedPagesSpecifyCache docs', 'Use MmGetSystemAddressForMdlSafe, which returns the existing system mapping, instead of mapping the MDL again.'),
    Rule('KUNMAP_NOT_MAPPED', 'critical', 1, 'MmUnmapLockedPages of a system address when the MDL has no live system mapping (never mapped, already unmapped, or released by MmUnlockPages). Of an MDL first seen part-way through its life, only once the trace has shown its system mapping made, unmapped or released (before that, the unmap ends a mapping made before the trace)', '0xDA SYSTEM_PTE_MISUSE P1=6 / 0x302 / 1; Verifier 0xC4/0xB6', 'Bug check 0xDA docs', "Unmap only a live system mapping; remember MmUnlockPages already released the MDL's own system mapping."),
    Rule('KUNMAP_WRONG_VA_OR_MDL', 'critical', 1, 'MmUnmapLockedPages whose (address, mdl) pair matches no live mapping', 'Bug check 0xDA SYSTEM_PTE_MISUSE (P1=2..5): the address or the MDL does not belong to a live mapping', 'Bug check 0xDA docs', 'Pass MmUnmapLockedPages the exact address returned by the map call and the same MDL.'),
    Rule('USER_MAP_UNBALANCED', 'high', 1, 'MmUnmapLockedPages names a user address never returned by a map of this MDL. Of an MDL first seen part-way through its life, only an address the trace has already seen unmapped (in the same process, or where either process is unknown); another ends a mapping made before the trace', "Bad unmap of someone's address range", 'MmUnmapLockedPages docs', 'Unmap exactly the address returned by MmMapLockedPagesSpecifyCache for this MDL, once.'),
    Rule('KMAP_LEAK', 'medium', 1, "An MDL's own system mapping is still live when the MDL is freed or at end of trace (non-probe-locked MDL; not an MDL first seen part-way through its life whose lock state the trace has not shown, which may be probe-locked)", 'System PTE leak; exhaustion gives NULL maps, 0x3F NO_MORE_SYSTEM_PTES or 0xD8', 'Bug check 0x3F, 0xD8 docs', 'Unmap the system mapping (MmUnmapLockedPages) before freeing the MDL.'),
    Rule('MDL_USE_AFTER_FREE', 'critical', 1, 'Any call naming an MDL after IoFreeMdl of it and before an allocator returns that address again', 'The MDL memory may already belong to another pool allocation: the call reads or corrupts it (pool corruption, 0x19 / 0xC2)', 'IoFreeMdl docs', 'Clear the MDL pointer when freeing it; the MDL must not be used after IoFreeMdl.'),
    Rule('MDL_STRUCT_LEAK', 'low', 1, 'IoAllocateMdl without IoFreeMdl by end of trace (and not IRP-owned)', 'Nonpaged pool leak; Verifier 0xC4/0x62 at unload', 'IoFreeMdl docs', 'Free every MDL you allocate with IoFreeMdl on all paths, unless the I/O manager owns it through an IRP.'),
    Rule('KMAP_BUGCHECK_ON_FAILURE', 'medium', 1, 'Kernel-mode map with bugcheck_on_failure = 1, or MmMapLockedPages in kernel mode', 'The machine crashes when system PTEs run short; Verifier 0xC4/0x82, 0xC4/0x81', 'MmMapLockedPagesSpecifyCache docs', 'Use MmMapLockedPagesSpecifyCache with BugCheckOnFailure = FALSE (or MmGetSystemAddressForMdlSafe) and handle a NULL result.'),
    Rule('KMAP_EXECUTABLE', 'low', 1, 'Kernel-mode map whose priority lacks MdlMappingNoExecute (0x40000000)', 'Executable kernel mapping; Verifier 0xC4/0x2002 under code integrity checks', 'MmGetSystemAddressForMdlSafe docs', 'OR MdlMappingNoExecute into the priority argument of every kernel-mode mapping.'),
    Rule('MAP_FAILED_UNCHECKED', 'medium', 1, 'A map call returned 0 (failure) and a later call uses that mapping', 'The driver dereferences or unmaps NULL: a bug check (0x50 PAGE_FAULT_IN_NONPAGED_AREA, or 0xDA when NULL is unmapped)', 'MmMapLockedPagesSpecifyCache docs', 'Check the return value of the map call for NULL before using or unmapping it.'),
    Rule('ATTACH_UNBALANCED', 'critical', 1, 'A thread ends, or the trace ends, while its attach stack is not empty', '0x5 INVALID_PROCESS_ATTACH_ATTEMPT', 'KeStackAttachProcess docs; Bug check 0x5', 'Pair every KeStackAttachProcess with KeUnstackDetachProcess on the same thread before it returns.'),
    Rule('DETACH_MISMATCH', 'critical', 1, 'KeUnstackDetachProcess on a thread with an empty attach stack', '0x6 INVALID_PROCESS_DETACH_ATTEMPT', 'KeUnstackDetachProcess docs; Bug check 0x6', 'Call KeUnstackDetachProcess only after a matching KeStackAttachProcess on the same thread, with its APC state.'),
    Rule('UNLOCK_BUILT_OR_PARTIAL_MDL', 'high', 2, 'MmUnlockPages on an MDL built by MmBuildMdlForNonPagedPool or IoBuildPartialMdl', 'The MDL locked nothing itself: MmUnlockPages drops page references that belong to the pool or to the source MDL, and the pages can be freed while still in use (memory corruption; Verifier 0xC4/0x7D, 0xC4/0xB4)', 'Verifier 0xC4/0x7D, 0xC4/0xB4', 'Do not unlock nonpaged-built or partial MDLs; unlock the source MDL instead.'),
    Rule('LOCK_BUILT_OR_PARTIAL_MDL', 'high', 2, 'MmProbeAndLockPages on a nonpaged-built or partial MDL', "The pages are already resident through the pool or the source MDL; probing them again corrupts the MDL's page array and lock counts (Verifier 0xC4/0xB0)", 'Verifier 0xC4/0xB0', 'Do not probe-and-lock nonpaged-built or partial MDLs; their pages are resident through the pool or the source MDL.'),
    Rule('KUNMAP_NONPAGED_MDL', 'critical', 2, 'MmUnmapLockedPages of the pool address of a nonpaged-built MDL', 'The pool address is not a mapping: MmUnmapLockedPages tears down the system PTEs of the pool itself, and the next access to the pool bug checks (0x50 / 0x1A)', 'MmBuildMdlForNonPagedPool docs', 'Do not unmap the pool address of a nonpaged-built MDL; free the pool allocation when done.'),
    Rule('UNLOCK_ALLOCATED_PAGES_MDL', 'high', 2, 'MmUnlockPages on an MmAllocatePagesForMdl(Ex) MDL', 'MmUnlockPages releases pages that MmAllocatePagesForMdl owns: they return to the free list while the MDL still describes them, and a later MmFreePagesFromMdl frees them twice (PFN corruption, 0x4E)', 'MmUnlockPages docs', 'Release MmAllocatePagesForMdl(Ex) pages with MmFreePagesFromMdl, never MmUnlockPages.'),
    Rule('ALLOC_PAGES_LEAK', 'high', 2, 'MmAllocatePagesForMdl(Ex) MDL never passed to MmFreePagesFromMdl', 'The physical pages stay allocated until reboot: MmAllocatePagesForMdl memory is not pool and is not reclaimed when the driver unloads', 'MmAllocatePagesForMdl docs', 'Call MmFreePagesFromMdl and then ExFreePool on every MmAllocatePagesForMdl(Ex) MDL.'),
    Rule('ALLOC_PAGES_WRONG_FREE', 'high', 2, 'Such an MDL freed with IoFreeMdl without MmFreePagesFromMdl first', 'IoFreeMdl frees only the MDL structure: the physical pages it described are lost until reboot', 'MmFreePagesFromMdl docs', 'Call MmFreePagesFromMdl first, then ExFreePool(mdl); IoFreeMdl does not free the pages.'),
    Rule('FREE_PAGES_WRONG_MDL', 'critical', 2, 'MmFreePagesFromMdl on an MDL not made by MmAllocatePagesForMdl(Ex)', 'MmFreePagesFromMdl puts pages on the free list that the MDL does not own (a user buffer or pool): they are reused while their owner still uses them (PFN corruption, 0x4E)', 'MmFreePagesFromMdl docs', 'Use MmFreePagesFromMdl only on MDLs returned by MmAllocatePagesForMdl(Ex).'),
    Rule('ALLOC_PAGES_SHORT', 'medium', 2, 'The returned MDL describes fewer bytes than requested and a later call uses the requested size', "The call reads or maps past the end of the pages the MDL describes: a crash or use of someone else's memory", 'MmAllocatePagesForMdlEx docs', 'Check MmGetMdlByteCount of the returned MDL: it may describe fewer bytes than requested.'),
    Rule('PARTIAL_SOURCE_NOT_LOCKED', 'high', 2, 'IoBuildPartialMdl from a source MDL that is not locked/built/page-allocated', 'The partial MDL describes pages that are not resident: mapping or using it faults, or maps pages that get reused', 'IoBuildPartialMdl docs', 'Build partial MDLs only from a locked, nonpaged-built or page-allocated source MDL.'),
    Rule('PARTIAL_RANGE_INVALID', 'critical', 2, 'IoBuildPartialMdl with a range outside the source MDL', 'Bug check 0x12E INVALID_MDL_RANGE, or a partial MDL that describes pages outside the source buffer', 'Bug check 0x12E INVALID_MDL_RANGE', "Keep the partial range inside the source MDL's virtual range."),
    Rule('PARTIAL_OUTLIVES_SOURCE', 'critical', 2, 'A partial MDL is used or mapped after its source was unlocked, freed, or had its pages freed', "The source's pages may already be unlocked or freed: the partial MDL maps or hands out pages that now belong to someone else", 'IoBuildPartialMdl docs', 'Free or reuse the partial MDL before unlocking or freeing its source.'),
    Rule('PARTIAL_REUSE_WITHOUT_PREPARE', 'medium', 2, 'A partial MDL that got its own mapping is rebuilt without MmPrepareMdlForReuse (no unmap in between)', "The old system mapping of the partial MDL is never released: system PTEs leak with every reuse, and the MDL's flags stay wrong", 'MmPrepareMdlForReuse docs', 'Call MmPrepareMdlForReuse before rebuilding a partial MDL that was mapped.'),
    Rule('PARTIAL_UNMAP_ILLEGAL', 'high', 2, 'MmUnmapLockedPages on a partial MDL that has no mapping of its own (of an MDL first seen part-way through its life, once the trace has shown its system mapping made, unmapped or released)', "The address belongs to the source MDL's mapping: unmapping it through the partial MDL tears down the source's mapping (Verifier 0xC4/0xB5)", 'Verifier 0xC4/0xB5', 'Unmap a partial MDL only if it was mapped itself (its own MmGetSystemAddressForMdlSafe).'),
    Rule('RESERVED_MAP_WHILE_MAPPED', 'critical', 2, 'MmMapLockedPagesWithReservedMapping on a reservation that is mapped', 'Bug check 0xDA/0x107: a reserved range holds one mapping at a time', 'Bug check 0xDA/0x107', 'Unmap the reserved mapping (MmUnmapReservedMapping) before mapping it again.'),
    Rule('RESERVED_UNMAP_NOT_MAPPED', 'critical', 2, 'MmUnmapReservedMapping when nothing is mapped', 'Bug check 0xDA/0x109: there is no mapping in the reserved range to release', 'Bug check 0xDA/0x109', 'Call MmUnmapReservedMapping only after a successful MmMapLockedPagesWithReservedMapping.'),
    Rule('RESERVED_FREE_WHILE_MAPPED', 'critical', 2, 'MmFreeMappingAddress while mapped', 'Bug check 0xDA/0x103: the reserved range is freed with pages still mapped in it', 'Bug check 0xDA/0x103', 'Unmap the reserved mapping before MmFreeMappingAddress.'),
    Rule('RESERVED_TAG_MISMATCH', 'critical', 2, "Reserved-mapping call with a pool tag other than the reservation's", 'Bug check 0xDA/0x104, 0x108 or 0x101: the pool tag identifies the reservation, so the call names a reservation that does not exist', 'Bug check 0xDA/0x104, 0x108, 0x101', 'Use the same pool tag for every call on one reserved mapping.'),
    Rule('RESERVED_LEAK', 'medium', 2, 'MmAllocateMappingAddress without MmFreeMappingAddress by end of trace', 'The reserved system PTEs are never returned: system address space shrinks until reboot (later maps fail, 0x3F NO_MORE_SYSTEM_PTES)', 'MmAllocateMappingAddress docs', 'Free reserved mapping ranges with MmFreeMappingAddress at unload.'),
    Rule('IRQL_VIOLATION', 'high', 2, 'A call above its documented IRQL (column irql): probe/lock > DISPATCH, user map/unmap > APC, MmAllocatePagesForMdl > DISPATCH, attach >= DISPATCH', 'Above its documented IRQL the routine can page-fault or wait: bug check 0xA IRQL_NOT_LESS_OR_EQUAL, or 0xC4/0x70..0x7E under Verifier', "Each routine's docs; Verifier 0xC4/0x70..0x7E", 'Call the routine at or below its documented IRQL; move the work to a PASSIVE_LEVEL worker or dispatch routine.'),
    Rule('DRIVER_FREES_IO_MANAGER_MDL', 'critical', 2, 'MmUnlockPages / IoFreeMdl by the driver on an IRP-owned MDL (IoAllocateMdl with irp set) before IoCompleteRequest of that irp', 'The unlock or free takes effect, but the I/O manager still owns the MDL: when the IRP completes it unlocks and frees it again (double unlock, double free: 0x76, 0x4E or pool corruption)', 'MDL docs ("when the IRP is completed, the system unlocks and frees all the MDLs")', 'Leave IRP-owned MDLs to the I/O manager: it unlocks and frees them when the IRP completes.'),
    Rule('USER_MAP_OUTLIVES_IRP', 'critical', 2, 'A user mapping of an IRP-owned MDL is live when IoCompleteRequest of that irp arrives', 'Completing the IRP unlocks and frees the MDL while the user mapping still points at its pages: the application can read and write pages that are reused', 'MDL docs; KMDF MdlAfterReqCompleted* rules', 'Unmap the user mapping before completing the IRP that owns the MDL.'),
    Rule('TRACE_EVENTS_LOST', "info", 0, 'the ETL header or buffers report lost events', 'Missed events can hide or invent findings.', "rules.md, trace quality findings", 'Record with larger or more buffers (xperf -BufferSize/-MinBuffers) so no events are lost; findings may be incomplete.'),
    Rule('TRACE_UNKNOWN_EVENT', "info", 0, 'an event the analyzer could not classify, counted per provider/event', 'Events that are not understood are not analysed.', "rules.md, trace quality findings", 'Check the provider/event names (or pass a field map) if these events should have been recognised.'),
    Rule('TRACE_CONTEXT_UNRESOLVED', "info", 0, 'a call whose thread or process could not be attributed', 'Rules that need the process context could not be checked on these calls.', "rules.md, trace quality findings", "Record the kernel Process/Thread (and CSwitch) events with the driver's events, or log effective_pid, so every call can be attributed."),
    Rule('TRACE_TIME_DISORDER', "info", 0, 'timestamps out of order beyond per-CPU buffering', 'Ordering-dependent findings may be wrong.', "rules.md, trace quality findings", 'Check the clock source of merged traces; findings that depend on ordering may be wrong.'),
    Rule('TRACE_OPEN_AT_END', "info", 0, 'lifecycles still open when the trace ends: count and bytes (the known sizes added; unknown when none is known)', 'Locks or mappings still held at the end of the trace may be released later, or never.', "rules.md, trace quality findings", 'Stop the trace after the driver has finished its work, or take these lifecycles as still in flight.'),
]}


def rule(rule_id: str) -> Rule:
    """The rule with this ID, in any case (KeyError naming the closest IDs when unknown:
    those difflib finds close, else the single closest)."""
    found = RULES.get(rule_id.strip().upper())
    if found is not None:
        return found
    import difflib

    wanted, ids = rule_id.strip().upper(), list(RULES)
    close = difflib.get_close_matches(wanted, ids, n=3) or difflib.get_close_matches(wanted, ids, n=1, cutoff=0)
    raise KeyError(f"unknown rule {rule_id!r}; closest: {', '.join(close)}")
