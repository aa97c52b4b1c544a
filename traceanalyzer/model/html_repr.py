"""Compact HTML for Jupyter, next to the data it shows: ``Trace._repr_html_`` and the
small helpers (escaping, key/value tables) that the later layers' HTML reuses.

Every string from the trace is escaped with :func:`esc`: HTML escaping, after control and
bidirectional-control characters and line separators are written as visible ``\\xNN`` /
``\\u202e`` (:func:`traceanalyzer.escape.terminal_text`), so no NUL or other control
character reaches the page and a name cannot reorder the text around it.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

from traceanalyzer.escape import terminal_text
from traceanalyzer.model.stats import QUALITY_COUNTERS
from traceanalyzer.vocabulary import is_missing

TABLE_STYLE = ("font-family:system-ui,sans-serif;font-size:13px;border-collapse:collapse;"
               "margin:4px 0")
CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left"


def esc(value: Any) -> str:
    """HTML-escaped text of any value, control characters visible (None/NA -> '')."""
    if type(value) is str:  # most cells; rule texts, callers and images repeat
        return _escaped(value) if len(value) < 512 else _html(value)
    return "" if is_missing(value) else _html(str(value))


def _html(text: str) -> str:
    return html.escape(terminal_text(text), quote=True)


_escaped = lru_cache(maxsize=8192)(_html)


def kv_table(rows: list[tuple[str, str]]) -> str:
    """A two-column table; keys are escaped here, values must be HTML already."""
    body = "".join(f'<tr><th style="{CELL_STYLE}">{esc(k)}</th><td style="{CELL_STYLE}">{v}</td></tr>'
                   for k, v in rows)
    return f'<table style="{TABLE_STYLE}">{body}</table>'


def file_names(paths: Any) -> str:
    """The base names of trace files as ``<code>`` items ('(in memory)' when none)."""
    return ", ".join(f"<code>{esc(Path(str(p)).name)}</code>" for p in (paths or [])) \
        or "(in memory)"


def trace_repr_html(trace: Any) -> str:
    """A Trace as a small key/value table: files, time span, events, calls, processes,
    threads and the data-quality counters that are not zero."""
    lo, hi = trace.time_span_ns
    stats = trace.stats
    quality = [(name, stats.total(name)) for name in QUALITY_COUNTERS]
    quality_text = ", ".join(f"{esc(n.replace('_', ' '))}: {v}" for n, v in quality if v) \
        or "no problems counted"
    rows = [
        ("trace", file_names(getattr(trace, "paths", []))),
        ("time span", esc(f"{(hi - lo) / 1e9:.6f} s")),
        ("events", esc(f"{getattr(trace, 'n_events', len(trace.events)):,}")),
        ("calls", esc(f"{len(trace.calls):,}")),
        ("processes", esc(f"{len(trace.processes):,}")),
        ("threads", esc(f"{len(trace.threads):,}")),
        ("data quality", quality_text),
    ]
    return f"<div><strong>Trace</strong>{kv_table(rows)}</div>"
