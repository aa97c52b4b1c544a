"""The summary dict: ``Analysis.summary()``, the ``hazards --json`` / ``summary.json``
document of docs/cli.md (its shape: ``summary.schema.json``), rendered by
``json_summary.py``.

The findings are converted column-wise (:func:`finding_columns`: one conversion per
column, no per-row lookups), so that JSON of 100k findings costs about what the replay
does; ``json_summary.write_summary_json`` streams them without building the dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from traceanalyzer.analysis import Analysis
from traceanalyzer.context.attribution import unresolved_in_span
from traceanalyzer.coverage import no_calls_notice
from traceanalyzer.model.stats import LOSS_COUNTERS, QUALITY_COUNTERS
from traceanalyzer.rules.problems import problem_records
from traceanalyzer.vocabulary import int_or_none

#: Top-level keys of the summary, in document order.
SUMMARY_KEYS: tuple[str, ...] = ("traces", "time_span_ns", "findings", "problems", "leaks",
                                 "stats", "no_calls")

#: Keys of one JSON finding, in order, with the kind of value each holds ('str', 'int',
#: 'float', 'bool' (never null), 'ints' (a list of int); every kind but bool may be null).
FINDING_FIELDS: tuple[tuple[str, str], ...] = (
    ("rule", "str"), ("severity", "str"), ("time_ns", "int"), ("pid", "int"),
    ("process", "str"), ("tid", "int"), ("mdl", "str"), ("caller", "str"), ("event", "str"),
    ("bytes", "int"), ("impact_byte_seconds", "float"), ("start_ns", "int"),
    ("end_ns", "int"), ("exposure_window_ns", "ints"), ("message", "str"), ("advice", "str"),
    ("fingerprint", "str"), ("evidence_seq", "ints"), ("count", "int"), ("permanent", "bool"),
)


def _ints(column: Any) -> list[int | None]:
    """A column as Python ints, None where missing (addresses keep all 64 bits)."""
    s = pd.Series(column)
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.to_numpy(dtype=object, na_value=None).tolist()
    return [int_or_none(v) for v in s.tolist()]  # float or object columns (rare)


def _strs(column: Any) -> list[str | None]:
    """A column as str, None where missing."""
    s = pd.Series(column)
    if isinstance(s.dtype, pd.StringDtype):  # str or missing, by its dtype
        return s.to_numpy(dtype=object, na_value=None).tolist()
    values = s.astype(object).where(s.notna(), None).tolist()
    if all(type(v) is str or v is None for v in values):
        return values
    return [None if v is None else str(v) for v in values]


def _rounded(column: Any) -> list[float | None]:
    """Byte-seconds rounded to 6 decimals; None when unknown (size unknown)."""
    values = pd.to_numeric(pd.Series(column), errors="coerce").to_numpy(dtype=np.float64)
    return [None if v != v else round(v, 6) for v in values.tolist()]


def finding_columns(findings: pd.DataFrame, *, copy_lists: bool = True) -> dict[str, list[Any]]:
    """``Analysis.findings`` as the JSON findings, column-wise: each key of
    :data:`FINDING_FIELDS` -> one JSON-ready value per row. ``copy_lists=False`` hands
    out the table's own evidence lists (for a writer that only reads them)."""
    f = findings
    mdl = _ints(f["mdl"])
    start, end = _ints(f["exposure_start_ns"]), _ints(f["exposure_end_ns"])
    return {
        "rule": _strs(f["rule"]), "severity": _strs(f["severity"].astype(object)),
        "time_ns": _ints(f["time_ns"]), "pid": _ints(f["pid"]), "process": _strs(f["process"]),
        "tid": _ints(f["tid"]),
        "mdl": [None if m is None else f"0x{m:x}" for m in mdl],
        "caller": _strs(f["caller"]), "event": _strs(f["event"]), "bytes": _ints(f["bytes"]),
        "impact_byte_seconds": _rounded(f["impact_byte_seconds"]),
        "start_ns": _ints(f["start_ns"]), "end_ns": _ints(f["end_ns"]),
        "exposure_window_ns": [None if s is None else [s, e] for s, e in zip(start, end)],
        "message": _strs(f["message"]), "advice": _strs(f["advice"]),
        "fingerprint": _strs(f["fingerprint"]),
        "evidence_seq": ([list(e) for e in f["evidence"]] if copy_lists
                         else f["evidence"].tolist()),
        "count": _ints(f["count"]),
        "permanent": f["permanent"].fillna(False).astype(bool).tolist(),
    }


def finding_entries(findings: pd.DataFrame) -> list[dict[str, Any]]:
    """``Analysis.findings`` as JSON-ready finding dicts (the summary's ``findings``)."""
    columns = finding_columns(findings)
    keys = list(columns)
    return [dict(zip(keys, row)) for row in zip(*columns.values())]


def summary_parts(analysis: Any) -> dict[str, Any]:
    """The summary without its ``findings`` and ``problems`` lists: traces,
    time_span_ns, leaks, stats, no_calls (what the text and HTML headers need)."""
    trace = analysis.trace
    stats = trace.stats
    return {
        "traces": list(trace.paths),
        "time_span_ns": list(trace.time_span_ns),
        "leaks": analysis.leaks,
        "stats": {
            "events": trace.n_events,
            "events_by_name": dict(sorted(trace.events_by_name.items())),
            "calls": trace.table("calls").num_rows,
            **{name: stats.total(name) for name in QUALITY_COUNTERS},
            "unresolved_context": unresolved_in_span(analysis.context, trace),
            "mdl_lifetimes": analysis.replay.n_lifetimes,
            "replay_engine": analysis.replay.engine,
            "loss": sum(stats.total(name) for name in LOSS_COUNTERS),
            "loss_details": stats.details(LOSS_COUNTERS),
        },
        "no_calls": no_calls_notice(trace, trace.table("calls").num_rows),
    }


def summary_head(analysis: Any) -> dict[str, Any]:
    """What the text and HTML headers read (traces, time span, leaks, stats, no_calls):
    :func:`summary_parts` of an :class:`Analysis`, without building the finding list;
    ``summary()`` of anything else that offers one (a test double, another front end)."""
    if isinstance(analysis, Analysis):
        return summary_parts(analysis)
    return analysis.summary()


def in_order(parts: dict[str, Any], **lists: Any) -> dict[str, Any]:
    """``parts`` plus ``findings``/``problems`` as one summary dict in
    :data:`SUMMARY_KEYS` order."""
    merged = {**parts, **lists}
    return {k: merged[k] for k in SUMMARY_KEYS if k in merged}


def summary_dict(analysis: Any) -> dict[str, Any]:
    """The ``hazards --json`` / ``summary.json`` dict of an Analysis: traces,
    time_span_ns, findings (:func:`finding_entries`), problems, leaks, stats."""
    return in_order(summary_parts(analysis), findings=finding_entries(analysis.findings),
                    problems=problem_records(analysis.problems))
