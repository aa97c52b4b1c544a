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
from traceanalyzer.rules.problems import problem_id, problems_of

#: Above this many findings (severity above info) ``lanes="auto"`` draws problem lanes.
PROBLEM_LANES_ABOVE = 200


def problem_lanes(findings: pd.DataFrame, max_lanes: int = 12,
                  problems: pd.DataFrame | None = None) -> pd.DataFrame:
    """The lanes, top to bottom: columns ``lane``, ``problem_id`` (None for the others
    lane), ``label``, ``count``, ``severity`` (worst), ``problems`` (1, or how many
    are folded into the others lane). ``problems``: ``problems_of(findings)`` when the
    caller has it (``Analysis.problems``), so 100k findings are not grouped again."""
    p = problems_of(findings) if problems is None else problems
    max_lanes = max(int(max_lanes), 1)
    shown, folded = (p, p.iloc[:0]) if len(p) <= max_lanes else (
        p.iloc[: max_lanes - 1], p.iloc[max_lanes - 1:])
    rows = []
    for r in shown.itertuples(index=False):
        procs = list(r.processes)
        where = ", ".join(procs[:2]) + (f" +{len(procs) - 2}" if len(procs) > 2 else "")
        label = (f"{style.plot_text(r.rule)}\n{style.plot_text(vocab.str_or_none(r.caller) or '?')}\n"
                 f"{int(r.count)}x" + (f" in {style.plot_text(where)}" if where else ""))
        rows.append((r.problem_id, label, int(r.count), str(r.severity), 1))
    if len(folded):
        n = int(folded["count"].sum())
        rows.append((None, f"others\n{len(folded)} problems, {n}x", n,
                     str(folded["severity"].max()), len(folded)))
    return pd.DataFrame([(i, *r) for i, r in enumerate(rows)],
                        columns=["lane", "problem_id", "label", "count", "severity", "problems"])


def finding_lanes(findings: pd.DataFrame, lanes: pd.DataFrame) -> np.ndarray:
    """The lane (row of :func:`problem_lanes`) of each finding: its problem's, the
    folded lane's when its problem is not drawn, -1 when there is no folded lane. The
    problem id is hashed once per distinct rule + call site, not once per finding."""
    if not len(findings):
        return np.array([], dtype=np.int64)
    lane_of = {k: i for k, i in zip(lanes["problem_id"], lanes["lane"]) if isinstance(k, str)}
    others = int(lanes["lane"].iloc[-1]) if len(lanes) and not isinstance(
        lanes["problem_id"].iloc[-1], str) else -1  # the folded lane has no id
    rule_codes, rules = pd.factorize(findings["rule"].astype(str))
    caller_codes, callers = pd.factorize(findings["caller"])  # a missing caller: -1
    pair = rule_codes.astype(np.int64) * (len(callers) + 1) + caller_codes + 1
    keys, codes = np.unique(pair, return_inverse=True)
    per_key = np.array([lane_of.get(problem_id(
        str(rules[k // (len(callers) + 1)]),
        None if k % (len(callers) + 1) == 0 else str(callers[k % (len(callers) + 1) - 1])),
        others) for k in keys], dtype=np.int64)
    return per_key[codes.ravel()]


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
        zoom = f"; zoom: {vocab.format_time_ns(x_lo, t0)} to {vocab.format_time_ns(x_hi, t0)}"
    if problems is not None and time_window_ns is None and not include_info:
        # info is the severity of the trace-quality rules, never one a finding is raised
        # to: a problem's findings are all info or none, so dropping its rows is enough
        problems = problems[problems["severity"].astype(str) != "info"]
    lanes = problem_lanes(f, max_lanes, problems=None if time_window_ns is not None
                          else problems)
    n = max(len(lanes), 1)
    unit, per = vocab.time_unit(x_hi - x_lo)
    lane = finding_lanes(f, lanes)
    x = (times.to_numpy(dtype=float) - t0) / per
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
        ax.set_xlim((x_lo - t0) / per - span * 0.01, (x_hi - t0) / per + span * 0.01)
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
