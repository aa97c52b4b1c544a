"""The effective process of every call (docs/trace-format.md, "Process context").

1. ``effective_pid`` on the row wins.
2. Else the calling thread (``tid``, or the thread the last CSwitch on ``cpu`` switched
   in): if it is inside KeStackAttachProcess, the attached process (top of its attach
   stack); if it is inside one made before the trace began (see below), no process (-1,
   source ``attach_before_trace``); otherwise its owning process from its thread instance
   (ThreadStart, ThreadRundown, or ThreadRundownEnd: :mod:`traceanalyzer.model.instances`;
   else the row's ``pid``; or the ``new_pid`` of that CSwitch).
3. Else unresolved.

A KeUnstackDetachProcess on a thread whose attach stack (as the trace shows it) is empty
is DETACH_MISMATCH only when the thread started in the trace: a new thread is not
attached. A thread alive when the trace began may have been attached then (once per
such detach): the detach pops that attach, and the thread's calls from the trace start
up to it, outside the attaches the trace shows, ran in a process the trace does not name.

Everything is an as-of join on ``seq`` (:func:`asof_index`, one compiled merge) except
the attach stacks, which are walked in order (attach calls are rare).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.model.asof import asof_index
from traceanalyzer.model.encoding import event_masks
from traceanalyzer.model.instances import live_thread_index
from traceanalyzer.model.trace import Trace

#: How a call's process was found (``Context.source`` codes).
#: ``attach_before_trace``: the thread was attached before the trace began, to a process
#: the trace does not name (pid -1, but not unresolved: rules that take a call without a
#: process as running in an arbitrary context do not fire on it).
SOURCE_NAMES = ("unresolved", "effective_pid", "attach", "thread", "row_pid", "cswitch_pid",
                "attach_before_trace")
(SRC_UNRESOLVED, SRC_EFFECTIVE, SRC_ATTACH, SRC_THREAD, SRC_ROW, SRC_CSWITCH,
 SRC_ATTACH_BEFORE_TRACE) = range(7)


def _col(table: pa.Table, name: str, fill: int = -1) -> np.ndarray:
    """An integer column as int64 numpy with nulls as ``fill`` (absent column: all fill)."""
    if name not in table.column_names:
        return np.full(table.num_rows, fill, dtype=np.int64)
    col = table.column(name)
    if col.null_count:
        col = pc.fill_null(col, fill)
    return col.to_numpy().astype(np.int64, copy=False)


@dataclass
class AttachFinding:
    """An attach-stack misuse seen while walking attach/detach calls."""

    rule: str  # ATTACH_UNBALANCED or DETACH_MISMATCH
    call_index: int  # index into the calls table of the attach (or detach) call
    time_ns: int
    end_time_ns: int | None  # thread end for ATTACH_UNBALANCED, None at trace end


@dataclass
class Context:
    """Per-call context, arrays aligned with ``trace.table('calls')``.

    tid: resolved calling thread (-1 unknown); thread_id: thread instance (-1);
    pid: effective pid (-1 unresolved); proc_id: process instance of that pid (-1);
    owner_pid: the thread's own process (-1); source: SOURCE_NAMES code;
    attached: the thread was inside KeStackAttachProcess (also one made before the trace).
    """

    tid: np.ndarray
    thread_id: np.ndarray
    pid: np.ndarray
    proc_id: np.ndarray
    owner_pid: np.ndarray
    owner_proc_id: np.ndarray
    source: np.ndarray
    attached: np.ndarray
    attach_findings: list[AttachFinding] = field(default_factory=list)

    @property
    def unresolved(self) -> np.ndarray:
        return self.source == SRC_UNRESOLVED

    def to_frame(self) -> pd.DataFrame:
        """Columns: tid, thread_id, pid, proc_id, owner_pid, source (name), attached."""
        return pd.DataFrame(
            {
                "tid": self.tid, "thread_id": self.thread_id, "pid": self.pid,
                "proc_id": self.proc_id, "owner_pid": self.owner_pid,
                "source": pd.Categorical.from_codes(self.source, SOURCE_NAMES),
                "attached": self.attached,
            }
        )


def carried_calls(trace: Trace) -> np.ndarray:
    """The calls before the span of ``trace``: the KeStackAttachProcess calls a
    ``trace.window`` keeps because they are open at its start. They set the context of
    the window's calls; their own (IRQL, context) is the whole trace's to report."""
    return _col(trace.table("calls"), "time_ns") < trace.time_span_ns[0]


def unresolved_in_span(ctx: Context, trace: Trace) -> int:
    """Calls of ``trace`` whose process could not be resolved (the ``unresolved_context``
    counter), not counting :func:`carried_calls`."""
    return int(np.count_nonzero(ctx.unresolved & ~carried_calls(trace)))


def process_index(trace: Trace, seq: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """Process instance (``trace.processes.proc_id``) of each (seq, pid); -1 when pid is -1."""
    procs = trace.processes
    start = procs["start_seq"].fillna(-1).to_numpy(dtype=np.int64)
    return asof_index(seq, pid, start, procs["pid"].to_numpy(dtype=np.int64))


def attribute(trace: Trace) -> Context:
    """Resolve the thread and effective process of every call of ``trace``."""
    calls = trace.table("calls")
    n = calls.num_rows
    seq = _col(calls, "seq")
    row_tid = _col(calls, "tid")
    row_pid = _col(calls, "pid")
    cpu = _col(calls, "cpu")

    # 1. thread: the row's tid, else the last CSwitch on that cpu
    tid = row_tid.copy()
    cs_pid = np.full(n, -1, dtype=np.int64)
    need = tid == -1
    # (a trace loaded without its CSwitch rows reads them only here, when a call needs them)
    cs = trace.table("cswitch", all_columns=False) if need.any() else None
    if cs is not None and cs.num_rows:
        idx = asof_index(seq[need], cpu[need], _col(cs, "seq"), _col(cs, "cpu"), strict=True)
        hit = idx >= 0
        new_tid = _col(cs, "new_tid")
        new_pid = _col(cs, "new_pid")
        sub_tid = np.full(idx.size, -1, dtype=np.int64)
        sub_pid = np.full(idx.size, -1, dtype=np.int64)
        sub_tid[hit] = new_tid[idx[hit]]
        sub_pid[hit] = new_pid[idx[hit]]
        tid[need] = sub_tid
        cs_pid[need] = sub_pid

    # 2. thread instance -> owning process
    threads = trace.threads
    t_pid = threads["pid"].fillna(-1).to_numpy(dtype=np.int64)
    thread_id = live_thread_index(threads, seq, tid)
    owner = np.full(n, -1, dtype=np.int64)
    source = np.full(n, SRC_UNRESOLVED, dtype=np.int8)
    has_thread = thread_id >= 0
    owner[has_thread] = t_pid[thread_id[has_thread]]
    source[has_thread & (owner != -1)] = SRC_THREAD
    use_row = (owner == -1) & (row_pid != -1)
    owner[use_row] = row_pid[use_row]
    source[use_row] = SRC_ROW
    use_cs = (owner == -1) & (cs_pid != -1)
    owner[use_cs] = cs_pid[use_cs]
    source[use_cs] = SRC_CSWITCH

    # 3. attach stacks
    attached_pid, before_trace, attach_findings = _attach_states(trace, calls, seq, tid, thread_id)
    pid = owner.copy()
    att = attached_pid != -1
    pid[att] = attached_pid[att]
    source[att] = SRC_ATTACH
    pid[before_trace] = -1  # attached before the trace: to a process it does not name
    source[before_trace] = SRC_ATTACH_BEFORE_TRACE
    att |= before_trace

    # 4. effective_pid wins
    eff = _col(calls, "effective_pid")
    has_eff = eff != -1
    pid[has_eff] = eff[has_eff]
    source[has_eff] = SRC_EFFECTIVE

    return Context(
        tid=tid,
        thread_id=thread_id,
        pid=pid,
        proc_id=process_index(trace, seq, pid),
        owner_pid=owner,
        owner_proc_id=process_index(trace, seq, owner),
        source=source,
        attached=att,
        attach_findings=attach_findings,
    )


def _attach_states(
    trace: Trace, calls: pa.Table, seq: np.ndarray, tid: np.ndarray,
    thread_id: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[AttachFinding]]:
    """Walk KeStackAttachProcess/KeUnstackDetachProcess per thread.

    Returns the attached pid for every call (-1 when not attached; a call sees the
    state left by calls strictly before it), whether the call ran inside an attach made
    before the trace began (module docstring; that detach included), and the attach
    findings.
    """
    n = calls.num_rows
    is_attach, is_detach = event_masks(calls.column("event"), "KeStackAttachProcess",
                                       "KeUnstackDetachProcess")
    idx = np.flatnonzero(is_attach | is_detach)
    if idx.size == 0:
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool), []
    target = _col(calls, "target_pid")
    times = _col(calls, "time_ns")
    # thread key: the thread instance, else the raw tid numbered after the instances
    # (no arithmetic on the tid: a tid near 2**63 must not wrap into an instance index)
    n_threads = len(trace.threads)
    raw = (thread_id < 0) & (tid >= 0)
    key = np.where(thread_id >= 0, thread_id, -1)
    if raw.any():
        key[raw] = n_threads + np.unique(tid[raw], return_inverse=True)[1].reshape(-1)
    # a thread the trace shows start (ThreadStart, or a tid reused after its end) was not
    # attached then; any other may have been attached before the trace began
    started = trace.threads["start_seq"].fillna(-1).to_numpy(dtype=np.int64) >= 0
    stacks: dict[int, list[tuple[int, int]]] = {}
    change_seq, change_key, change_pid = [], [], []
    findings: list[AttachFinding] = []
    last_early_detach: dict[int, int] = {}  # thread key -> its last detach of such an attach
    for i in idx:
        k = int(key[i])
        if k == -1:
            continue  # no thread: the attach cannot be followed (counted as unresolved)
        stack = stacks.setdefault(k, [])
        if is_attach[i]:
            stack.append((int(target[i]), int(i)))
        elif stack:
            stack.pop()
        elif k < n_threads and started[k]:
            findings.append(AttachFinding("DETACH_MISMATCH", int(i), int(times[i]), None))
            continue
        else:
            last_early_detach[k] = int(seq[i])  # pops an attach made before the trace
            continue
        change_seq.append(seq[i])
        change_key.append(k)
        change_pid.append(stack[-1][0] if stack else -1)
    # threads that end (or the trace that ends) with a non-empty stack
    thread_end_ns = trace.threads["end_ns"]  # Int64: exact (no float round trip near 2**63)
    for k, stack in stacks.items():
        if not stack:
            continue
        first = stack[0][1]
        end_ns = None
        if k < n_threads and not pd.isna(thread_end_ns.iat[k]):
            end_ns = int(thread_end_ns.iat[k])
        findings.append(AttachFinding("ATTACH_UNBALANCED", first, int(times[first]), end_ns))
    out = np.full(n, -1, dtype=np.int64)
    if change_seq:
        ch = asof_index(seq, key, np.asarray(change_seq, dtype=np.int64),
                        np.asarray(change_key, dtype=np.int64), strict=True)
        pids = np.asarray(change_pid, dtype=np.int64)
        out[ch >= 0] = pids[ch[ch >= 0]]
        # a call after its thread ended is not attached any more
    # up to a thread's last detach of an attach made before the trace, its calls outside
    # the attaches the trace shows ran in that earlier attach
    before_trace = np.zeros(n, dtype=bool)
    if last_early_detach:
        until = np.full(int(key.max()) + 1, -1, dtype=np.int64)
        until[list(last_early_detach)] = list(last_early_detach.values())
        has_key = key >= 0
        before_trace[has_key] = seq[has_key] <= until[key[has_key]]
        before_trace &= out == -1
    return out, before_trace, findings
