"""The findings table: partial findings from every source, assembled once.

Sources: the replay kernel (``rules.assemble.kernel_partials``), the attach walk of the
context, the stateless rules (``rules/stateless.py``) and the trace-quality counters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from traceanalyzer.context.attribution import Context, carried_calls
from traceanalyzer.model.asof import asof_index
from traceanalyzer.lifecycle.replay import u64_column
from traceanalyzer.lifecycle.tables import LifecycleTables
from traceanalyzer.model.trace import Trace
from traceanalyzer.rules.assemble import (
    UNKNOWN_SIZE, FindingAssembler, kernel_partials, partial_frame,
)
from traceanalyzer.rules.stateless import STATELESS_RULES, RuleInput


class FindingSources:
    """Builds the findings table of one analysis from its lifecycle tables."""

    def __init__(self, trace: Trace, tables: LifecycleTables, mappings: pd.DataFrame,
                 locks: pd.DataFrame) -> None:
        self.trace = trace
        self.tables = tables
        self.context: Context = tables.context
        self.calls = tables.calls
        self.mappings = mappings
        self.locks = locks
        self.call_seq = self.calls.column("seq").to_numpy()
        self.call_time = self.calls.column("time_ns").to_numpy()
        self.trace_start_ns, self.trace_end_ns = trace.time_span_ns
        self.carried = carried_calls(trace)  # no rule fires on them in the window

    def findings(self) -> pd.DataFrame:
        """The assembled findings table (columns: ``rules.assemble.FINDING_COLUMNS``)."""
        parts = [kernel_partials(self.tables.raw_findings()), self.attach_partials(),
                 self.stateless_partials(), self.quality_partials()]
        parts = [p for p in parts if len(p)]
        partials = pd.concat(parts, ignore_index=True) if parts else partial_frame(0)
        return FindingAssembler(self.tables, self.trace_end_ns).assemble(partials)

    def slot_of_call(self) -> np.ndarray:
        """For each call row, the MDL lifetime it touched (-1 if none): the newest
        lifetime of that address that started at or before the call."""
        lifetimes = self.tables.lifetime_starts()
        if lifetimes[0].size == 0:
            return np.full(self.calls.num_rows, -1, dtype=np.int64)
        first_seq, mdl_of_lifetime = lifetimes
        mdl = u64_column(self.calls, "mdl")
        return asof_index(self.call_seq.astype(np.int64), mdl, first_seq, mdl_of_lifetime)

    def attach_partials(self) -> pd.DataFrame:
        af = self.context.attach_findings
        if not af:
            return partial_frame(0)
        idx = np.array([f.call_index for f in af], dtype=np.int64)
        t = np.array([f.end_time_ns if f.end_time_ns is not None else f.time_ns for f in af],
                     dtype=np.int64)
        return partial_frame(
            len(af), rule=np.array([f.rule for f in af], dtype=object), time_ns=t,
            proc=self.context.owner_proc_id[idx], call_idx=idx, start_ns=t, end_ns=t,
            evidence=[[int(self.call_seq[i])] for i in idx],
        )

    def stateless_partials(self) -> pd.DataFrame:
        inp = RuleInput(self.calls, self.mappings, self.trace.processes)
        slot_of_call: np.ndarray | None = None
        frames = []
        for fn in STATELESS_RULES.values():
            hits = fn(inp)
            if len(hits):
                hits = hits[~self.carried[hits["call_index"].to_numpy(dtype=np.int64)]]
            if not len(hits):
                continue
            if slot_of_call is None:
                slot_of_call = self.slot_of_call()
            idx = hits["call_index"].to_numpy(dtype=np.int64)
            m = (hits["mapping_id"].fillna(-1).to_numpy(dtype=np.int64)
                 if "mapping_id" in hits else np.full(len(idx), -1, dtype=np.int64))
            t = self.call_time[idx]
            frames.append(partial_frame(
                len(idx), rule=hits["rule"].to_numpy(dtype=object), time_ns=t,
                proc=self.context.proc_id[idx], slot=slot_of_call[idx], call_idx=idx,
                start_ns=t, end_ns=t, mapping_id=m,
                evidence=[[int(s)] for s in self.call_seq[idx]],
            ))
        return pd.concat(frames, ignore_index=True) if frames else partial_frame(0)

    def quality_partials(self) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        unresolved = self.context.unresolved & ~self.carried
        if unresolved.any():
            events = np.asarray(self.calls.column("event").cast(pa.string()).to_pylist(),
                                dtype=object)
            idx = np.flatnonzero(unresolved)
            names, first, counts = np.unique(events[idx], return_index=True, return_counts=True)
            for name, f, c in zip(names, idx[first], counts):
                t = int(self.call_time[f])
                rows.append(dict(rule="TRACE_CONTEXT_UNRESOLVED", time_ns=t, call_idx=int(f),
                                 start_ns=t, end_ns=t, event=name, count=int(c),
                                 evidence=[int(self.call_seq[f])]))
        t0, t1 = self.trace_start_ns, self.trace_end_ns
        stats = self.trace.stats
        for name, count in stats.by_detail("unknown_events").items():
            rows.append(dict(rule="TRACE_UNKNOWN_EVENT", time_ns=t0, start_ns=t0, end_ns=t0,
                             event=name or None, count=int(count)))
        lost = stats.total("lost_events") + stats.total("lost_buffers")
        if lost:
            rows.append(dict(rule="TRACE_EVENTS_LOST", time_ns=t0, start_ns=t0, end_ns=t0,
                             count=int(lost)))
        disorder = stats.total("time_disorder")
        if disorder:
            rows.append(dict(rule="TRACE_TIME_DISORDER", time_ns=t0, start_ns=t0, end_ns=t0,
                             count=int(disorder)))
        open_locks = self.locks[self.locks["end_reason"] == "live"]
        open_maps = self.mappings[self.mappings["end_reason"] == "live"]
        n_open = len(open_locks) + len(open_maps)
        if n_open:  # the known sizes added; unknown (not 0 B) when none is known
            sizes = pd.concat([open_locks["bytes"], open_maps["bytes"]]).dropna()
            rows.append(dict(rule="TRACE_OPEN_AT_END", time_ns=t1, start_ns=t1, end_ns=t1,
                             count=n_open, bytes=int(sizes.sum()) if len(sizes) else UNKNOWN_SIZE))
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
