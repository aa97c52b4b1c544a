"""The summary dict: ``Analysis.summary()``, the ``hazards --json`` / ``summary.json``
document of docs/cli.md (its shape: ``summary.schema.json``), rendered by
``json_summary.py``."""

from __future__ import annotations

from typing import Any

from traceanalyzer.coverage import no_calls_notice
from traceanalyzer.model.stats import LOSS_COUNTERS, QUALITY_COUNTERS
from traceanalyzer.rules.problems import problem_records
from traceanalyzer.vocabulary import format_address, int_or_none, is_missing, str_or_none


def finding_entry(rec: dict[str, Any]) -> dict[str, Any]:
    """One row of ``Analysis.findings`` as a JSON-ready finding."""
    return {
        "rule": rec["rule"], "severity": rec["severity"], "time_ns": int_or_none(rec["time_ns"]),
        "pid": int_or_none(rec["pid"]), "process": str_or_none(rec["process"]),
        "tid": int_or_none(rec["tid"]),
        "mdl": None if is_missing(rec["mdl"]) else format_address(rec["mdl"]),
        "caller": str_or_none(rec["caller"]), "event": str_or_none(rec["event"]),
        "bytes": int_or_none(rec["bytes"]),
        "impact_byte_seconds": _rounded(rec["impact_byte_seconds"]),
        "start_ns": int_or_none(rec["start_ns"]), "end_ns": int_or_none(rec["end_ns"]),
        "exposure_window_ns": (
            [int_or_none(rec["exposure_start_ns"]), int_or_none(rec["exposure_end_ns"])]
            if int_or_none(rec["exposure_start_ns"]) is not None else None),
        "message": rec["message"], "advice": rec["advice"],
        "fingerprint": rec["fingerprint"], "evidence_seq": list(rec["evidence"]),
        "count": int_or_none(rec["count"]),
        "permanent": bool(rec["permanent"]),
    }


def _rounded(value: Any) -> float | None:
    """A byte-seconds figure rounded to 6 decimals; None when unknown (size unknown)."""
    return None if is_missing(value) else round(float(value), 6)


def summary_dict(analysis: Any) -> dict[str, Any]:
    """The ``hazards --json`` / ``summary.json`` dict of an Analysis: traces,
    time_span_ns, findings (:func:`finding_entry`), problems, leaks, stats."""
    trace = analysis.trace
    stats = trace.stats
    return {
        "traces": list(trace.paths),
        "time_span_ns": list(trace.time_span_ns),
        "findings": [finding_entry(rec) for rec in analysis.findings.to_dict("records")],
        "problems": problem_records(analysis.problems),
        "leaks": analysis.leaks,
        "stats": {
            "events": trace.n_events,
            "events_by_name": dict(sorted(trace.events_by_name.items())),
            "calls": trace.table("calls").num_rows,
            **{name: stats.total(name) for name in QUALITY_COUNTERS},
            "unresolved_context": int(analysis.context.unresolved.sum()),
            "mdl_lifetimes": analysis.replay.n_lifetimes,
            "replay_engine": analysis.replay.engine,
            "loss": sum(stats.total(name) for name in LOSS_COUNTERS),
            "loss_details": stats.details(LOSS_COUNTERS),
        },
        "no_calls": no_calls_notice(trace, trace.table("calls").num_rows),
    }
