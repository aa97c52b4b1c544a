"""Hazard timeline: one lane per process (plus System/unattributed), findings on it.

Each lane shows the lifetimes of the locks and mappings involved in findings as thin
bars, exposure windows (unlock -> unmap or exit, while user PTEs point at unlocked
pages) as hatched red spans in the lane of the process whose address space is exposed,
and the findings as markers coloured and shaped by severity, each labelled with its
rule ID. Labels are placed so that they do not overlap; the ones that do not fit are
counted in the lane name, so a PNG reads without hovering.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from traceanalyzer.plot import frames, style
from traceanalyzer import vocabulary as vocab

SYSTEM_KEY: tuple = ("system",)
OTHERS_KEY: tuple = ("others",)
_USER_MAP_COLOR = "#2f6db5"
_KERNEL_MAP_COLOR = "#7f7f7f"
_LOCK_COLOR = "#3c9a4a"
_EXPOSURE_COLOR = "#c0162c"
_LABEL_ROWS = 3


def hazard_lanes(findings: pd.DataFrame, mappings: pd.DataFrame | None = None,
                 max_lanes: int = 12) -> pd.DataFrame:
    """The lanes of the hazard timeline, top to bottom.

    Columns: ``lane`` (0 = top), ``key`` (a tuple: ``(pid, process)``, ``('system',)``
    or ``('others',)``), ``label``, ``findings`` (count), ``causing_calls`` (calls that
    ran here and caused a finding in another lane: needs ``ctx_pid``/``ctx_process``
    columns in ``findings``, see :func:`with_call_context`), ``worst_severity``.
    Processes are ordered by worst severity (of their findings or of findings on their
    mappings), then impact, then number of findings; System and
    unattributed calls share the last lane; beyond ``max_lanes`` processes fold into
    an "others" lane.
    """
    f = _norm_findings(findings)
    keys: dict[tuple, dict[str, Any]] = {}
    for r in f.itertuples(index=False):
        k = _key(r.pid, r.process)
        d = keys.setdefault(k, {"findings": 0, "worst": 9, "first": r.time_ns, "impact": 0.0})
        d["findings"] += int(r.count)
        d["impact"] += 0.0 if np.isnan(r.impact) else float(r.impact)
        d["worst"] = min(d["worst"], vocab.severity_rank(r.severity))
        d["first"] = min(d["first"], r.time_ns)
    m = _norm_mappings(mappings)
    # A process whose mapping a finding exposes ranks like the finding itself.
    exposed: dict[float, int] = {}
    for r in f.itertuples(index=False):
        if not np.isnan(r.mapping_id):
            rank = vocab.severity_rank(r.severity)
            exposed[r.mapping_id] = min(exposed.get(r.mapping_id, 9), rank)
    for r in f[f["ctx_pid"].notna() | f["ctx_process"].notna()].itertuples(index=False):
        k = _key(r.ctx_pid, r.ctx_process)
        if k == _key(r.pid, r.process):
            continue
        d = keys.setdefault(k, {"findings": 0, "worst": 9, "first": r.time_ns, "impact": 0.0})
        d["worst"] = min(d["worst"], vocab.severity_rank(r.severity))
        d["calls"] = d.get("calls", 0) + 1
    for r in m.itertuples(index=False):
        k = _key(r.pid, r.process) if r.mode == "UserMode" else SYSTEM_KEY
        d = keys.setdefault(k, {"findings": 0, "worst": 9, "first": r.start_ns, "impact": 0.0})
        d["worst"] = min(d["worst"], exposed.get(r.mapping_id, 9))
    procs = [k for k in keys if k != SYSTEM_KEY]
    procs.sort(key=lambda k: (keys[k]["worst"], -keys[k]["impact"], -keys[k]["findings"],
                              keys[k]["first"]))
    room = max_lanes - (1 if SYSTEM_KEY in keys else 0)
    shown, folded = (procs, []) if len(procs) <= room else (procs[: room - 1], procs[room - 1:])
    rows = [(k, style.plot_text(vocab.process_label(k[0], k[1])), keys[k]["findings"],
             keys[k].get("calls", 0), keys[k]["worst"])
            for k in shown]
    if folded:
        rows.append((OTHERS_KEY, f"others ({len(folded)} processes)",
                     sum(keys[k]["findings"] for k in folded),
                     sum(keys[k].get("calls", 0) for k in folded),
                     min(keys[k]["worst"] for k in folded)))
    if SYSTEM_KEY in keys:
        rows.append((SYSTEM_KEY, style.SYSTEM_LANE, keys[SYSTEM_KEY]["findings"],
                     keys[SYSTEM_KEY].get("calls", 0), keys[SYSTEM_KEY]["worst"]))
    sev = list(vocab.SEVERITIES) + ["none"] * 5
    return pd.DataFrame(
        [(i, k, lbl, n, c, sev[w]) for i, (k, lbl, n, c, w) in enumerate(rows)],
        columns=["lane", "key", "label", "findings", "causing_calls", "worst_severity"])


def plot_hazard_timeline(
    findings: pd.DataFrame,
    mappings: pd.DataFrame | None = None,
    locks: pd.DataFrame | None = None,
    *,
    time_span_ns: Sequence[float] | None = None,
    time_window_ns: Sequence[float] | None = None,
    mdl: int | str | None = None,
    include_info: bool = False,
    max_lanes: int = 12,
    title: str | None = None,
    width: float = style.FIG_WIDTH,
) -> Figure:
    """Figure with one lane per process and the findings, exposures and mappings on it.

    ``findings``, ``mappings`` and ``locks`` are the Analysis tables
    (docs/architecture.md). ``time_span_ns`` is the trace's (start, end): times are
    drawn relative to its start and open mappings run to its end. Zoom with
    ``time_window_ns=(start, end)`` (absolute ns) or ``mdl=`` (an address as int or
    ``'0x...'``: only that MDL's findings, locks and mappings, framed). Findings of
    severity ``info`` are left out unless ``include_info``. When ``findings`` has
    ``ctx_pid``/``ctx_process``/``ctx_tid`` (:func:`with_call_context`), a call that ran
    in another process than the finding's (an unlock from a System worker thread) gets a
    hollow mark in that lane with an arrow to the finding.
    """
    f = _norm_findings(findings)
    m = _norm_mappings(mappings)
    lk = _norm_locks(locks)
    t0, t1 = frames.time_span(time_span_ns, f["time_ns"], m["start_ns"], m["end_ns"],
                              lk["start_ns"], lk["end_ns"])
    hidden_info = 0
    if not include_info:
        hidden_info = int((f["severity"] == "info").sum())
        f = f[f["severity"] != "info"]
    # Mappings and locks are drawn when a finding involves them (or the MDL is zoomed).
    zoom_note = ""
    if mdl is not None:
        want = vocab.address_to_int(mdl)
        f = f[f["mdl_int"] == want]
        m = m[m["mdl_int"] == want]
        lk = lk[lk["mdl_int"] == want]
        zoom_note = f"MDL {vocab.format_address(want)}"
    else:
        life = set(f["lifetime_id"].dropna()) | set()
        maps = set(f["mapping_id"].dropna())
        m = m[m["mapping_id"].isin(maps) | m["lifetime_id"].isin(life)]
        lk = lk[lk["lifetime_id"].isin(life)]
    x_lo, x_hi = t0, t1
    if time_window_ns is not None:
        x_lo, x_hi = float(time_window_ns[0]), float(time_window_ns[1])
        f = f[(f["time_ns"] >= x_lo) & (f["time_ns"] <= x_hi)]
        m = m[(m["start_ns"] <= x_hi) & (m["end_ns"].fillna(np.inf) >= x_lo)]
        lk = lk[(lk["start_ns"] <= x_hi) & (lk["end_ns"].fillna(np.inf) >= x_lo)]
        zoom_note = (zoom_note + ", " if zoom_note else "") + (
            f"{vocab.format_time_ns(x_lo)} to {vocab.format_time_ns(x_hi)}")
    elif mdl is not None:
        pts = pd.concat([f["time_ns"], m["start_ns"], m["end_ns"], lk["start_ns"],
                         lk["end_ns"], f["exposure_end_ns"]]).dropna()
        if len(pts):
            lo, hi = float(pts.min()), float(pts.max())
            pad = max((hi - lo) * 0.08, (t1 - t0) * 0.002, 1.0)
            x_lo, x_hi = max(t0, lo - pad), min(t1, hi + pad) if hi + pad <= t1 else hi + pad

    lanes = hazard_lanes(f, m, max_lanes)
    lane_of = _lane_lookup(lanes)
    unit, per = vocab.time_unit(x_hi - x_lo)

    def X(t: float) -> float:  # noqa: N802 - short local transform
        return t / per  # since the trace start, as time_ns and the messages count

    n = max(len(lanes), 1)
    with matplotlib.rc_context(style.rc_params()):
        fig = style.new_figure(figsize=(width, 1.6 + 1.0 * n), layout="constrained")
        ax = fig.add_subplot()
        for i in range(len(lanes)):
            if i % 2:
                ax.axhspan(_y(i, n) - 0.5, _y(i, n) + 0.5, color="0.96", zorder=0, lw=0)
        _draw_spans(ax, lk, lane_of, n, X, t1, "lock")
        _draw_spans(ax, m, lane_of, n, X, t1, "map")
        _draw_exposures(ax, f, m, lane_of, n, X, t1)
        hidden = _draw_findings(ax, f, lane_of, n, X, X(x_hi) - X(x_lo), width)
        labels = []
        for r in lanes.itertuples(index=False):
            extra = f"\n+{hidden[r.lane]} unlabelled" if hidden.get(r.lane) else ""
            count = f"{r.findings} finding{'s' if r.findings != 1 else ''}"
            if r.causing_calls and not r.findings:
                count = f"{r.causing_calls} causing call{'s' if r.causing_calls != 1 else ''}"
            elif not r.findings:
                count = "mappings only"
            labels.append(f"{r.label}\n{count}{extra}")
        ax.set_yticks([_y(i, n) for i in range(len(lanes))], labels)
        for tick, r in zip(ax.get_yticklabels(), lanes.itertuples(index=False)):
            tick.set_color(vocab.severity_color(r.worst_severity)
                           if r.worst_severity in vocab.SEVERITY_COLORS else "black")
        ax.set_ylim(-0.5, n - 0.5)
        span = X(x_hi) - X(x_lo)
        ax.set_xlim(X(x_lo) - span * 0.01, X(x_hi) + span * 0.01)
        ax.set_xlabel(f"time since trace start ({unit})")
        ax.grid(axis="y", visible=False)
        if lanes.empty:
            ax.text(0.5, 0.5, "no findings", transform=ax.transAxes, ha="center",
                    va="center", color="0.4", fontsize=style.BASE_FONT_SIZE + 2)
        counts = f.groupby("severity")["count"].sum()
        parts = [f"{int(counts[s])} {s}" for s in vocab.SEVERITIES if s in counts.index]
        head = title or "Hazard timeline"
        sub = f"{int(f['count'].sum())} findings" + (f" ({', '.join(parts)})" if parts else "")
        if hidden_info:
            sub += f"; {hidden_info} info finding{'s' if hidden_info != 1 else ''} not drawn"
        if zoom_note:
            sub += f"; zoom: {zoom_note}"
        fig.suptitle(f"{head}: {sub}", fontsize=style.BASE_FONT_SIZE + 3, fontweight="bold",
                     x=0.01, ha="left")
        handles = _legend_handles(f, m, lk, _marks(f, lane_of))
        if handles:
            fig.legend(handles=handles, loc="outside right upper")
    return fig


# --- data --------------------------------------------------------------------------------


def _key(pid: Any, process: Any) -> tuple:
    if frames.is_system_pid(pid):
        return SYSTEM_KEY
    return (int(pid), "" if process is None or pd.isna(process) else str(process))


def _lane_lookup(lanes: pd.DataFrame):
    table = dict(zip(lanes["key"], lanes["lane"]))
    others = table.get(OTHERS_KEY)

    def lane(pid: Any, process: Any, user: bool = True) -> int | None:
        k = _key(pid, process) if user else SYSTEM_KEY
        if k in table:
            return table[k]
        return others if k != SYSTEM_KEY else table.get(SYSTEM_KEY)

    return lane


def _col(df: pd.DataFrame | None, name: str, default: Any = None) -> pd.Series:
    if df is None or name not in df.columns:
        return pd.Series([default] * (0 if df is None else len(df)), dtype=object)
    return df[name].reset_index(drop=True)


def _norm_findings(findings: pd.DataFrame | None) -> pd.DataFrame:
    f = findings if findings is not None else pd.DataFrame()
    out = pd.DataFrame({
        "rule": _col(f, "rule", "").astype(object).fillna("").astype(str),
        "severity": _col(f, "severity", "info").astype(object).fillna("info").astype(str),
        "time_ns": frames.numeric(_col(f, "time_ns")),
        "pid": frames.numeric(_col(f, "pid")),
        "process": _col(f, "process", "").astype(object),
        "mdl_int": frames.address_series(_col(f, "mdl")),
        "lifetime_id": frames.numeric(_col(f, "lifetime_id")),
        "mapping_id": frames.numeric(_col(f, "mapping_id")),
        "exposure_start_ns": frames.numeric(_col(f, "exposure_start_ns")),
        "exposure_end_ns": frames.numeric(_col(f, "exposure_end_ns")),
        "count": frames.numeric(_col(f, "count", 1)).fillna(1).astype(int),
        "impact": frames.numeric(_col(f, "impact_byte_seconds")),
        "event": _col(f, "event", "").astype(object),
        "ctx_pid": frames.numeric(_col(f, "ctx_pid")),
        "ctx_process": _col(f, "ctx_process").astype(object),
        "ctx_tid": frames.numeric(_col(f, "ctx_tid")),
    })
    return out[out["time_ns"].notna()].reset_index(drop=True)


def _norm_spans(df: pd.DataFrame | None, extra: dict[str, pd.Series] | None = None
               ) -> pd.DataFrame:
    """Lock or mapping rows: lifetime_id, mdl_int, pid, process, start_ns, end_ns (float,
    NaN = still live) plus ``extra`` columns; rows without a start are dropped."""
    d = df if df is not None else pd.DataFrame()
    return pd.DataFrame({
        "lifetime_id": frames.numeric(_col(d, "lifetime_id")),
        "mdl_int": frames.address_series(_col(d, "mdl")),
        "pid": frames.numeric(_col(d, "pid")),
        "process": _col(d, "process", "").astype(object),
        "start_ns": frames.numeric(_col(d, "start_ns")),
        "end_ns": frames.numeric(_col(d, "end_ns")),
        **(extra or {}),
    }).dropna(subset=["start_ns"]).reset_index(drop=True)


def _norm_mappings(mappings: pd.DataFrame | None) -> pd.DataFrame:
    return _norm_spans(mappings, {
        "mapping_id": frames.numeric(_col(mappings, "mapping_id")),
        "mode": _col(mappings, "mode", "UserMode").astype(object).fillna("").astype(str),
    })


def _norm_locks(locks: pd.DataFrame | None) -> pd.DataFrame:
    return _norm_spans(locks)


# --- drawing -----------------------------------------------------------------------------


def _y(lane: int, n: int) -> float:
    return float(n - 1 - lane)


def _draw_spans(ax, df: pd.DataFrame, lane_of, n: int, X, t1: float, what: str) -> None:
    """Bars for lock or mapping lifetimes, packed into sub-rows under the lane centre.

    Drawn as one LineCollection per colour and one marker line per (colour, marker):
    thousands of spans stay a handful of artists."""
    busy: dict[int, list[float]] = {}
    bars: dict[str, list] = {}
    ticks: dict[tuple[str, str], tuple[list[float], list[float]]] = {}

    def tick(color: str, marker: str, x: float, y: float) -> None:
        xs, ys = ticks.setdefault((color, marker), ([], []))
        xs.append(x)
        ys.append(y)

    for r in df.sort_values("start_ns").itertuples(index=False):
        user = what == "lock" or r.mode == "UserMode"
        lane = lane_of(r.pid, r.process, user)
        if lane is None:
            continue
        end = t1 if np.isnan(r.end_ns) else r.end_ns
        rows = busy.setdefault(lane, [])
        sub = next((i for i, e in enumerate(rows) if e < r.start_ns), None)
        if sub is None:
            sub = len(rows)
            rows.append(end)
        rows[sub] = end
        base = -0.12 if what == "lock" else -0.3
        y = _y(lane, n) + base - 0.07 * min(sub, 2)
        color = _LOCK_COLOR if what == "lock" else (
            _USER_MAP_COLOR if user else _KERNEL_MAP_COLOR)
        bars.setdefault(color, []).append([(X(r.start_ns), y), (X(end), y)])
        tick(color, "|", X(r.start_ns), y)
        tick(color, ">" if np.isnan(r.end_ns) else "|", X(end), y)  # ">": live at trace end
    for color, segments in bars.items():
        ax.add_collection(LineCollection(segments, colors=color, linewidths=4, capstyle="butt",
                                         zorder=2, alpha=0.85))
    for (color, marker), (xs, ys) in ticks.items():
        ax.plot(xs, ys, ls="none", marker=marker, color=color,
                markersize=9 if marker == "|" else 6, zorder=2)


def _draw_exposures(ax, f: pd.DataFrame, m: pd.DataFrame, lane_of, n: int, X, t1: float
                    ) -> None:
    owner = {r.mapping_id: (r.pid, r.process) for r in m.itertuples(index=False)}
    for r in f[f["exposure_start_ns"].notna()].itertuples(index=False):
        pid, proc = owner.get(r.mapping_id, (r.pid, r.process))
        lane = lane_of(pid, proc)
        if lane is None:
            continue
        a = r.exposure_start_ns
        b = t1 if np.isnan(r.exposure_end_ns) else r.exposure_end_ns
        y = _y(lane, n)
        ax.add_patch(Rectangle((X(a), y - 0.42), X(b) - X(a), 0.84, facecolor=_EXPOSURE_COLOR,
                               alpha=0.13, edgecolor=_EXPOSURE_COLOR, hatch="///", lw=0.8,
                               zorder=1))
        ax.text(X(b), y - 0.40, f"exposed {_dur(b - a)} ", ha="right", va="bottom",
                color=_EXPOSURE_COLOR, fontsize=style.BASE_FONT_SIZE - 1, zorder=4,
                clip_on=True)


def _draw_findings(ax, f: pd.DataFrame, lane_of, n: int, X, span: float, width: float
                   ) -> dict[int, int]:
    """Markers plus non-overlapping rule labels; returns unlabelled counts per lane."""
    # Data units per character at the label font size (axes ~ 80% of the figure width).
    per_char = span / (width * 0.62) * ((style.BASE_FONT_SIZE - 1) * 0.72 / 72)
    hidden: dict[int, int] = {}
    rows_end: dict[int, list[float]] = {}
    order = _marks(f, lane_of)
    # markers are gathered per (kind, marker, colour) and drawn as one line each
    points: dict[tuple[bool, str, str], tuple[list[float], list[float]]] = {}
    for r in order.itertuples(index=False):
        lane = r.lane
        y = _y(lane, n)
        x = X(r.time_ns)
        marker = style.SEVERITY_MARKERS.get(r.severity, "o")
        color = vocab.severity_color(r.severity)
        xs, ys = points.setdefault((bool(r.context), marker, color), ([], []))
        xs.append(x)
        ys.append(y + 0.05)
        if r.context:  # where the call ran: hollow marker, arrow to the finding
            ax.annotate("", (x, _y(r.target_lane, n) + 0.05), (x, y + 0.05),
                        arrowprops=dict(arrowstyle="->", color=color, lw=1.2, ls="--",
                                        shrinkA=7, shrinkB=7), zorder=5)
        text = r.text
        ends = rows_end.setdefault(lane, [-np.inf] * _LABEL_ROWS)
        row = next((i for i, e in enumerate(ends) if e < x), None)
        if row is None:
            hidden[lane] = hidden.get(lane, 0) + 1
            continue
        ends[row] = x + (len(text) + 2) * per_char
        ax.annotate(text, (x, y + 0.05), xytext=(x + per_char * 0.8, y + 0.17 + 0.14 * row),
                    textcoords="data", fontsize=style.BASE_FONT_SIZE - 1, va="center",
                    ha="left", color="black", zorder=7,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5) if row else None)
    for (context, marker, color), (xs, ys) in points.items():
        if context:
            ax.plot(xs, ys, ls="none", marker=marker, markerfacecolor="white",
                    markeredgecolor=color, markeredgewidth=1.6, markersize=10, zorder=6)
        else:
            ax.plot(xs, ys, ls="none", marker=marker, color=color, markeredgecolor="black",
                    markeredgewidth=0.6, markersize=11, zorder=6, clip_on=False)
    return hidden


def _marks(f: pd.DataFrame, lane_of) -> pd.DataFrame:
    """What to put on the lanes, in time order: every finding on its process lane and,
    when the call that caused it ran in another lane (a worker thread in System), a
    hollow 'called from' mark there.

    Columns: time_ns, rank, lane, severity, text, context (bool), target_lane.
    """
    rows = []
    for r in f.itertuples(index=False):
        lane = lane_of(r.pid, r.process)
        if lane is None:
            continue
        rank = vocab.severity_rank(r.severity)
        rows.append((r.time_ns, rank, lane, r.severity, style.plot_text(r.rule)
                     + (f" ×{r.count}" if r.count > 1 else ""), False, lane))
        if np.isnan(r.ctx_pid) and (r.ctx_process is None or pd.isna(r.ctx_process)):
            continue
        ctx = lane_of(r.ctx_pid, r.ctx_process)
        if ctx is None or ctx == lane:
            continue
        who = f"{r.event} by tid {int(r.ctx_tid)}" if not np.isnan(r.ctx_tid) else \
            f"{r.event} from here"
        rows.append((r.time_ns, rank, ctx, r.severity, style.plot_text(who), True, lane))
    cols = ["time_ns", "rank", "lane", "severity", "text", "context", "target_lane"]
    return pd.DataFrame(rows, columns=cols).sort_values(["time_ns", "rank", "context"])


def _dur(ns: float) -> str:
    unit, per = vocab.time_unit(ns)
    return f"{ns / per:.3g} {unit}"


def _legend_handles(f: pd.DataFrame, m: pd.DataFrame, lk: pd.DataFrame,
                    marks: pd.DataFrame) -> list:
    """Legend entries for what the figure actually shows."""
    present = [s for s in vocab.SEVERITIES if (f["severity"] == s).any()]
    handles: list = [Line2D([], [], ls="none", marker=style.SEVERITY_MARKERS[s],
                            color=vocab.SEVERITY_COLORS[s], markeredgecolor="black",
                            markersize=9, label=f"{s} finding") for s in present]
    if len(marks) and marks["context"].any():
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white",
                              markeredgecolor="0.2", markeredgewidth=1.6, markersize=9,
                              label="the call that caused it,\nin the thread's process"))
    user = (m["mode"] == "UserMode") if len(m) else pd.Series(dtype=bool)
    optional = [
        (len(lk) > 0, Line2D([], [], color=_LOCK_COLOR, lw=4, label="pages locked")),
        (bool(user.any()), Line2D([], [], color=_USER_MAP_COLOR, lw=4, label="user mapping")),
        (bool((~user).any()), Line2D([], [], color=_KERNEL_MAP_COLOR, lw=4,
                                     label="system mapping")),
        (bool(m["end_ns"].isna().any() or lk["end_ns"].isna().any()),
         Line2D([], [], color="0.3", ls="none", marker=">", label="still live at trace end")),
        (bool(f["exposure_start_ns"].notna().any()),
         Patch(facecolor=_EXPOSURE_COLOR, alpha=0.25, hatch="///", edgecolor=_EXPOSURE_COLOR,
               label="exposure: user PTEs on\nunlocked pages")),
    ]
    return handles + [h for shown, h in optional if shown]


def plot_hazard_timeline_for(analysis: Any, lanes: str = "auto", **kwargs: Any) -> Figure:
    """:func:`plot_hazard_timeline` of an Analysis (``Analysis.plot_hazard_timeline``),
    with the process each finding's call ran in (see :func:`with_call_context`).

    lanes: 'process' (this module's figure), 'problem' (one lane per problem:
    :func:`traceanalyzer.plot.problem_timeline.plot_problem_timeline`) or 'auto'
    (problem lanes above ``PROBLEM_LANES_ABOVE`` findings above info, unless an MDL is
    zoomed)."""
    from traceanalyzer.plot import problem_timeline as pt

    if lanes not in ("auto", "process", "problem"):
        raise ValueError(f"lanes must be 'auto', 'process' or 'problem', not {lanes!r}")
    kwargs.setdefault("time_span_ns", analysis.trace.time_span_ns)
    if lanes == "auto" and kwargs.get("mdl") is None:
        f = analysis.findings
        many = int((f["severity"].astype(str) != "info").sum()) > pt.PROBLEM_LANES_ABOVE
        lanes = "problem" if many else "process"
    if lanes == "problem":
        if kwargs.pop("mdl", None) is not None:
            raise ValueError("mdl= zooms the process lanes: use lanes='process'")
        return pt.plot_problem_timeline(analysis.findings, problems=analysis.problems, **kwargs)
    findings = with_call_context(analysis.findings)
    return plot_hazard_timeline(findings, analysis.mappings, analysis.locks, **kwargs)


def with_call_context(findings: pd.DataFrame) -> pd.DataFrame:
    """``findings`` plus where the call behind each finding ran, from the analysis's
    context attribution (attach stacks, CSwitch, effective_pid).

    Added columns: ``ctx_pid`` (``call_pid``: the calling thread's process),
    ``ctx_process`` (``call_process``) and ``ctx_tid`` (``tid``); missing when no call
    caused the finding (exit findings).
    """
    out = findings.copy()
    out["ctx_pid"] = out["call_pid"].astype("Int64")
    out["ctx_tid"] = out["tid"].astype("Int64")
    out["ctx_process"] = out["call_process"].astype(object).where(out["call_process"].notna(), None)
    return out