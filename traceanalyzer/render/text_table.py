"""Text renderer: a human table of the findings for a terminal.

Strings that come from the trace are made safe for a terminal first (control
characters are written as ``\\xNN``), so a process name cannot move the cursor or
change colours.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd

from traceanalyzer.escape import terminal_safe
from traceanalyzer.render.base import filter_findings
from traceanalyzer import vocabulary as vocab

__all__ = ["RENDERER", "TextRenderer", "findings_text", "terminal_safe"]


def findings_text(findings: pd.DataFrame, summary: dict[str, Any] | None = None,
                  max_rows: int = 50, width: int = 100) -> str:
    """The findings as an aligned text table (most severe first, as given), with a
    header line of counts and, when ``summary`` is given, the leak and data-quality
    lines. At most ``max_rows`` rows; the rest are counted."""
    lines: list[str] = []
    n = len(findings)
    sev_counts = findings["severity"].value_counts().to_dict() if n else {}
    parts = [f"{sev_counts[s]} {s}" for s in vocab.SEVERITIES if s in sev_counts]
    lines.append(f"{n} finding{'s' if n != 1 else ''}" + (f": {', '.join(parts)}" if parts
                                                            else ""))
    if summary and (summary.get("no_calls") or {}).get("message"):
        lines.append(terminal_safe(summary["no_calls"]["message"]))
    if summary:
        leaks = summary.get("leaks") or {}
        lines.append(f"memory still held at trace end: "
                     f"{vocab.format_bytes(leaks.get('bytes_at_end', 0))}")
        for p in (leaks.get("by_process") or [])[:5]:
            lines.append(f"  {terminal_safe(vocab.process_label(p.get('pid'), p.get('process')))}"
                         f": {vocab.format_bytes(p.get('bytes'))}")
    if n:
        t0 = float(summary["time_span_ns"][0]) if summary and summary.get("time_span_ns") \
            else 0.0
        header = ("SEVERITY", "RULE", "TIME(s)", "PROCESS(PID)", "CALLER", "BYTES", "IMPACT")
        rows = []
        for r in findings.head(max_rows).itertuples(index=False):
            t = getattr(r, "time_ns", None)
            rows.append((
                terminal_safe(r.severity), terminal_safe(r.rule),
                "-" if t is None or pd.isna(t) else f"{(float(t) - t0) / 1e9:.6f}",
                terminal_safe(vocab.process_label(r.pid, r.process, width=24)),
                terminal_safe(vocab.shorten(str(r.caller), 28) if not pd.isna(r.caller)
                              else None),
                vocab.format_bytes(r.bytes),
                "permanent" if _is_true(getattr(r, "permanent", False))
                else vocab.format_byte_seconds(r.impact_byte_seconds),
            ))
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        lines.append("")
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n > max_rows:
            lines.append(f"... {n - max_rows} more (use --json or --csv for all)")
        first = findings.iloc[0]
        lines.append("")
        lines.append(textwrap.fill(f"top finding: {terminal_safe(first.get('message'))}",
                                   width=width, subsequent_indent="  "))
        mdl = vocab.address_to_int(first.get("mdl"))
        if mdl is not None:
            lines.append(f"  mdl {mdl:#x}")
        if first.get("advice") is not None and not pd.isna(first.get("advice")):
            lines.append(textwrap.fill(f"what to do: {terminal_safe(first.get('advice'))}",
                                       width=width, initial_indent="  ",
                                       subsequent_indent="  "))
    if summary and summary.get("stats"):
        lines += quality_lines(summary["stats"], width)
    return "\n".join(lines) + "\n"


def quality_lines(stats: dict[str, Any], width: int = 100) -> list[str]:
    """The footer: every counter of ``summary()["stats"]``, then a warning naming what
    was lost to damage (``loss``, ``loss_details``) when anything was."""
    counters = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items()
                         if isinstance(v, int) and not isinstance(v, bool) and k != "loss")
    out = ["", textwrap.fill(f"data quality: {counters}", width=width, subsequent_indent="  ")]
    if stats.get("loss"):
        out.append(textwrap.fill(
            f"WARNING: {stats['loss']} buffer(s)/record(s)/row(s) of the trace were lost to damage; "
            "findings may be missing (--strict makes this an error):", width=width,
            subsequent_indent="  "))
        out += [f"  {terminal_safe(d)}" for d in stats.get("loss_details") or []]
    return out


class TextRenderer:
    """``text``: the terminal table."""

    name = "text"
    extensions = (".txt",)
    binary = False

    def render(self, analysis: Any, max_rows: int = 50, min_severity: str | None = None,
               **_options: Any) -> str:
        """Findings table (at or above ``min_severity``) plus leak and data-quality lines."""
        findings = filter_findings(analysis.findings, min_severity)
        return findings_text(findings, analysis.summary(), max_rows=max_rows)


RENDERER = TextRenderer()


def _is_true(value: Any) -> bool:
    """A boolean cell that may be missing (NA counts as False)."""
    return not vocab.is_missing(value) and bool(value)
