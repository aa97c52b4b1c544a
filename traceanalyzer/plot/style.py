"""Shared look of the figures: severity markers, process colours, fonts, byte ticks.
Severity order and colours, labels and value formatting come from
:mod:`traceanalyzer.vocabulary`.

Everything here is pure presentation: no figure is built in this module.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure

from traceanalyzer.vocabulary import format_bytes

#: Marker shape per severity, so the figure still reads in greyscale.
SEVERITY_MARKERS: dict[str, str] = {
    "critical": "X",
    "high": "D",
    "medium": "s",
    "low": "o",
    "info": ".",
}

#: Colour for the folded "others" series.
OTHERS_COLOR = "#9e9e9e"

#: Qualitative palette for processes (tab10 without grey, then tab20 pastel halves).
_PROCESS_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#393b79",
    "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)

#: Default base font size for every figure (legible when a PNG is scaled to a page).
BASE_FONT_SIZE = 10

#: Default figure width in inches; PNGs are saved at :data:`PNG_DPI`.
FIG_WIDTH = 12.0
PNG_DPI = 110

#: Label used for calls that no user process can be blamed for.
SYSTEM_LANE = "System / unattributed"


def process_color(index: int) -> str:
    """Stable colour for the ``index``-th ranked process."""
    return _PROCESS_PALETTE[index % len(_PROCESS_PALETTE)]


def plot_text(value: Any) -> str:
    """Trace text made safe for a matplotlib label: control characters become ``?``
    and ``$`` is escaped so that it never starts mathtext."""
    text = "".join("?" if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0) else c for c in str(value))
    return text.replace("$", r"\$")


def rc_params() -> dict[str, Any]:
    """Matplotlib rc settings every figure of this package uses (use in rc_context)."""
    return {
        "font.size": BASE_FONT_SIZE,
        "axes.titlesize": BASE_FONT_SIZE + 2,
        "axes.titleweight": "bold",
        "axes.labelsize": BASE_FONT_SIZE,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": BASE_FONT_SIZE - 1,
        "legend.frameon": False,
        "xtick.labelsize": BASE_FONT_SIZE - 1,
        "ytick.labelsize": BASE_FONT_SIZE - 1,
        "figure.dpi": 100,
        "savefig.dpi": PNG_DPI,
        "savefig.bbox": "tight",
    }


def byte_ticks_formatter():
    """A matplotlib FuncFormatter that writes byte counts in binary units."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: format_bytes(v) if v >= 0 else "")


def byte_ticks(ymax: float, nbins: int = 5) -> list[float]:
    """Tick positions for a byte axis from 0 to ``ymax`` on round binary values.

    Steps are 1, 2, 4 or 5 (x 10^k) times a binary unit (1, 1024, 1024^2, ...), so the
    labels read '4 KiB', '8 KiB', ... rather than '3.9 KiB'.
    """
    if not ymax or ymax <= 0 or not math.isfinite(ymax):
        return [0.0]
    unit = 1.0
    while ymax / unit >= 1024 and unit < 1024 ** 4:
        unit *= 1024
    span = ymax / unit
    step = 1.0
    for mult in (1, 10, 100, 1000):
        for base in (1, 2, 4, 5):
            step = base * mult
            if span / step <= nbins:
                break
        else:
            continue
        break
    ticks = []
    v = 0.0
    while v <= span * 1.0001:
        ticks.append(v * unit)
        v += step
    return ticks


class TraceFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in Jupyter without pyplot or
    ``%matplotlib inline`` (IPython's registered Figure formatter wins if set)."""

    def png(self, dpi: int = PNG_DPI) -> bytes:
        """This figure as PNG bytes (Agg canvas, no display needed)."""
        return figure_png(self, dpi)

    def _repr_png_(self) -> bytes:
        return self.png()


def new_figure(**kwargs: Any) -> TraceFigure:
    """A new Figure (not managed by pyplot, so nothing leaks and no display is needed)
    that displays itself in Jupyter; ``kwargs`` go to the Figure constructor."""
    return TraceFigure(**kwargs)


def figure_png(fig: Any, dpi: int = PNG_DPI) -> bytes:
    """PNG bytes of a Figure, rendered with the Agg canvas (no display needed)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def save_png(fig: Any, path: Any, dpi: int = PNG_DPI) -> None:
    """Write a Figure as a PNG file with the Agg canvas (temporary file + rename)."""
    from traceanalyzer.fileio import write_bytes_atomic

    write_bytes_atomic(path, figure_png(fig, dpi))
