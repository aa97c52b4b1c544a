"""The replay kernel's record layouts: only ``lifecycle/`` reads them.

The kernel (``kernel.py`` and its handlers) writes 2-D int64 record tables, -1 =
absent; ``tables.py`` decodes them into named tables. Columns of each table:

slots (one per MDL lifetime, ``S_*``), mappings (``M_*``), locks (``L_*``), findings
(``F_*``), and three tables the kernel keeps to itself: reservations (``RV_*``,
MmAllocateMappingAddress ranges, they only surface as RESERVED_* findings), the page
ranges (``IV_*``) and the unmapped user addresses (``UX_*``).
"""

from __future__ import annotations

# slots (MDL lifetimes)
S_MDL, S_KIND, S_ALLOC_EV, S_ALLOC_PROC, S_VA, S_SIZE, S_LOCKST, S_LOCK = 0, 1, 2, 3, 4, 5, 6, 7
S_FREED, S_FREE_EV, S_SYSMAP, S_NUSER, S_FAILMAP, S_PAGESFREED, S_IRP, S_SRC = 8, 9, 10, 11, 12, 13, 14, 15
S_REQ, S_FIRST_EV, S_END_EV, S_NMAPS, S_NLOCKS, S_REALLOC, S_UHEAD, S_XHEAD = 16, 17, 18, 19, 20, 21, 22, 23
# S_SRC: partial MDL -> slot of its source (-1 unknown); S_SRCLOCK: the source's state when
# the partial was built (lock record id; SRC_STABLE: built/page-allocated/unknown-origin
# source, valid until freed; SRC_INVALID: source was not usable, nothing to outlive).
# S_IRPNEXT: next slot owned by the same irp (list head in the irp dict).
S_SRCLOCK, S_IRPNEXT = 24, 25
# S_SPACE: the address space of the slot's pages (see "page ranges" below; -1 unknown);
# S_IVKEY / S_IVEND: its live page range in the interval table (-1: none)
S_SPACE, S_IVKEY, S_IVEND = 26, 27, 28
# S_UNSEEN: what a lifetime first seen mid-life may hold that the trace never showed
# (codes.US_* flags: a system mapping, user mappings; 0 for one allocated in the trace);
# S_UXHEAD: its list of user addresses unmapped since (UX records, "unmapped user
# addresses" below), -1 none
S_UNSEEN, S_UXHEAD = 29, 30
# S_XREL_EV / S_XREL_T / S_XREL_RULE: of a lifetime first seen mid-life, the first call
# the trace showed that released its pages (MmUnlockPages: UNLOCK_WHILE_USER_MAPPED;
# MmFreePagesFromMdl: FREE_PAGES_WHILE_USER_MAPPED; event, time, rule; -1 none) while
# user mappings made before the trace may be live; S_XREL_END: the time a re-lock closed
# that window (-1 open). An unmap of such a mapping after it shows the mapping was live
# at that call: the finding of that rule.
S_XREL_EV, S_XREL_T, S_XREL_END, S_XREL_RULE = 31, 32, 33, 34
NS = 35
SRC_STABLE, SRC_INVALID = -2, -3
# page ranges: live locked (or nonpaged-built, page-allocated, partial) MDLs as intervals
# of keys space << 36 | page (36-bit page number of a 48-bit va), sorted by start, for
# CACHE_TYPE_CONFLICT across MDLs. Spaces: 0 kernel va, proc + 1 a process's user va,
# n_procs + 1 + slot the pages of one page-allocated MDL (its range starts at 0).
IV_START, IV_END, IV_SLOT = 0, 1, 2
NIV = 3
PAGE_KEY_BITS = 36
PAGE_KEY_MASK = (1 << PAGE_KEY_BITS) - 1
# reservations (MmAllocateMappingAddress), kernel-internal
RV_VA, RV_TAG, RV_EV, RV_PROC, RV_SLOT, RV_MAP_EV, RV_FREED = 0, 1, 2, 3, 4, 5, 6
NRV = 7
# unmapped user addresses of lifetimes first seen mid-life, kernel-internal: each user
# address (and effective process, -1 unknown) an unmap of the lifetime released, so that
# unmapping it again is USER_MAP_UNBALANCED although mappings made before the trace
# may be unmapped without one (lists from S_UXHEAD through UX_NEXT)
UX_VA, UX_PROC, UX_NEXT = 0, 1, 2
NUX = 3
# mappings (M_NEXT: next user mapping of the same slot, lists from S_UHEAD / S_XHEAD;
# M_LIVEPOS: position in the live user mappings; M_EXPO_F: the finding whose exposure
# window this mapping keeps open)
M_SLOT, M_MODE, M_PROC, M_VA, M_CACHE, M_START_EV, M_END_EV, M_REASON = 0, 1, 2, 3, 4, 5, 6, 7
M_EXPO_F, M_LIVEPOS, M_END_T, M_NEXT = 8, 9, 10, 11
NM = 12
# locks (L_EXIT_F: the LOCKED_PAGES_AT_PROCESS_EXIT finding the unlock ends)
L_SLOT, L_PROC, L_USER, L_START_EV, L_END_EV, L_REASON, L_EXIT_F, L_LIVEPOS, L_END_T = range(9)
NL = 9
# findings: F_EV the stream event it is about, F_TIME = F_START its time, F_END the end of
# its window (-1 open), F_EXPO 1 for an exposure (byte-seconds counted), F_REL the related
# earlier event (-1), F_SEV 1 when its severity is raised, F_TIDEV the event whose
# thread is reported
F_RULE, F_EV, F_SLOT, F_MAP, F_LOCK, F_PROC, F_TIME, F_START, F_END = 0, 1, 2, 3, 4, 5, 6, 7, 8
F_EXPO, F_REL, F_SEV, F_TIDEV = 9, 10, 11, 12
NF = 13
