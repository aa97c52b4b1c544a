"""Impact summary: bytes x seconds per caller (module+offset) and per rule.

Answers "how do I measure the impact and prioritise": the call sites and rules whose
findings hold the most memory for the longest, as two tables and a bar chart.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from traceanalyzer.analysis.impact import impact_table
from traceanalyzer.plot import style
from traceanalyzer import vocabulary as vocab


def plot_impact(findings: pd.DataFrame, *, top_n: int = 10, title: str | None = None,
                width: float = style.FIG_WIDTH) -> Figure:
    """Bar chart of impact (bytes x seconds) per caller and per rule, side by side.

    ``findings`` is ``Analysis.findings``. Each panel shows the ``top_n`` largest
    groups by impact, coloured by their worst severity, with the value written at the
    end of the bar; groups with zero impact are listed by count only.
    """
    by_caller = impact_table(findings, "caller")
    by_rule = impact_table(findings, "rule")
    rows = max(min(top_n, max(len(by_caller), len(by_rule))), 1)
    with matplotlib.rc_context(style.rc_params()):
        fig = style.new_figure(figsize=(width, 1.6 + 0.42 * rows), layout="constrained")
        ax_c, ax_r = fig.subplots(1, 2)
        _bars(ax_c, by_caller, "caller", top_n, "Impact per call site (module+offset)")
        _bars(ax_r, by_rule, "rule", top_n, "Impact per rule")
        total = float(by_rule["impact_byte_seconds"].sum()) if len(by_rule) else 0.0
        fig.suptitle(title or f"Impact: {vocab.format_byte_seconds(total)} held in total"
                     " (bytes x seconds from hazard to resolution or trace end)",
                     fontsize=style.BASE_FONT_SIZE + 3, fontweight="bold", x=0.01, ha="left")
        present = [s for s in vocab.SEVERITIES
                   if s in set(by_rule["worst_severity"]) | set(by_caller["worst_severity"])]
        if present:
            fig.legend(handles=[Patch(color=vocab.SEVERITY_COLORS[s], label=s)
                                for s in present], loc="outside lower center",
                       ncols=len(present), title="worst severity")
    return fig


def _bars(ax, table: pd.DataFrame, by: str, top_n: int, title: str) -> None:
    ax.set_title(title, loc="left")
    if table.empty:
        ax.text(0.5, 0.5, "no findings", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
        ax.set_axis_off()
        return
    t = table.sort_values("impact_byte_seconds", ascending=False).head(top_n)
    t = t.iloc[::-1]  # largest at the top
    y = np.arange(len(t))
    impact = t["impact_byte_seconds"].to_numpy(dtype="float64")
    vals = np.nan_to_num(impact)  # unknown size: no bar, labelled "?"
    ax.barh(y, vals, color=[vocab.severity_color(s) for s in t["worst_severity"]],
            edgecolor="black", lw=0.4, height=0.65)
    labels = [style.plot_text(vocab.shorten(str(v), 34)) for v in t[by]]
    ax.set_yticks(y, labels, fontfamily="monospace")
    vmax = float(vals.max()) if len(vals) else 0.0
    for yi, v, shown, n in zip(y, vals, impact, t["findings"]):
        text = (f"{vocab.format_byte_seconds(shown, vocab.UNKNOWN_BYTES)}  "
                f"({n} finding{'s' if n != 1 else ''})")
        ax.text(v + vmax * 0.01, yi, text, va="center", fontsize=style.BASE_FONT_SIZE - 1)
    ax.set_xlim(0, vmax * 1.55 if vmax > 0 else 1)
    ax.xaxis.set_major_formatter(style.byte_ticks_formatter())
    ax.set_xticks(style.byte_ticks(vmax * 1.5, nbins=4))
    ax.set_xlabel("bytes x seconds")
    ax.grid(axis="y", visible=False)
    if len(table) > top_n:
        ax.text(1.0, -0.12, f"{len(table) - top_n} more not shown", transform=ax.transAxes,
                ha="right", va="top", color="0.4", fontsize=style.BASE_FONT_SIZE - 1)


def plot_impact_for(analysis: Any, **kwargs: Any) -> Figure:
    """:func:`plot_impact` of an Analysis (``Analysis.plot_impact``)."""
    return plot_impact(analysis.findings, **kwargs)
