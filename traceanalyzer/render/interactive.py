"""The report's interactive timeline: hazards by problem and memory held, zoomable, with
hover, drawn by Bokeh in the page. The memory curve of a process is what it holds (the
leak timeline's ``held`` kind: an MDL locked and mapped into it counts once).

Bokeh's JavaScript is embedded inline (``Resources(mode="inline")``), so the report stays
one file that works offline. Both plots share the time axis: zooming or panning one
moves the other. Hovering a finding shows its rule, caller, process, MDL, bytes and time;
hovering the memory curve shows bytes held. Large traces are thinned as the PNGs are:
at most ``max_points`` findings (spread evenly over the problems' lanes; every
problem keeps its first and last occurrence) and min/max decimation of the step curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from traceanalyzer import vocabulary as vocab
from traceanalyzer.analysis.timelines import (
    decimate_steps,
    finding_lanes,
    held_series,
    normalise_leak_timeline,
    problem_lanes,
    rank_processes,
)
from traceanalyzer.escape import terminal_safe

__all__ = ["interactive_section"]


def _finding_points(findings: pd.DataFrame, problems: pd.DataFrame, t0: float, per: float,
                    max_lanes: int, max_points: int) -> tuple[dict[str, list], list[str]]:
    f = findings[findings["severity"].astype(str) != "info"].reset_index(drop=True)
    # a rule's findings are all info or none (info is never a raised severity)
    lanes = problem_lanes(f, max_lanes,
                          problems=problems[problems["severity"].astype(str) != "info"])
    # hover and axis text is shown by Bokeh as it is: controls and bidi controls visible
    labels = [terminal_safe(str(lbl).replace("\n", " · ")) for lbl in lanes["label"]]
    lane_no = finding_lanes(f, lanes)
    lane_names = np.array(labels + [None], dtype=object)  # -1: no lane (nothing folded)
    keep = np.ones(len(f), dtype=bool)
    if len(f) > max_points:  # thin evenly inside each lane, keeping its first and last
        keep[:] = False
        per_lane = max(max_points // max(len(labels), 1), 2)
        for k in range(len(labels)):
            idx = np.flatnonzero(lane_no == k)
            if idx.size:
                keep[idx[np.unique(np.linspace(0, idx.size - 1, min(per_lane, idx.size))
                                   .astype(int))]] = True
    sel = np.flatnonzero(keep)
    t = pd.to_numeric(f["time_ns"], errors="coerce").to_numpy(dtype=float)
    sev = f["severity"].astype(str).to_numpy()
    data = {
        "x": t[sel] / per,  # numpy: Bokeh ships it as one binary buffer
        "lane": lane_names[lane_no[sel]].tolist(),
        "rule": [terminal_safe(r) for r in f["rule"].astype(str).to_numpy()[sel]],
        "severity": sev[sel].tolist(),
        "caller": [terminal_safe(vocab.str_or_none(c) or "?") for c in f["caller"].to_numpy()[sel]],
        "process": [terminal_safe(vocab.process_label(p, n)) for p, n in
                    zip(f["pid"].to_numpy()[sel], f["process"].to_numpy()[sel])],
        "mdl": [vocab.format_address(m) for m in f["mdl"].to_numpy()[sel]],
        "bytes": [vocab.format_bytes(b, vocab.UNKNOWN_BYTES) for b in f["bytes"].to_numpy()[sel]],
    }
    return data, labels


#: Hover text of the memory curves: bytes in binary units (``8 KiB``), formatted in the
#: page by Bokeh, so no label string is shipped per point.
_HELD_FORMAT = "@bytes{0.[0] b}"

#: Pixel columns the memory curves are decimated to (min/max per column, real steps only):
#: a page-wide plot, with room to zoom in before steps merge.
LEAK_BINS = 2000


def _leak_series(analysis: Any, t0: float, t1: float, per: float, top_n: int
                 ) -> list[tuple[str, dict]]:
    """(label, {x, bytes}) of the memory held (each MDL lifetime once) by the top
    processes."""
    lt = normalise_leak_timeline(analysis.leak_timeline())  # converted once, ranked as it is
    if lt.empty:
        return []
    ranked = rank_processes(lt, t1).head(top_n)
    held = held_series(lt)  # in (pid, process, time) order
    out = []
    pids, names = held["pid"].to_numpy(), held["process"].to_numpy()
    for r in ranked.itertuples(index=False):
        pid = None if r.pid < 0 else int(r.pid)
        mine = held[(pids == r.pid) & (names == r.process)]
        t = mine["time_ns"].to_numpy(dtype=float)
        v = mine["bytes"].to_numpy(dtype=float)
        t = np.r_[t, t1]
        v = np.r_[v, v[-1]]
        t, v = decimate_steps(t, v, t0, t1, bins=LEAK_BINS)
        out.append((terminal_safe(vocab.process_label(pid, r.process)), {"x": t / per, "bytes": v}))
    return out


def interactive_section(analysis: Any, *, max_lanes: int = 15, max_points: int = 5_000,
                        top_processes: int = 8) -> str:
    """The ``<section id="interactive">`` of the report: Bokeh's inline JS and the two
    linked plots (hazards by problem, memory held by process)."""
    from bokeh.embed import components
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, HoverTool, Range1d
    from bokeh.plotting import figure
    from bokeh.resources import Resources
    from bokeh.transform import factor_cmap

    t0, t1 = (float(x) for x in analysis.trace.time_span_ns)
    unit, per = vocab.time_unit(t1 - t0)
    span = (t1 - t0) / per or 1.0  # one unit for a trace of one instant (bounds must differ)
    data, labels = _finding_points(analysis.findings, analysis.problems, t0, per, max_lanes,
                                   max_points)
    lo, hi = t0 / per, t1 / per  # x is time since the trace start, as time_ns counts
    x_range = Range1d(lo - span * 0.01, hi + span * 0.01, bounds=(lo - span * 0.05, hi + span * 0.05),
                      name="time")
    tools = "xpan,xwheel_zoom,box_zoom,reset,save"
    hz = figure(name="hazards", height=max(180, 60 + 38 * max(len(labels), 1)),
                sizing_mode="stretch_width", x_range=x_range, y_range=list(reversed(labels)) or ["no findings"],
                tools=tools, active_scroll="xwheel_zoom",
                title=f"Hazards by problem ({len(data['x'])} findings drawn)",
                x_axis_label=f"time since trace start ({unit})")
    src = ColumnDataSource(data, name="findings")
    colors = factor_cmap("severity", palette=[vocab.SEVERITY_COLORS[s] for s in vocab.SEVERITIES],
                         factors=list(vocab.SEVERITIES), nan_color=vocab.severity_color("?"))
    dots = hz.scatter("x", "lane", source=src, size=8, color=colors, line_color="black",
                      line_width=0.4, alpha=0.85)
    hz.add_tools(HoverTool(renderers=[dots], tooltips=[
        ("rule", "@rule (@severity)"), ("caller", "@caller"), ("process", "@process"),
        ("MDL", "@mdl"), ("bytes", "@bytes"), ("time", f"@x{{0.000}} {unit}")]))
    lk = figure(name="memory", height=260, sizing_mode="stretch_width", x_range=x_range,
                tools=tools, active_scroll="xwheel_zoom",
                title="Memory held per process (locked or user-mapped, each MDL once)",
                x_axis_label=f"time since trace start ({unit})", y_axis_label="bytes")
    renderers = []
    for i, (label, series) in enumerate(_leak_series(analysis, t0, t1, per, top_processes)):
        renderers.append(lk.step("x", "bytes", source=ColumnDataSource(series, name=f"held{i}"),
                                 mode="after",
                                 color=_PALETTE[i % len(_PALETTE)], legend_label=label,
                                 line_width=2))
    if not renderers:  # nothing held: an empty line, so Bokeh does not log a warning
        lk.line(x=[], y=[])
    if renderers:
        lk.add_tools(HoverTool(renderers=renderers, tooltips=[
            ("held", _HELD_FORMAT), ("time", f"@x{{0.000}} {unit}")], mode="vline"))
        lk.legend.location = "top_left"
        lk.legend.click_policy = "hide"
    script, div = components(column(hz, lk, sizing_mode="stretch_width"))
    js = Resources(mode="inline", components=["bokeh"]).render_js()
    return ('<section id="interactive"><h2>Interactive timeline</h2>'
            '<p class="note">Scroll to zoom the time axis, drag to pan, hover a mark for the '
            'finding; both plots move together. The PNG figures below are the same data '
            'for print and CI artifacts.</p>'
            f"{js}{div}{script}</section>")


_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
