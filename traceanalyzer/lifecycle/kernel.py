"""The replay kernel: every MDL lifetime through its state machine, in one pass.

Written in the subset of Python that numba compiles (``replay_jit``); the very same
function runs as plain Python (``replay_py``) for small traces, where compiling would
cost more than it saves, and in tests that compare the two.

Inputs are int64 arrays; absent values are -1. ``ev``, ``t`` and ``proc`` run over the
replay stream (calls + IoCompleteRequest + process ends, in time order); the other
per-call columns run over the calls only, and ``cidx`` maps a stream position to its
call row (-1 for a process end), which saves merging a dozen columns with the ends.
Addresses are the uint64 bit patterns as int64, so user addresses are exactly
``0 < x < USER_SPACE_LIMIT`` and kernel addresses are negative.

Outputs are 2-D int64 record tables (layouts in ``records.py``): slots (one per MDL
lifetime), mappings, locks, findings; ``tables.py`` decodes them. Findings are written
through builders named by the shape of their window: ``_finding_at`` (the instant of
the call), ``_finding_from`` (open until a later event or the end of the trace closes
it) and ``_exposure_from`` (the same, counting byte-seconds).
Reservations (MmAllocateMappingAddress ranges) are kept in a kernel-internal table: they
only surface as RESERVED_* findings.

Implicit releases applied here: MmUnlockPages, MmFreePagesFromMdl and IoFreeMdl (of a
partial MDL) end the MDL's own system mapping; IoCompleteRequest of an irp unlocks and
frees every MDL allocated with that irp (slots chained through S_IRPNEXT from the
``irp_head`` dict), reporting each live user mapping as USER_MAP_OUTLIVES_IRP.

An illegal call that the routine carries out takes effect after its finding (a driver's
MmUnlockPages / IoFreeMdl of an IRP-owned MDL, IoFreeMdl under a live user mapping,
MmFreeMappingAddress of a mapped reservation); a call on something that does not exist
(an MDL not locked, a mapping not live, an address never returned) changes nothing.

An MDL first seen part-way through its life (allocated before the trace, or before the
start of a ``trace.window``) has an unknown lock state (``LS_UNKNOWN``) and unknown
mappings (``S_UNSEEN``): no finding takes either for granted. A lock, unlock or map of
it proceeds; an unmap that names no mapping the trace showed ends one made before the
trace, unless the trace already saw that address unmapped (of the system mapping: the
trace showed it unmapped, released or made since). Unmapped user addresses of such MDLs
are kept in a kernel-internal table (``UX_*``). An unmap of a mapping made before the
trace, after the trace showed the MDL unlocked (its pages freed), shows that the mapping
was live then: UNLOCK_WHILE_USER_MAPPED at the (first such) unlock, its exposure window up
to the unmap or a re-lock before it (FREE_PAGES_WHILE_USER_MAPPED at MmFreePagesFromMdl).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit
from numba import types as nbt
from numba.typed import Dict

from traceanalyzer.lifecycle import codes, records, splice
from traceanalyzer.lifecycle.codes import (
    ALLOC_PAGES_LEAK, ALLOC_PAGES_SHORT, ALLOC_PAGES_WRONG_FREE, CACHE_TYPE_CONFLICT, DOUBLE_LOCK,
    DRIVER_FREES_IO_MANAGER_MDL, E_ALLOCPAGES, E_ALLOCPAGESEX, E_BUILDNP, E_EXFREE, E_FREEPAGES,
    E_IOALLOC, E_IOFREE, E_IRPCOMPLETE, E_LOCK, E_LOCKPROC, E_MAP, E_MAPSC, E_PARTIAL, E_PREPARE,
    E_PROCEND, E_RSV_ALLOC, E_RSV_FREE, E_RSV_MAP, E_RSV_UNMAP, E_UNLOCK, E_UNMAP,
    FREE_MDL_WHILE_LOCKED, FREE_PAGES_WHILE_USER_MAPPED, FREE_PAGES_WRONG_MDL, K_IOALLOC,
    K_NONPAGED, K_PAGES, K_PARTIAL, K_UNKNOWN, KMAP_LEAK, KMAP_SECOND_SYSTEM_MAPPING,
    KMAP_UNLOCKED_MDL, KUNMAP_NONPAGED_MDL, KUNMAP_NOT_MAPPED, KUNMAP_WRONG_VA_OR_MDL,
    LOCK_BUILT_OR_PARTIAL_MDL, LOCK_IN_WRONG_PROCESS, LOCKED_MDL_NEVER_UNLOCKED,
    LOCKED_PAGES_AT_PROCESS_EXIT, LS_LOCKED, LS_UNKNOWN, LS_UNLOCKED, MAP_FAILED_UNCHECKED,
    MDL_STRUCT_LEAK, MDL_USE_AFTER_FREE, MODE_USER, PARTIAL_OUTLIVES_SOURCE,
    PARTIAL_RANGE_INVALID, PARTIAL_REUSE_WITHOUT_PREPARE, PARTIAL_SOURCE_NOT_LOCKED,
    PARTIAL_UNMAP_ILLEGAL, R_EXIT, R_FREED, R_IRP, R_LIVE, R_PAGESFREED, R_UNLOCK, R_UNMAP,
    RESERVED_FREE_WHILE_MAPPED, RESERVED_LEAK, RESERVED_MAP_WHILE_MAPPED, RESERVED_TAG_MISMATCH,
    RESERVED_UNMAP_NOT_MAPPED, UNLOCK_ALLOCATED_PAGES_MDL, UNLOCK_BUILT_OR_PARTIAL_MDL,
    UNLOCK_NOT_LOCKED, UNLOCK_WHILE_USER_MAPPED, USER_MAP_IN_ARBITRARY_CONTEXT,
    USER_MAP_KERNEL_MEMORY, USER_MAP_OUTLIVES_IRP, USER_MAP_UNBALANCED,
    USER_MAPPING_NOT_UNMAPPED_AT_EXIT, USER_SPACE_LIMIT, USER_UNMAP_AFTER_OWNER_EXIT,
    USER_UNMAP_WRONG_PROCESS, US_SYSMAP, US_USERMAP,
)
from traceanalyzer.lifecycle.records import (
    F_END, F_EV, F_EXPO, F_LOCK, F_MAP, F_PROC, F_REL, F_RULE, F_SEV, F_SLOT, F_START, F_TIDEV,
    F_TIME, IV_END, IV_SLOT, IV_START, L_END_EV, L_END_T, L_EXIT_F, L_LIVEPOS, L_PROC, L_REASON,
    L_SLOT, L_START_EV, L_USER, M_CACHE, M_END_EV, M_END_T, M_EXPO_F, M_LIVEPOS, M_MODE, M_NEXT,
    M_PROC, M_REASON, M_SLOT, M_START_EV, M_VA, NF, NIV, NL, NM, NRV, NS, PAGE_KEY_BITS,
    PAGE_KEY_MASK, RV_EV, RV_FREED, RV_MAP_EV, RV_PROC, RV_SLOT, RV_TAG, RV_VA, S_ALLOC_EV,
    S_ALLOC_PROC, S_END_EV, S_FAILMAP, S_FIRST_EV, S_FREE_EV, S_FREED, S_IRP, S_IRPNEXT,
    S_IVEND, S_IVKEY, S_KIND, S_LOCK, S_LOCKST, S_MDL, S_NLOCKS, S_NMAPS, S_NUSER, S_PAGESFREED,
    S_REALLOC, S_REQ, S_SIZE, S_SPACE, S_SRC, S_SRCLOCK, S_SYSMAP, S_UHEAD, S_UNSEEN, S_UXHEAD,
    S_VA, S_XHEAD, S_XREL_END, S_XREL_EV, S_XREL_RULE, S_XREL_T, SRC_INVALID, SRC_STABLE, UX_NEXT, UX_PROC,
    UX_VA, NUX,
)

# --- inputs -----------------------------------------------------------------------------


class ReplayInput(NamedTuple):
    """What the kernel replays: integer arrays, -1 = absent (addresses as uint64 bits in
    int64; ``ev``, ``mode``, ``cache``, ``ok`` int8; ``tproc``, ``mdl_id``, ``src_id``
    int32 while the ids fit, else int64; the rest int64).

    Over the stream (calls + process ends, in ``seq`` order): ``ev`` (event code,
    ``codes.EVENT_CODE``), ``t`` (time_ns), ``proc`` (process instance of the call's
    context, or of the ending process), ``cidx`` (row of the call, -1 for a process end).
    Over the calls (indexed through ``cidx``): ``mdl``, ``va``, ``size``, ``req``
    (requested_size), ``mode`` (access_mode code), ``cache`` (cache_type code), ``mva``
    (mapped_va), ``ok`` (1 if the call succeeded), ``irp``, ``tproc`` (process instance
    of target_pid), ``tag`` (pool tag), ``mdl_id`` / ``src_id``
    (dense ids of mdl / source_mdl, for ``Scratch.slot_of``), ``pre_attached`` (1 when
    the call's thread was attached before the trace began, to a process the trace does
    not name: its ``proc`` is -1, unknown, but not an arbitrary context). Over the
    process instances: ``proc_is_system`` (1 for System and Idle).
    """

    ev: np.ndarray
    t: np.ndarray
    proc: np.ndarray
    mdl: np.ndarray
    va: np.ndarray
    size: np.ndarray
    req: np.ndarray
    mode: np.ndarray
    cache: np.ndarray
    mva: np.ndarray
    ok: np.ndarray
    irp: np.ndarray
    tproc: np.ndarray
    tag: np.ndarray
    mdl_id: np.ndarray
    src_id: np.ndarray
    cidx: np.ndarray
    proc_is_system: np.ndarray
    pre_attached: np.ndarray


class ReplaySizes(NamedTuple):
    """Upper bounds of the record tables (from event counts) and the number of dense
    MDL address ids."""

    n_slots: int
    n_maps: int
    n_locks: int
    n_rsv: int
    n_addresses: int
    n_unmaps: int


class Scratch(NamedTuple):
    """The kernel's mutable lookups, fresh for every run (:func:`new_scratch`):
    ``slot_of`` (dense MDL id -> current slot), ``sysva`` (system address -> mapping),
    ``rsv`` (reservation address -> reservation), ``irp_head`` (irp -> first slot it
    owns)."""

    slot_of: np.ndarray
    sysva: dict
    rsv: dict
    irp_head: dict


def _is_user(x):
    return x > 0 and x < USER_SPACE_LIMIT


def _is_kernel(x):
    return x < -1  # high bit set (-1 is the "absent" sentinel)


def _grow(a, need):
    if need < a.shape[0]:
        return a
    cap = a.shape[0] * 2
    while cap <= need:
        cap *= 2
    b = np.full((cap, a.shape[1]), -1, dtype=np.int64)
    b[: a.shape[0]] = a
    return b


def _add_finding(F, nf, rule, ev, slot, mapping, lock, proc, time, end, exposure, since):
    """Write finding record nf (see :func:`_finding_at` for the fields); returns nf + 1."""
    F[nf, F_RULE] = rule
    F[nf, F_EV] = ev
    F[nf, F_SLOT] = slot
    F[nf, F_MAP] = mapping
    F[nf, F_LOCK] = lock
    F[nf, F_PROC] = proc
    F[nf, F_TIME] = time
    F[nf, F_START] = time
    F[nf, F_END] = end
    F[nf, F_EXPO] = exposure
    F[nf, F_REL] = since
    F[nf, F_SEV] = 0
    F[nf, F_TIDEV] = ev
    return nf + 1


def _finding_at(F, nf, rule, ev, slot, proc, time, since=-1, mapping=-1, lock=-1):
    """Finding nf about stream event ``ev`` (at ``time``, in process instance ``proc``) on
    MDL lifetime ``slot``, its window that instant; ``since``: the earlier event it
    relates to (the allocation, the mapping, ...), ``mapping`` / ``lock``: the records
    involved (-1 none). Returns the finding count."""
    return _add_finding(F, nf, rule, ev, slot, mapping, lock, proc, time, time, 0, since)


def _finding_from(F, nf, rule, ev, slot, proc, time, since=-1, mapping=-1, lock=-1):
    """As :func:`_finding_at`, its window open from ``time`` until a later event closes
    it (``F[k, F_END]``) or the trace ends."""
    return _add_finding(F, nf, rule, ev, slot, mapping, lock, proc, time, -1, 0, since)


def _exposure_from(F, nf, rule, ev, slot, proc, time, since=-1, mapping=-1, lock=-1):
    """As :func:`_finding_from`, an exposure: its window counts byte-seconds."""
    return _add_finding(F, nf, rule, ev, slot, mapping, lock, proc, time, -1, 1, since)


def _unlink(M, head, m):
    """Remove mapping m from the singly linked list starting at head; returns new head."""
    if head == m:
        return M[m, M_NEXT]
    cur = head
    while cur >= 0:
        nxt = M[cur, M_NEXT]
        if nxt == m:
            M[cur, M_NEXT] = M[m, M_NEXT]
            return head
        cur = nxt
    return head


def _live_remove(live, n, pos_col, table, idx):
    """Swap-remove record idx from the live list (positions kept in table[:, pos_col])."""
    p = table[idx, pos_col]
    last = live[n - 1]
    live[p] = last
    table[last, pos_col] = p
    table[idx, pos_col] = -1
    return n - 1


def _end_user_mapping(F, S, M, live_user, nu, s, m, i, ti, reason):
    """End live user mapping m of slot s at stream event i (and the exposure window it
    kept open); returns the new count of live user mappings."""
    M[m, M_END_EV] = i
    M[m, M_END_T] = ti
    M[m, M_REASON] = reason
    if M[m, M_EXPO_F] >= 0:
        F[M[m, M_EXPO_F], F_END] = ti
    S[s, S_UHEAD] = _unlink(M, S[s, S_UHEAD], m)
    S[s, S_NUSER] -= 1
    return _live_remove(live_user, nu, M_LIVEPOS, M, m)


def _iv_lower(IV, n, key):
    """First position in the interval table whose start is >= key."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if IV[mid, IV_START] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _iv_clear(S, IV, ivn, s):
    """Drop slot s's page range from the interval table (if it has one)."""
    ks = S[s, S_IVKEY]
    if ks < 0:
        return
    n = ivn[0]
    j = _iv_lower(IV, n, ks)
    while j < n and IV[j, IV_START] == ks and IV[j, IV_SLOT] != s:
        j += 1
    if j < n and IV[j, IV_START] == ks:
        for k in range(j, n - 1):
            IV[k, IV_START] = IV[k + 1, IV_START]
            IV[k, IV_END] = IV[k + 1, IV_END]
            IV[k, IV_SLOT] = IV[k + 1, IV_SLOT]
        ivn[0] = n - 1
    S[s, S_IVKEY] = -1
    S[s, S_IVEND] = -1


def _iv_set(S, IV, ivn, s, space, va, nbytes):
    """Slot s's pages are [va, va + nbytes) in ``space``: (re)enter its page range."""
    _iv_clear(S, IV, ivn, s)
    S[s, S_SPACE] = space
    if space < 0 or va == -1 or nbytes < 0:
        return
    last = va + (nbytes - 1 if nbytes > 0 else 0)
    ks = (space << PAGE_KEY_BITS) | ((va >> 12) & PAGE_KEY_MASK)
    ke = ((space << PAGE_KEY_BITS) | ((last >> 12) & PAGE_KEY_MASK)) + 1
    if ke <= ks:
        return
    n = ivn[0]
    j = _iv_lower(IV, n, ks + 1)  # after equal starts: insertion order among ties
    for k in range(n, j, -1):
        IV[k, IV_START] = IV[k - 1, IV_START]
        IV[k, IV_END] = IV[k - 1, IV_END]
        IV[k, IV_SLOT] = IV[k - 1, IV_SLOT]
    IV[j, IV_START] = ks
    IV[j, IV_END] = ke
    IV[j, IV_SLOT] = s
    ivn[0] = n + 1
    if ke - ks > ivn[1]:
        ivn[1] = ke - ks
    S[s, S_IVKEY] = ks
    S[s, S_IVEND] = ke


def _clashing_mapping(S, M, t, c):
    """A live mapping of slot t (system or user) with a cache type other than c; -1."""
    sm = S[t, S_SYSMAP]
    if sm >= 0 and M[sm, M_CACHE] != -1 and M[sm, M_CACHE] != c:
        return sm
    m = S[t, S_UHEAD]
    while m >= 0:
        if M[m, M_CACHE] != -1 and M[m, M_CACHE] != c:
            return m
        m = M[m, M_NEXT]
    return -1


def _cache_conflict(S, M, IV, ivn, s, c):
    """A live mapping of the same pages as slot s (its own, or of an MDL whose live page
    range overlaps s's) with a cache type other than c; -1 if none."""
    m = _clashing_mapping(S, M, s, c)
    ks = S[s, S_IVKEY]
    if m >= 0 or ks < 0:
        return m
    ke = S[s, S_IVEND]
    n = ivn[0]
    j = _iv_lower(IV, n, ks - ivn[1])
    while j < n and IV[j, IV_START] < ke:
        t = IV[j, IV_SLOT]
        if t != s and IV[j, IV_END] > ks:
            m = _clashing_mapping(S, M, t, c)
            if m >= 0:
                return m
        j += 1
    return -1


def _release_sysmap(S, M, sysva, s, i, ti, reason):
    """End slot s's own system mapping (if any) at stream event i: from now on it has
    none, also if it was first seen mid-life (no system mapping unseen any more)."""
    S[s, S_UNSEEN] &= ~US_SYSMAP
    sm = S[s, S_SYSMAP]
    if sm >= 0:
        M[sm, M_END_EV] = i
        M[sm, M_END_T] = ti
        M[sm, M_REASON] = reason
        if M[sm, M_VA] in sysva:
            del sysva[M[sm, M_VA]]
        S[s, S_SYSMAP] = -1


def _lock_unknown(S, s, kind):
    """1 if slot s may be probe-locked for all the trace showed (first seen mid-life, no
    lock or unlock since, and not of a kind that is never locked); else 0."""
    if S[s, S_LOCKST] == LS_UNKNOWN and not (kind & (K_NONPAGED | K_PAGES | K_PARTIAL)):
        return 1
    return 0


def _ux_unmapped(UX, head, x, p):
    """1 if user address x was unmapped (in process instance p; -1 on either side: any)
    on the list of UX records from head; else 0."""
    u = head
    while u >= 0:
        if UX[u, UX_VA] == x and (UX[u, UX_PROC] == p or UX[u, UX_PROC] == -1 or p == -1):
            return 1
        u = UX[u, UX_NEXT]
    return 0


def _ux_add(S, UX, nux, s, x, p):
    """Record that an unmap released user address x (in process instance p) of slot s, if
    it was first seen mid-life (only there can an unmap end a mapping the trace never
    showed). Returns the UX record count."""
    if not (S[s, S_UNSEEN] & US_USERMAP):
        return nux
    head = S[s, S_UXHEAD]
    if head >= 0 and UX[head, UX_VA] == x and UX[head, UX_PROC] == p:
        return nux  # the same address again (a map/unmap cycle): recorded
    UX[nux, UX_VA] = x
    UX[nux, UX_PROC] = p
    UX[nux, UX_NEXT] = head
    S[s, S_UXHEAD] = nux
    return nux + 1


def _end_lock(L, F, live_lock, nl_live, lk, i, ti, reason):
    """End lock record lk at stream event i; returns the new live-lock count."""
    L[lk, L_END_EV] = i
    L[lk, L_END_T] = ti
    L[lk, L_REASON] = reason
    if L[lk, L_EXIT_F] >= 0:
        F[L[lk, L_EXIT_F], F_END] = ti
    return _live_remove(live_lock, nl_live, L_LIVEPOS, L, lk)


def _source_gone(S, s):
    """1 if partial slot s was built from a source that has since been unlocked, freed,
    reallocated or had its pages freed; else 0."""
    src = S[s, S_SRC]
    how = S[s, S_SRCLOCK]
    if src < 0 or how == SRC_INVALID:
        return 0
    if S[src, S_FREED] == 1 or S[src, S_REALLOC] == 1:
        return 1
    if (S[src, S_KIND] & K_PAGES) and S[src, S_PAGESFREED] == 1:
        return 1
    if how >= 0 and S[src, S_LOCK] != how:
        return 1
    if how == SRC_STABLE and S[src, S_LOCKST] == LS_UNLOCKED and not (
            S[src, S_KIND] & (K_NONPAGED | K_PAGES)):
        return 1
    return 0


def _short_use(S, s, n_bytes):
    """1 if slot s is a page-allocated MDL that got fewer bytes than requested and a call
    now uses more than it describes (n_bytes, -1 unknown)."""
    if s < 0 or not (S[s, S_KIND] & K_PAGES) or n_bytes < 0:
        return 0
    got = S[s, S_SIZE]
    return 1 if (got >= 0 and S[s, S_REQ] > got and n_bytes > got) else 0


def _rsv_call(F, nf, RV, rsv, e, i, s, p, ti, x, tg, mx, okay):
    """MmMapLockedPagesWithReservedMapping / MmUnmapReservedMapping (MDL slot s, -1 if
    none) with pool tag tg (-1 unknown). The reservation is named in x (va), else in mx
    (mapped_va); when x names it, mx = 0 means the map failed. Returns the finding count."""
    failed = okay == 0 or (x != -1 and mx == 0)
    if x == -1:
        x = mx
    if x == -1 or x not in rsv:
        return nf
    r = rsv[x]
    if tg != -1 and RV[r, RV_TAG] != -1 and tg != RV[r, RV_TAG]:
        return _finding_at(F, nf, RESERVED_TAG_MISMATCH, i, s, p, ti, since=RV[r, RV_EV])
    if e == E_RSV_MAP:
        if RV[r, RV_MAP_EV] >= 0:
            return _finding_at(F, nf, RESERVED_MAP_WHILE_MAPPED, i, s, p, ti, since=RV[r, RV_MAP_EV])
        if not failed:
            RV[r, RV_MAP_EV] = i
            RV[r, RV_SLOT] = s
        return nf
    if RV[r, RV_MAP_EV] < 0:
        return _finding_at(F, nf, RESERVED_UNMAP_NOT_MAPPED, i, s, p, ti, since=RV[r, RV_EV])
    RV[r, RV_MAP_EV] = -1
    RV[r, RV_SLOT] = -1
    return nf


def _on_process_end(F, nf, S, M, L, live_user, nu, live_lock, nl_live, i, p, ti):
    """Process instance p ends at stream event i: its live user mappings end (each
    reported, it stays until reboot) and its live user-address locks are reported (the
    finding ends with the unlock). Returns the finding count and the live user mappings."""
    k = 0
    while k < nu:
        m = live_user[k]
        if M[m, M_PROC] != p:
            k += 1
            continue
        s = M[m, M_SLOT]
        nf = _finding_from(F, nf, USER_MAPPING_NOT_UNMAPPED_AT_EXIT, i, s, p, ti,
                           since=M[m, M_START_EV], mapping=m)
        nu = _end_user_mapping(F, S, M, live_user, nu, s, m, i, ti, R_EXIT)
        M[m, M_NEXT] = S[s, S_XHEAD]  # an unmap after the exit finds it here
        S[s, S_XHEAD] = m
    for k in range(nl_live):
        lk = live_lock[k]
        if L[lk, L_PROC] == p and L[lk, L_USER] == 1 and L[lk, L_EXIT_F] < 0:
            L[lk, L_EXIT_F] = nf
            nf = _finding_from(F, nf, LOCKED_PAGES_AT_PROCESS_EXIT, i, L[lk, L_SLOT], p, ti,
                               since=L[lk, L_START_EV], lock=lk)
    return nf, nu


def _at_trace_end(F, nf, S, M, L, RV, t, ns, nrv):
    """What is still held when the trace ends (reservations, kernel-address locks, page
    allocations, system mappings of unlocked MDLs, IoAllocateMdl structures that no IRP
    owns), each reported from the event that took it. Returns the finding count."""
    for r in range(nrv):
        if RV[r, RV_FREED] == 0:
            ev0 = RV[r, RV_EV]
            nf = _finding_from(F, nf, RESERVED_LEAK, ev0, -1, RV[r, RV_PROC], t[ev0])
    for s in range(ns):
        kind = S[s, S_KIND]
        lk = S[s, S_LOCK]
        if S[s, S_LOCKST] == LS_LOCKED and lk >= 0 and L[lk, L_USER] == 0:
            ev0 = L[lk, L_START_EV]
            nf = _finding_from(F, nf, LOCKED_MDL_NEVER_UNLOCKED, ev0, s, L[lk, L_PROC], t[ev0], lock=lk)
        if (kind & K_PAGES) and S[s, S_PAGESFREED] != 1:
            ev0 = S[s, S_ALLOC_EV] if S[s, S_ALLOC_EV] >= 0 else S[s, S_FIRST_EV]
            nf = _finding_from(F, nf, ALLOC_PAGES_LEAK, ev0, s, S[s, S_ALLOC_PROC], t[ev0])
        if S[s, S_FREED] == 1 or S[s, S_REALLOC] == 1:
            continue
        sm = S[s, S_SYSMAP]
        if sm >= 0 and S[s, S_LOCKST] != LS_LOCKED and not (kind & K_NONPAGED) and \
                _lock_unknown(S, s, kind) == 0:
            ev0 = M[sm, M_START_EV]
            nf = _finding_from(F, nf, KMAP_LEAK, ev0, s, M[sm, M_PROC], t[ev0], mapping=sm)
        if (kind & K_IOALLOC) and S[s, S_IRP] == -1:
            ev0 = S[s, S_ALLOC_EV]
            nf = _finding_from(F, nf, MDL_STRUCT_LEAK, ev0, s, S[s, S_ALLOC_PROC], t[ev0])
    return nf


# --- per-event handlers -----------------------------------------------------------------
# One function per event family, called from the loop of ``replay`` with the record tables,
# the counters they move and the call's own column values; each returns the counters it
# changed. The rarer families take the call's values as ``x_*`` and are compiled as
# functions numba inlines (``_INLINED``). The families of nearly every call (allocate,
# lock, unlock, free, map, unmap) take the loop's own names, and the compiled kernel has
# them spliced into its loop as source (``_SPLICED``, splice.py): as functions, even
# inlined by numba, they cost 1.1-1.7x kernel time, because numba takes a reference on
# every array a function receives and LLVM cannot drop those around code that may raise
# (a dict lookup). Spliced, the compiled loop is statement for statement the one written
# by hand before; run as Python, the loop calls them.


def _on_rsv_alloc(RV, rsv, nrv, i, p, x_va, x_mva, x_ok, x_tag):
    """MmAllocateMappingAddress(Ex): a reservation of address x. Returns the reservation
    count."""
    x = x_va if x_va != -1 else x_mva
    if x_ok == 0 or x == 0 or x == -1:
        return nrv
    r = nrv
    RV[r, RV_VA] = x
    RV[r, RV_TAG] = x_tag
    RV[r, RV_EV] = i
    RV[r, RV_PROC] = p
    RV[r, RV_FREED] = 0
    rsv[x] = r
    return nrv + 1


def _on_rsv_free(F, nf, RV, rsv, i, p, ti, x_va, x_mva, x_tag):
    """MmFreeMappingAddress of the reservation at x. Returns the finding count."""
    x = x_va if x_va != -1 else x_mva
    if x == -1 or x not in rsv:
        return nf
    r = rsv[x]
    if x_tag != -1 and RV[r, RV_TAG] != -1 and x_tag != RV[r, RV_TAG]:
        # no reservation has this address and tag: the call changes nothing
        return _finding_at(F, nf, RESERVED_TAG_MISMATCH, i, -1, p, ti, since=RV[r, RV_EV])
    if RV[r, RV_MAP_EV] >= 0:  # illegal, but the free takes effect (no RESERVED_LEAK)
        nf = _finding_at(F, nf, RESERVED_FREE_WHILE_MAPPED, i, -1, p, ti, since=RV[r, RV_MAP_EV])
    RV[r, RV_FREED] = 1
    del rsv[x]
    return nf


def _on_irp_complete(F, nf, S, M, L, IV, ivn, sysva, irp_head, live_lock, nl_live, i, ti, x_irp):
    """IoCompleteRequest of irp x_irp: every MDL it owns is unlocked and freed, each live
    user mapping of one reported. Returns the finding count and the live-lock count."""
    if x_irp == -1 or x_irp not in irp_head:
        return nf, nl_live
    s = irp_head[x_irp]
    del irp_head[x_irp]
    while s >= 0:
        nxt = S[s, S_IRPNEXT]
        S[s, S_IRPNEXT] = -1
        if S[s, S_FREED] == 1 or S[s, S_REALLOC] == 1:
            s = nxt
            continue
        m = S[s, S_UHEAD]
        while m >= 0:
            nf = _exposure_from(F, nf, USER_MAP_OUTLIVES_IRP, i, s, M[m, M_PROC], ti,
                                since=M[m, M_START_EV], mapping=m)
            if M[m, M_EXPO_F] < 0:
                M[m, M_EXPO_F] = nf - 1
            m = M[m, M_NEXT]
        _release_sysmap(S, M, sysva, s, i, ti, R_IRP)
        _iv_clear(S, IV, ivn, s)
        lk = S[s, S_LOCK]
        if S[s, S_LOCKST] == LS_LOCKED and lk >= 0:
            nl_live = _end_lock(L, F, live_lock, nl_live, lk, i, ti, R_IRP)
        S[s, S_LOCKST] = LS_UNLOCKED
        S[s, S_LOCK] = -1
        S[s, S_FREED] = 1
        S[s, S_FREE_EV] = i
        S[s, S_END_EV] = i
        s = nxt
    return nf, nl_live


def _first_seen(S, slot_of, irp_head, ns, e, i, a, mid, x_va, x_size, x_irp):
    """A call on MDL address a (dense id mid) allocated before the trace: a lifetime of
    unknown kind from here; owned by IRP ``x_irp`` when the call names one (a
    ``trace.window`` writes the IRP of the allocation before it there). Returns the slot
    count (the new slot is ns)."""
    s = ns
    S[s, S_MDL] = a
    S[s, S_KIND] = K_UNKNOWN
    S[s, S_FIRST_EV] = i
    if e != E_RSV_MAP and e != E_RSV_UNMAP:  # there va is the reservation
        S[s, S_VA] = x_va
        S[s, S_SIZE] = x_size
    S[s, S_LOCKST] = LS_UNKNOWN
    S[s, S_UNSEEN] = US_SYSMAP | US_USERMAP  # mappings made before the trace: unknown
    S[s, S_FREED] = 0
    S[s, S_NUSER] = 0
    S[s, S_PAGESFREED] = 0
    S[s, S_NMAPS] = 0
    S[s, S_NLOCKS] = 0
    S[s, S_REALLOC] = 0
    S[s, S_IRP] = x_irp
    if x_irp != -1:
        S[s, S_IRPNEXT] = irp_head[x_irp] if x_irp in irp_head else -1
        irp_head[x_irp] = s
    slot_of[mid] = s
    return ns + 1


def _on_build_nonpaged(S, IV, ivn, s, kind, x_va):
    """MmBuildMdlForNonPagedPool of slot s: it describes nonpaged memory from now on."""
    S[s, S_KIND] = kind | K_NONPAGED
    if S[s, S_VA] == -1:
        S[s, S_VA] = x_va
    _iv_set(S, IV, ivn, s, 0 if _is_kernel(S[s, S_VA]) else -1, S[s, S_VA], S[s, S_SIZE])


def _on_partial(F, nf, S, M, IV, ivn, slot_of, s, kind, i, p, ti, x_src, x_va, x_size):
    """IoBuildPartialMdl into slot s from the MDL of dense id x_src (-1 unknown): checks
    the source and the range, then s describes [x_va, x_va + x_size) of the source's
    pages. Returns the finding count."""
    s0 = slot_of[x_src] if x_src >= 0 else -1
    pva = x_va
    psz = x_size
    how = SRC_STABLE
    root = s0
    if s0 >= 0 and S[s0, S_FREED] == 1:
        nf = _finding_at(F, nf, MDL_USE_AFTER_FREE, i, s0, p, ti, since=S[s0, S_FREE_EV])
        how = SRC_INVALID
    elif s0 >= 0:
        k0 = S[s0, S_KIND]
        if (k0 & K_PARTIAL) and S[s0, S_LOCKST] != LS_LOCKED:
            # a partial of a partial: valid while the first one's source is
            if _source_gone(S, s0) == 1:
                nf = _finding_at(F, nf, PARTIAL_OUTLIVES_SOURCE, i, s0, p, ti)
                how = SRC_INVALID
            else:
                root = S[s0, S_SRC]
                how = S[s0, S_SRCLOCK]
        elif (k0 & K_PAGES) and S[s0, S_PAGESFREED] == 1:
            nf = _finding_at(F, nf, PARTIAL_SOURCE_NOT_LOCKED, i, s, p, ti, since=S[s0, S_ALLOC_EV])
            how = SRC_INVALID
        elif S[s0, S_LOCKST] == LS_LOCKED:
            how = S[s0, S_LOCK]
        elif S[s0, S_LOCKST] == LS_UNLOCKED and not (k0 & (K_NONPAGED | K_PAGES)):
            nf = _finding_at(F, nf, PARTIAL_SOURCE_NOT_LOCKED, i, s, p, ti, since=S[s0, S_ALLOC_EV])
            how = SRC_INVALID
        # the range check: the source's va (0 for page-allocated MDLs) and size
        base = 0 if (k0 & K_PAGES) else S[s0, S_VA]
        ssz = S[s0, S_SIZE]
        if pva != -1 and base != -1 and ssz >= 0:
            if psz == 0 or psz == -1:
                if pva >= base and pva < base + ssz:
                    psz = base + ssz - pva
            if _short_use(S, s0, pva - base + psz) == 1 and pva >= base and \
                    pva - base + psz <= S[s0, S_REQ]:
                nf = _finding_at(F, nf, ALLOC_PAGES_SHORT, i, s0, p, ti, since=S[s0, S_ALLOC_EV])
            if pva < base or psz < 0 or pva + psz > base + ssz:
                return _finding_at(F, nf, PARTIAL_RANGE_INVALID, i, s, p, ti, since=S[s0, S_ALLOC_EV])
    if (kind & K_PARTIAL) and S[s, S_SYSMAP] >= 0:
        sm = S[s, S_SYSMAP]
        # the old mapping stays the MDL's own (a later prepare/unmap/free ends it)
        nf = _finding_from(F, nf, PARTIAL_REUSE_WITHOUT_PREPARE, i, s, p, ti,
                           since=M[sm, M_START_EV], mapping=sm)
    S[s, S_KIND] = (kind & ~K_UNKNOWN) | K_PARTIAL
    S[s, S_VA] = pva
    S[s, S_SIZE] = psz
    S[s, S_SRC] = root
    S[s, S_SRCLOCK] = how
    space = -1  # a partial MDL describes its source's pages
    if how != SRC_INVALID and root >= 0 and S[root, S_SPACE] >= 0:
        space = S[root, S_SPACE]
    elif how != SRC_INVALID and _is_kernel(pva):
        space = 0
    _iv_set(S, IV, ivn, s, space, pva, psz)
    return nf


def _partial_source_gone(F, nf, S, L, s, i, p, ti):
    """A map of partial slot s whose source has gone: PARTIAL_OUTLIVES_SOURCE. Returns the
    finding count."""
    s0 = S[s, S_SRC]
    how = S[s, S_SRCLOCK]
    rel = S[s0, S_END_EV]
    if rel < 0 and how >= 0:
        rel = L[how, L_END_EV]
    return _finding_at(F, nf, PARTIAL_OUTLIVES_SOURCE, i, s, p, ti, since=rel)


def _on_alloc(S, IV, ivn, slot_of, irp_head, ns, s, e, i, p, a, mid, row, va, size, req, irp, ok, n_procs):
    """IoAllocateMdl, MmAllocatePagesForMdl(Ex): a new lifetime of MDL ``a`` in slot ``ns`` (an
    earlier one at that address, not freed, ends as reallocated). Returns the slot count."""
    if ok[row] == 0:
        return ns
    if s >= 0 and S[s, S_FREED] != 1:
        S[s, S_REALLOC] = 1
        S[s, S_END_EV] = i
        _iv_clear(S, IV, ivn, s)
    s = ns
    ns += 1
    S[s, S_MDL] = a
    S[s, S_KIND] = K_IOALLOC if e == E_IOALLOC else K_PAGES
    S[s, S_ALLOC_EV] = i
    S[s, S_FIRST_EV] = i
    S[s, S_ALLOC_PROC] = p
    S[s, S_VA] = va[row] if e == E_IOALLOC else -1
    S[s, S_SIZE] = size[row]
    S[s, S_REQ] = req[row]
    S[s, S_LOCKST] = LS_UNLOCKED
    S[s, S_UNSEEN] = 0
    S[s, S_FREED] = 0
    S[s, S_NUSER] = 0
    S[s, S_PAGESFREED] = 0
    S[s, S_IRP] = irp[row] if e == E_IOALLOC else -1
    q = S[s, S_IRP]
    if q != -1:
        S[s, S_IRPNEXT] = irp_head[q] if q in irp_head else -1
        irp_head[q] = s
    S[s, S_NMAPS] = 0
    S[s, S_NLOCKS] = 0
    S[s, S_REALLOC] = 0
    slot_of[mid] = s
    if e != E_IOALLOC:
        _iv_set(S, IV, ivn, s, n_procs + 1 + s, 0, size[row])
    return ns


def _on_lock(F, nf, S, M, L, IV, ivn, live_lock, nl, nl_live, s, kind, e, i, p, ti, row, va, size,
             mode, ok, tproc, proc_is_system):
    """MmProbeAndLockPages, MmProbeAndLockProcessPages: a new lock record, or the finding
    that refuses it. Returns the finding, lock and live-lock counts."""
    if ok[row] == 0:
        return nf, nl, nl_live
    if kind & (K_NONPAGED | K_PARTIAL):
        nf = _finding_at(F, nf, LOCK_BUILT_OR_PARTIAL_MDL, i, s, p, ti)
        return nf, nl, nl_live
    if S[s, S_LOCKST] == LS_LOCKED:
        nf = _finding_from(F, nf, DOUBLE_LOCK, i, s, p, ti,
                           since=L[S[s, S_LOCK], L_START_EV], lock=S[s, S_LOCK])
        return nf, nl, nl_live
    lproc = p
    if e == E_LOCKPROC and tproc[row] != -1:
        lproc = tproc[row]
    vs = S[s, S_VA]
    if vs == -1 and va[row] != -1:
        vs = va[row]
        S[s, S_VA] = vs
    if S[s, S_SIZE] == -1 and size[row] != -1:
        S[s, S_SIZE] = size[row]
    user = 1 if (_is_user(vs) or (vs == -1 and mode[row] == MODE_USER)) else 0
    # the request's process: where IoAllocateMdl ran, unless that was System or Idle (a
    # worker allocating for a request says nothing about whose buffer it is); a user
    # buffer is never System's or Idle's (no user address space of a requester)
    ap = S[s, S_ALLOC_PROC]
    if user == 1 and lproc != -1 and (
            proc_is_system[lproc] == 1
            or (ap != -1 and proc_is_system[ap] == 0 and lproc != ap)):
        nf = _finding_at(F, nf, LOCK_IN_WRONG_PROCESS, i, s, lproc, ti,
                         since=S[s, S_ALLOC_EV], lock=nl)
    lk = nl
    nl += 1
    L[lk, L_SLOT] = s
    L[lk, L_PROC] = lproc
    L[lk, L_USER] = user
    L[lk, L_START_EV] = i
    L[lk, L_END_EV] = -1
    L[lk, L_REASON] = R_LIVE
    live_lock[nl_live] = lk
    L[lk, L_LIVEPOS] = nl_live
    nl_live += 1
    # the pages are locked again: an open unlock-exposure window of a live user
    # mapping closes here (a later unlock opens a new one)
    m = S[s, S_UHEAD]
    while m >= 0:
        fx = M[m, M_EXPO_F]
        if fx >= 0 and F[fx, F_RULE] == UNLOCK_WHILE_USER_MAPPED and F[fx, F_END] == -1:
            F[fx, F_END] = ti
        m = M[m, M_NEXT]
    if S[s, S_XREL_RULE] == UNLOCK_WHILE_USER_MAPPED and S[s, S_XREL_END] < 0:
        S[s, S_XREL_END] = ti  # ... and so does the window of mappings made before the trace
    S[s, S_LOCKST] = LS_LOCKED
    S[s, S_LOCK] = lk
    S[s, S_NLOCKS] += 1
    space = -1
    if _is_kernel(vs):
        space = 0
    elif user == 1 and lproc != -1:
        space = lproc + 1
    _iv_set(S, IV, ivn, s, space, vs, S[s, S_SIZE])
    return nf, nl, nl_live


def _on_unlock(F, nf, S, M, L, IV, ivn, sysva, live_lock, nl_live, s, kind, i, p, ti):
    """MmUnlockPages: ends the lock (and the MDL's system mapping); a live user mapping
    opens an exposure window. Returns the finding and live-lock counts."""
    if kind & K_PAGES:
        nf = _finding_at(F, nf, UNLOCK_ALLOCATED_PAGES_MDL, i, s, p, ti)
        return nf, nl_live
    if kind & (K_NONPAGED | K_PARTIAL):
        nf = _finding_at(F, nf, UNLOCK_BUILT_OR_PARTIAL_MDL, i, s, p, ti)
        return nf, nl_live
    if S[s, S_LOCKST] == LS_UNLOCKED:
        nf = _finding_at(F, nf, UNLOCK_NOT_LOCKED, i, s, p, ti)
        return nf, nl_live
    # every unlock of a locked MDL under a live user mapping opens an exposure
    # window (a re-lock closes it: see E_LOCK)
    m = S[s, S_UHEAD]
    while m >= 0:
        if M[m, M_EXPO_F] < 0 or F[M[m, M_EXPO_F], F_END] != -1:
            M[m, M_EXPO_F] = nf
            nf = _exposure_from(F, nf, UNLOCK_WHILE_USER_MAPPED, i, s, M[m, M_PROC], ti,
                                since=M[m, M_START_EV], mapping=m, lock=S[s, S_LOCK])
        m = M[m, M_NEXT]
    _released_unseen(S, s, i, ti, UNLOCK_WHILE_USER_MAPPED)
    _release_sysmap(S, M, sysva, s, i, ti, R_UNLOCK)
    _iv_clear(S, IV, ivn, s)
    lk = S[s, S_LOCK]
    if lk >= 0:
        nl_live = _end_lock(L, F, live_lock, nl_live, lk, i, ti, R_UNLOCK)
    S[s, S_LOCKST] = LS_UNLOCKED
    S[s, S_LOCK] = -1
    return nf, nl_live


def _released_unseen(S, s, i, ti, rule):
    """Event i released the pages of slot s (the finding ``rule`` if a user mapping was
    live): if mappings made before the trace may be, and no earlier call did, keep it for
    an unmap of one of them to report (``S_XREL_*``, see :func:`_on_unmap`)."""
    if (S[s, S_UNSEEN] & US_USERMAP) and S[s, S_XREL_EV] < 0:
        S[s, S_XREL_EV] = i
        S[s, S_XREL_T] = ti
        S[s, S_XREL_RULE] = rule


def _on_free(F, nf, S, M, L, IV, ivn, sysva, s, kind, e, i, p, ti):
    """IoFreeMdl, ExFreePool (of an MDL), MmFreePagesFromMdl: the end of the lifetime (or of its
    pages). Returns the finding count."""
    if e == E_FREEPAGES and kind == K_UNKNOWN and S[s, S_LOCKST] == LS_UNKNOWN:
        kind = K_UNKNOWN | K_PAGES  # allocated before the trace: now we know how
        S[s, S_KIND] = kind
    if e == E_FREEPAGES and not (kind & K_PAGES):
        nf = _finding_at(F, nf, FREE_PAGES_WRONG_MDL, i, s, p, ti)
        return nf
    if e == E_IOFREE and (kind & K_PAGES) and S[s, S_PAGESFREED] != 1:
        nf = _finding_from(F, nf, ALLOC_PAGES_WRONG_FREE, i, s, p, ti, since=S[s, S_ALLOC_EV])
    if e != E_FREEPAGES and S[s, S_LOCKST] == LS_LOCKED:
        lk = S[s, S_LOCK]
        nf = _finding_from(F, nf, FREE_MDL_WHILE_LOCKED, i, s, p, ti,
                           since=L[lk, L_START_EV], lock=lk)
        if L[lk, L_USER] == 1:
            F[nf - 1, F_SEV] = 1
    m = S[s, S_UHEAD]
    while m >= 0:
        if M[m, M_EXPO_F] < 0 or F[M[m, M_EXPO_F], F_END] != -1:
            M[m, M_EXPO_F] = nf
            nf = _exposure_from(F, nf, FREE_PAGES_WHILE_USER_MAPPED, i, s, M[m, M_PROC], ti,
                                since=M[m, M_START_EV], mapping=m)
        m = M[m, M_NEXT]
    sm = S[s, S_SYSMAP]
    if sm >= 0 and not (e != E_FREEPAGES and S[s, S_LOCKST] == LS_LOCKED):
        # not a leak of a probe-locked MDL (nor, its lock state unknown, of one that may be)
        if e != E_FREEPAGES and not (kind & K_PARTIAL) and _lock_unknown(S, s, kind) == 0:
            nf = _finding_from(F, nf, KMAP_LEAK, i, s, p, ti, since=M[sm, M_START_EV], mapping=sm)
        _release_sysmap(S, M, sysva, s, i, ti, R_PAGESFREED if e == E_FREEPAGES else R_FREED)
    _iv_clear(S, IV, ivn, s)
    if e == E_FREEPAGES:
        _released_unseen(S, s, i, ti, FREE_PAGES_WHILE_USER_MAPPED)
        S[s, S_PAGESFREED] = 1
        S[s, S_UNSEEN] &= ~US_SYSMAP  # it released any system mapping
    else:
        S[s, S_FREED] = 1
        S[s, S_FREE_EV] = i
        S[s, S_END_EV] = i
    return nf


def _on_map(F, nf, S, M, IV, ivn, sysva, live_user, nm, nu, s, kind, i, p, ti, row, mva, ok, mode, cache,
            proc_is_system, pre_attached):
    """MmMapLockedPagesSpecifyCache, MmMapLockedPages: a new mapping record (user: on the
    slot's and the global live lists; system: the slot's one), or the finding that refuses
    it. Returns the finding, mapping and live-user-mapping counts."""
    x = mva[row]
    if x == 0 or ok[row] == 0:
        S[s, S_FAILMAP] = i
        return nf, nm, nu
    if S[s, S_LOCKST] == LS_UNLOCKED and not (kind & (K_NONPAGED | K_PAGES | K_PARTIAL)):
        nf = _finding_at(F, nf, KMAP_UNLOCKED_MDL, i, s, p, ti)
        return nf, nm, nu
    md = mode[row]
    if md == MODE_USER:
        # no process: none attributed (arbitrary), unless attached before the trace
        if (p == -1 and pre_attached[row] == 0) or (p != -1 and proc_is_system[p] == 1):
            nf = _finding_at(F, nf, USER_MAP_IN_ARBITRARY_CONTEXT, i, s, p, ti, mapping=nm)
        kmem = (kind & (K_NONPAGED | K_PAGES)) != 0 or _is_kernel(S[s, S_VA])
        src0 = S[s, S_SRC] if (kind & K_PARTIAL) else -1
        if not kmem and src0 >= 0 and (S[src0, S_KIND] & (K_NONPAGED | K_PAGES)):
            kmem = True  # a partial MDL describes its source's (kernel) pages
        if kmem:
            nf = _finding_at(F, nf, USER_MAP_KERNEL_MEMORY, i, s, p, ti, mapping=nm)
    elif S[s, S_SYSMAP] >= 0 or (kind & K_NONPAGED):
        rel = M[S[s, S_SYSMAP], M_START_EV] if S[s, S_SYSMAP] >= 0 else -1
        nf = _finding_at(F, nf, KMAP_SECOND_SYSTEM_MAPPING, i, s, p, ti, since=rel)
        return nf, nm, nu
    c = cache[row]
    if c != -1:
        conflict = _cache_conflict(S, M, IV, ivn, s, c)
        if conflict >= 0:
            nf = _finding_from(F, nf, CACHE_TYPE_CONFLICT, i, s, p, ti,
                               since=M[conflict, M_START_EV], mapping=nm)
    m = nm
    nm += 1
    M[m, M_SLOT] = s
    M[m, M_MODE] = 1 if md == MODE_USER else 0
    M[m, M_PROC] = p
    M[m, M_VA] = x
    M[m, M_CACHE] = c
    M[m, M_START_EV] = i
    M[m, M_END_EV] = -1
    M[m, M_REASON] = R_LIVE
    S[s, S_NMAPS] += 1
    if md == MODE_USER:
        M[m, M_NEXT] = S[s, S_UHEAD]
        S[s, S_UHEAD] = m
        S[s, S_NUSER] += 1
        live_user[nu] = m
        M[m, M_LIVEPOS] = nu
        nu += 1
    else:
        S[s, S_SYSMAP] = m
        sysva[x] = m
        # an MDL first seen mid-life: taken to have had none before (as an unknown lock
        # state is taken to be unlocked by a lock)
        S[s, S_UNSEEN] &= ~US_SYSMAP
    return nf, nm, nu


def _on_unmap(F, nf, S, M, UX, nux, sysva, live_user, nu, s, kind, i, p, ti, row, mva):
    """MmUnmapLockedPages: ends the user mapping at that address (in its own process) or the
    system mapping. An MDL first seen mid-life may have mappings made before the trace:
    an unmap that names none the trace showed ends one of those, unless the trace saw that
    address unmapped already (then it is a second unmap). Returns the finding,
    live-user-mapping and unmapped-user-address counts."""
    x = mva[row]
    if x == 0:
        if S[s, S_FAILMAP] >= 0:
            nf = _finding_at(F, nf, MAP_FAILED_UNCHECKED, i, s, p, ti, since=S[s, S_FAILMAP])
        else:
            nf = _finding_at(F, nf, KUNMAP_WRONG_VA_OR_MDL, i, s, p, ti)
        return nf, nu, nux
    if _is_user(x):
        m = S[s, S_UHEAD]
        while m >= 0 and M[m, M_VA] != x:
            m = M[m, M_NEXT]
        if m >= 0:
            if p != -1 and M[m, M_PROC] != -1 and p != M[m, M_PROC]:  # -1: not known
                nf = _finding_at(F, nf, USER_UNMAP_WRONG_PROCESS, i, s, M[m, M_PROC], ti,
                                 since=M[m, M_START_EV], mapping=m)
                return nf, nu, nux
            nux = _ux_add(S, UX, nux, s, x, M[m, M_PROC])
            nu = _end_user_mapping(F, S, M, live_user, nu, s, m, i, ti, R_UNMAP)
            return nf, nu, nux
        m = S[s, S_XHEAD]
        while m >= 0 and M[m, M_VA] != x:
            m = M[m, M_NEXT]
        if m >= 0:
            nf = _finding_at(F, nf, USER_UNMAP_AFTER_OWNER_EXIT, i, s, M[m, M_PROC], ti,
                             since=M[m, M_START_EV], mapping=m)
            S[s, S_XHEAD] = _unlink(M, S[s, S_XHEAD], m)
            nux = _ux_add(S, UX, nux, s, x, p)
            return nf, nu, nux
        if (S[s, S_UNSEEN] & US_USERMAP) and _ux_unmapped(UX, S[s, S_UXHEAD], x, p) == 0:
            nux = _ux_add(S, UX, nux, s, x, p)  # a mapping made before the trace ends
            if S[s, S_XREL_EV] >= 0:
                # ... after the trace showed its pages released: it was live then
                end = S[s, S_XREL_END] if S[s, S_XREL_END] >= 0 else ti
                nf = _add_finding(F, nf, S[s, S_XREL_RULE], S[s, S_XREL_EV], s, -1, -1,
                                  p, S[s, S_XREL_T], end, 1, i)
            return nf, nu, nux
        nf = _finding_at(F, nf, USER_MAP_UNBALANCED, i, s, p, ti)
        return nf, nu, nux
    if (kind & K_NONPAGED) and x == S[s, S_VA]:
        nf = _finding_at(F, nf, KUNMAP_NONPAGED_MDL, i, s, p, ti)
        return nf, nu, nux
    sm = S[s, S_SYSMAP]
    if sm < 0 and (S[s, S_UNSEEN] & US_SYSMAP) and not (x in sysva):
        S[s, S_UNSEEN] &= ~US_SYSMAP  # its system mapping made before the trace ends
        return nf, nu, nux
    if sm < 0 and (kind & K_PARTIAL):
        nf = _finding_at(F, nf, PARTIAL_UNMAP_ILLEGAL, i, s, p, ti)
        return nf, nu, nux
    if sm >= 0 and M[sm, M_VA] == x:
        M[sm, M_END_EV] = i
        M[sm, M_END_T] = ti
        M[sm, M_REASON] = R_UNMAP
        if x in sysva:
            del sysva[x]
        S[s, S_SYSMAP] = -1
    elif sm >= 0 or x in sysva:
        rel = M[sm, M_START_EV] if sm >= 0 else M[sysva[x], M_START_EV]
        nf = _finding_at(F, nf, KUNMAP_WRONG_VA_OR_MDL, i, s, p, ti, since=rel)
    else:
        nf = _finding_at(F, nf, KUNMAP_NOT_MAPPED, i, s, p, ti)
    return nf, nu, nux


def replay(inp, sizes, scratch):
    """Run the state machine over the stream of ``inp`` (:class:`ReplayInput`) with record
    tables sized by ``sizes`` (:class:`ReplaySizes`) and fresh ``scratch``
    (:class:`Scratch`). Returns the slots, mappings, locks and findings records."""
    ev, t, proc, cidx, proc_is_system = inp.ev, inp.t, inp.proc, inp.cidx, inp.proc_is_system
    pre_attached = inp.pre_attached
    mdl, va, size, req, mode, cache = inp.mdl, inp.va, inp.size, inp.req, inp.mode, inp.cache
    mva, ok, irp, tproc, tag = inp.mva, inp.ok, inp.irp, inp.tproc, inp.tag
    mdl_id, src_id = inp.mdl_id, inp.src_id
    slot_of, sysva, rsv, irp_head = scratch.slot_of, scratch.sysva, scratch.rsv, scratch.irp_head
    n_slots, n_maps, n_locks, n_rsv = sizes.n_slots, sizes.n_maps, sizes.n_locks, sizes.n_rsv
    n_unmaps = sizes.n_unmaps
    n = ev.shape[0]
    S = np.full((n_slots + 1, NS), -1, dtype=np.int64)
    M = np.full((n_maps + 1, NM), -1, dtype=np.int64)
    L = np.full((n_locks + 1, NL), -1, dtype=np.int64)
    F = np.full((max(1024, n // 64), NF), -1, dtype=np.int64)  # grows on demand
    live_user = np.empty(n_maps + 1, dtype=np.int64)
    live_lock = np.empty(n_locks + 1, dtype=np.int64)
    RV = np.full((n_rsv + 1, NRV), -1, dtype=np.int64)
    IV = np.full((n_slots + 1, NIV), -1, dtype=np.int64)
    UX = np.full((n_unmaps + 1, NUX), -1, dtype=np.int64)
    ivn = np.zeros(2, dtype=np.int64)  # live intervals, longest interval
    n_procs = proc_is_system.shape[0]
    nrv = 0
    nux = 0
    nu = 0
    nl_live = 0
    ns = 0
    nm = 0
    nl = 0
    nf = 0
    for i in range(n):
        e = ev[i]
        ti = t[i]
        p = proc[i]
        F = _grow(F, nf + 8 + nu + nl_live)

        if e == E_PROCEND:
            nf, nu = _on_process_end(F, nf, S, M, L, live_user, nu, live_lock, nl_live, i, p, ti)
            continue
        row = cidx[i]  # the call's row: per-call columns are not merged with process ends
        if e == E_RSV_ALLOC:
            nrv = _on_rsv_alloc(RV, rsv, nrv, i, p, va[row], mva[row], ok[row], tag[row])
            continue
        if e == E_RSV_FREE:
            nf = _on_rsv_free(F, nf, RV, rsv, i, p, ti, va[row], mva[row], tag[row])
            continue
        if e == E_IRPCOMPLETE:
            nf, nl_live = _on_irp_complete(F, nf, S, M, L, IV, ivn, sysva, irp_head, live_lock,
                                           nl_live, i, ti, irp[row])
            continue

        a = mdl[row]
        if a == -1:
            if e == E_RSV_MAP or e == E_RSV_UNMAP:
                nf = _rsv_call(F, nf, RV, rsv, e, i, -1, p, ti, va[row], tag[row], mva[row], ok[row])
            continue
        mid = mdl_id[row]
        s = slot_of[mid]

        if e == E_IOALLOC or e == E_ALLOCPAGES or e == E_ALLOCPAGESEX:
            ns = _on_alloc(S, IV, ivn, slot_of, irp_head, ns, s, e, i, p, a, mid, row, va, size, req, irp, ok,
                           n_procs)
            continue

        if s < 0:
            s = ns
            ns = _first_seen(S, slot_of, irp_head, ns, e, i, a, mid, va[row], size[row], irp[row])
        elif S[s, S_FREED] == 1:
            nf = _finding_at(F, nf, MDL_USE_AFTER_FREE, i, s, p, ti, since=S[s, S_FREE_EV])
            continue

        kind = S[s, S_KIND]
        if e != E_PARTIAL and _short_use(S, s, size[row]) == 1:
            nf = _finding_at(F, nf, ALLOC_PAGES_SHORT, i, s, p, ti, since=S[s, S_ALLOC_EV])

        if e == E_LOCK or e == E_LOCKPROC:
            nf, nl, nl_live = _on_lock(F, nf, S, M, L, IV, ivn, live_lock, nl, nl_live, s, kind, e, i, p, ti, row,
                                       va, size, mode, ok, tproc, proc_is_system)
            continue

        if (e == E_UNLOCK or e == E_IOFREE) and S[s, S_IRP] != -1:
            # illegal, but the routine does it: the unlock / free below takes effect
            nf = _finding_at(F, nf, DRIVER_FREES_IO_MANAGER_MDL, i, s, p, ti, since=S[s, S_ALLOC_EV])

        if e == E_UNLOCK:
            nf, nl_live = _on_unlock(F, nf, S, M, L, IV, ivn, sysva, live_lock, nl_live, s, kind, i, p, ti)
            continue

        if e == E_IOFREE or e == E_EXFREE or e == E_FREEPAGES:
            nf = _on_free(F, nf, S, M, L, IV, ivn, sysva, s, kind, e, i, p, ti)
            continue

        if e == E_BUILDNP:
            _on_build_nonpaged(S, IV, ivn, s, kind, va[row])
            continue

        if e == E_PARTIAL:
            nf = _on_partial(F, nf, S, M, IV, ivn, slot_of, s, kind, i, p, ti, src_id[row],
                             va[row], size[row])
            continue

        if e == E_PREPARE:
            _release_sysmap(S, M, sysva, s, i, ti, R_UNMAP)
            continue

        if (kind & K_PARTIAL) and (e == E_MAPSC or e == E_MAP or e == E_RSV_MAP) and \
                _source_gone(S, s) == 1:
            nf = _partial_source_gone(F, nf, S, L, s, i, p, ti)
            continue

        if e == E_RSV_MAP or e == E_RSV_UNMAP:
            nf = _rsv_call(F, nf, RV, rsv, e, i, s, p, ti, va[row], tag[row], mva[row], ok[row])
            continue

        if e == E_MAPSC or e == E_MAP:
            nf, nm, nu = _on_map(F, nf, S, M, IV, ivn, sysva, live_user, nm, nu, s, kind, i, p, ti, row, mva, ok, mode,
                                 cache, proc_is_system, pre_attached)
            continue

        if e == E_UNMAP:
            nf, nu, nux = _on_unmap(F, nf, S, M, UX, nux, sysva, live_user, nu, s, kind, i, p,
                                    ti, row, mva)
            continue


    F = _grow(F, nf + 4 * ns + nrv + 8)
    nf = _at_trace_end(F, nf, S, M, L, RV, t, ns, nrv)
    return S[:ns], M[:nm], L[:nl], F[:nf]


#: Compiled into the loop of ``replay`` (numba inlines them before type inference).
_INLINED = (_on_rsv_alloc, _on_rsv_free, _on_irp_complete, _first_seen, _on_build_nonpaged,
            _on_partial, _partial_source_gone)

_JIT_HELPERS = _INLINED + (
    _is_user, _is_kernel, _grow, _add_finding, _finding_at, _finding_from, _exposure_from, _unlink,
    _live_remove, _iv_lower, _iv_clear, _iv_set, _clashing_mapping, _cache_conflict,
    _release_sysmap, _lock_unknown, _ux_unmapped, _ux_add, _end_lock, _source_gone, _short_use,
    _rsv_call, _on_process_end, _at_trace_end, _end_user_mapping, _released_unseen)


#: The hot call families: spliced into the loop of the compiled ``replay`` (``splice.py``);
#: the Python kernel calls them.
_SPLICED = (_on_alloc, _on_lock, _on_unlock, _on_free, _on_map, _on_unmap)

#: The modules whose code and constants the compiled kernel holds.
KERNEL_SOURCES = (codes, records, splice)


def _source_key() -> str:
    """A digest of the kernel's sources. numba's disk cache checks only the file of the
    function it compiles, not the constants it read from other modules (codes, record
    layouts): the compiled names carry this digest, so an edit there recompiles."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for module in KERNEL_SOURCES:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def _build_jit():
    """Compile a copy of ``replay``, the hot families spliced in (``_SPLICED``), whose
    globals hold compiled helpers, so the plain ``replay`` keeps calling the plain ones."""
    import types

    g = dict(globals())
    key = _source_key()

    def rebind(f, inline="never"):
        # the copy resolves its globals in g, so helpers call the compiled helpers too
        copy = types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)
        copy.__module__ = f.__module__
        copy.__qualname__ = f"{f.__name__}_compiled_{key}"
        return njit(cache=True, nogil=True, inline=inline)(copy)

    for f in _JIT_HELPERS:
        g[f.__name__] = rebind(f, "always" if f in _INLINED else "never")
    return rebind(splice.splice(replay, _SPLICED, g))


def replay_py(inp: ReplayInput, sizes: ReplaySizes, scratch: Scratch):
    """The kernel as plain Python (same code; for small traces and for tests), with the
    compiled kernel's arithmetic: int64 wraps around silently. Addresses are uint64 bit
    patterns in int64, so a range end past 2**63 (``va + size``, the partial-MDL range
    check) wraps in both engines alike; numpy would warn on each such scalar add."""
    with np.errstate(over="ignore"):
        return replay(inp, sizes, scratch)

_jit = None


def replay_jit(inp: ReplayInput, sizes: ReplaySizes, scratch: Scratch):
    """The kernel compiled by numba (compiled on first use, cached on disk)."""
    global _jit
    if _jit is None:
        _jit = _build_jit()
    return _jit(inp, sizes, scratch)


def new_scratch(jit: bool, n_addresses: int) -> Scratch:
    """Fresh lookups for one run: ``slot_of`` all -1, and three empty int64 -> int64
    dicts (numba typed dicts when compiled). MDL addresses need no dict: the input gives
    each a dense id (``mdl_id``/``src_id``) and ``slot_of`` is an array over those ids."""
    slot_of = np.full(max(n_addresses, 1), -1, dtype=np.int64)
    if jit:
        return Scratch(slot_of, *_empty_typed_dicts())
    return Scratch(slot_of, {}, {}, {})


@njit(cache=True)
def _empty_typed_dicts():
    """Three empty int64 -> int64 typed dicts, made by compiled (disk-cached) code:
    ``Dict.empty`` called from Python compiles its constructor anew in every process
    (0.2 s, a tenth of a 10M-event run)."""
    return (Dict.empty(nbt.int64, nbt.int64), Dict.empty(nbt.int64, nbt.int64),
            Dict.empty(nbt.int64, nbt.int64))
