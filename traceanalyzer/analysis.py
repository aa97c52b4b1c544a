"""Analysis: context -> replay -> findings, lifecycles, mappings, locks, leak timeline.

``df_*`` methods (and the properties of the same name) return DataFrames whose
columns are documented on each; ``plot_*`` methods return matplotlib Figures built on
them; ``summary()`` returns the ``hazards --json`` dict of ``shared/spec/cli.md``.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from traceanalyzer.context.attribution import Context, attribute
from traceanalyzer.lifecycle import kernel as K
from traceanalyzer.lifecycle.codes import (
    END_REASONS, EVENTS, KERNEL_RULES, KIND_NAMES, R_EXIT, R_LIVE,
)
from traceanalyzer.lifecycle.replay import Engine, ReplayResult, run_replay
from traceanalyzer.model.schema import CACHE_TYPES, PAGE_SIZE
from traceanalyzer.model.trace import Trace
from traceanalyzer.rules.catalogue import RULES, SEVERITY_RANK
from traceanalyzer.rules.messages import fmt_addr, fmt_bytes, message_for
from traceanalyzer.rules.stateless import STATELESS_RULES, RuleInput

FINDING_COLUMNS = [
    "rule", "severity", "time_ns", "pid", "process", "tid", "mdl", "caller", "event",
    "bytes", "impact_byte_seconds", "start_ns", "end_ns", "exposure_start_ns",
    "exposure_end_ns", "message", "advice", "fingerprint", "evidence", "lifetime_id",
    "mapping_id", "count",
]


def fingerprint(rule: str, caller: str | None, image: str | None) -> str:
    """Stable finding identity across runs: rule + caller + process image (no addresses,
    pids or times)."""
    key = f"{rule}|{caller or ''}|{(image or '').lower()}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def pages_spanned(va: np.ndarray, size: np.ndarray) -> np.ndarray:
    """ceil(((va mod 4096) + size) / 4096); 0 where size is unknown (-1). va unknown: 0 offset."""
    off = np.where(va == -1, 0, va.astype(np.uint64) % PAGE_SIZE).astype(np.int64)
    return np.where(size < 0, 0, (off + np.maximum(size, 0) + PAGE_SIZE - 1) // PAGE_SIZE)


def _u64_or_none(x: int) -> int | None:
    return None if x == -1 else int(np.int64(x).view(np.uint64))


class Analysis:
    """The result of replaying a trace. Build with :func:`traceanalyzer.analyze`."""

    def __init__(self, trace: Trace, engine: Engine = "auto") -> None:
        self.trace = trace
        self.context: Context = attribute(trace)
        self.replay: ReplayResult = run_replay(trace, self.context, engine)
        self._calls = trace.table("calls")
        self._procs = trace.processes
        lo, hi = trace.time_span_ns
        self.trace_end_ns = hi
        self.trace_start_ns = lo

    # --- helpers -----------------------------------------------------------------------

    @cached_property
    def _call_cols(self) -> dict[str, np.ndarray]:
        calls = self._calls

        def strings(name: str) -> np.ndarray:
            if name not in calls.column_names:
                return np.full(calls.num_rows, None, dtype=object)
            return np.asarray(calls.column(name).cast(pa.string()).to_pylist(), dtype=object)

        return {"caller": strings("caller"), "event": strings("event"),
                "seq": calls.column("seq").to_numpy()}

    @cached_property
    def _slot_bytes(self) -> np.ndarray:
        S = self.replay.slots
        if S.size == 0:
            return np.zeros(0, dtype=np.int64)
        return pages_spanned(S[:, K.S_VA], S[:, K.S_SIZE]) * PAGE_SIZE

    def _proc_fields(self, proc_ids: np.ndarray) -> tuple[list, list]:
        pids = self._procs["pid"].to_numpy(dtype=np.float64, na_value=np.nan)
        images = self._procs["image"].astype(object).where(self._procs["image"].notna(), None).to_numpy()
        pid_out, img_out = [], []
        for p in proc_ids:
            if p < 0:
                pid_out.append(None)
                img_out.append(None)
            else:
                pid_out.append(int(pids[p]))
                img_out.append(images[p])
        return pid_out, img_out

    def _stream_call(self, stream_idx: int) -> int:
        return int(self.replay.call_index[stream_idx]) if stream_idx >= 0 else -1

    # --- findings ----------------------------------------------------------------------

    @cached_property
    def findings(self) -> pd.DataFrame:
        """One row per finding, most severe first, then by impact.

        Columns: rule, severity, time_ns, pid, process (image name), tid, mdl (uint64),
        caller (module+offset of the call that caused it), event (the triggering event),
        bytes (pages spanned x 4096), impact_byte_seconds (bytes x seconds held, from
        start_ns to end_ns), start_ns, end_ns (when the hazard ended; trace end if it did
        not), exposure_start_ns / exposure_end_ns (UNLOCK_WHILE_USER_MAPPED and
        FREE_PAGES_WHILE_USER_MAPPED: while user PTEs pointed at released pages),
        message, advice, fingerprint (rule + caller + process image), evidence (list of
        seq of the events that led to it), lifetime_id, mapping_id, count (aggregated
        trace-quality rows: how many; else 1).
        """
        rows = self._kernel_findings() + self._attach_findings() + self._stateless_findings()
        rows += self._quality_findings()
        df = pd.DataFrame(rows, columns=FINDING_COLUMNS)
        if df.empty:
            return _typed_findings(df)
        df["_rank"] = df["severity"].map(SEVERITY_RANK)
        df = df.sort_values(["_rank", "impact_byte_seconds", "time_ns"],
                            ascending=[True, False, True], kind="stable")
        return _typed_findings(df.drop(columns="_rank").reset_index(drop=True))

    def df_findings(self) -> pd.DataFrame:
        """Same as :attr:`findings`."""
        return self.findings

    def _finding_row(self, rule: str, *, time_ns: int, proc: int, tid: int | None,
                     slot: int, call_idx: int, caller: str | None, event: str | None,
                     start: int, end: int | None, expo: bool, evidence: list[int],
                     mapping_id: int = -1, severity: str | None = None, count: int = 1,
                     **extra: Any) -> dict:
        S = self.replay.slots
        nbytes = int(self._slot_bytes[slot]) if slot >= 0 else 0
        pid, image = self._proc_fields(np.array([proc]))
        pid, image = pid[0], image[0]
        end_ns = self.trace_end_ns if end is None or end < 0 else int(end)
        impact = nbytes * max(0, end_ns - start) / 1e9
        mdl = _u64_or_none(S[slot, K.S_MDL]) if slot >= 0 else None
        r = RULES[rule]
        sev = severity or r.severity
        mapping_va = None
        if mapping_id >= 0:
            mapping_va = _u64_or_none(self.replay.mappings[mapping_id, K.M_VA])
        fields = dict(
            process=image or "?", pid=pid if pid is not None else "?", tid=tid if tid is not None else "?",
            mdl=fmt_addr(mdl), bytes=fmt_bytes(nbytes), t_ms=f"{time_ns / 1e6:.3f} ms",
            va=fmt_addr(mapping_va if mapping_va is not None else extra.get("va")),
            event=event, caller_ctx=extra.get("caller_ctx", "?"), other=extra.get("other", "?"),
            mdl_va=fmt_addr(_u64_or_none(S[slot, K.S_VA]) if slot >= 0 else None), count=count,
        )
        return {
            "rule": rule, "severity": sev, "time_ns": int(time_ns), "pid": pid,
            "process": image, "tid": tid, "mdl": mdl, "caller": caller, "event": event,
            "bytes": nbytes, "impact_byte_seconds": impact, "start_ns": int(start),
            "end_ns": end_ns, "exposure_start_ns": int(start) if expo else None,
            "exposure_end_ns": end_ns if expo else None,
            "message": message_for(rule, **fields), "advice": r.advice,
            "fingerprint": fingerprint(rule, caller, image),
            "evidence": sorted(set(int(e) for e in evidence if e is not None and e >= 0)),
            "lifetime_id": slot if slot >= 0 else None,
            "mapping_id": mapping_id if mapping_id >= 0 else None, "count": count,
        }

    def _ctx_text(self, call_idx: int) -> str:
        if call_idx < 0:
            return "?"
        pid = int(self.context.pid[call_idx])
        proc = int(self.context.proc_id[call_idx])
        if pid < 0:
            return "an unattributed context"
        image = self._procs["image"].iloc[proc] if proc >= 0 else None
        return f"{image if isinstance(image, str) else '?'} ({pid})"

    def _kernel_findings(self) -> list[dict]:
        R = self.replay
        F = R.findings
        rows = []
        cc = self._call_cols
        for f in F:
            rule = KERNEL_RULES[f[K.F_RULE]]
            tidev = int(f[K.F_TIDEV])
            call_idx = self._stream_call(tidev)
            rel_call = self._stream_call(int(f[K.F_REL])) if f[K.F_REL] >= 0 else -1
            caller = cc["caller"][call_idx] if call_idx >= 0 else None
            if caller is None and rel_call >= 0:
                caller = cc["caller"][rel_call]
            event = EVENTS[R.findings.dtype.type(0) + 0] if False else None
            trig = int(f[K.F_EV])
            event = cc["event"][self._stream_call(trig)] if self._stream_call(trig) >= 0 else (
                "ProcessEnd" if trig >= 0 else None)
            tid = int(self.context.tid[call_idx]) if call_idx >= 0 and self.context.tid[call_idx] >= 0 else None
            slot = int(f[K.F_SLOT])
            evidence = []
            if slot >= 0:
                a = int(R.slots[slot, K.S_ALLOC_EV])
                if a >= 0:
                    evidence.append(R.seq[a])
            for e in (f[K.F_REL], f[K.F_EV], tidev):
                if e >= 0:
                    evidence.append(R.seq[int(e)])
            lk = int(f[K.F_LOCK])
            if lk >= 0:
                evidence.append(R.seq[int(R.locks[lk, K.L_START_EV])])
            other = "?"
            if rule == "LOCK_IN_WRONG_PROCESS" and slot >= 0:
                ap = int(R.slots[slot, K.S_ALLOC_PROC])
                p, im = self._proc_fields(np.array([ap]))
                other = f"{im[0] or '?'} ({p[0]})"
            severity = "critical" if (rule == "FREE_MDL_WHILE_LOCKED" and f[K.F_SEV] == 1) else None
            rows.append(self._finding_row(
                rule, time_ns=int(f[K.F_TIME]), proc=int(f[K.F_PROC]), tid=tid, slot=slot,
                call_idx=call_idx, caller=caller, event=event, start=int(f[K.F_START]),
                end=int(f[K.F_END]), expo=bool(f[K.F_EXPO] == 1), evidence=evidence,
                mapping_id=int(f[K.F_MAP]), severity=severity,
                caller_ctx=self._ctx_text(call_idx), other=other,
            ))
        return rows

    def _attach_findings(self) -> list[dict]:
        rows = []
        cc = self._call_cols
        for af in self.context.attach_findings:
            i = af.call_index
            tid = int(self.context.tid[i]) if self.context.tid[i] >= 0 else None
            time_ns = af.end_time_ns if af.end_time_ns is not None else af.time_ns
            rows.append(self._finding_row(
                af.rule, time_ns=time_ns, proc=int(self.context.owner_proc_id[i]), tid=tid,
                slot=-1, call_idx=i, caller=cc["caller"][i], event=cc["event"][i],
                start=time_ns, end=time_ns, expo=False, evidence=[int(cc["seq"][i])],
            ))
        return rows

    def _stateless_findings(self) -> list[dict]:
        inp = RuleInput(self._calls, self.mappings, self._procs)
        rows = []
        cc = self._call_cols
        slot_of_call = self._slot_of_call
        for rule_id, fn in STATELESS_RULES.items():
            hits = fn(inp)
            for rec in hits.to_dict("records"):
                i = int(rec["call_index"])
                tid = int(self.context.tid[i]) if self.context.tid[i] >= 0 else None
                t = int(self._calls.column("time_ns")[i].as_py())
                m = rec.get("mapping_id")
                m = int(m) if m is not None and not pd.isna(m) else -1
                rows.append(self._finding_row(
                    rule_id, time_ns=t, proc=int(self.context.proc_id[i]), tid=tid,
                    slot=int(slot_of_call[i]), call_idx=i, caller=cc["caller"][i],
                    event=cc["event"][i], start=t, end=t, expo=False,
                    evidence=[int(cc["seq"][i])], mapping_id=m,
                ))
        return rows

    @cached_property
    def _slot_of_call(self) -> np.ndarray:
        """For each call row, the MDL lifetime it touched (-1 if none): the newest
        lifetime of that address that started at or before the call."""
        R = self.replay
        out = np.full(self._calls.num_rows, -1, dtype=np.int64)
        S = R.slots
        if S.size == 0:
            return out
        from traceanalyzer.context.attribution import _asof
        from traceanalyzer.lifecycle.replay import _u64
        mdl = _u64(self._calls, "mdl")
        seq = self._call_cols["seq"].astype(np.int64)
        first_seq = R.seq[S[:, K.S_FIRST_EV]]
        return _asof(seq, mdl, first_seq, S[:, K.S_MDL])

    def _quality_findings(self) -> list[dict]:
        rows = []
        unresolved = self.context.unresolved
        if unresolved.any():
            ev = pd.Series(self._call_cols["event"][unresolved])
            for name, count in ev.value_counts().items():
                first = int(np.flatnonzero(unresolved & (self._call_cols["event"] == name))[0])
                t = int(self._calls.column("time_ns")[first].as_py())
                rows.append(self._finding_row(
                    "TRACE_CONTEXT_UNRESOLVED", time_ns=t, proc=-1, tid=None, slot=-1,
                    call_idx=first, caller=None, event=name, start=t, end=t, expo=False,
                    evidence=[int(self._call_cols["seq"][first])], count=int(count),
                ))
        for name, count in self.trace.stats.by_detail("unknown_events").items():
            rows.append(self._finding_row(
                "TRACE_UNKNOWN_EVENT", time_ns=self.trace_start_ns, proc=-1, tid=None,
                slot=-1, call_idx=-1, caller=None, event=name or None,
                start=self.trace_start_ns, end=self.trace_start_ns, expo=False, evidence=[],
                count=int(count),
            ))
        lost = self.trace.stats.total("lost_events") + self.trace.stats.total("lost_buffers")
        if lost:
            rows.append(self._finding_row(
                "TRACE_EVENTS_LOST", time_ns=self.trace_start_ns, proc=-1, tid=None, slot=-1,
                call_idx=-1, caller=None, event=None, start=self.trace_start_ns,
                end=self.trace_start_ns, expo=False, evidence=[], count=int(lost),
            ))
        open_locks = self.locks[self.locks["end_reason"] == "live"]
        open_maps = self.mappings[self.mappings["end_reason"] == "live"]
        n_open = len(open_locks) + len(open_maps)
        if n_open:
            nbytes = int(open_locks["bytes"].sum() + open_maps["bytes"].sum())
            row = self._finding_row(
                "TRACE_OPEN_AT_END", time_ns=self.trace_end_ns, proc=-1, tid=None, slot=-1,
                call_idx=-1, caller=None, event=None, start=self.trace_end_ns,
                end=self.trace_end_ns, expo=False, evidence=[], count=n_open,
            )
            row["bytes"] = nbytes
            row["message"] = message_for("TRACE_OPEN_AT_END", count=n_open, bytes=fmt_bytes(nbytes))
            rows.append(row)
        return rows

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
        if S.size == 0:
            return pd.DataFrame(columns=["lifetime_id", "mdl", "kind", "first_ns", "alloc_ns",
                                         "alloc_pid", "alloc_process", "alloc_caller", "va",
                                         "size", "pages", "bytes", "free_ns", "end_state",
                                         "lock_count", "mapping_count", "finding_count"])
        cc = self._call_cols
        alloc_ev = S[:, K.S_ALLOC_EV]
        alloc_call = np.where(alloc_ev >= 0, R.call_index[np.maximum(alloc_ev, 0)], -1)
        pid, img = self._proc_fields(S[:, K.S_ALLOC_PROC])
        kinds = [
            "+".join(name for bit, name in KIND_NAMES.items() if k & bit) for k in S[:, K.S_KIND]
        ]
        free_ev = S[:, K.S_FREE_EV]
        fcount = np.bincount(R.findings[:, K.F_SLOT][R.findings[:, K.F_SLOT] >= 0],
                             minlength=len(S)) if len(R.findings) else np.zeros(len(S), int)
        df = pd.DataFrame({
            "lifetime_id": np.arange(len(S)),
            "mdl": S[:, K.S_MDL].view(np.uint64),
            "kind": kinds,
            "first_ns": R.time_ns[S[:, K.S_FIRST_EV]],
            "alloc_ns": pd.array(np.where(alloc_ev >= 0, R.time_ns[np.maximum(alloc_ev, 0)], 0),
                                 dtype="Int64"),
            "alloc_pid": pd.array(pid, dtype="Int64"),
            "alloc_process": pd.array(img, dtype="string"),
            "alloc_caller": pd.array([cc["caller"][c] if c >= 0 else None for c in alloc_call],
                                     dtype="string"),
            "va": pd.array([_u64_or_none(v) for v in S[:, K.S_VA]], dtype="UInt64"),
            "size": pd.array([None if v < 0 else int(v) for v in S[:, K.S_SIZE]], dtype="Int64"),
            "pages": self._slot_bytes // PAGE_SIZE,
            "bytes": self._slot_bytes,
            "free_ns": pd.array(np.where(free_ev >= 0, R.time_ns[np.maximum(free_ev, 0)], 0),
                                dtype="Int64"),
            "end_state": np.where(S[:, K.S_FREED] == 1, "freed",
                                  np.where(S[:, K.S_REALLOC] == 1, "reallocated", "open")),
            "lock_count": S[:, K.S_NLOCKS].clip(0),
            "mapping_count": S[:, K.S_NMAPS].clip(0),
            "finding_count": fcount,
        })
        df.loc[alloc_ev < 0, "alloc_ns"] = pd.NA
        df.loc[free_ev < 0, "free_ns"] = pd.NA
        return df

    @cached_property
    def mappings(self) -> pd.DataFrame:
        """One row per mapping (system or user) of an MDL.

        Columns: mapping_id, lifetime_id, mdl, mode ('KernelMode' | 'UserMode'), pid,
        process, process_wow64, mapped_va, cache_type, bytes, start_ns, end_ns (null:
        live at trace end), end_reason ('unmap', 'unlock' (released by MmUnlockPages),
        'process_exit' (torn down with its process: the pages stay leaked), 'mdl_freed',
        'pages_freed', 'live'), map_tid, map_caller, unmap_tid, unmap_caller,
        map_call_index.
        """
        R = self.replay
        M = R.mappings
        cols = ["mapping_id", "lifetime_id", "mdl", "mode", "pid", "process", "process_wow64",
                "mapped_va", "cache_type", "bytes", "start_ns", "end_ns", "end_reason",
                "map_tid", "map_caller", "unmap_tid", "unmap_caller", "map_call_index"]
        if M.size == 0:
            return pd.DataFrame(columns=cols)
        cc = self._call_cols
        start_call = R.call_index[M[:, K.M_START_EV]]
        end_ev = M[:, K.M_END_EV]
        end_call = np.where(end_ev >= 0, R.call_index[np.maximum(end_ev, 0)], -1)
        pid, img = self._proc_fields(M[:, K.M_PROC])
        wow = self._procs["wow64"].to_numpy(dtype=np.float64, na_value=np.nan)
        tids = self.context.tid

        def tid_of(c: int) -> int | None:
            return int(tids[c]) if c >= 0 and tids[c] >= 0 else None

        df = pd.DataFrame({
            "mapping_id": np.arange(len(M)),
            "lifetime_id": M[:, K.M_SLOT],
            "mdl": R.slots[M[:, K.M_SLOT], K.S_MDL].view(np.uint64),
            "mode": np.where(M[:, K.M_MODE] == 1, "UserMode", "KernelMode"),
            "pid": pd.array(pid, dtype="Int64"),
            "process": pd.array(img, dtype="string"),
            "process_wow64": pd.array([None if p < 0 or np.isnan(wow[p]) else int(wow[p])
                                       for p in M[:, K.M_PROC]], dtype="Int64"),
            "mapped_va": M[:, K.M_VA].view(np.uint64),
            "cache_type": pd.array([CACHE_TYPES[c] if c >= 0 else None for c in M[:, K.M_CACHE]],
                                   dtype="string"),
            "bytes": self._slot_bytes[M[:, K.M_SLOT]],
            "start_ns": R.time_ns[M[:, K.M_START_EV]],
            "end_ns": pd.array([int(R.time_ns[e]) if e >= 0 else None for e in end_ev], dtype="Int64"),
            "end_reason": [END_REASONS[r] for r in M[:, K.M_REASON]],
            "map_tid": pd.array([tid_of(c) for c in start_call], dtype="Int64"),
            "map_caller": pd.array([cc["caller"][c] for c in start_call], dtype="string"),
            "unmap_tid": pd.array([tid_of(c) for c in end_call], dtype="Int64"),
            "unmap_caller": pd.array([cc["caller"][c] if c >= 0 else None for c in end_call],
                                     dtype="string"),
            "map_call_index": start_call,
        })
        return df

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
        (null: still locked at trace end), end_reason ('unlock' or 'live'), caller.
        """
        R = self.replay
        L = R.locks
        cols = ["lock_id", "lifetime_id", "mdl", "pid", "process", "user_va", "bytes",
                "start_ns", "end_ns", "end_reason", "caller"]
        if L.size == 0:
            return pd.DataFrame(columns=cols)
        cc = self._call_cols
        pid, img = self._proc_fields(L[:, K.L_PROC])
        start_call = R.call_index[L[:, K.L_START_EV]]
        end_ev = L[:, K.L_END_EV]
        return pd.DataFrame({
            "lock_id": np.arange(len(L)),
            "lifetime_id": L[:, K.L_SLOT],
            "mdl": R.slots[L[:, K.L_SLOT], K.S_MDL].view(np.uint64),
            "pid": pd.array(pid, dtype="Int64"),
            "process": pd.array(img, dtype="string"),
            "user_va": L[:, K.L_USER] == 1,
            "bytes": self._slot_bytes[L[:, K.L_SLOT]],
            "start_ns": R.time_ns[L[:, K.L_START_EV]],
            "end_ns": pd.array([int(R.time_ns[e]) if e >= 0 else None for e in end_ev], dtype="Int64"),
            "end_reason": [END_REASONS[r] if r >= 0 else "live" for r in L[:, K.L_REASON]],
            "caller": pd.array([cc["caller"][c] for c in start_call], dtype="string"),
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
        """The ``hazards --json`` / ``summary.json`` dict of shared/spec/cli.md."""
        f = self.findings
        out_findings = []
        for rec in f.to_dict("records"):
            out_findings.append({
                "rule": rec["rule"], "severity": rec["severity"], "time_ns": _int(rec["time_ns"]),
                "pid": _int(rec["pid"]), "process": _str(rec["process"]), "tid": _int(rec["tid"]),
                "mdl": None if _int(rec["mdl"]) is None else f"0x{_int(rec['mdl']):x}",
                "caller": _str(rec["caller"]), "event": _str(rec["event"]),
                "bytes": _int(rec["bytes"]),
                "impact_byte_seconds": round(float(rec["impact_byte_seconds"]), 6),
                "start_ns": _int(rec["start_ns"]), "end_ns": _int(rec["end_ns"]),
                "exposure_window_ns": (
                    [_int(rec["exposure_start_ns"]), _int(rec["exposure_end_ns"])]
                    if _int(rec["exposure_start_ns"]) is not None else None),
                "message": rec["message"], "advice": rec["advice"],
                "fingerprint": rec["fingerprint"], "evidence_seq": list(rec["evidence"]),
                "count": _int(rec["count"]),
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
                "unknown_events": stats.total("unknown_events"),
                "lost_events": stats.total("lost_events"),
                "lost_buffers": stats.total("lost_buffers"),
                "corrupt_buffers": stats.total("corrupt_buffers"),
                "unresolved_context": int(self.context.unresolved.sum()),
                "mdl_lifetimes": int(len(self.replay.slots)),
                "replay_engine": self.replay.engine,
            },
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
        parts = ", ".join(f"{by[s]} {s}" for s in ("critical", "high", "medium", "low", "info") if s in by)
        names = ", ".join(Path(p).name for p in self.trace.paths)
        return f"<Analysis {names}: {len(f)} findings ({parts or 'none'})>"


def _int(v: Any) -> int | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _str(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def _typed_findings(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in ("time_ns", "pid", "tid", "bytes", "start_ns", "end_ns", "exposure_start_ns",
              "exposure_end_ns", "lifetime_id", "mapping_id", "count"):
        df[c] = pd.array(df[c].tolist(), dtype="Int64")
    df["mdl"] = pd.array(df["mdl"].tolist(), dtype="UInt64")
    df["impact_byte_seconds"] = df["impact_byte_seconds"].astype("float64")
    for c in ("rule", "severity", "process", "caller", "event", "message", "advice", "fingerprint"):
        df[c] = df[c].astype("string")
    return df


def analyze(trace: Trace, *, engine: Engine = "auto") -> Analysis:
    """Replay ``trace`` and return its :class:`Analysis`.

    engine: 'auto' (compiled replay for large traces), 'jit' or 'python'.
    """
    return Analysis(trace, engine)
