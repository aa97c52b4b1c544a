"""The self-contained HTML report: summary, figures, impact, findings, leaks, data quality.

One file that opens offline: figures are PNG data URIs, CSS and JavaScript are inline,
and a Content-Security-Policy forbids any network access. Every string from the trace
is HTML-escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from traceanalyzer import vocabulary as vocab
from traceanalyzer.analysis.impact import impact_table
from traceanalyzer.model.html_repr import esc
from traceanalyzer.render.html_findings import findings_section
from traceanalyzer.render.interactive import interactive_section
from traceanalyzer.render.summary import summary_head

#: Figures of the report: name -> (title, caption).
FIGURES: dict[str, tuple[str, str]] = {
    "leak_timeline": (
        "Leak timeline",
        "Bytes locked and bytes mapped into user space per process over time. "
        "X marks a process that exited while still holding memory; the value at the "
        "right edge is what is still held when the trace ends (leaked until reboot for "
        "user mappings torn down at exit). The legend, the exit marks and the ranking "
        "of the processes count what each process holds: an MDL locked and mapped "
        "into the same process is one set of pages, counted once."),
    "hazard_timeline": (
        "Hazard timeline",
        "One lane per process (System and unattributed calls at the bottom). Markers are "
        "findings by severity; green bars are locked pages, blue bars user mappings; the "
        "hatched red span is the exposure window, while user PTEs pointed at unlocked "
        "pages. Above 200 findings: one lane per problem (rule + call site) with its "
        "count, the rest folded into one lane."),
    "impact": (
        "Impact",
        "Bytes x seconds held per call site and per rule, from the moment the hazard "
        "starts to its resolution or the end of the trace: fix the longest bars first."),
}

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")


def figure_pngs(analysis: Any, top_n: int = 8) -> dict[str, bytes]:
    """PNG bytes of the report's figures: ``leak_timeline`` (``top_n`` processes drawn
    one by one), ``hazard_timeline``, ``impact`` (rendered with the Agg canvas)."""
    return {"leak_timeline": analysis.plot_leak_timeline(top_n=top_n).png(),
            "hazard_timeline": analysis.plot_hazard_timeline().png(),
            "impact": analysis.plot_impact().png()}


def _asset(name: str) -> str:
    return resources.files("traceanalyzer.render").joinpath("assets", name).read_text("utf-8")


def html_report(analysis: Any, figures: Mapping[str, bytes] | None = None,
                title: str | None = None, max_findings: int = 2000,
                interactive: bool = True) -> str:
    """The report page as one HTML string.

    ``figures`` maps figure names (:data:`FIGURES`) to PNG bytes; they are rendered
    from ``analysis`` when not given. At most ``max_findings`` findings get a table row
    (summary.json has them all). ``interactive`` adds the zoomable, hoverable timeline
    (Bokeh, its JavaScript inline: about 1.3 MB; the page still works offline).
    """
    summary = summary_head(analysis)  # the sections read findings from the tables
    findings = analysis.findings
    figures = figure_pngs(analysis) if figures is None else figures
    traces = summary.get("traces") or []
    title = title or "traceanalyzer report: " + ", ".join(Path(str(p)).name for p in traces)
    from traceanalyzer import __version__

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_asset('report.css')}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><div class=\"meta\">"
        + " · ".join(f"<code>{esc(p)}</code>" for p in traces)
        + f" · {esc(_span_text(summary))} · traceanalyzer {esc(__version__)}</div></header>",
        "<main>",
        _summary_section(summary, findings),
        _problems_section(analysis.problems),
        interactive_section(analysis) if interactive else "",
        _figures_section(figures),
        _impact_section(findings),
        findings_section(analysis, findings, max_findings=max_findings),
        _leaks_section(summary),
        _stats_section(summary),
        "</main>",
        f"<script>{_asset('report.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _span_text(summary: dict) -> str:
    span = summary.get("time_span_ns") or [0, 0]
    try:
        return f"{(float(span[1]) - float(span[0])) / 1e9:.3f} s of trace"
    except (TypeError, ValueError, IndexError):
        return ""


def _summary_section(summary: dict, findings: pd.DataFrame) -> str:
    counts = vocab.severity_counts(findings["severity"]) if len(findings) else {}
    cards = []
    for s in vocab.SEVERITIES:
        n = int(counts.get(s, 0))
        color = vocab.SEVERITY_COLORS[s] if n else "#9aa5b1"
        cards.append(f'<div class="card"><div class="v" style="color:{color}">{n}</div>'
                     f'<div class="k">{esc(s)}</div></div>')
    leaks = summary.get("leaks") or {}
    cards.append(f'<div class="card"><div class="v">'
                 f'{esc(vocab.held_bytes_text(leaks))}</div>'
                 '<div class="k">held at trace end</div></div>')
    if "bytes_leaked_at_exit" in leaks:
        cards.append(f'<div class="card"><div class="v">'
                     f'{esc(vocab.format_bytes(leaks.get("bytes_leaked_at_exit"), vocab.UNKNOWN_BYTES))}</div>'
                     '<div class="k">left behind at process exit</div></div>')
    impacts = pd.to_numeric(findings.get("impact_byte_seconds", pd.Series(dtype=float)),
                            errors="coerce") if len(findings) else pd.Series(dtype=float)
    known = impacts.dropna()  # null: a finding of unknown size, not 0 B·s
    total = (vocab.format_byte_seconds(float(known.sum())) if len(known) or not len(impacts)
             else vocab.UNKNOWN_BYTES)
    if len(known) < len(impacts) and len(known):
        total += f" + {vocab.UNKNOWN_BYTES}"
    cards.append(f'<div class="card"><div class="v">{esc(total)}'
                 '</div><div class="k">total impact</div></div>')
    verdict = "No findings: no MDL misuse seen in this trace."
    if len(findings):
        top = findings.iloc[0]
        verdict = (f'Top finding: <span class="sev sev-{esc(top["severity"])}">'
                   f'{esc(top["severity"])}</span> <code>{esc(top["rule"])}</code>: '
                   f'{esc(top.get("message"))}')
    notice = (summary.get("no_calls") or {}).get("message")
    notice_html = f'<p class="verdict no-calls">{esc(notice)}</p>' if notice else ""
    return (f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div>'
            f'{notice_html}<p class="verdict">{verdict}</p></section>')


def _figures_section(figures: Mapping[str, bytes]) -> str:
    out = ['<section id="figures"><h2>Figures</h2>']
    for name, (title, caption) in FIGURES.items():
        png = figures.get(name)
        if not png:
            continue
        data = base64.b64encode(png).decode("ascii")
        out.append(f'<figure id="fig-{esc(name)}"><h3>{esc(title)}</h3>'
                   f'<img src="data:image/png;base64,{data}" alt="{esc(title)}">'
                   f"<figcaption>{esc(caption)}</figcaption></figure>")
    out.append("</section>")
    return "\n".join(out)


def _problems_section(problems: pd.DataFrame, max_rows: int = 200) -> str:
    """What to fix first: one row per problem (rule + call site), with its example."""
    rows = []
    for r in problems.head(max_rows).to_dict("records"):
        procs = list(r["processes"])
        shown = ", ".join(procs[:3]) + (f" and {len(procs) - 3} more" if len(procs) > 3 else "")
        first, last = (("-" if vocab.is_missing(v) else f"{float(v) / 1e9:.6f}")
                       for v in (r["first_ns"], r["last_ns"]))
        rows.append(
            f'<tr class="problem" data-problem="{esc(r["problem_id"])}">'
            f'<td><span class="sev sev-{esc(r["severity"])}">{esc(r["severity"])}</span></td>'
            f'<td><code>{esc(r["rule"])}</code></td><td><code>{esc(r["caller"])}</code></td>'
            f'<td class="num">{int(r["count"])}</td><td>{esc(shown or "-")}</td>'
            f'<td class="num">{first}</td><td class="num">{last}</td>'
            f'<td class="num">{esc(vocab.format_bytes(r["bytes"], vocab.UNKNOWN_BYTES))}</td>'
            f'<td class="num">'
            f'{esc(vocab.format_byte_seconds(r["impact_byte_seconds"], vocab.UNKNOWN_BYTES))}</td>'
            f'</tr><tr class="problem-detail"><td></td><td colspan="8">'
            f'<details><summary>example and what to do</summary><p>{esc(r["message"])}</p>'
            f'<p><strong>What to do:</strong> {esc(r["advice"])}</p>'
            f'<p>evidence (seq): {esc(", ".join(map(str, r["example_evidence"][:20])))}</p>'
            f'<p>problem id <code>{esc(r["problem_id"])}</code> (as <code>traceanalyzer check</code> '
            f'names it in its baseline and reports; <code>check --trend</code> takes it)</p>'
            f'</details></td></tr>')
    more = len(problems) - max_rows
    note = (f'<p class="note">{more} more problems in summary.json.</p>' if more > 0 else "")
    body = "".join(rows) or '<tr><td colspan="9">none</td></tr>'
    return ('<section id="problems"><h2>What to fix first</h2>'
            '<p class="note">One row per problem: the findings of one rule at one call site, '
            'whichever process or MDL they hit; most severe, then most costly first.</p>'
            '<table class="problems"><thead><tr><th>Severity</th><th>Rule</th>'
            '<th>Call site</th><th class="num">Count</th><th>Processes</th>'
            '<th class="num">First (s)</th><th class="num">Last (s)</th>'
            '<th class="num">Bytes</th><th class="num">Impact</th></tr></thead>'
            f'<tbody>{body}</tbody></table>{note}</section>')


def _impact_section(findings: pd.DataFrame) -> str:
    out = ['<section id="impact"><h2>Impact per call site and rule</h2><div class="two">']
    for by, label in (("caller", "Call site"), ("rule", "Rule")):
        t = impact_table(findings, by).head(25)
        rows = "".join(
            f'<tr><td><code>{esc(r[by])}</code></td><td><span class="sev sev-'
            f'{esc(r["worst_severity"])}">{esc(r["worst_severity"])}</span></td>'
            f'<td class="num">{int(r["findings"])}</td>'
            f'<td class="num">{esc(vocab.format_bytes(r["bytes"], vocab.UNKNOWN_BYTES))}</td>'
            f'<td class="num">'
            f'{esc(vocab.format_byte_seconds(r["impact_byte_seconds"], vocab.UNKNOWN_BYTES))}</td>'
            + (f'<td class="num">permanent: '
               f'{esc(vocab.format_bytes(r["permanent_bytes"], vocab.UNKNOWN_BYTES))}'
               '</td></tr>' if not vocab.is_missing(r.get("permanent_bytes"))
               and r.get("permanent_bytes") else
               f'<td class="num">{100 * float(r["share"]):.1f}%</td></tr>')
            for r in t.to_dict("records"))
        out.append(f'<div><h3>Per {by}</h3><table class="impact"><thead><tr><th>{label}</th>'
                   '<th>Worst</th><th class="num">Findings</th><th class="num">Bytes</th>'
                   '<th class="num">Impact</th><th class="num">Share</th></tr></thead>'
                   f'<tbody>{rows or "<tr><td colspan=6>none</td></tr>"}</tbody></table></div>')
    out.append("</div></section>")
    return "\n".join(out)


def _leaks_section(summary: dict) -> str:
    leaks = summary.get("leaks") or {}
    rows = "".join(
        f"<tr><td>{esc(vocab.process_label(p.get('pid'), p.get('process'), width=60))}</td>"
        f"<td class=\"num\">{esc(vocab.format_bytes(p.get('bytes'), vocab.UNKNOWN_BYTES))}</td></tr>"
        for p in leaks.get("by_process") or [])
    return ('<section id="leaks"><h2>Memory still held at trace end</h2>'
            f'<p>{esc(vocab.held_bytes_text(leaks))} in total.</p>'
            '<table><thead><tr><th>Process (pid)</th><th class="num">Bytes</th></tr></thead>'
            f'<tbody>{rows or "<tr><td colspan=2>none</td></tr>"}</tbody></table></section>')


def _stats_section(summary: dict) -> str:
    stats = summary.get("stats") or {}
    simple = "".join(f"<tr><td>{esc(k.replace('_', ' '))}</td><td class=\"num\">{esc(v)}</td>"
                     "</tr>" for k, v in stats.items() if not isinstance(v, (dict, list)))
    lost = "".join(f"<li>{esc(d)}</li>" for d in stats.get("loss_details") or [])
    warning = (f'<p class="warning"><strong>{esc(stats.get("loss"))} buffer(s)/record(s)/row(s) of the trace '
               f'were lost to damage; findings may be missing.</strong></p><ul>{lost}</ul>'
               if stats.get("loss") else "")
    by_name = stats.get("events_by_name") or {}
    names = "".join(f"<tr><td><code>{esc(k)}</code></td><td class=\"num\">{esc(v)}</td></tr>"
                    for k, v in sorted(by_name.items(), key=lambda kv: -int(kv[1] or 0)))
    return ('<section id="stats"><h2>Data quality</h2>' + warning + '<div class="two">'
            f'<table><thead><tr><th>Counter</th><th class="num">Value</th></tr></thead>'
            f'<tbody>{simple}</tbody></table>'
            '<table><thead><tr><th>Event</th><th class="num">Count</th></tr></thead>'
            f'<tbody>{names}</tbody></table></div></section>')


class HtmlRenderer:
    """``html``: the self-contained report page."""

    name = "html"
    extensions = (".html", ".htm")
    binary = False

    def render(self, analysis: Any, figures: dict[str, bytes] | None = None,
               title: str | None = None, interactive: bool = True, **_options: Any) -> str:
        """The report as HTML text (see :func:`html_report`)."""
        return html_report(analysis, figures=figures, title=title, interactive=interactive)


RENDERER = HtmlRenderer()
