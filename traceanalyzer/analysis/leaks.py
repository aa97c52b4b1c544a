"""Memory held over time: locked pages and user mappings per process, and the leak
figures (bytes held at the end, leaked at process exits)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

HELD_COLUMNS = ["pid", "process", "kind", "lifetime_id", "bytes", "start_ns", "end_ns"]
TIMELINE_COLUMNS = ["time_ns", "pid", "process", "kind", "bytes"]
#: The leak timeline's kind of the memory a process holds (each MDL lifetime once).
HELD_KIND = "held"
_KINDS = (HELD_KIND, "locked", "user_mapped")  # codes 0, 1, 2: the rows' order
EXIT_RULES = ("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "LOCKED_PAGES_AT_PROCESS_EXIT")


def held_intervals(locks: pd.DataFrame, mappings: pd.DataFrame, trace_end_ns: int) -> pd.DataFrame:
    """Intervals of memory held: columns pid, process, kind, lifetime_id, bytes,
    start_ns, end_ns (trace end if still held; a user mapping torn down at process
    exit stays held: those pages are leaked until reboot)."""
    end = trace_end_ns
    lk = pd.DataFrame({
        "pid": locks["pid"], "process": locks["process"], "kind": "locked",
        "lifetime_id": locks["lifetime_id"], "bytes": locks["bytes"],
        "start_ns": locks["start_ns"], "end_ns": locks["end_ns"].fillna(end),
    }) if len(locks) else pd.DataFrame()
    um = mappings[mappings["mode"] == "UserMode"] if len(mappings) else mappings
    if len(um):
        held_end = um["end_ns"].where(um["end_reason"] != "process_exit", end).fillna(end)
        mp = pd.DataFrame({
            "pid": um["pid"], "process": um["process"], "kind": "user_mapped",
            "lifetime_id": um["lifetime_id"], "bytes": um["bytes"],
            "start_ns": um["start_ns"], "end_ns": held_end,
        })
    else:
        mp = pd.DataFrame()
    parts = [p for p in (lk, mp) if len(p)]
    if not parts:
        return pd.DataFrame(columns=HELD_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["end_ns"] = out["end_ns"].astype("int64")
    return out


def _order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """``np.lexsort((minor, major))`` (stable): by one int64 key when both fit in it, which
    sorts twice as fast."""
    if not len(major):
        return np.arange(0)
    lo, span = int(minor.min()), int(minor.max()) - int(minor.min()) + 1
    hi = int(major.max()) + 1
    if major.min() >= 0 and hi * span < 2**62:
        return np.argsort(major * span + (minor - lo), kind="stable")
    return np.lexsort((minor, major))


def _kind_names(codes: np.ndarray) -> Any:
    """The ``str`` column of kind names of ``codes`` (into :data:`_KINDS`), built by
    Arrow: ten times faster than from Python strings."""
    names = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(_KINDS))
    return pd.array(names.cast(pa.large_string()), dtype="str")


def _held_spans(pid: np.ndarray, life: np.ndarray, start: np.ndarray, end: np.ndarray,
                size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """When each MDL lifetime holds memory in each process, from its intervals (locks
    and user mappings: arrays ``pid`` (-1 unknown), ``life`` (lifetime id), ``start``,
    ``end`` (>= start), ``size`` (NaN unknown)): the spans of time in which some
    interval of one (pid, lifetime) is held, overlapping or touching ones merged.
    Returns (row, bytes, start, end) per span: ``row`` one of its intervals, ``bytes``
    the largest of its intervals' sizes (a lock and a mapping of one lifetime are the
    same pages; NaN only when none is known).

    Vectorized: a (pid, lifetime) of one interval is its own span. The others' starts
    (+1) and ends (-1) are sorted by (pid, lifetime, time, starts first); a running
    count of the intervals held (every pair adds to 0, so one cumsum over all of them)
    rises from 0 where a span starts and falls to 0 where it ends."""
    n = len(pid)
    pid_codes = pd.factorize(pid)[0].astype(np.int64)
    key = life.astype(np.int64) * (int(pid_codes.max(initial=0)) + 1) + pid_codes
    shared = pd.Series(key).duplicated(keep=False).to_numpy()
    alone = np.flatnonzero(~shared)
    many = np.flatnonzero(shared)
    m = len(many)
    t = np.concatenate([start[many], end[many]])
    opening = np.r_[np.ones(m, dtype=bool), np.zeros(m, dtype=bool)]
    # time and start-before-end in one key: touching intervals merge
    order = _order(np.tile(pd.factorize(key[many])[0].astype(np.int64), 2), t * 2 + ~opening)
    opening, t = opening[order], t[order]
    level = np.cumsum(np.where(opening, 1, -1))
    opens = np.flatnonzero(opening & (level == 1))
    closes = np.flatnonzero(~opening & (level == 0))  # the k-th closes the k-th span
    # an end's size is NaN: fmax over a span's events is its largest interval's size
    sizes = np.r_[size[many], np.full(m, np.nan)][order]
    span_bytes = np.fmax.reduceat(sizes, opens) if len(opens) else sizes[:0]
    row = np.tile(many, 2)[order][opens]
    return (np.r_[alone, row], np.r_[size[alone], span_bytes],
            np.r_[start[alone], t[opens]], np.r_[end[alone], t[closes]])


def leak_timeline(held: pd.DataFrame, trace_end_ns: int) -> pd.DataFrame:
    """Bytes locked, bytes user-mapped and memory held per process over time (step
    functions) from :func:`held_intervals`.

    Columns: time_ns, pid, process, kind, bytes (held from this time until the next row
    of the same pid and kind). Kind 'locked': pages locked in the process;
    'user_mapped': pages mapped into it; 'held': the memory the process holds, each
    MDL lifetime locked in it or user-mapped into it counted once (a lifetime locked
    and mapped in one process is one set of pages: the larger size while both are
    held), so 'held' is not the sum of the other two and must not be added to them.
    Rows are in (pid, kind, time) order.
    """
    if held.empty:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    pid = held["pid"].astype("Float64").fillna(-1).to_numpy(dtype="int64")
    start = held["start_ns"].to_numpy(dtype="int64")
    end = np.maximum(held["end_ns"].to_numpy(dtype="int64"), start)
    size = held["bytes"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    kind = np.where(held["kind"].to_numpy() == "locked", 1, 2)  # codes of _KINDS
    row, span_size, span_start, span_end = _held_spans(
        pid, held["lifetime_id"].to_numpy(dtype="int64"), start, end, size)
    # every change: an interval's start (+size) and end (-size, unless at the trace end)
    rows = np.r_[np.arange(len(held)), row]
    kinds = np.r_[kind, np.zeros(len(row), dtype=kind.dtype)]
    sizes = np.nan_to_num(np.r_[size, span_size])  # unknown size: 0 B, as before
    ends = np.r_[end, span_end]
    gone = ends < trace_end_ns
    rows, kinds = np.r_[rows, rows[gone]], np.r_[kinds, kinds[gone]]
    t = np.r_[start, span_start, ends[gone]]
    delta = np.r_[sizes, -sizes[gone]]
    pid_codes, pids = pd.factorize(pid[rows], sort=True)
    series = pid_codes.astype(np.int64) * len(_KINDS) + kinds
    order = _order(series, t)  # stable: the first row of a time names the process
    series, t, delta, rows = series[order], t[order], delta[order], rows[order]
    first = np.flatnonzero(np.r_[True, (series[1:] != series[:-1]) | (t[1:] != t[:-1])])
    series, t, rows = series[first], t[first], rows[first]
    level = np.cumsum(np.add.reduceat(delta, first))
    new = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])  # each series restarts
    level -= np.repeat(np.r_[0.0, level[:-1]][new], np.diff(np.r_[new, len(series)]))
    out_pid = np.asarray(pids, dtype=np.int64)[series // len(_KINDS)]
    return pd.DataFrame({
        "time_ns": t,
        "pid": pd.arrays.IntegerArray(out_pid, out_pid == -1),  # -1: unknown
        "process": held["process"].take(rows).reset_index(drop=True),
        "kind": _kind_names(series % len(_KINDS)),
        "bytes": pd.array(np.round(level), dtype="Int64"),
    })


def known_total(sizes: pd.Series) -> int | None:
    """The sum of the known sizes (null: an MDL of unknown size); None when there are
    sizes and none is known (unknown, not 0 B); 0 when there are none."""
    known = sizes.dropna()
    return int(known.sum()) if len(known) or not len(sizes) else None


def leak_figures(held: pd.DataFrame, findings: pd.DataFrame, trace_end_ns: int) -> dict[str, Any]:
    """bytes_at_end (memory still locked or user-mapped when the trace ends, each MDL
    lifetime counted once), by_process, bytes_leaked_at_exit (user mappings and
    user-buffer locks still held when their process ended, each MDL lifetime once). Each
    figure adds the sizes that are known (:func:`known_total`): None when memory is held
    but of unknown size only, 0 when none is held."""
    still = held[held["end_ns"] >= trace_end_ns] if len(held) else held
    by_proc: list[dict[str, Any]] = []
    total: int | None = 0
    if len(still):
        # one MDL lifetime counted once; a mapped one is charged to the mapping's process
        still = still.sort_values("kind", ascending=False, kind="stable")  # user_mapped first
        once = still.drop_duplicates("lifetime_id")
        total = known_total(once["bytes"])
        grp = once.groupby(once["pid"].fillna(-1).astype("int64"), sort=True)
        for pid, g in grp:
            name = g["process"].dropna()
            by_proc.append({"pid": None if pid == -1 else int(pid),
                            "process": str(name.iloc[0]) if len(name) else None,
                            "bytes": known_total(g["bytes"])})
        by_proc.sort(key=lambda r: -(r["bytes"] if r["bytes"] is not None else -1))
    exits = findings[findings["rule"].isin(EXIT_RULES)]
    # physical memory: an MDL mapped into two processes that both exit leaks its pages once
    at_exit = known_total(exits.drop_duplicates("lifetime_id")["bytes"])
    return {"bytes_at_end": total, "by_process": by_proc, "bytes_leaked_at_exit": at_exit}


def exit_leaks_by_pid(findings: pd.DataFrame) -> dict[int, float]:
    """Bytes each process (by pid) still held when it exited: its exit findings
    (:data:`EXIT_RULES`), each MDL lifetime once (:func:`known_total`; NaN when all of
    them are of unknown size). Processes that exited clean are not in it."""
    exits = findings[findings["rule"].isin(EXIT_RULES) & findings["pid"].notna()]
    out: dict[int, float] = {}
    for pid, g in exits.drop_duplicates(["lifetime_id", "pid"]).groupby("pid"):
        total = known_total(g["bytes"])
        out[int(pid)] = float("nan") if total is None else float(total)
    return out
