"""Compact HTML summary for Jupyter: ``Analysis._repr_html_`` calls it. Every string
from the trace is escaped."""

from __future__ import annotations

from typing import Any

from traceanalyzer import vocabulary as vocab
from traceanalyzer.model.html_repr import CELL_STYLE as _CELL
from traceanalyzer.model.html_repr import TABLE_STYLE as _STYLE
from traceanalyzer.model.html_repr import esc, file_names, kv_table


def analysis_repr_html(analysis: Any, top: int = 5) -> str:
    """An Analysis as counts by severity, memory held at the end and its ``top`` most
    severe findings, with a pointer to the plotting methods."""
    f = analysis.findings
    counts = vocab.severity_counts(f["severity"]) if len(f) else {}
    badges = " ".join(
        f'<span style="background:{vocab.SEVERITY_COLORS[s]};color:#fff;border-radius:8px;'
        f'padding:0 6px">{int(counts[s])} {esc(s)}</span>'
        for s in vocab.SEVERITIES if s in counts) or "no findings"
    leaks = analysis.leaks
    rows = [("trace", file_names(getattr(analysis.trace, "paths", []))),
            ("findings", badges),
            ("held at trace end", esc(vocab.held_bytes_text(leaks)))]
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
    return f"<div><strong>Analysis</strong>{kv_table(rows)}{table}{hint}</div>"
