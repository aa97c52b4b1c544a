"""Problem timeline: one lane per problem (rule + call site), its occurrences on it.

The process-lane hazard timeline shows *where* memory was exposed; with thousands of
findings it turns into a wall of markers. This view has one lane per problem (the top
``max_lanes`` in the order of ``Analysis.problems``: worst severity, impact, count), the
rest folded into one "others" lane, each lane labelled with its rule, call site, count
and processes. Every lane is one scatter artist, so 10,000 findings draw as fast as 10.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from traceanalyzer import vocabulary as vocab
from traceanalyzer.plot import frames, style
from traceanalyzer.analysis.timelines import (  # noqa: F401  (re-exported: plot API)
    PROBLEM_LANES_ABOVE,
    finding_lanes,
    problem_lanes,
)

def plot_problem_timeline(
    findings: pd.DataFrame,
    *,
    time_span_ns: Sequence[float] | None = None,
    time_window_ns: Sequence[float] | None = None,
    include_info: bool = False,
    max_lanes: int = 12,
    title: str | None = None,
    width: float = style.FIG_WIDTH,
    problems: pd.DataFrame | None = None,
) -> Figure:
    """Figure with one lane per problem and a mark per occurrence.

    findings: an ``Analysis.findings`` table. time_span_ns: the trace's (start, end):
    times are drawn relative to its start. time_window_ns: (start, end) absolute ns to
    zoom to. include_info: also draw severity ``info`` findings (trace quality).
    max_lanes: lanes drawn, the last one folding the remaining problems. title,
    width: figure title (default "Hazard timeline by problem") and width in inches.
    problems: ``Analysis.problems`` of ``findings`` when at hand, so they are not
    grouped again (not used with ``time_window_ns``: its findings are a subset).
    """
    f = findings
    hidden_info = 0
    if not include_info and len(f):
        info = f["severity"].astype(str) == "info"
        hidden_info = int(info.sum())
        f = f[~info]
    times = frames.numeric(f["time_ns"]) if len(f) else pd.Series(dtype=float)
    t0, t1 = frames.time_span(time_span_ns, times)
    x_lo, x_hi = t0, t1
    zoom = ""
    if time_window_ns is not None:
        x_lo, x_hi = float(time_window_ns[0]), float(time_window_ns[1])
        keep = (times >= x_lo) & (times <= x_hi)
        f, times = f[keep.to_numpy()], times[keep]
        zoom = f"; zoom: {vocab.format_time_ns(x_lo)} to {vocab.format_time_ns(x_hi)}"
    if problems is not None and time_window_ns is None and not include_info:
        # info is the severity of the trace-quality rules, never one a finding is raised
        # to: a problem's findings are all info or none, so dropping its rows is enough
        problems = problems[problems["severity"].astype(str) != "info"]
    lanes = problem_lanes(f, max_lanes, problems=None if time_window_ns is not None
                          else problems, text=style.plot_text)
    n = max(len(lanes), 1)
    unit, per = vocab.time_unit(x_hi - x_lo)
    lane = finding_lanes(f, lanes)
    x = times.to_numpy(dtype=float) / per  # since the trace start, as time_ns counts
    sev = f["severity"].astype(str).to_numpy() if len(f) else np.array([], dtype=object)
    with matplotlib.rc_context(style.rc_params()):
        fig = style.new_figure(figsize=(width, 1.6 + 0.75 * n), layout="constrained")
        ax = fig.add_subplot()
        for i in range(len(lanes)):
            if i % 2:
                ax.axhspan(n - 1 - i - 0.5, n - 1 - i + 0.5, color="0.96", zorder=0, lw=0)
        rng = np.random.default_rng(0)  # a little vertical jitter shows density
        for s in vocab.SEVERITIES:
            pick = (sev == s) & (lane >= 0)
            if not pick.any():
                continue
            y = (n - 1 - lane[pick]) + rng.uniform(-0.22, 0.22, int(pick.sum()))
            ax.scatter(x[pick], y, s=22 if pick.sum() < 500 else 8,
                       marker=style.SEVERITY_MARKERS.get(s, "o"),
                       color=vocab.SEVERITY_COLORS[s], edgecolors="black",
                       linewidths=0.3 if pick.sum() < 500 else 0, alpha=0.85, zorder=3)
        ax.set_yticks([n - 1 - i for i in range(len(lanes))], list(lanes["label"]),
                      fontsize=style.BASE_FONT_SIZE - 1)
        for tick, s in zip(ax.get_yticklabels(), lanes["severity"]):
            tick.set_color(vocab.severity_color(s))
        ax.set_ylim(-0.5, n - 0.5)
        span = max((x_hi - x_lo) / per, 1e-9)
        ax.set_xlim(x_lo / per - span * 0.01, x_hi / per + span * 0.01)
        ax.set_xlabel(f"time since trace start ({unit})")
        ax.grid(axis="y", visible=False)
        if lanes.empty:
            ax.text(0.5, 0.5, "no findings", transform=ax.transAxes, ha="center",
                    va="center", color="0.4", fontsize=style.BASE_FONT_SIZE + 2)
        total = int(lanes["count"].sum()) if len(lanes) else 0
        n_problems = int(lanes["problems"].sum()) if len(lanes) else 0
        sub = f"{n_problems} problem{'s' if n_problems != 1 else ''}, {total} findings"
        if hidden_info:
            sub += f"; {hidden_info} info not drawn"
        fig.suptitle(f"{title or 'Hazard timeline by problem'}: {sub}{zoom}",
                     fontsize=style.BASE_FONT_SIZE + 3, fontweight="bold", x=0.01, ha="left")
        present = [s for s in vocab.SEVERITIES if (sev == s).any()]
        if present:
            fig.legend(handles=[Line2D([], [], ls="none", marker=style.SEVERITY_MARKERS.get(s, "o"),
                                       color=vocab.SEVERITY_COLORS[s], markeredgecolor="black",
                                       markersize=8, label=s) for s in present],
                       loc="outside right upper")
    return fig


def plot_problem_timeline_for(analysis: Any, **kwargs: Any) -> Figure:
    """:func:`plot_problem_timeline` of an Analysis, over the trace's time span."""
    kwargs.setdefault("time_span_ns", analysis.trace.time_span_ns)
    return plot_problem_timeline(analysis.findings, **kwargs)
