"""The replay's results as named tables: MDL lifetimes, mappings and locks.

Only ``lifecycle/`` knows the kernel's record layout (``records.py``); everything after
it reads these DataFrames, whose columns are documented on each function (and in
docs/architecture.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from traceanalyzer.context.attribution import Context
from traceanalyzer.lifecycle import records as K
from traceanalyzer.lifecycle.codes import END_REASONS, KERNEL_RULES, KIND_NAMES
from traceanalyzer.lifecycle.replay import ReplayResult
from traceanalyzer.model.encoding import gather, take_column
from traceanalyzer.model.schema import CACHE_TYPES, PAGE_SIZE

LIFETIME_COLUMNS: tuple[str, ...] = (
    "lifetime_id", "mdl", "kind", "first_ns", "alloc_ns", "alloc_pid", "alloc_process",
    "alloc_caller", "va", "size", "pages", "bytes", "free_ns", "end_state", "lock_count",
    "mapping_count", "finding_count",
)
MAPPING_COLUMNS: tuple[str, ...] = (
    "mapping_id", "lifetime_id", "mdl", "mode", "pid", "process", "process_wow64",
    "mapped_va", "cache_type", "bytes", "start_ns", "end_ns", "end_reason", "map_tid",
    "map_caller", "unmap_tid", "unmap_caller", "map_call_index",
)
RAW_FINDING_COLUMNS: tuple[str, ...] = (
    "rule", "time_ns", "proc", "lifetime_id", "mapping_id", "call_idx", "released_call",
    "event_call", "process_end", "start_ns", "end_ns", "exposure", "severity_raised",
    "evidence",
)
LOCK_COLUMNS: tuple[str, ...] = (
    "lock_id", "lifetime_id", "mdl", "pid", "process", "user_va", "bytes", "start_ns",
    "end_ns", "end_reason", "caller",
)


def pages_spanned(va: np.ndarray, size: np.ndarray) -> np.ndarray:
    """ceil(((va mod 4096) + size) / 4096); -1 where size is unknown (-1): an MDL the
    trace never saw built has no known size, which is not 0 pages."""
    off = np.where(va == -1, 0, va.astype(np.uint64) % PAGE_SIZE).astype(np.int64)
    return np.where(size < 0, -1, (off + np.maximum(size, 0) + PAGE_SIZE - 1) // PAGE_SIZE)


def nullable(a: np.ndarray) -> pd.arrays.IntegerArray:
    """int64 values -> nullable Int64 (negative = null)."""
    a = np.asarray(a, dtype=np.int64)
    return pd.arrays.IntegerArray(a, a < 0)


def _nullable_u64(a: np.ndarray) -> pd.arrays.IntegerArray:
    """int64 bit patterns of addresses -> nullable UInt64 (-1 = null)."""
    a = np.asarray(a, dtype=np.int64)
    return pd.arrays.IntegerArray(a.view(np.uint64), a == -1)


class LifecycleTables:
    """Decodes one :class:`ReplayResult` into the lifetimes, mappings and locks tables.

    ``calls`` is ``trace.table('calls')``, ``processes`` the trace's process instances
    (``pid``, ``image``, ``wow64``), ``context`` the call attribution.
    """

    def __init__(self, replay: ReplayResult, calls: pa.Table, processes: pd.DataFrame,
                 context: Context) -> None:
        self.replay = replay
        self.calls = calls
        self.context = context
        self.pid_of_proc = processes["pid"].fillna(-1).to_numpy(dtype=np.int64)
        self.image_of_proc = processes["image"].astype(object).where(
            processes["image"].notna(), None).to_numpy()
        self.wow64_of_proc = processes["wow64"].fillna(-1).to_numpy(dtype=np.int64)
        S = self._slots
        pages = pages_spanned(S[:, K.S_VA], S[:, K.S_SIZE])
        #: bytes of each lifetime (pages spanned x 4096), -1 where its size is unknown
        self.slot_bytes = np.where(pages < 0, -1, pages * PAGE_SIZE)

    @property
    def _slots(self) -> np.ndarray:
        S = self.replay.slots
        return S if len(S) else np.zeros((0, K.NS), dtype=np.int64)

    # -- helpers over the stream --------------------------------------------------------

    def call_of(self, stream_idx: np.ndarray) -> np.ndarray:
        """Row in ``calls`` of stream positions (-1 for -1 and for process ends)."""
        return gather(self.replay.call_index, stream_idx, -1)

    def time_at(self, stream_idx: np.ndarray) -> pd.arrays.IntegerArray:
        """Time of stream positions (null where -1)."""
        stream_idx = np.asarray(stream_idx, dtype=np.int64)
        return pd.arrays.IntegerArray(gather(self.replay.time_ns, stream_idx, 0), stream_idx < 0)

    def proc_columns(self, proc: np.ndarray) -> tuple[pd.arrays.IntegerArray, pd.array]:
        """(pid, image) of process instances (null where proc is -1)."""
        proc = np.asarray(proc, dtype=np.int64)
        image = gather(self.image_of_proc, proc, None)
        return nullable(gather(self.pid_of_proc, proc, -1)), pd.array(image, dtype="string")

    def caller_at(self, call_idx: np.ndarray) -> pd.array:
        return pd.array(take_column(self.calls, "caller", call_idx), dtype="string")

    def tid_at(self, call_idx: np.ndarray) -> pd.arrays.IntegerArray:
        return nullable(gather(self.context.tid, call_idx, -1))

    def mdl_of_slots(self, slots: np.ndarray) -> np.ndarray:
        return gather(self._slots[:, K.S_MDL], slots, -1).view(np.uint64)

    def seq_of(self, stream_idx: np.ndarray) -> np.ndarray:
        """``seq`` of stream positions (-1 where -1)."""
        return gather(self.replay.seq, stream_idx, -1)

    @property
    def lifetime_mdl(self) -> np.ndarray:
        """MDL address of each lifetime (int64 bit pattern)."""
        return self._slots[:, K.S_MDL]

    @property
    def lifetime_va(self) -> np.ndarray:
        """Start address each lifetime describes (-1 unknown)."""
        return self._slots[:, K.S_VA]

    @property
    def lifetime_alloc_proc(self) -> np.ndarray:
        """Process instance that allocated each lifetime (-1 unknown)."""
        return self._slots[:, K.S_ALLOC_PROC]

    @property
    def mapping_va(self) -> np.ndarray:
        """Mapped address of each mapping."""
        M = self.replay.mappings
        return M[:, K.M_VA] if len(M) else np.zeros(0, dtype=np.int64)

    def lifetime_starts(self) -> tuple[np.ndarray, np.ndarray]:
        """(seq of each lifetime's first event, its MDL address as int64 bits), in
        lifetime order: what an as-of join of calls onto lifetimes needs."""
        S = self._slots
        return gather(self.replay.seq, S[:, K.S_FIRST_EV], -1), S[:, K.S_MDL]

    # -- the tables -------------------------------------------------------------------

    def lifetimes(self) -> pd.DataFrame:
        """One row per MDL lifetime (an address reused after IoFreeMdl starts a new one).

        Columns: lifetime_id, mdl, kind (io_allocated, nonpaged_built, pages_allocated,
        partial, unknown_origin; '+'-joined when several), first_ns, alloc_ns (null: not
        allocated in the trace), alloc_pid, alloc_process, alloc_caller, va, size, pages,
        bytes (pages x 4096; pages and bytes are null when the size is unknown), free_ns, end_state ('freed', 'open', 'reallocated'), lock_count,
        mapping_count, finding_count (findings of the replay on it).
        """
        S = self._slots
        n = len(S)
        pid, img = self.proc_columns(S[:, K.S_ALLOC_PROC])
        kind_codes = S[:, K.S_KIND]
        kind_names = {k: "+".join(name for bit, name in KIND_NAMES.items() if k & bit)
                      for k in np.unique(kind_codes)}
        F = self.replay.findings
        fs = F[:, K.F_SLOT] if len(F) else np.zeros(0, dtype=np.int64)
        return pd.DataFrame({
            "lifetime_id": np.arange(n),
            "mdl": S[:, K.S_MDL].view(np.uint64),
            "kind": pd.array([kind_names[k] for k in kind_codes], dtype="string"),
            "first_ns": gather(self.replay.time_ns, S[:, K.S_FIRST_EV], -1),
            "alloc_ns": self.time_at(S[:, K.S_ALLOC_EV]),
            "alloc_pid": pid,
            "alloc_process": img,
            "alloc_caller": self.caller_at(self.call_of(S[:, K.S_ALLOC_EV])),
            "va": _nullable_u64(S[:, K.S_VA]),
            "size": nullable(S[:, K.S_SIZE]),
            "pages": nullable(np.where(self.slot_bytes < 0, -1, self.slot_bytes // PAGE_SIZE)),
            "bytes": nullable(self.slot_bytes),
            "free_ns": self.time_at(S[:, K.S_FREE_EV]),
            "end_state": pd.array(np.where(S[:, K.S_FREED] == 1, "freed", np.where(
                S[:, K.S_REALLOC] == 1, "reallocated", "open")), dtype="string"),
            "lock_count": S[:, K.S_NLOCKS].clip(0),
            "mapping_count": S[:, K.S_NMAPS].clip(0),
            "finding_count": np.bincount(fs[fs >= 0], minlength=n)[:n],
        })

    def mappings(self) -> pd.DataFrame:
        """One row per mapping (system or user) of an MDL.

        Columns: mapping_id, lifetime_id, mdl, mode ('KernelMode' | 'UserMode'), pid,
        process, process_wow64, mapped_va, cache_type, bytes (null: the MDL's size is
        unknown), start_ns, end_ns (null:
        live at trace end), end_reason ('unmap', 'unlock' (released by MmUnlockPages),
        'process_exit' (torn down with its process: the pages stay leaked), 'mdl_freed',
        'pages_freed', 'irp_completed', 'live'), map_tid, map_caller, unmap_tid,
        unmap_caller, map_call_index (row of the map call in ``trace.calls``).
        """
        M = self.replay.mappings
        n = len(M)
        if n == 0:
            M = np.zeros((0, K.NM), dtype=np.int64)
        start_call = self.call_of(M[:, K.M_START_EV])
        end_call = self.call_of(M[:, K.M_END_EV])
        proc = M[:, K.M_PROC]
        pid, img = self.proc_columns(proc)
        cache = M[:, K.M_CACHE]
        slots = M[:, K.M_SLOT]
        return pd.DataFrame({
            "mapping_id": np.arange(n),
            "lifetime_id": slots,
            "mdl": self.mdl_of_slots(slots),
            "mode": pd.array(np.where(M[:, K.M_MODE] == 1, "UserMode", "KernelMode"), dtype="string"),
            "pid": pid,
            "process": img,
            "process_wow64": nullable(gather(self.wow64_of_proc, proc, -1)),
            "mapped_va": M[:, K.M_VA].view(np.uint64),
            "cache_type": pd.array(gather(np.asarray(CACHE_TYPES, dtype=object), cache, None),
                                   dtype="string"),
            "bytes": nullable(gather(self.slot_bytes, slots, -1)),
            "start_ns": gather(self.replay.time_ns, M[:, K.M_START_EV], -1),
            "end_ns": self.time_at(M[:, K.M_END_EV]),
            "end_reason": pd.array(np.asarray(END_REASONS, dtype=object)[M[:, K.M_REASON]]
                                   if n else [], dtype="string"),
            "map_tid": self.tid_at(start_call),
            "map_caller": self.caller_at(start_call),
            "unmap_tid": self.tid_at(end_call),
            "unmap_caller": self.caller_at(end_call),
            "map_call_index": start_call,
        })

    def locks(self) -> pd.DataFrame:
        """One row per MmProbeAndLockPages that took effect.

        Columns: lock_id, lifetime_id, mdl, pid, process, user_va (bool: a user buffer,
        whose process hits bug check 0x76 if it exits first), bytes (null: size unknown),
        start_ns, end_ns
        (null: still locked at trace end), end_reason ('unlock', 'irp_completed' or
        'live'), caller.
        """
        L = self.replay.locks
        n = len(L)
        if n == 0:
            L = np.zeros((0, K.NL), dtype=np.int64)
        pid, img = self.proc_columns(L[:, K.L_PROC])
        slots = L[:, K.L_SLOT]
        reason = L[:, K.L_REASON]
        return pd.DataFrame({
            "lock_id": np.arange(n),
            "lifetime_id": slots,
            "mdl": self.mdl_of_slots(slots),
            "pid": pid,
            "process": img,
            "user_va": L[:, K.L_USER] == 1,
            "bytes": nullable(gather(self.slot_bytes, slots, -1)),
            "start_ns": gather(self.replay.time_ns, L[:, K.L_START_EV], -1),
            "end_ns": self.time_at(L[:, K.L_END_EV]),
            "end_reason": pd.array(gather(np.asarray(END_REASONS, dtype=object), reason, "live"),
                                   dtype="string"),
            "caller": self.caller_at(self.call_of(L[:, K.L_START_EV])),
        })

    def raw_findings(self) -> pd.DataFrame:
        """The replay's findings before assembly, one row each.

        Columns: rule, time_ns, proc (process instance it is charged to, -1 none),
        lifetime_id / mapping_id (-1 none), call_idx (row in ``calls`` of the call that
        caused it, -1 for a process end or the end of the trace), released_call (row of
        the earlier call it refers back to: the lock, map or free), event_call (row of
        the triggering call), process_end (triggered by a process end), start_ns,
        end_ns (-1: open at trace end), exposure (user PTEs on released pages from
        start to end), severity_raised (critical instead of the rule's severity),
        evidence (sorted seq of the events involved).
        """
        F = self.replay.findings
        if len(F) == 0:
            F = np.zeros((0, K.NF), dtype=np.int64)
        slot = F[:, K.F_SLOT]
        alloc_ev = gather(self._slots[:, K.S_ALLOC_EV], slot, -1)
        locks = self.replay.locks
        lock_ev = gather(locks[:, K.L_START_EV] if len(locks) else np.zeros(0, dtype=np.int64),
                         F[:, K.F_LOCK], -1)
        ev_seq = np.stack([self.seq_of(alloc_ev), self.seq_of(F[:, K.F_REL]),
                           self.seq_of(F[:, K.F_EV]), self.seq_of(F[:, K.F_TIDEV]),
                           self.seq_of(lock_ev)], axis=1)
        trig = F[:, K.F_EV]
        event_call = self.call_of(trig)
        return pd.DataFrame({
            "rule": np.asarray(KERNEL_RULES, dtype=object)[F[:, K.F_RULE]],
            "time_ns": F[:, K.F_TIME], "proc": F[:, K.F_PROC], "lifetime_id": slot,
            "mapping_id": F[:, K.F_MAP], "call_idx": self.call_of(F[:, K.F_TIDEV]),
            "released_call": self.call_of(F[:, K.F_REL]), "event_call": event_call,
            "process_end": (trig >= 0) & (event_call < 0),
            "start_ns": F[:, K.F_START], "end_ns": F[:, K.F_END],
            "exposure": F[:, K.F_EXPO] == 1, "severity_raised": F[:, K.F_SEV] == 1,
            "evidence": distinct_sorted_rows(ev_seq),
        }, columns=list(RAW_FINDING_COLUMNS))


def distinct_sorted_rows(rows: np.ndarray) -> list[list[int]]:
    """Each row of a 2-D int array as a sorted list of its distinct values >= 0, built
    column-wise (one sort, one Arrow list conversion) rather than a set per row."""
    s = np.sort(np.asarray(rows, dtype=np.int64), axis=1)
    keep = s >= 0
    keep[:, 1:] &= s[:, 1:] != s[:, :-1]
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(s[keep])).to_pylist()
