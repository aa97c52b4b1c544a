"""Leak timeline: bytes locked and user-mapped per process over time.

Two step-line panels (locked, user-mapped) share the time axis with a lane panel of
process lifetimes. The processes with the largest impact (memory held x time) are drawn
individually; the rest are folded into one "others" series so the figure reads the
same with 1 or 200 processes. Exits with memory still held are marked, and what is
still held at trace end is written at the right edge of each line. What a process
holds (ranking, legend, exit marks on the lanes, the title) is the leak timeline's
``held`` kind: an MDL locked and mapped into one process is one set of pages, not the
sum of the two panels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from traceanalyzer.plot import frames, style
from traceanalyzer import vocabulary as vocab
from traceanalyzer.analysis.leaks import exit_leaks_by_pid
from traceanalyzer.analysis.timelines import (  # noqa: F401  (re-exported: plot API)
    HELD,
    KINDS,
    decimate_steps,
    normalise_leak_timeline as _normalise,
    rank_processes,
)

_MAX_EDGE_LABELS = 5
_KIND_TITLES = {"locked": "Bytes locked (probed-and-locked MDLs)",
                "user_mapped": "Bytes mapped into user space"}


@dataclass
class _Series:
    """One drawn process (or the folded others) in the leak timeline."""

    key: tuple
    label: str
    color: str
    impact: float  # byte-seconds held (each MDL lifetime once)
    steps: dict[str, tuple[np.ndarray, np.ndarray]]  # kind (and HELD) -> (times, values)
    span: tuple[float, float] | None  # lifetime (NaN = beyond the trace)
    members: int = 1
    at_exit: float = 0.0  # bytes still held when it exited (0: did not exit, or clean)


def plot_leak_timeline(
    leak_timeline: pd.DataFrame,
    processes: pd.DataFrame | None = None,
    *,
    time_span_ns: Sequence[float] | None = None,
    top_n: int = 8,
    title: str | None = None,
    width: float = style.FIG_WIDTH,
    bytes_at_end: float | None = None,
    exit_leaks: Mapping[int, float] | None = None,
) -> Figure:
    """Figure of bytes locked and user-mapped per process over time.

    ``leak_timeline`` is ``Analysis.leak_timeline()`` (columns ``time_ns, pid, process,
    kind ('locked' | 'user_mapped' | 'held'), bytes``: the level from that time on). The
    panels draw the locked and user-mapped bytes; the ranking, legend, exit marks and
    title take what each process holds (``held``; a table without ``held`` rows gets the
    sum of the two kinds, see :func:`normalise_leak_timeline`).
    ``processes`` is the Trace's process table (``pid``, name in ``process``/``image``,
    ``start_ns``, ``end_ns``; optional) for lifetimes and exits. ``time_span_ns`` is the
    trace's (start, end) so that the axis covers the whole trace. The ``top_n``
    processes by impact are drawn; the others are summed into one grey series.
    ``bytes_at_end``: what the title says is still held at trace end (``Analysis.leaks
    ['bytes_at_end']``: each MDL lifetime once, also one locked in one process and mapped
    into another); default (or None: unknown) the sum of what each process holds.
    ``exit_leaks``: bytes each process (by pid) still held when it exited, from the exit
    findings (``Analysis.plot_leak_timeline`` passes them): a process's exit is the end of
    its teardown, which may release memory after its ProcessEnd event (docs/rules.md), so
    only the findings know it; default, what the process held at its ProcessEnd time.
    """
    lt = _normalise(leak_timeline)
    spans = frames.process_spans(processes)
    t0, t1 = frames.time_span(time_span_ns, lt["time_ns"], spans["start_ns"], spans["end_ns"])
    unit, per = vocab.time_unit(t1 - t0)

    with matplotlib.rc_context(style.rc_params()):
        series = _build_series(lt, spans, t1, top_n)
        for s in series:
            s.at_exit = _held_at_exit(s, t1, exit_leaks)
        lanes = len(series)
        life_h = 0.8 + 0.26 * max(lanes, 1)
        fig = style.new_figure(figsize=(width, 2.1 * 2 + life_h + 0.9), layout="constrained")
        gs = fig.add_gridspec(3, 1, height_ratios=[2.1, 2.1, life_h])
        ax_lock = fig.add_subplot(gs[0])
        ax_map = fig.add_subplot(gs[1], sharex=ax_lock)
        ax_life = fig.add_subplot(gs[2], sharex=ax_lock)
        axes = {"locked": ax_lock, "user_mapped": ax_map}

        if not series:
            for ax in (ax_lock, ax_map):
                ax.text(0.5, 0.5, "no locked or user-mapped MDL memory in this trace",
                        transform=ax.transAxes, ha="center", va="center", color="0.4")
        for kind, ax in axes.items():
            _draw_kind(ax, kind, series, t0, t1, per)
            ax.set_title(_KIND_TITLES[kind], loc="left")
            ax.yaxis.set_major_formatter(style.byte_ticks_formatter())
            ax.tick_params(labelbottom=False)
        _draw_lifetimes(ax_life, series, t0, t1, per)
        ax_life.set_xlabel(f"time since trace start ({unit})")
        span = (t1 - t0) / per  # x is time since the trace start (time_ns), not since t0
        ax_lock.set_xlim(t0 / per - span * 0.01, t1 / per + span * 0.01)

        held_end = (sum(_held_at_end(s) for s in series) if bytes_at_end is None
                    else float(bytes_at_end))
        n_proc = sum(s.members for s in series)
        fig.suptitle(
            title or f"Leak timeline: {vocab.format_bytes(held_end)} still held at trace end"
                     f" ({n_proc} process{'es' if n_proc != 1 else ''} with MDL memory)",
            fontsize=style.BASE_FONT_SIZE + 3, fontweight="bold", x=0.01, ha="left")
        handles = [Line2D([], [], color=s.color, lw=2, label=_legend_label(s)) for s in series]
        if any(s.at_exit > 0 or np.isnan(s.at_exit) for s in series):
            handles += [Line2D([], [], ls="none", marker="X", color="black", markersize=8,
                               label="process exit with memory still held")]
        fig.legend(handles=handles, loc="outside right upper", title="process (pid)")
    return fig


def _held_at_exit(s: _Series, t_end: float, exit_leaks: Mapping[int, float] | None) -> float:
    """Bytes the process still held (each MDL lifetime once) when it exited within the
    trace (0 if it did not exit, or exited clean): ``exit_leaks`` of its pid when given,
    else its level at its ProcessEnd time."""
    if s.span is None or np.isnan(s.span[1]) or s.span[1] > t_end:
        return 0.0
    if exit_leaks is not None:
        return float(exit_leaks.get(s.key[0], 0.0)) if s.key[0] != "others" else 0.0
    t, v = s.steps[HELD]
    return frames.step_value_before(t, v, s.span[1]) if len(t) else 0.0


def _held_at_end(s: _Series) -> float:
    """Bytes the series still holds at the end (each MDL lifetime once per process)."""
    v = s.steps[HELD][1]
    return float(v[-1]) if len(v) else 0.0


def _legend_label(s: _Series) -> str:
    held = _held_at_end(s)
    return f"{s.label}: {vocab.format_bytes(held)} at end" if held else s.label


# --- data --------------------------------------------------------------------------------


def _step_arrays(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Times and levels of a post-step function; the last row at equal times wins."""
    g = group.drop_duplicates("time_ns", keep="last")
    return g["time_ns"].to_numpy(dtype="float64"), g["bytes"].to_numpy(dtype="float64")


def _build_series(lt: pd.DataFrame, spans: pd.DataFrame, t_end: float,
                  top_n: int) -> list[_Series]:
    ranked = rank_processes(lt, t_end)
    if ranked.empty:
        return []
    top = ranked.iloc[: max(top_n, 1)] if len(ranked) > top_n + 1 else ranked
    rest = ranked.iloc[len(top):]
    out: list[_Series] = []
    groups = {k: g for k, g in lt.groupby(["pid", "process"], sort=False)}
    for i, r in enumerate(top.itertuples(index=False)):
        grp = groups[(r.pid, r.process)]
        steps = {}
        for kind in (*KINDS, HELD):
            kg = grp[grp["kind"] == kind]
            steps[kind] = _step_arrays(kg) if len(kg) else (np.array([]), np.array([]))
        first = float(grp["time_ns"].min())
        span = frames.span_for(spans, r.pid if r.pid >= 0 else None, r.process, first)
        label = style.plot_text(vocab.process_label(r.pid if r.pid >= 0 else None, r.process))
        out.append(_Series((r.pid, r.process), label, style.process_color(i),
            r.impact_byte_seconds, steps, span))
    if len(rest):
        keys = pd.MultiIndex.from_frame(rest[["pid", "process"]])
        others = lt[pd.MultiIndex.from_frame(lt[["pid", "process"]]).isin(keys)]
        steps = {}
        for kind in (*KINDS, HELD):
            kg = others[others["kind"] == kind]
            steps[kind] = _sum_steps(kg)
        out.append(_Series(("others",), f"others ({len(rest)} processes)", style.OTHERS_COLOR,
                           float(rest["impact_byte_seconds"].sum()), steps, None, len(rest)))
    return out


def _with_deltas(lt: pd.DataFrame) -> pd.DataFrame:
    """The timeline with one row per (process, kind, time) (last level wins) and
    ``delta``: the change of level at that row."""
    d = lt.drop_duplicates(["pid", "process", "kind", "time_ns"], keep="last")
    d = d.sort_values(["pid", "process", "kind", "time_ns"], kind="stable").copy()
    prev = d.groupby(["pid", "process", "kind"], sort=False)["bytes"].shift(1).fillna(0.0)
    d["delta"] = d["bytes"] - prev
    return d.reset_index(drop=True)


def _sum_steps(kg: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sum of several processes' step functions of one kind: (times, levels)."""
    if kg.empty:
        return np.array([]), np.array([])
    d = _with_deltas(kg)
    by_time = d.groupby("time_ns", sort=True)["delta"].sum().cumsum()
    return by_time.index.to_numpy(dtype="float64"), by_time.to_numpy(dtype="float64")


# --- drawing -----------------------------------------------------------------------------


def _draw_kind(ax, kind: str, series: list[_Series], t0: float, t1: float, per: float
               ) -> None:
    end_labels: list[tuple[float, str, str]] = []
    ymax = 0.0
    # columns of the saved PNG, four pixels each: a dense comb of lock/unlock steps is
    # drawn as its per-column envelope (the kept steps are real ones, at their times),
    # not as thousands of overdrawn strokes (that drawing was most of the report's time)
    bins = max(int(ax.figure.get_figwidth() * style.PNG_DPI) // 4, 100)
    for s in series:
        t, v = s.steps[kind]
        if not len(t):
            continue
        td, vd = decimate_steps(t, v, t0, t1, bins=bins)
        x = np.concatenate([[td[0]], td, [t1]])
        y = np.concatenate([[0.0], vd, [vd[-1]]])
        xs = x / per  # since the trace start, as time_ns and the messages count
        ax.step(xs, y, where="post", color=s.color, lw=1.8,
                zorder=3 if s.key != ("others",) else 2)
        ax.fill_between(xs, y, step="post", color=s.color, alpha=0.12, lw=0)
        ymax = max(ymax, float(np.max(y)))
        if v[-1] > 0:
            end_labels.append((float(v[-1]), vocab.format_bytes(v[-1]), s.color))
        if s.span is not None and not np.isnan(s.span[1]) and s.span[1] <= t1:
            held = frames.step_value_before(t, v, s.span[1])
            if held > 0:
                ax.plot([s.span[1] / per], [held], marker="X", color=s.color,
                        markeredgecolor="black", markersize=9, ls="none", zorder=5)
    if ymax == 0:
        ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", va="center",
                color="0.5")
        ax.set_yticks(style.byte_ticks(4096))
        ax.set_ylim(0, 4096 * 1.25)
        return
    ax.set_yticks(style.byte_ticks(ymax))
    ax.set_ylim(0, ymax * 1.25)
    if len(end_labels) <= _MAX_EDGE_LABELS:
        _label_right_edge(ax, end_labels, ymax * 1.25, t1 / per, (t1 - t0) / per)


def _label_right_edge(ax, labels: list[tuple[float, str, str]], ytop: float, xend: float,
                      xspan: float) -> None:
    """Write 'bytes at end' at the right edge, pushed apart so they do not overlap."""
    if not labels:
        return
    labels.sort()
    gap = ytop * 0.09
    placed: list[float] = []
    for y, _text, _c in labels:
        pos = max(y, placed[-1] + gap) if placed else y
        placed.append(pos)
    over = placed[-1] - ytop * 0.97
    if over > 0:
        placed = [p - over for p in placed]
    for (y, text, color), pos in zip(labels, placed):
        ax.annotate(f"{text} at end", (xend, y), xytext=(xend + xspan * 0.012, pos),
                    textcoords="data", va="center", ha="left", color=color,
                    fontsize=style.BASE_FONT_SIZE - 1, fontweight="bold",
                    annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", color=color, lw=0.6)
                    if abs(pos - y) > gap * 0.3 else None)


def _draw_lifetimes(ax, series: list[_Series], t0: float, t1: float, per: float) -> None:
    ax.set_title("Process lifetimes (bar = alive in the trace, X = exited holding memory)",
                 loc="left")
    names = []
    for lane, s in enumerate(series):
        y = len(series) - 1 - lane
        names.append((y, s.label))
        if s.key == ("others",):
            ax.text(t0 / per, y, f"  {s.members} more processes, summed above", va="center",
                    color="0.4", fontsize=style.BASE_FONT_SIZE - 1)
            continue
        start, end = (s.span if s.span is not None else (np.nan, np.nan))
        first = min((s.steps[k][0][0] for k in KINDS if len(s.steps[k][0])), default=t0)
        known = s.span is not None
        a = t0 if np.isnan(start) else max(start, t0)
        b = t1 if np.isnan(end) else min(end, t1)
        if not known:
            a = first
        ax.barh(y, (b - a) / per, left=a / per, height=0.5, color=s.color,
                alpha=0.35 if known else 0.15, edgecolor=s.color, lw=1)
        if known and not np.isnan(end) and end <= t1:
            held = s.at_exit
            if held > 0 or np.isnan(held):  # NaN: held, of unknown size
                ax.plot([end / per], [y], marker="X", color=s.color,
                        markeredgecolor="black", markersize=10, ls="none", zorder=5)
                ax.annotate(f"exited holding {vocab.format_bytes(held, 'memory of unknown size')}",
                            (end / per, y), xytext=(7, 0), textcoords="offset points",
                            va="center", fontsize=style.BASE_FONT_SIZE - 1)
            else:
                ax.plot([end / per], [y], marker="|", color="black", markersize=10)
    ax.set_yticks([y for y, _ in names], [n for _, n in names])
    ax.set_ylim(-0.7, max(len(series), 1) - 0.3)
    ax.grid(axis="y", visible=False)
    for sp in ("left",):
        ax.spines[sp].set_visible(False)


def plot_leak_timeline_for(analysis: Any, **kwargs: Any) -> Figure:
    """:func:`plot_leak_timeline` of an Analysis (``Analysis.plot_leak_timeline``)."""
    kwargs.setdefault("time_span_ns", analysis.trace.time_span_ns)
    kwargs.setdefault("bytes_at_end", analysis.leaks.get("bytes_at_end"))
    kwargs.setdefault("exit_leaks", exit_leaks_by_pid(analysis.findings))
    return plot_leak_timeline(analysis.leak_timeline(), analysis.trace.processes, **kwargs)
