"""Text renderer: a human table of the problems (or findings) for a terminal.

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
from traceanalyzer.render.summary import summary_head
from traceanalyzer.rules.problems import problems_of
from traceanalyzer import vocabulary as vocab

__all__ = ["RENDERER", "TextRenderer", "findings_text", "problems_count_line", "terminal_safe"]


def _count_line(what: str, n: int, severities: pd.Series) -> str:
    """``N findings: 1 critical, ...``"""
    sev_counts = vocab.severity_counts(severities) if n else {}
    parts = [f"{sev_counts[s]} {s}" for s in vocab.SEVERITIES if s in sev_counts]
    return f"{n} {what}{'s' if n != 1 else ''}" + (f": {', '.join(parts)}" if parts else "")


def problems_count_line(problems: pd.DataFrame) -> str:
    """``3 problems: 1 critical, 1 high, 1 medium (5 occurrences)``: the first line of
    :func:`problems_text` (``hazards``), which ``report`` prints too."""
    total = int(problems["count"].sum()) if len(problems) else 0
    return (_count_line("problem", len(problems), problems["severity"])
            + f" ({total} occurrence{'s' if total != 1 else ''})")


def _header_lines(count_line: str, summary: dict[str, Any] | None) -> list[str]:
    """``count_line`` and the memory-still-held lines."""
    lines = [count_line]
    if summary and (summary.get("no_calls") or {}).get("message"):
        lines.append(terminal_safe(summary["no_calls"]["message"]))
    if summary:
        leaks = summary.get("leaks") or {}
        lines.append(f"memory still held at trace end: "
                     f"{vocab.held_bytes_text(leaks)}")
        for p in (leaks.get("by_process") or [])[:5]:
            lines.append(f"  {terminal_safe(vocab.process_label(p.get('pid'), p.get('process')))}"
                         f": {vocab.format_bytes(p.get('bytes'), vocab.UNKNOWN_BYTES)}")
    return lines


def _table_lines(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["", "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return lines


def _top_lines(label: str, first: pd.Series, width: int) -> list[str]:
    """The top row's message, MDL and advice."""
    lines = ["", textwrap.fill(f"{label}: {terminal_safe(first.get('message'))}",
                               width=width, subsequent_indent="  ")]
    mdl = vocab.address_to_int(first.get("mdl"))
    if mdl is not None:
        lines.append(f"  mdl {mdl:#x}")
    if first.get("advice") is not None and not pd.isna(first.get("advice")):
        lines.append(textwrap.fill(f"what to do: {terminal_safe(first.get('advice'))}",
                                   width=width, initial_indent="  ", subsequent_indent="  "))
    return lines


def _quality_lines(summary: dict[str, Any] | None, width: int = 100) -> list[str]:
    """The data-quality footer (:func:`quality_lines`) when ``summary`` has stats."""
    if not (summary and summary.get("stats")):
        return []
    return quality_lines(summary["stats"], width)


def _seconds(t: Any) -> str:
    """A trace time in seconds since the trace start: what time_ns, the messages, the JSON
    and ``trace.window`` count (not since the first event)."""
    return "-" if t is None or pd.isna(t) else f"{float(t) / 1e9:.6f}"


def findings_text(findings: pd.DataFrame, summary: dict[str, Any] | None = None,
                  max_rows: int = 50, width: int = 100) -> str:
    """The findings as an aligned text table (most severe first, as given), with a
    header line of counts and, when ``summary`` is given, the leak and data-quality
    lines. At most ``max_rows`` rows; the rest are counted."""
    n = len(findings)
    lines = _header_lines(_count_line("finding", n, findings["severity"]), summary)
    if n:
        header = ("SEVERITY", "RULE", "TIME(s)", "PROCESS(PID)", "CALLER", "BYTES", "IMPACT")
        rows = []
        for r in findings.head(max_rows).itertuples(index=False):
            rows.append((
                terminal_safe(r.severity), terminal_safe(r.rule),
                _seconds(getattr(r, "time_ns", None)),
                terminal_safe(vocab.process_label(r.pid, r.process, width=24)),
                terminal_safe(vocab.shorten(str(r.caller), 28) if not pd.isna(r.caller)
                              else None),
                vocab.format_bytes(r.bytes, vocab.UNKNOWN_BYTES),
                "permanent" if _is_true(getattr(r, "permanent", False))
                else vocab.format_byte_seconds(r.impact_byte_seconds, vocab.UNKNOWN_BYTES),
            ))
        lines += _table_lines(header, rows)
        if n > max_rows:
            lines.append(f"... {n - max_rows} more (use --json or --csv for all)")
        lines += _top_lines("top finding", findings.iloc[0], width)
    lines += _quality_lines(summary, width)
    return "\n".join(lines) + "\n"


def problems_text(problems: pd.DataFrame, summary: dict[str, Any] | None = None,
                  max_rows: int = 50, width: int = 100) -> str:
    """The problems (``Analysis.problems`` columns: one row per rule + call site) as an
    aligned text table, most severe and costly first, with the same header and
    data-quality lines as :func:`findings_text`."""
    n = len(problems)
    lines = _header_lines(problems_count_line(problems), summary)
    if n:
        header = ("SEVERITY", "RULE", "CALLER", "COUNT", "PROCESSES", "FIRST(s)", "LAST(s)",
                  "BYTES", "IMPACT")
        rows = []
        for r in problems.head(max_rows).itertuples(index=False):
            procs = list(r.processes)
            shown = ", ".join(procs[:2]) + (f" +{len(procs) - 2}" if len(procs) > 2 else "")
            rows.append((
                terminal_safe(r.severity), terminal_safe(r.rule),
                terminal_safe(vocab.shorten(str(r.caller), 32) if not pd.isna(r.caller)
                              else None),
                str(int(r.count)), terminal_safe(vocab.shorten(shown, 24) or "-"),
                _seconds(r.first_ns), _seconds(r.last_ns),
                vocab.format_bytes(r.bytes, vocab.UNKNOWN_BYTES),
                "permanent" if _is_permanent(r.permanent_bytes)
                else vocab.format_byte_seconds(r.impact_byte_seconds, vocab.UNKNOWN_BYTES),
            ))
        lines += _table_lines(header, rows)
        if n > max_rows:
            lines.append(f"... {n - max_rows} more (use --json or --csv for all)")
        lines.append("(one row per rule and call site; --all lists every finding)")
        lines += _top_lines("top problem, e.g.", problems.iloc[0], width)
    lines += _quality_lines(summary, width)
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
               per_finding: bool = False, **_options: Any) -> str:
        """Problems table (findings at or above ``min_severity`` grouped by rule and call
        site; one row per finding with ``per_finding``) plus leak and data-quality lines."""
        findings = filter_findings(analysis.findings, min_severity)
        head = summary_head(analysis)  # the header and footer need no finding list
        if per_finding:
            return findings_text(findings, head, max_rows=max_rows)
        return problems_text(problems_of(findings), head, max_rows=max_rows)


RENDERER = TextRenderer()


def _is_permanent(permanent_bytes: Any) -> bool:
    """A problem with permanent findings: permanent_bytes > 0, or null (all of unknown
    size)."""
    return vocab.is_missing(permanent_bytes) or permanent_bytes > 0


def _is_true(value: Any) -> bool:
    """A boolean cell that may be missing (NA counts as False)."""
    return not vocab.is_missing(value) and bool(value)
