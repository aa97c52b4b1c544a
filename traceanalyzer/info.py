"""``trace_info``: what is in a trace (for ``traceanalyzer info`` and notebooks)."""

from __future__ import annotations

from typing import Any

import numpy as np

from traceanalyzer.context.attribution import attribute
from traceanalyzer.model.trace import Trace
from traceanalyzer.recording import recording_check
from traceanalyzer.vocabulary import int_or_none, str_or_none


def trace_info(trace: Trace) -> dict[str, Any]:
    """A JSON-ready description of a trace.

    Keys: traces, formats, start_time_utc, time_span_ns, duration_s, events,
    events_by_name, calls, cpus, processes (list of pid, image, start_ns, end_ns),
    threads (count), quality (data-quality counters: unknown_events, lost_events,
    lost_buffers, corrupt_buffers, bad_rows, unresolved_context), unknown_by_event (count
    of events not understood, by provider/event), stats (every counter), recording
    (whether everything the analysis needs was recorded: complete, checks, missing).
    """
    lo, hi = trace.time_span_ns
    procs = trace.processes
    ctx = attribute(trace)
    stats = trace.stats
    quality = {
        name: stats.total(name)
        for name in ("unknown_events", "lost_events", "lost_buffers", "corrupt_buffers",
                     "truncated_records", "bad_rows")
    }
    quality["unresolved_context"] = int(np.count_nonzero(ctx.unresolved))
    return {
        "traces": list(trace.paths),
        "formats": trace.metadata.get("formats", []),
        "start_time_utc": trace.metadata.get("start_time_utc"),
        "time_span_ns": [lo, hi],
        "duration_s": (hi - lo) / 1e9,
        "events": trace.n_events,
        "events_by_name": dict(sorted(trace.events_by_name.items(), key=lambda kv: -kv[1])),
        "calls": trace.table("calls").num_rows,
        "cpus": trace.cpus(),
        "processes": [
            {
                "pid": int(r.pid),
                "image": str_or_none(r.image),
                "start_ns": int_or_none(r.start_ns),
                "end_ns": int_or_none(r.end_ns),
                "source": r.source,
            }
            for r in procs.astype(object).where(procs.notna(), None).itertuples()
        ],
        "threads": int(len(trace.threads)),
        "quality": quality,
        "unknown_by_event": dict(sorted(stats.by_detail("unknown_events").items(),
                                        key=lambda kv: -kv[1])),
        "stats": stats.to_frame().to_dict("records"),
        "recording": recording_check(trace),
    }
