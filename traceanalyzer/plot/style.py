"""Shared look of the figures: severity colours, process colours, byte/time formatting.

Everything here is pure presentation: no figure is built in this module.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

#: Severities from most to least severe (rules.md).
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")

#: Marker/bar colour per severity (colour-blind-friendly-ish, print-safe).
SEVERITY_COLORS: dict[str, str] = {
    "critical": "#c0162c",
    "high": "#ef7d00",
    "medium": "#d4b400",
    "low": "#3a7dc9",
    "info": "#8c8c8c",
}

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


def severity_rank(severity: Any) -> int:
    """0 for critical ... 4 for info; 5 for anything unknown."""
    try:
        return SEVERITIES.index(str(severity))
    except ValueError:
        return len(SEVERITIES)


def severity_color(severity: Any) -> str:
    """Colour for a severity (grey when unknown)."""
    return SEVERITY_COLORS.get(str(severity), SEVERITY_COLORS["info"])


def process_color(index: int) -> str:
    """Stable colour for the ``index``-th ranked process."""
    return _PROCESS_PALETTE[index % len(_PROCESS_PALETTE)]


def format_bytes(n: float | int | None) -> str:
    """Human byte count with binary units: ``8192`` -> ``'8 KiB'``, ``None`` -> ``'-'``."""
    if n is None or is_missing(n):
        return "-"
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            if unit == "B":
                return f"{sign}{round(n)} B"  # round: impact (B·s) is fractional
            text = f"{n:.1f}".rstrip("0").rstrip(".")
            return f"{sign}{text} {unit}"
        n /= 1024
    return f"{sign}{n} TiB"  # pragma: no cover - loop always returns


def format_byte_seconds(x: float | int | None) -> str:
    """Impact as bytes x seconds with a binary-unit prefix: ``'81.9 KiB·s'``."""
    if x is None or is_missing(x):
        return "-"
    text = format_bytes(x)
    return text.replace(" B", " B·s") if text.endswith(" B") else text + "·s"


def time_unit(span_ns: float) -> tuple[str, float]:
    """Pick a readable unit for a time span: returns (label, ns per unit)."""
    if span_ns >= 2e9:
        return "s", 1e9
    if span_ns >= 2e6:
        return "ms", 1e6
    if span_ns >= 2e3:
        return "µs", 1e3
    return "ns", 1.0


def format_time_ns(t_ns: float | int | None, t0_ns: float | int = 0) -> str:
    """Time since ``t0_ns`` as seconds with 6 decimals (``'1.234567 s'``)."""
    if t_ns is None or is_missing(t_ns):
        return "-"
    return f"{(float(t_ns) - float(t0_ns)) / 1e9:.6f} s"


def format_address(value: Any) -> str:
    """An address column value as ``0x...`` hex text (strings are passed through)."""
    if value is None or is_missing(value):
        return "-"
    if isinstance(value, str):
        return value
    try:
        return f"0x{int(value):x}"
    except (TypeError, ValueError):
        return str(value)


def plot_text(value: Any) -> str:
    """Trace text made safe for a matplotlib label: control characters become ``?``
    and ``$`` is escaped so that it never starts mathtext."""
    text = "".join("?" if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0) else c for c in str(value))
    return text.replace("$", r"\$")


def process_label(pid: Any, name: Any, width: int = 28) -> str:
    """``'app.exe (1234)'``; long names are shortened in the middle to ``width``.

    Plain text: pass it through :func:`plot_text` before using it in a figure."""
    name_s = "" if name is None or is_missing(name) else str(name)
    pid_s = "?" if pid is None or is_missing(pid) else str(int(pid))
    if not name_s:
        return f"pid {pid_s}"
    name_s = shorten(name_s, width)
    return f"{name_s} ({pid_s})"


def shorten(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters with an ellipsis in the middle."""
    if len(text) <= width:
        return text
    keep = max(width - 1, 2)
    head = keep // 2
    return text[:head] + "…" + text[len(text) - (keep - head):]


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


def time_origin(*series: Iterable[Any]) -> float:
    """Smallest finite value over the given series (0 when all are empty)."""
    best = math.inf
    for s in series:
        arr = pd.to_numeric(pd.Series(list(s) if not isinstance(s, pd.Series) else s),
                            errors="coerce").dropna()
        if len(arr):
            best = min(best, float(arr.min()))
    return 0.0 if best == math.inf else best


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT (never raises, also for lists)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def to_float_array(values: Any) -> np.ndarray:
    """Numeric numpy array from any Series/list (missing -> NaN); Arrow-backed safe."""
    return pd.to_numeric(pd.Series(values), errors="coerce").astype("float64").to_numpy()


class TraceFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in Jupyter without pyplot or
    ``%matplotlib inline`` (IPython's registered Figure formatter wins if set)."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


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
    """Write a Figure as a PNG file with the Agg canvas."""
    from pathlib import Path

    Path(path).write_bytes(figure_png(fig, dpi))
