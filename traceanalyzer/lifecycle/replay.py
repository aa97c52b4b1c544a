"""Build the replay stream from a Trace and its Context, run the kernel.

The stream is the calls table plus one ProcessEnd per ended process instance, in
``seq`` order, as int64 arrays (absent = -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.context.attribution import Context, process_index
from traceanalyzer.lifecycle import kernel
from traceanalyzer.lifecycle.codes import (
    E_ALLOCPAGES, E_ALLOCPAGESEX, E_IOALLOC, E_LOCK, E_LOCKPROC, E_MAP, E_MAPSC, E_PROCEND,
    E_RSV_ALLOC, EVENT_CODE,
)
from traceanalyzer.model.schema import ACCESS_MODES, CACHE_TYPES, IDLE_PID, SYSTEM_PID
from traceanalyzer.model.trace import Trace

Engine = Literal["auto", "jit", "python"]

#: Below this many stream events the kernel runs as plain Python (no compile wait).
JIT_THRESHOLD = 20_000

_U64_NULL = np.iinfo(np.uint64).max


@dataclass
class ReplayResult:
    """Raw kernel output plus the stream it ran on.

    stream_*: arrays over the stream (``call_index`` = row in ``trace.table('calls')``,
    -1 for synthesised ProcessEnd entries). slots/mappings/locks/findings: the record
    tables of ``kernel.py`` (column constants S_*, M_*, L_*, F_* there).
    """

    call_index: np.ndarray
    seq: np.ndarray
    time_ns: np.ndarray
    proc: np.ndarray
    slots: np.ndarray
    mappings: np.ndarray
    locks: np.ndarray
    findings: np.ndarray
    engine: str


def u64_column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = table.column(name)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = pc.fill_null(col.cast(pa.uint64()), pa.scalar(_U64_NULL, pa.uint64()))
    return col.to_numpy().astype(np.uint64, copy=False).view(np.int64)


def _i64(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = table.column(name)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, -1, dtype=np.int64)
    return pc.fill_null(col.cast(pa.int64()), -1).to_numpy().astype(np.int64, copy=False)


def _codes(table: pa.Table, name: str, names: tuple[str, ...]) -> np.ndarray:
    """A string column as indices into ``names`` (-1 for null/other)."""
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = table.column(name)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, -1, dtype=np.int64)
    idx = pc.index_in(col.cast(pa.string()), value_set=pa.array(names, pa.string()))
    return pc.fill_null(idx, -1).to_numpy().astype(np.int64, copy=False)


def _status_ok(table: pa.Table) -> np.ndarray:
    """1 where the call succeeded (no status, or NT_SUCCESS), 0 where it failed/raised."""
    if "status" not in table.column_names:
        return np.ones(table.num_rows, dtype=np.int64)
    col = table.column("status")
    if pa.types.is_null(col.type):
        return np.ones(table.num_rows, dtype=np.int64)
    uniq = pc.unique(col).to_pylist()
    failed = []
    for text in uniq:
        if text is None:
            continue
        t = str(text).strip().lower()
        if t == "exception":
            failed.append(text)
            continue
        try:
            value = int(t, 0)
        except ValueError:
            continue
        if value & 0x80000000:
            failed.append(text)
    if not failed:
        return np.ones(table.num_rows, dtype=np.int64)
    bad = pc.fill_null(pc.is_in(col, value_set=pa.array(failed, col.type)), False)
    return 1 - bad.to_numpy(zero_copy_only=False).astype(np.int64)


def run_replay(trace: Trace, ctx: Context, engine: Engine = "auto") -> ReplayResult:
    """Replay every MDL of ``trace`` (calls attributed by ``ctx``)."""
    calls = trace.table("calls")
    n = calls.num_rows
    ev = _codes(calls, "event", tuple(EVENT_CODE))
    seq = _i64(calls, "seq")
    procs = trace.processes
    ended = procs[procs["end_seq"].notna()]
    pe_seq = ended["end_seq"].to_numpy(dtype=np.int64)
    order = np.argsort(np.concatenate([seq, pe_seq]), kind="stable")

    def stream(call_values: np.ndarray, end_values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate([call_values, end_values])[order])

    m = pe_seq.size
    blank = np.full(m, -1, dtype=np.int64)
    call_index = stream(np.arange(n, dtype=np.int64), blank)
    s_ev = stream(ev, np.full(m, E_PROCEND, dtype=np.int64))
    s_seq = stream(seq, pe_seq)
    s_t = stream(_i64(calls, "time_ns"), ended["end_ns"].to_numpy(dtype=np.int64))
    s_proc = stream(ctx.proc_id.astype(np.int64), ended["proc_id"].to_numpy(dtype=np.int64))
    s_mdl = stream(u64_column(calls, "mdl"), blank)
    args = (
        s_ev, s_t, s_proc, s_mdl,
        stream(u64_column(calls, "va"), blank),
        stream(u64_column(calls, "size"), blank),
        stream(u64_column(calls, "requested_size"), blank),
        stream(_codes(calls, "access_mode", ACCESS_MODES), blank),
        stream(_codes(calls, "cache_type", CACHE_TYPES), blank),
        stream(u64_column(calls, "mapped_va"), blank),
        stream(_status_ok(calls), np.ones(m, dtype=np.int64)),
        stream(u64_column(calls, "irp"), blank),
        stream(process_index(trace, seq, _i64(calls, "target_pid")), blank),
        stream(u64_column(calls, "source_mdl"), blank),
        stream(_i64(calls, "tag"), blank),
    )
    pids = procs["pid"].to_numpy(dtype=np.int64)
    is_system = np.isin(pids, [SYSTEM_PID, IDLE_PID]).astype(np.int64)
    n_alloc = int(np.isin(ev, [E_IOALLOC, E_ALLOCPAGES, E_ALLOCPAGESEX]).sum())
    valid_mdl = s_mdl[s_mdl != -1]
    n_slots = n_alloc + (int(np.unique(valid_mdl).size) if valid_mdl.size else 0) + 1
    n_maps = int(np.isin(ev, [E_MAPSC, E_MAP]).sum()) + 1
    n_locks = int(np.isin(ev, [E_LOCK, E_LOCKPROC]).sum()) + 1
    n_rsv = int((ev == E_RSV_ALLOC).sum()) + 1
    use_jit = engine == "jit" or (engine == "auto" and s_ev.size >= JIT_THRESHOLD)
    slot_of, sysva, rsv, irp_head = kernel.new_dicts(use_jit)
    run = kernel.replay_jit if use_jit else kernel.replay_py
    S, M, L, F = run(*args, is_system, slot_of, sysva, rsv, irp_head, n_slots, n_maps, n_locks,
                     n_rsv)
    return ReplayResult(
        call_index=call_index, seq=s_seq, time_ns=s_t, proc=s_proc,
        slots=S, mappings=M, locks=L, findings=F, engine="jit" if use_jit else "python",
    )
