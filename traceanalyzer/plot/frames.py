"""Data preparation shared by the figures: normalising the Analysis/Trace tables.

The figures accept the documented Analysis tables (docs/architecture.md). Columns that
other layers may still name differently (the process table) are looked up by a few
aliases here, so that every figure reads them the same way.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from traceanalyzer.analysis.timelines import float_series
from traceanalyzer.model.schema import IDLE_PID, SYSTEM_PID
from traceanalyzer.vocabulary import address_to_int, str_or_none

_NAME_COLS = ("process", "image", "name", "process_name")
_START_COLS = ("start_ns", "start_time_ns", "start")
_END_COLS = ("end_ns", "end_time_ns", "end", "exit_ns")


def first_column(df: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of ``names`` that is a column of ``df`` (None when none is)."""
    for n in names:
        if n in df.columns:
            return n
    return None


#: A float64 Series (missing -> NaN) from any column, Arrow-backed or not.
numeric = float_series


def address_series(series: pd.Series) -> pd.Series:
    """Object Series of Python ints (or None) from an address column of any type."""
    return pd.Series([address_to_int(v) for v in series], index=series.index, dtype=object)


def is_system_pid(pid: Any) -> bool:
    """True for System (4), Idle (0) and missing pids: the unattributed lane."""
    if pid is None:
        return True
    try:
        if pd.isna(pid):
            return True
        return int(pid) in (SYSTEM_PID, IDLE_PID) or int(pid) < 0
    except (TypeError, ValueError):
        return True


def process_spans(processes: pd.DataFrame | None) -> pd.DataFrame:
    """One row per process instance with its lifetime.

    Columns: ``pid`` (float, NaN unknown), ``process`` (str), ``start_ns`` (float, NaN
    when it started before the trace), ``end_ns`` (float, NaN when alive at trace end).
    Accepts the Trace's process table, with its name column called ``process``,
    ``image`` or ``name`` and its times ``start_ns``/``end_ns`` (or close aliases).
    """
    cols = ["pid", "process", "start_ns", "end_ns"]
    if processes is None or len(processes) == 0 or "pid" not in processes.columns:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c != "process" else object)
                             for c in cols})
    name_col = first_column(processes, _NAME_COLS)
    start_col = first_column(processes, _START_COLS)
    end_col = first_column(processes, _END_COLS)
    n = len(processes)
    out = pd.DataFrame(
        {
            "pid": numeric(processes["pid"]).to_numpy(),
            "process": (processes[name_col].astype(object).where(
                processes[name_col].notna(), "").astype(str).map(_basename).to_numpy()
                if name_col else np.array([""] * n, dtype=object)),
            "start_ns": numeric(processes[start_col]).to_numpy() if start_col
            else np.full(n, np.nan),
            "end_ns": numeric(processes[end_col]).to_numpy() if end_col else np.full(n, np.nan),
        }
    )
    return out


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def span_for(spans: pd.DataFrame, pid: Any, name: Any, around_ns: float | None
             ) -> tuple[float, float] | None:
    """(start_ns, end_ns) of the instance of ``pid`` alive around ``around_ns``.

    Prefers an instance whose name matches (``name`` may be missing: None/NA/NaN);
    NaN means before/after the trace. None when the process table does not know the pid.
    """
    if spans.empty or pid is None or pd.isna(pid):
        return None
    rows = spans[spans["pid"] == float(pid)]
    if rows.empty:
        return None
    name = str_or_none(name)  # (pd.NA has no truth value)
    if name:
        named = rows[rows["process"].str.lower() == name.lower()]
        rows = named if not named.empty else rows
    if around_ns is not None and len(rows) > 1:
        s = rows["start_ns"].fillna(-np.inf)
        e = rows["end_ns"].fillna(np.inf)
        alive = rows[(s <= around_ns) & (e >= around_ns)]
        rows = alive if not alive.empty else rows
    r = rows.iloc[0]
    return float(r["start_ns"]), float(r["end_ns"])


def step_value_before(times: np.ndarray, values: np.ndarray, t: float) -> float:
    """Value of a post-step function (sorted ``times``) just before time ``t``."""
    idx = int(np.searchsorted(times, t, side="left")) - 1
    return float(values[idx]) if idx >= 0 else 0.0


def time_span(span: Sequence[float] | None, *columns: pd.Series) -> tuple[float, float]:
    """(t0, t1) in ns: ``span`` when given, else min/max over the given columns; never
    empty (a trace whose events share one time gets 1 ns, so axes are not singular)."""
    if span is not None and len(span) == 2 and not any(pd.isna(v) for v in span):
        lo, hi = float(span[0]), float(span[1])
        return lo, hi if hi > lo else lo + 1.0
    vals = [numeric(c).dropna() for c in columns if c is not None]
    vals = [v for v in vals if len(v)]
    if not vals:
        return 0.0, 1.0
    lo = min(float(v.min()) for v in vals)
    hi = max(float(v.max()) for v in vals)
    return lo, hi if hi > lo else lo + 1.0
