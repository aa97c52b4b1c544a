"""The shared vocabulary: severities, units, value formatting and null tests.

Every layer imports these from here (this module imports nothing of the package), so a
severity order, a byte unit or "is this value missing" is decided in one place.

Severities: :data:`SEVERITIES` from most to least severe (docs/rules.md).
An unknown severity ranks as the most severe one (:func:`severity_rank` returns 0): it
is never hidden by a ``--min-severity`` filter and always fails a ``check`` gate.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd

#: Severities from most to least severe.
SEVERITIES: Final[tuple[str, ...]] = ("critical", "high", "medium", "low", "info")

#: 0 for critical ... 4 for info.
SEVERITY_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(SEVERITIES)}

#: pandas dtype of a ``severity`` column: an ordered Categorical, least severe first, so
#: ``f[f.severity >= "high"]`` keeps high and critical, ``sort_values("severity")`` and
#: ``groupby("severity")`` follow severity order (a value outside SEVERITIES is null).
SEVERITY_DTYPE: Final[pd.CategoricalDtype] = pd.CategoricalDtype(SEVERITIES[::-1], ordered=True)

#: Rank given to a severity that is not one of :data:`SEVERITIES` (the most severe).
UNKNOWN_SEVERITY_RANK: Final[int] = 0

#: Colour per severity for figures and HTML (colour-blind-friendly-ish, print-safe).
SEVERITY_COLORS: dict[str, str] = {
    "critical": "#c0162c",
    "high": "#ef7d00",
    "medium": "#d4b400",
    "low": "#3a7dc9",
    "info": "#8c8c8c",
}

#: Binary byte units, smallest first.
BYTE_UNITS: Final[tuple[str, ...]] = ("B", "KiB", "MiB", "GiB", "TiB")

#: Nanoseconds per unit for the time units the figures and reports use.
TIME_UNITS_NS: Final[dict[str, float]] = {"s": 1e9, "ms": 1e6, "µs": 1e3, "ns": 1.0}


# --- null tests ---------------------------------------------------------------------------

def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT (never raises, also for lists)."""
    if value is None:
        return True
    kind = type(value)
    if kind is str or kind is int or kind is bool:  # the common cells, without pandas
        return False
    if kind is float:
        return value != value
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def int_or_none(value: Any) -> int | None:
    """``int(value)``, or None when it is missing or not a (finite) number."""
    if is_missing(value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def str_or_none(value: Any) -> str | None:
    """``str(value)``, or None when it is missing."""
    return None if is_missing(value) else str(value)


# --- severities ---------------------------------------------------------------------------

def severity_rank(severity: Any) -> int:
    """0 for critical ... 4 for info; an unknown severity ranks as critical (never
    hidden, always blocking)."""
    return SEVERITY_RANK.get(str(severity).lower(), UNKNOWN_SEVERITY_RANK)


def at_least(severity: Any, min_severity: str | None) -> bool:
    """True when ``severity`` is ``min_severity`` or more severe (None or an unknown
    ``min_severity``: everything)."""
    if not min_severity or min_severity not in SEVERITY_RANK:
        return True
    return severity_rank(severity) <= SEVERITY_RANK[min_severity]


def severity_counts(severities: Any) -> dict[str, int]:
    """Count of each severity present in a column (str or Categorical), most severe
    first; severities with no row are left out."""
    counts = pd.Series(severities, dtype="object").astype(str).value_counts()
    order = sorted(counts.index, key=severity_rank)
    return {str(s): int(counts[s]) for s in order if counts[s]}


def severity_color(severity: Any) -> str:
    """Colour for a severity (grey when unknown)."""
    return SEVERITY_COLORS.get(str(severity), SEVERITY_COLORS["info"])


# --- addresses ----------------------------------------------------------------------------

def address_to_int(value: Any) -> int | None:
    """An address given as int, numpy int or ``'0x...'`` text -> int (None if missing)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def format_address(value: Any, missing: str = "-") -> str:
    """An address as ``0x...`` hex text (strings are passed through); ``missing`` for
    None, NaN/NA and negative numbers (the ``-1`` of an absent address)."""
    if is_missing(value):
        return missing
    if isinstance(value, str):
        return value
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    return missing if number < 0 else f"0x{number:x}"


# --- bytes --------------------------------------------------------------------------------

#: How tables show a byte count that is unknown (an MDL the trace never saw built).
UNKNOWN_BYTES: Final[str] = "?"


def format_bytes(n: float | int | None, missing: str = "-") -> str:
    """Human byte count with binary units: ``8192`` -> ``'8 KiB'``, ``None`` ->
    ``missing`` (``'-'``; pass :data:`UNKNOWN_BYTES` where null means unknown size)."""
    if is_missing(n):
        return missing
    n = float(n)  # type: ignore[arg-type]
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in BYTE_UNITS:
        if n < 1024 or unit == BYTE_UNITS[-1]:
            if unit == "B":
                return f"{sign}{round(n)} B"  # round: impact (B·s) is fractional
            text = f"{n:.1f}".rstrip("0").rstrip(".")
            return f"{sign}{text} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def held_bytes_text(leaks: dict[str, Any]) -> str:
    """``leaks.bytes_at_end`` of a summary as text, ``'8 KiB + ?'`` when some process
    holds MDLs of unknown size (its ``by_process`` bytes is null), ``'?'`` when all that
    is held is of unknown size (``bytes_at_end`` null)."""
    total = leaks.get("bytes_at_end", 0)
    if is_missing(total):
        return UNKNOWN_BYTES
    text = format_bytes(total)
    unknown = any(p.get("bytes") is None for p in leaks.get("by_process") or [])
    return text + f" + {UNKNOWN_BYTES}" if unknown else text


def format_byte_seconds(x: float | int | None, missing: str = "-") -> str:
    """Impact as bytes x seconds with a binary-unit prefix: ``'81.9 KiB·s'``
    (``missing`` when None/NaN)."""
    if is_missing(x):
        return missing
    text = format_bytes(x)
    return text.replace(" B", " B·s") if text.endswith(" B") else text + "·s"


def describe_bytes(n: int | None) -> str:
    """A byte count for a sentence of a finding message: ``'8 KiB'``, ``'1.5 MiB'``,
    ``'100 bytes'``; ``'an unknown number of bytes'`` when missing or negative."""
    if is_missing(n) or n < 0:  # type: ignore[operator]
        return "an unknown number of bytes"
    n = int(n)  # type: ignore[arg-type]
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n} bytes"


# --- times --------------------------------------------------------------------------------

def time_unit(span_ns: float) -> tuple[str, float]:
    """Pick a readable unit for a time span: returns (label, ns per unit)."""
    for label in ("s", "ms", "µs"):
        if span_ns >= 2 * TIME_UNITS_NS[label]:
            return label, TIME_UNITS_NS[label]
    return "ns", 1.0


def format_time_ns(t_ns: float | int | None, t0_ns: float | int = 0) -> str:
    """Time since ``t0_ns`` as seconds with 6 decimals (``'1.234567 s'``)."""
    if is_missing(t_ns):
        return "-"
    return f"{(float(t_ns) - float(t0_ns)) / 1e9:.6f} s"  # type: ignore[arg-type]


def format_ms(t_ns: int | float) -> str:
    """A trace time in milliseconds with 3 decimals, as finding messages write it."""
    return f"{t_ns / 1e6:.3f} ms"


# --- labels -------------------------------------------------------------------------------

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
