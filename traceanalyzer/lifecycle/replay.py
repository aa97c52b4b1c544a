"""Build the replay stream from a Trace and its Context, run the kernel.

The stream is the calls table plus one ProcessEnd per ended process instance, in
``seq`` order, as int64 arrays (absent = -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.context.attribution import SRC_ATTACH_BEFORE_TRACE, Context, process_index
from traceanalyzer.lifecycle import kernel
from traceanalyzer.lifecycle.codes import (
    E_ALLOCPAGES, E_ALLOCPAGESEX, E_IOALLOC, E_LOCK, E_LOCKPROC, E_MAP, E_MAPSC, E_PROCEND,
    E_RSV_ALLOC, E_UNMAP, EVENT_CODE,
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
    tables of the kernel (column constants S_*, M_*, L_*, F_* in ``records.py``).
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

    @property
    def n_lifetimes(self) -> int:
        """How many MDL lifetimes the replay saw."""
        return int(len(self.slots))


def u64_column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = table.column(name)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = col.cast(pa.uint64())
    if col.null_count:
        col = pc.fill_null(col, pa.scalar(_U64_NULL, pa.uint64()))
    return col.to_numpy().astype(np.uint64, copy=False).view(np.int64)


def _i64(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = table.column(name)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = col.cast(pa.int64())
    return (pc.fill_null(col, -1) if col.null_count else col).to_numpy().astype(np.int64, copy=False)


def _codes(table: pa.Table, name: str, names: tuple[str, ...]) -> np.ndarray:
    """A string column as indices into ``names`` (-1 for null/other)."""
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    col = table.column(name)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, -1, dtype=np.int64)
    value_set = pa.array(names, pa.string())
    if pa.types.is_dictionary(col.type):  # map the dictionary, then take by the indices
        col = col.unify_dictionaries() if isinstance(col, pa.ChunkedArray) else col
        chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
        if not chunks:
            return np.zeros(0, dtype=np.int64)
        lut = pc.fill_null(pc.index_in(chunks[0].dictionary.cast(pa.string()), value_set), -1)
        lut = np.append(lut.to_numpy().astype(np.int64), -1)  # last slot: null index
        parts = [lut[pc.fill_null(c.indices.cast(pa.int64()), -1).to_numpy()] for c in chunks]
        return np.concatenate(parts)
    idx = pc.index_in(col.cast(pa.string()), value_set=value_set)
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


def _merge_positions(call_seq: np.ndarray, end_seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the sorted calls and the sorted process ends go in the stream merged by seq
    (no sort: a process end goes before the first call after it)."""
    n, m = call_seq.size, end_seq.size
    at = np.searchsorted(call_seq, end_seq)
    end_pos = at + np.arange(m, dtype=np.int64)
    is_end = np.zeros(n + m, dtype=bool)
    is_end[end_pos] = True
    return np.flatnonzero(~is_end), end_pos


def _teardown_seq(call_seq: np.ndarray, call_proc: np.ndarray, ended: pd.DataFrame) -> np.ndarray:
    """Where each ended process (rows of ``ended``) leaves the replay stream: after the
    last call that ran in its context (its own threads, or a thread attached to it) after
    its ProcessEnd event, else at that event. Windows logs the event as the process starts
    to exit (PspExitProcess), before its handles are run down (IRP_MJ_CLEANUP of each, in
    its context) and its address space deleted: an unmap or unlock there is its driver's
    cleanup, not a call after the exit. The stream position is a seq just after that call."""
    end_seq = ended["end_seq"].to_numpy(dtype=np.int64)
    out = end_seq.copy()
    if not call_seq.size or not end_seq.size:
        return out
    inst = ended["proc_id"].to_numpy(dtype=np.int64)
    row_of = np.full(int(max(inst.max(), call_proc.max())) + 1, -1, dtype=np.int64)
    row_of[inst] = np.arange(inst.size)
    proc = np.asarray(call_proc, dtype=np.int64)
    row = np.where(proc >= 0, row_of[np.maximum(proc, 0)], -1)
    late = np.flatnonzero(row >= 0)
    late = late[call_seq[late] > end_seq[row[late]]]
    np.maximum.at(out, row[late], call_seq[late] + 1)
    return out


def _dense_ids(*address_arrays: np.ndarray) -> tuple[list[np.ndarray], int]:
    """One dense id space over several address arrays (-1 stays -1); only the valid
    addresses are hashed (Arrow's dictionary_encode: ~2x pd.factorize)."""
    valid = [arr != -1 for arr in address_arrays]
    values = np.concatenate([arr[ok] for arr, ok in zip(address_arrays, valid)])
    if values.size:
        encoded = pc.dictionary_encode(pa.array(values))
        codes, count = encoded.indices.to_numpy(), len(encoded.dictionary)
    else:
        codes, count = np.zeros(0, dtype=np.int64), 0
    out, start = [], 0
    for arr, ok in zip(address_arrays, valid):
        ids = np.full(arr.size, -1, dtype=np.int64)
        k = int(ok.sum())
        ids[ok] = codes[start:start + k]
        start += k
        out.append(ids)
    return out, count


@dataclass
class PreparedReplay:
    """The kernel's input, built but not yet run (benchmarks time ``run`` alone)."""

    input: kernel.ReplayInput
    sizes: kernel.ReplaySizes
    seq: np.ndarray
    use_jit: bool

    def run(self) -> ReplayResult:
        """Run the state machine (fresh lookups each time, so it can be repeated)."""
        scratch = kernel.new_scratch(self.use_jit, self.sizes.n_addresses)
        kern = kernel.replay_jit if self.use_jit else kernel.replay_py
        S, M, L, F = kern(self.input, self.sizes, scratch)
        sz = self.sizes
        S, M, L = _owned(S, sz.n_slots + 1), _owned(M, sz.n_maps + 1), _owned(L, sz.n_locks + 1)
        F = F.copy()  # grown by doubling: up to half of it unused
        inp = self.input
        return ReplayResult(
            call_index=inp.cidx, seq=self.seq, time_ns=inp.t, proc=inp.proc,
            slots=S, mappings=M, locks=L, findings=F, engine="jit" if self.use_jit else "python",
        )


def _owned(records: np.ndarray, capacity: int) -> np.ndarray:
    """The kernel's records: the used rows of an array of ``capacity`` rows (sized for the
    worst case), copied out when much of it is unused, so that the result does not keep
    the whole allocation alive (~100 MB at 1.5M calls)."""
    return records.copy() if records.shape[0] < 0.8 * capacity else records


def run_replay(trace: Trace, ctx: Context, engine: Engine = "auto") -> ReplayResult:
    """Replay every MDL of ``trace`` (calls attributed by ``ctx``)."""
    return prepare_replay(trace, ctx, engine).run()


#: dtype of the small codes the kernel reads (event, access mode, cache type, success):
#: 1 byte instead of 8 per call (~50 MB less at 1.5M calls, with the int32 ids).
CODE = np.int8


def prepare_replay(trace: Trace, ctx: Context, engine: Engine = "auto") -> PreparedReplay:
    """Build the kernel's input arrays for ``trace`` (see :func:`run_replay`)."""
    calls = trace.table("calls")
    n = calls.num_rows
    ev = _codes(calls, "event", tuple(EVENT_CODE))
    seq = _i64(calls, "seq")
    procs = trace.processes
    ended = procs[procs["end_seq"].notna()]
    teardown = _teardown_seq(seq, ctx.proc_id, ended)
    order = np.argsort(teardown, kind="stable")
    ended, teardown = ended.iloc[order], teardown[order]
    pe_seq = ended["end_seq"].to_numpy(dtype=np.int64)
    call_pos, end_pos = _merge_positions(seq, teardown)
    m = pe_seq.size

    def stream(call_values: np.ndarray, end_values: np.ndarray, dtype: type = np.int64) -> np.ndarray:
        if m == 0:
            return np.ascontiguousarray(call_values, dtype=dtype)
        out = np.empty(n + m, dtype=dtype)  # a scatter: cheaper than concatenate + gather
        out[call_pos] = call_values
        out[end_pos] = end_values
        return out

    blank = np.full(m, -1, dtype=np.int64)
    call_index = stream(np.arange(n, dtype=np.int64), blank)
    s_ev = stream(ev, np.full(m, E_PROCEND, dtype=np.int64), CODE)
    s_seq = stream(seq, pe_seq)
    s_t = stream(_i64(calls, "time_ns"), ended["end_ns"].to_numpy(dtype=np.int64))
    s_proc = stream(ctx.proc_id.astype(np.int64), ended["proc_id"].to_numpy(dtype=np.int64))
    mdl = u64_column(calls, "mdl")
    src = u64_column(calls, "source_mdl")
    (mdl_id, src_id), n_addresses = _dense_ids(mdl, src)

    def per_call(values: np.ndarray, dtype: type = np.int64) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=dtype)  # indexed through cidx by the kernel

    # ids as int32 while they fit (always, short of 2**31 distinct MDLs or processes)
    ids = np.int32 if max(n_addresses, len(procs)) < 2**31 - 1 else np.int64

    pids = procs["pid"].to_numpy(dtype=np.int64)
    inp = kernel.ReplayInput(
        ev=s_ev, t=s_t, proc=s_proc, mdl=per_call(mdl),
        va=per_call(u64_column(calls, "va")),
        size=per_call(u64_column(calls, "size")),
        req=per_call(u64_column(calls, "requested_size")),
        mode=per_call(_codes(calls, "access_mode", ACCESS_MODES), CODE),
        cache=per_call(_codes(calls, "cache_type", CACHE_TYPES), CODE),
        mva=per_call(u64_column(calls, "mapped_va")),
        ok=per_call(_status_ok(calls), CODE),
        irp=per_call(u64_column(calls, "irp")),
        tproc=per_call(process_index(trace, seq, _i64(calls, "target_pid")), ids),
        tag=per_call(_i64(calls, "tag")),
        mdl_id=per_call(mdl_id, ids), src_id=per_call(src_id, ids), cidx=call_index,
        proc_is_system=np.isin(pids, [SYSTEM_PID, IDLE_PID]).astype(np.int64),
        pre_attached=per_call(ctx.source == SRC_ATTACH_BEFORE_TRACE, CODE),
    )
    counts = np.bincount(ev[ev >= 0], minlength=len(EVENT_CODE)) if n else np.zeros(len(EVENT_CODE), int)
    sizes = kernel.ReplaySizes(
        n_slots=int(counts[[E_IOALLOC, E_ALLOCPAGES, E_ALLOCPAGESEX]].sum()) + n_addresses + 1,
        n_maps=int(counts[[E_MAPSC, E_MAP]].sum()) + 1,
        n_locks=int(counts[[E_LOCK, E_LOCKPROC]].sum()) + 1,
        n_rsv=int(counts[E_RSV_ALLOC]) + 1,
        n_addresses=n_addresses,
        n_unmaps=int(counts[E_UNMAP]) + 1,
    )
    use_jit = engine == "jit" or (engine == "auto" and s_ev.size >= JIT_THRESHOLD)
    return PreparedReplay(inp, sizes, s_seq, use_jit)
