"""Memory held over time: locked pages and user mappings per process, and the leak
figures (bytes held at the end, leaked at process exits)."""

from __future__ import annotations

from typing import Any

import pandas as pd

HELD_COLUMNS = ["pid", "process", "kind", "lifetime_id", "bytes", "start_ns", "end_ns"]
TIMELINE_COLUMNS = ["time_ns", "pid", "process", "kind", "bytes"]
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


def leak_timeline(held: pd.DataFrame, trace_end_ns: int) -> pd.DataFrame:
    """Bytes locked and bytes user-mapped per process over time (step functions) from
    :func:`held_intervals`.

    Columns: time_ns, pid, process, kind ('locked' | 'user_mapped'), bytes (held from
    this time until the next row of the same pid and kind).
    """
    if held.empty:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    iv = held.assign(pid=held["pid"].fillna(-1).astype("int64"))
    starts = iv[["start_ns", "pid", "process", "kind", "bytes"]].rename(columns={"start_ns": "time_ns"})
    ends = iv[["end_ns", "pid", "process", "kind", "bytes"]].rename(columns={"end_ns": "time_ns"})
    ends = ends.assign(bytes=-ends["bytes"])
    ends = ends[ends["time_ns"] < trace_end_ns]
    ch = pd.concat([starts, ends], ignore_index=True)
    ch = ch.groupby(["pid", "kind", "time_ns"], as_index=False).agg(
        bytes=("bytes", "sum"), process=("process", "first"))
    ch = ch.sort_values(["pid", "kind", "time_ns"], kind="stable")
    ch["bytes"] = ch.groupby(["pid", "kind"])["bytes"].cumsum()
    ch["pid"] = ch["pid"].astype("Int64").replace(-1, pd.NA)
    return ch[TIMELINE_COLUMNS].reset_index(drop=True)


def known_total(sizes: pd.Series) -> int | None:
    """The sum of the known sizes (null: an MDL of unknown size); None when there are
    sizes and none is known (unknown, not 0 B); 0 when there are none."""
    known = sizes.dropna()
    return int(known.sum()) if len(known) or not len(sizes) else None


def leak_figures(held: pd.DataFrame, findings: pd.DataFrame, trace_end_ns: int) -> dict[str, Any]:
    """bytes_at_end (memory still locked or user-mapped when the trace ends, each MDL
    lifetime counted once), by_process, bytes_leaked_at_exit (user mappings and
    user-buffer locks still held when their process ended). Each figure adds the sizes
    that are known (:func:`known_total`): None when memory is held but of unknown size
    only, 0 when none is held."""
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
    at_exit = known_total(exits.drop_duplicates(["lifetime_id", "pid"])["bytes"])
    return {"bytes_at_end": total, "by_process": by_proc, "bytes_leaked_at_exit": at_exit}
