"""Analysis: context -> replay -> findings, lifecycles, mappings, locks, leak timeline.

``df_*`` methods (and the properties of the same name) return DataFrames whose
columns are documented on each; ``plot_*`` methods return matplotlib Figures built on
them; ``summary()`` returns the ``hazards --json`` dict of ``docs/cli.md``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from traceanalyzer.coverage import no_calls_notice
from traceanalyzer.context.attribution import Context, asof_index, attribute
from traceanalyzer.lifecycle import kernel as K
from traceanalyzer.lifecycle.codes import END_REASONS, KIND_NAMES
from traceanalyzer.lifecycle.replay import Engine, ReplayResult, prepare_replay, u64_column
from traceanalyzer.model.schema import CACHE_TYPES, PAGE_SIZE
from traceanalyzer.model.stats import LOSS_COUNTERS, QUALITY_COUNTERS
from traceanalyzer.model.trace import Trace
from traceanalyzer.rules.assemble import (
    FINDING_COLUMNS, FindingAssembler, _nullable, fingerprint, gather, kernel_partials,
    pages_spanned, partial_frame,
)
from traceanalyzer.rules.stateless import STATELESS_RULES, RuleInput
from traceanalyzer.vocabulary import (
    SEVERITIES, format_address, int_or_none, is_missing, str_or_none,
)

__all__ = ["Analysis", "analyze", "fingerprint", "pages_spanned", "FINDING_COLUMNS"]


def _nullable_u64(a: np.ndarray) -> pd.arrays.IntegerArray:
    """int64 bit patterns of addresses -> nullable UInt64 (-1 = null)."""
    a = np.asarray(a, dtype=np.int64)
    return pd.arrays.IntegerArray(a.view(np.uint64), a == -1)


class Analysis:
    """The result of replaying a trace. Build with :func:`traceanalyzer.analyze`."""

    def __init__(self, trace: Trace, engine: Engine = "auto",
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.trace = trace
        n_calls = trace.table("calls").num_rows
        report = progress or (lambda done, total: None)
        report(0, n_calls)
        self.context: Context = attribute(trace)
        report(n_calls // 3, n_calls)
        prepared = prepare_replay(trace, self.context, engine)
        report(2 * n_calls // 3, n_calls)
        self.replay: ReplayResult = prepared.run()
        report(n_calls, n_calls)
        self._calls = trace.table("calls")
        self._procs = trace.processes
        lo, hi = trace.time_span_ns
        self.trace_end_ns = hi
        self.trace_start_ns = lo

    # --- helpers -----------------------------------------------------------------------

    @cached_property
    def _assembler(self) -> FindingAssembler:
        return FindingAssembler(self._calls, self.context, self.replay, self._procs,
                                self.trace_end_ns)

    def _calls_at(self, column: str, idx: np.ndarray) -> np.ndarray:
        """Values of a calls column at row indices (None where idx is -1)."""
        return self._assembler.take_calls(column, np.asarray(idx, dtype=np.int64))

    def _proc_columns(self, proc: np.ndarray) -> tuple[pd.arrays.IntegerArray, pd.array]:
        """(pid, image) of process instances (null where proc is -1)."""
        a = self._assembler
        proc = np.asarray(proc, dtype=np.int64)
        pid = gather(a.pid_of_proc, proc, -1)
        image = gather(a.image_of_proc, proc, None)
        return _nullable(pid), pd.array(image, dtype="string")

    def _tid_at(self, call_idx: np.ndarray) -> pd.arrays.IntegerArray:
        call_idx = np.asarray(call_idx, dtype=np.int64)
        return _nullable(gather(self.context.tid, call_idx, -1))

    def _time_at(self, stream_idx: np.ndarray) -> pd.arrays.IntegerArray:
        stream_idx = np.asarray(stream_idx, dtype=np.int64)
        t = gather(self.replay.time_ns, stream_idx, 0)
        return pd.arrays.IntegerArray(t.astype(np.int64), stream_idx < 0)

    def _call_of(self, stream_idx: np.ndarray) -> np.ndarray:
        stream_idx = np.asarray(stream_idx, dtype=np.int64)
        return gather(self.replay.call_index, stream_idx, -1)

    # --- findings ----------------------------------------------------------------------

    @cached_property
    def findings(self) -> pd.DataFrame:
        """One row per finding, most severe first, then by impact.

        Columns: rule, severity, time_ns, pid, process (image name), tid, mdl (uint64),
        caller (module+offset of the call that caused it), event (the triggering event),
        bytes (pages spanned x 4096; for a RESERVED_* finding without an MDL, the
        reservation's size), impact_byte_seconds (bytes x seconds held, from
        start_ns to end_ns), start_ns, end_ns (when the hazard ended; trace end if it did
        not), exposure_start_ns / exposure_end_ns (UNLOCK_WHILE_USER_MAPPED and
        FREE_PAGES_WHILE_USER_MAPPED: while user PTEs pointed at released pages),
        message, advice, fingerprint (rule + caller + process image), evidence (list of
        seq of the events that led to it), lifetime_id, mapping_id, count (aggregated
        trace-quality rows: how many; else 1), call_pid / call_process (the effective
        process the triggering call ran in, from context attribution: e.g. System for an
        unlock from a worker thread, while ``pid`` is the process whose memory it hurts).
        """
        parts = [kernel_partials(self.replay), self._attach_partials(),
                 self._stateless_partials(), self._quality_partials()]
        parts = [p for p in parts if len(p)]
        partials = pd.concat(parts, ignore_index=True) if parts else partial_frame(0)
        return self._assembler.assemble(partials)

    def df_findings(self) -> pd.DataFrame:
        """Same as :attr:`findings`."""
        return self.findings

    @cached_property
    def _call_seq(self) -> np.ndarray:
        return self._calls.column("seq").to_numpy()

    @cached_property
    def _call_time(self) -> np.ndarray:
        return self._calls.column("time_ns").to_numpy()

    def _attach_partials(self) -> pd.DataFrame:
        af = self.context.attach_findings
        if not af:
            return partial_frame(0)
        idx = np.array([f.call_index for f in af], dtype=np.int64)
        t = np.array([f.end_time_ns if f.end_time_ns is not None else f.time_ns for f in af],
                     dtype=np.int64)
        return partial_frame(
            len(af), rule=np.array([f.rule for f in af], dtype=object), time_ns=t,
            proc=self.context.owner_proc_id[idx], call_idx=idx, start_ns=t, end_ns=t,
            evidence=[[int(self._call_seq[i])] for i in idx],
        )

    def _stateless_partials(self) -> pd.DataFrame:
        inp = RuleInput(self._calls, self.mappings, self._procs)
        frames = []
        for fn in STATELESS_RULES.values():
            hits = fn(inp)
            if not len(hits):
                continue
            idx = hits["call_index"].to_numpy(dtype=np.int64)
            m = (hits["mapping_id"].fillna(-1).to_numpy(dtype=np.int64)
                 if "mapping_id" in hits else np.full(len(idx), -1, dtype=np.int64))
            t = self._call_time[idx]
            frames.append(partial_frame(
                len(idx), rule=hits["rule"].to_numpy(dtype=object), time_ns=t,
                proc=self.context.proc_id[idx], slot=self._slot_of_call[idx], call_idx=idx,
                start_ns=t, end_ns=t, mapping_id=m,
                evidence=[[int(s)] for s in self._call_seq[idx]],
            ))
        return pd.concat(frames, ignore_index=True) if frames else partial_frame(0)

    @cached_property
    def _slot_of_call(self) -> np.ndarray:
        """For each call row, the MDL lifetime it touched (-1 if none): the newest
        lifetime of that address that started at or before the call."""
        R = self.replay
        S = R.slots
        if S.size == 0:
            return np.full(self._calls.num_rows, -1, dtype=np.int64)
        mdl = u64_column(self._calls, "mdl")
        first_seq = R.seq[S[:, K.S_FIRST_EV]]
        return asof_index(self._call_seq.astype(np.int64), mdl, first_seq, S[:, K.S_MDL])

    def _quality_partials(self) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        unresolved = self.context.unresolved
        if unresolved.any():
            events = np.asarray(self._calls.column("event").cast(pa.string()).to_pylist(),
                                dtype=object)
            idx = np.flatnonzero(unresolved)
            names, first, counts = np.unique(events[idx], return_index=True, return_counts=True)
            for name, f, c in zip(names, idx[first], counts):
                t = int(self._call_time[f])
                rows.append(dict(rule="TRACE_CONTEXT_UNRESOLVED", time_ns=t, call_idx=int(f),
                                 start_ns=t, end_ns=t, event=name, count=int(c),
                                 evidence=[int(self._call_seq[f])]))
        t0, t1 = self.trace_start_ns, self.trace_end_ns
        for name, count in self.trace.stats.by_detail("unknown_events").items():
            rows.append(dict(rule="TRACE_UNKNOWN_EVENT", time_ns=t0, start_ns=t0, end_ns=t0,
                             event=name or None, count=int(count)))
        lost = self.trace.stats.total("lost_events") + self.trace.stats.total("lost_buffers")
        if lost:
            rows.append(dict(rule="TRACE_EVENTS_LOST", time_ns=t0, start_ns=t0, end_ns=t0,
                             count=int(lost)))
        disorder = self.trace.stats.total("time_disorder")
        if disorder:
            rows.append(dict(rule="TRACE_TIME_DISORDER", time_ns=t0, start_ns=t0, end_ns=t0,
                             count=int(disorder)))
        open_locks = self.locks[self.locks["end_reason"] == "live"]
        open_maps = self.mappings[self.mappings["end_reason"] == "live"]
        n_open = len(open_locks) + len(open_maps)
        if n_open:
            rows.append(dict(rule="TRACE_OPEN_AT_END", time_ns=t1, start_ns=t1, end_ns=t1,
                             count=n_open,
                             bytes=int(open_locks["bytes"].sum() + open_maps["bytes"].sum())))
        if not rows:
            return partial_frame(0)
        cols = {c: [r.get(c) for r in rows] for c in {k for r in rows for k in r}}
        frame = partial_frame(len(rows))
        for c, values in cols.items():
            if c in ("rule", "event", "evidence"):
                frame[c] = [v if v is not None else ([] if c == "evidence" else None) for v in values]
            else:
                frame[c] = [v if v is not None else -1 for v in values]
        return frame

    # --- lifecycles, mappings, locks --------------------------------------------------

    @cached_property
    def lifecycles(self) -> pd.DataFrame:
        """One row per MDL lifetime (an address reused after IoFreeMdl starts a new one).

        Columns: lifetime_id, mdl, kind (io_allocated, nonpaged_built, pages_allocated,
        partial, unknown_origin; '+'-joined when several), first_ns, alloc_ns (null: not
        allocated in the trace), alloc_pid, alloc_process, alloc_caller, va, size, pages,
        bytes, free_ns, end_state ('freed', 'open', 'reallocated'), lock_count,
        mapping_count, finding_count.
        """
        R = self.replay
        S = R.slots
        n = len(S)
        slot_bytes = self._assembler.slot_bytes
        alloc_ev = S[:, K.S_ALLOC_EV] if n else np.zeros(0, dtype=np.int64)
        free_ev = S[:, K.S_FREE_EV] if n else np.zeros(0, dtype=np.int64)
        pid, img = self._proc_columns(S[:, K.S_ALLOC_PROC] if n else np.zeros(0, np.int64))
        kind_codes = S[:, K.S_KIND] if n else np.zeros(0, dtype=np.int64)
        kind_names = {k: "+".join(name for bit, name in KIND_NAMES.items() if k & bit)
                      for k in np.unique(kind_codes)}
        fslots = R.findings[:, K.F_SLOT] if len(R.findings) else np.zeros(0, dtype=np.int64)
        return pd.DataFrame({
            "lifetime_id": np.arange(n),
            "mdl": (S[:, K.S_MDL] if n else np.zeros(0, np.int64)).view(np.uint64),
            "kind": pd.array([kind_names[k] for k in kind_codes], dtype="string"),
            "first_ns": R.time_ns[S[:, K.S_FIRST_EV]] if n else np.zeros(0, np.int64),
            "alloc_ns": self._time_at(alloc_ev),
            "alloc_pid": pid,
            "alloc_process": img,
            "alloc_caller": pd.array(self._calls_at("caller", self._call_of(alloc_ev)), dtype="string"),
            "va": _nullable_u64(S[:, K.S_VA] if n else np.zeros(0, np.int64)),
            "size": _nullable(S[:, K.S_SIZE] if n else np.zeros(0, np.int64)),
            "pages": slot_bytes // PAGE_SIZE,
            "bytes": slot_bytes,
            "free_ns": self._time_at(free_ev),
            "end_state": pd.array(
                np.where(S[:, K.S_FREED] == 1, "freed",
                         np.where(S[:, K.S_REALLOC] == 1, "reallocated", "open")) if n else [],
                dtype="string"),
            "lock_count": (S[:, K.S_NLOCKS].clip(0) if n else np.zeros(0, np.int64)),
            "mapping_count": (S[:, K.S_NMAPS].clip(0) if n else np.zeros(0, np.int64)),
            "finding_count": np.bincount(fslots[fslots >= 0], minlength=n)[:n],
        })

    @cached_property
    def mappings(self) -> pd.DataFrame:
        """One row per mapping (system or user) of an MDL.

        Columns: mapping_id, lifetime_id, mdl, mode ('KernelMode' | 'UserMode'), pid,
        process, process_wow64, mapped_va, cache_type, bytes, start_ns, end_ns (null:
        live at trace end), end_reason ('unmap', 'unlock' (released by MmUnlockPages),
        'process_exit' (torn down with its process: the pages stay leaked), 'mdl_freed',
        'pages_freed', 'irp_completed', 'live'), map_tid, map_caller, unmap_tid,
        unmap_caller, map_call_index (row of the map call in ``trace.calls``).
        """
        R = self.replay
        M = R.mappings
        n = len(M)
        if n == 0:
            M = np.zeros((0, K.NM), dtype=np.int64)
        start_call = self._call_of(M[:, K.M_START_EV])
        end_call = self._call_of(M[:, K.M_END_EV])
        proc = M[:, K.M_PROC]
        pid, img = self._proc_columns(proc)
        wow = self._procs["wow64"].fillna(-1).to_numpy(dtype=np.int64)
        cache = M[:, K.M_CACHE]
        slots = M[:, K.M_SLOT]
        return pd.DataFrame({
            "mapping_id": np.arange(n),
            "lifetime_id": slots,
            "mdl": (R.slots[slots, K.S_MDL] if n else np.zeros(0, np.int64)).view(np.uint64),
            "mode": pd.array(np.where(M[:, K.M_MODE] == 1, "UserMode", "KernelMode"), dtype="string"),
            "pid": pid,
            "process": img,
            "process_wow64": _nullable(gather(wow, proc, -1)),
            "mapped_va": M[:, K.M_VA].view(np.uint64),
            "cache_type": pd.array(gather(np.asarray(CACHE_TYPES, dtype=object), cache, None),
                                   dtype="string"),
            "bytes": self._assembler.slot_bytes[slots] if n else np.zeros(0, np.int64),
            "start_ns": R.time_ns[M[:, K.M_START_EV]] if n else np.zeros(0, np.int64),
            "end_ns": self._time_at(M[:, K.M_END_EV]),
            "end_reason": pd.array(np.asarray(END_REASONS, dtype=object)[M[:, K.M_REASON]]
                                   if n else [], dtype="string"),
            "map_tid": self._tid_at(start_call),
            "map_caller": pd.array(self._calls_at("caller", start_call), dtype="string"),
            "unmap_tid": self._tid_at(end_call),
            "unmap_caller": pd.array(self._calls_at("caller", end_call), dtype="string"),
            "map_call_index": start_call,
        })

    def df_mappings(self) -> pd.DataFrame:
        """Same as :attr:`mappings`."""
        return self.mappings

    def df_lifecycles(self) -> pd.DataFrame:
        """Same as :attr:`lifecycles`."""
        return self.lifecycles

    @cached_property
    def locks(self) -> pd.DataFrame:
        """One row per MmProbeAndLockPages that took effect.

        Columns: lock_id, lifetime_id, mdl, pid, process, user_va (bool: a user buffer,
        whose process hits bug check 0x76 if it exits first), bytes, start_ns, end_ns
        (null: still locked at trace end), end_reason ('unlock', 'irp_completed' or
        'live'), caller.
        """
        R = self.replay
        L = R.locks
        n = len(L)
        if n == 0:
            L = np.zeros((0, K.NL), dtype=np.int64)
        pid, img = self._proc_columns(L[:, K.L_PROC])
        slots = L[:, K.L_SLOT]
        reason = L[:, K.L_REASON]
        return pd.DataFrame({
            "lock_id": np.arange(n),
            "lifetime_id": slots,
            "mdl": (R.slots[slots, K.S_MDL] if n else np.zeros(0, np.int64)).view(np.uint64),
            "pid": pid,
            "process": img,
            "user_va": L[:, K.L_USER] == 1,
            "bytes": self._assembler.slot_bytes[slots] if n else np.zeros(0, np.int64),
            "start_ns": R.time_ns[L[:, K.L_START_EV]] if n else np.zeros(0, np.int64),
            "end_ns": self._time_at(L[:, K.L_END_EV]),
            "end_reason": pd.array(gather(np.asarray(END_REASONS, dtype=object), reason, "live"),
                                   dtype="string"),
            "caller": pd.array(self._calls_at("caller", self._call_of(L[:, K.L_START_EV])),
                               dtype="string"),
        })

    def df_locks(self) -> pd.DataFrame:
        """Same as :attr:`locks`."""
        return self.locks

    # --- leaks --------------------------------------------------------------------------

    def _held_intervals(self) -> pd.DataFrame:
        """Intervals of memory held: columns pid, process, kind, lifetime_id, bytes,
        start_ns, end_ns (trace end if still held; a user mapping torn down at process
        exit stays held: those pages are leaked until reboot)."""
        end = self.trace_end_ns
        locks = self.locks
        maps = self.mappings
        lk = pd.DataFrame({
            "pid": locks["pid"], "process": locks["process"], "kind": "locked",
            "lifetime_id": locks["lifetime_id"], "bytes": locks["bytes"],
            "start_ns": locks["start_ns"], "end_ns": locks["end_ns"].fillna(end),
        }) if len(locks) else pd.DataFrame()
        um = maps[maps["mode"] == "UserMode"] if len(maps) else maps
        if len(um):
            held_end = um["end_ns"].where(um["end_reason"] != "process_exit", end).fillna(end)
            mp = pd.DataFrame({
                "pid": um["pid"], "process": um["process"], "kind": "user_mapped",
                "lifetime_id": um["lifetime_id"], "bytes": um["bytes"],
                "start_ns": um["start_ns"], "end_ns": held_end,
            })
        else:
            mp = pd.DataFrame()
        parts = [p for p in (lk, mp) if len(p)]
        if not parts:
            return pd.DataFrame(columns=["pid", "process", "kind", "lifetime_id", "bytes",
                                         "start_ns", "end_ns"])
        out = pd.concat(parts, ignore_index=True)
        out["end_ns"] = out["end_ns"].astype("int64")
        return out

    def leak_timeline(self) -> pd.DataFrame:
        """Bytes locked and bytes user-mapped per process over time (step functions).

        Columns: time_ns, pid, process, kind ('locked' | 'user_mapped'), bytes (held from
        this time until the next row of the same pid and kind). User mappings torn down
        at process exit count as held to the end: that memory is leaked until reboot.
        """
        iv = self._held_intervals()
        cols = ["time_ns", "pid", "process", "kind", "bytes"]
        if iv.empty:
            return pd.DataFrame(columns=cols)
        iv = iv.assign(pid=iv["pid"].fillna(-1).astype("int64"))
        starts = iv[["start_ns", "pid", "process", "kind", "bytes"]].rename(columns={"start_ns": "time_ns"})
        ends = iv[["end_ns", "pid", "process", "kind", "bytes"]].rename(columns={"end_ns": "time_ns"})
        ends = ends.assign(bytes=-ends["bytes"])
        ends = ends[ends["time_ns"] < self.trace_end_ns]
        ch = pd.concat([starts, ends], ignore_index=True)
        ch = ch.groupby(["pid", "kind", "time_ns"], as_index=False).agg(
            bytes=("bytes", "sum"), process=("process", "first"))
        ch = ch.sort_values(["pid", "kind", "time_ns"], kind="stable")
        ch["bytes"] = ch.groupby(["pid", "kind"])["bytes"].cumsum()
        ch["pid"] = ch["pid"].astype("Int64").replace(-1, pd.NA)
        return ch[cols].reset_index(drop=True)

    def df_leak_timeline(self) -> pd.DataFrame:
        """Same as :meth:`leak_timeline`."""
        return self.leak_timeline()

    @cached_property
    def leaks(self) -> dict[str, Any]:
        """Leak figures: bytes_at_end (memory still locked or user-mapped when the trace
        ends, each MDL lifetime counted once), by_process, bytes_leaked_at_exit (user
        mappings and user-buffer locks still held when their process ended)."""
        iv = self._held_intervals()
        held = iv[iv["end_ns"] >= self.trace_end_ns] if len(iv) else iv
        by_proc: list[dict[str, Any]] = []
        total = 0
        if len(held):
            # one MDL lifetime counted once; a mapped one is charged to the mapping's process
            held = held.sort_values("kind", ascending=False, kind="stable")  # user_mapped first
            once = held.drop_duplicates("lifetime_id")
            total = int(once["bytes"].sum())
            grp = once.groupby(once["pid"].fillna(-1).astype("int64"), sort=True)
            for pid, g in grp:
                name = g["process"].dropna()
                by_proc.append({"pid": None if pid == -1 else int(pid),
                                "process": str(name.iloc[0]) if len(name) else None,
                                "bytes": int(g["bytes"].sum())})
            by_proc.sort(key=lambda r: -r["bytes"])
        f = self.findings
        exits = f[f["rule"].isin(["USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "LOCKED_PAGES_AT_PROCESS_EXIT"])]
        at_exit = int(exits.drop_duplicates(["lifetime_id", "pid"])["bytes"].sum()) if len(exits) else 0
        return {"bytes_at_end": total, "by_process": by_proc, "bytes_leaked_at_exit": at_exit}

    # --- summary ------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The ``hazards --json`` / ``summary.json`` dict of docs/cli.md."""
        f = self.findings
        out_findings = []
        for rec in f.to_dict("records"):
            out_findings.append({
                "rule": rec["rule"], "severity": rec["severity"], "time_ns": int_or_none(rec["time_ns"]),
                "pid": int_or_none(rec["pid"]), "process": str_or_none(rec["process"]), "tid": int_or_none(rec["tid"]),
                "mdl": None if is_missing(rec["mdl"]) else format_address(rec["mdl"]),
                "caller": str_or_none(rec["caller"]), "event": str_or_none(rec["event"]),
                "bytes": int_or_none(rec["bytes"]),
                "impact_byte_seconds": round(float(rec["impact_byte_seconds"]), 6),
                "start_ns": int_or_none(rec["start_ns"]), "end_ns": int_or_none(rec["end_ns"]),
                "exposure_window_ns": (
                    [int_or_none(rec["exposure_start_ns"]), int_or_none(rec["exposure_end_ns"])]
                    if int_or_none(rec["exposure_start_ns"]) is not None else None),
                "message": rec["message"], "advice": rec["advice"],
                "fingerprint": rec["fingerprint"], "evidence_seq": list(rec["evidence"]),
                "count": int_or_none(rec["count"]),
                "permanent": bool(rec["permanent"]),
            })
        stats = self.trace.stats
        return {
            "traces": list(self.trace.paths),
            "time_span_ns": list(self.trace.time_span_ns),
            "findings": out_findings,
            "leaks": self.leaks,
            "stats": {
                "events": self.trace.n_events,
                "events_by_name": dict(sorted(self.trace.events_by_name.items())),
                "calls": self._calls.num_rows,
                **{name: stats.total(name) for name in QUALITY_COUNTERS},
                "unresolved_context": int(self.context.unresolved.sum()),
                "mdl_lifetimes": int(len(self.replay.slots)),
                "replay_engine": self.replay.engine,
                "loss": sum(stats.total(name) for name in LOSS_COUNTERS),
                "loss_details": stats.details(LOSS_COUNTERS),
            },
            "no_calls": no_calls_notice(self.trace, self._calls.num_rows),
        }

    # --- plots (built on the tables above) -------------------------------------------

    def plot_leak_timeline(self, **kwargs: Any):
        """Bytes locked and user-mapped per process over time (matplotlib Figure)."""
        from traceanalyzer.plot import leak_timeline

        return leak_timeline.plot_leak_timeline_for(self, **kwargs)

    def plot_hazard_timeline(self, **kwargs: Any):
        """Findings per process lane over time, exposure windows shaded (Figure)."""
        from traceanalyzer.plot import hazard_timeline

        return hazard_timeline.plot_hazard_timeline_for(self, **kwargs)

    def plot_impact(self, **kwargs: Any):
        """Impact (byte-seconds) per caller and per rule (Figure)."""
        from traceanalyzer.plot import impact

        return impact.plot_impact_for(self, **kwargs)

    def events_of_lifetime(self, lifetime_id: int) -> pd.DataFrame:
        """All calls of one MDL lifetime (canonical columns plus context: ctx_pid, ctx_tid)."""
        mask = self._slot_of_call == lifetime_id
        calls = self.trace.calls[mask].copy()
        calls["ctx_pid"] = self.context.pid[mask]
        calls["ctx_tid"] = self.context.tid[mask]
        return calls.reset_index(drop=True)

    def _repr_html_(self) -> str:
        try:
            from traceanalyzer.render.repr_html import analysis_repr_html
        except ImportError:
            return f"<pre>{self!r}</pre>"
        return analysis_repr_html(self)

    def __repr__(self) -> str:
        f = self.findings
        by = f["severity"].value_counts().to_dict() if len(f) else {}
        parts = ", ".join(f"{by[s]} {s}" for s in SEVERITIES if s in by)
        names = ", ".join(Path(p).name for p in self.trace.paths)
        return f"<Analysis {names}: {len(f)} findings ({parts or 'none'})>"


def analyze(trace: Trace, *, engine: Engine = "auto",
            progress: Callable[[int, int], None] | None = None) -> Analysis:
    """Replay ``trace`` and return its :class:`Analysis`.

    engine: 'auto' (compiled replay for large traces), 'jit' or 'python'.
    progress: callable(done, total_calls), told at the start and after each stage
    (context attribution, replay input, replay) with the share of the calls done.
    """
    return Analysis(trace, engine, progress)
