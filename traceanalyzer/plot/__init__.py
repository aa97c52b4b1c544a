"""matplotlib figures built on the Analysis tables (docs/architecture.md).

Each function takes DataFrames and returns a :class:`matplotlib.figure.Figure` built
without pyplot, so it renders the same in Jupyter, in scripts and on a headless CI
machine; save with :func:`traceanalyzer.plot.style.save_png` (Agg canvas).
"""

from traceanalyzer.plot.hazard_timeline import hazard_lanes, plot_hazard_timeline
from traceanalyzer.plot.impact import impact_table, plot_impact
from traceanalyzer.plot.leak_timeline import plot_leak_timeline, rank_processes
from traceanalyzer.plot.style import figure_png, save_png

__all__ = [
    "figure_png",
    "hazard_lanes",
    "impact_table",
    "plot_hazard_timeline",
    "plot_impact",
    "plot_leak_timeline",
    "rank_processes",
    "save_png",
]
