"""Compact HTML summaries for Jupyter: ``Trace._repr_html_`` and
``Analysis._repr_html_`` call these. Every string from the trace is escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traceanalyzer.render.html_findings import esc
from traceanalyzer import vocabulary as vocab

_STYLE = ("font-family:system-ui,sans-serif;font-size:13px;border-collapse:collapse;"
          "margin:4px 0")
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left"


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th style="{_CELL}">{esc(k)}</th><td style="{_CELL}">{v}</td></tr>'
                   for k, v in rows)
    return f'<table style="{_STYLE}">{body}</table>'


def _names(paths: Any) -> str:
    return ", ".join(f"<code>{esc(Path(str(p)).name)}</code>" for p in (paths or [])) \
        or "(in memory)"


def trace_repr_html(trace: Any) -> str:
    """A Trace as a small key/value table: files, time span, events, calls, processes,
    threads and the data-quality counters that are not zero."""
    lo, hi = trace.time_span_ns
    stats = trace.stats
    quality = [(name, stats.total(name)) for name in
               ("unknown_events", "lost_events", "lost_buffers", "corrupt_buffers", "bad_rows")]
    quality_text = ", ".join(f"{esc(n.replace('_', ' '))}: {v}" for n, v in quality if v) \
        or "no problems counted"
    rows = [
        ("trace", _names(getattr(trace, "paths", []))),
        ("time span", esc(f"{(hi - lo) / 1e9:.6f} s")),
        ("events", esc(f"{getattr(trace, 'n_events', len(trace.events)):,}")),
        ("calls", esc(f"{len(trace.calls):,}")),
        ("processes", esc(f"{len(trace.processes):,}")),
        ("threads", esc(f"{len(trace.threads):,}")),
        ("data quality", quality_text),
    ]
    return f"<div><strong>Trace</strong>{_kv_table(rows)}</div>"


def analysis_repr_html(analysis: Any, top: int = 5) -> str:
    """An Analysis as counts by severity, memory held at the end and its ``top`` most
    severe findings, with a pointer to the plotting methods."""
    f = analysis.findings
    counts = f["severity"].value_counts().to_dict() if len(f) else {}
    badges = " ".join(
        f'<span style="background:{vocab.SEVERITY_COLORS[s]};color:#fff;border-radius:8px;'
        f'padding:0 6px">{int(counts[s])} {esc(s)}</span>'
        for s in vocab.SEVERITIES if s in counts) or "no findings"
    leaks = analysis.summary().get("leaks", {}) if hasattr(analysis, "summary") else {}
    rows = [("trace", _names(getattr(analysis.trace, "paths", []))),
            ("findings", badges),
            ("held at trace end", esc(vocab.format_bytes(leaks.get("bytes_at_end", 0))))]
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in
                   ("severity", "rule", "process (pid)", "caller", "bytes", "impact"))
    body = "".join(
        f'<tr><td style="{_CELL};color:{vocab.severity_color(r["severity"])}">'
        f'{esc(r["severity"])}</td><td style="{_CELL}"><code>{esc(r["rule"])}</code></td>'
        f'<td style="{_CELL}">{esc(vocab.process_label(r["pid"], r["process"], 40))}</td>'
        f'<td style="{_CELL}"><code>{esc(r["caller"])}</code></td>'
        f'<td style="{_CELL}">{esc(vocab.format_bytes(r["bytes"]))}</td>'
        f'<td style="{_CELL}">{esc(vocab.format_byte_seconds(r["impact_byte_seconds"]))}</td>'
        "</tr>" for r in f.head(top).to_dict("records"))
    more = f"<div>… and {len(f) - top} more in <code>.findings</code></div>" \
        if len(f) > top else ""
    table = f'<table style="{_STYLE}"><tr>{head}</tr>{body}</table>{more}' if len(f) else ""
    hint = ("<div style=\"color:#666\">Plots: <code>.plot_leak_timeline()</code>, "
            "<code>.plot_hazard_timeline()</code>, <code>.plot_impact()</code></div>")
    return f"<div><strong>Analysis</strong>{_kv_table(rows)}{table}{hint}</div>"
