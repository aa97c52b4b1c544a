"""``trace_info``: what is in a trace (for ``traceanalyzer info`` and notebooks)."""

from __future__ import annotations

from typing import Any

from traceanalyzer.context.attribution import attribute, unresolved_in_span
from traceanalyzer.model.stats import LOSS_COUNTERS, QUALITY_COUNTERS
from traceanalyzer.model.trace import Trace
from traceanalyzer.recording import recording_check
from traceanalyzer.vocabulary import int_or_none, str_or_none


def trace_info(trace: Trace) -> dict[str, Any]:
    """A JSON-ready description of a trace.

    Keys: traces, formats, start_time_utc, files (several files: per file its start and
    the shift that put its times on the common clock, ``load``), time_span_ns, duration_s, events,
    events_by_name, calls, cpus, processes (list of pid, image, start_ns, end_ns),
    threads (count), quality (every counter of ``model.stats.QUALITY_COUNTERS``, plus
    unresolved_context and loss, the sum of ``LOSS_COUNTERS``), problems (``counter:
    detail`` of every warning counter: what was lost or is implausible, and where),
    unknown_by_event (count of events not understood, by provider/event), stats (every
    counter), recording (whether everything the analysis needs was recorded: complete,
    checks, missing).
    """
    lo, hi = trace.time_span_ns
    procs = trace.processes
    ctx = attribute(trace)
    stats = trace.stats
    quality = {name: stats.total(name) for name in QUALITY_COUNTERS}
    quality["unresolved_context"] = unresolved_in_span(ctx, trace)
    quality["loss"] = sum(stats.total(name) for name in LOSS_COUNTERS)
    return {
        "traces": list(trace.paths),
        "formats": trace.metadata.get("formats", []),
        "start_time_utc": trace.metadata.get("start_time_utc"),
        "files": trace.metadata.get("files", []),
        "time_span_ns": [lo, hi],
        "duration_s": (hi - lo) / 1e9,
        "events": trace.n_events,
        "events_by_name": dict(sorted(trace.events_by_name.items(), key=lambda kv: (-kv[1], kv[0]))),
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
        "problems": stats.details([e.name for e in stats.entries.values() if e.severity != "info"],
                                  limit=1000),
        "unknown_by_event": dict(sorted(stats.by_detail("unknown_events").items(),
                                        key=lambda kv: (-kv[1], kv[0]))),
        "stats": stats.to_frame().to_dict("records"),
        "recording": recording_check(trace),
    }
