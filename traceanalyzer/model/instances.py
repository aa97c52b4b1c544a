"""Process and thread instances: IDs are reused, so identity is (id, start).

Process/Thread start, rundown and end events are few (thousands, not millions), so a
plain ordered walk builds the instance tables.

The rundown at the trace end (``ProcessRundownEnd`` / ``ThreadRundownEnd``, DCEnd) says
"alive when the trace ended": it neither starts nor ends an instance. It describes only
an id that nothing before it describes: an id with a live instance keeps that one (the
rundown only fills a missing image or owning process); any other id gets an instance of
source ``rundown_end`` that was alive, as far as the trace tells, from the trace start
(or from the end of the id's previous instance, when the id was reused) and did not end.
A circular-buffer (WPR memory mode) recording often holds only this rundown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from traceanalyzer.model.asof import asof_index
from traceanalyzer.model.schema import IDLE_PID, SYSTEM_PID

WELL_KNOWN_IMAGES = {SYSTEM_PID: "System", IDLE_PID: "Idle"}

PROCESS_COLUMNS = [
    "proc_id", "pid", "image", "parent_pid", "wow64", "start_ns", "end_ns",
    "start_seq", "end_seq", "source",
]
THREAD_COLUMNS = ["thread_id", "tid", "pid", "start_ns", "end_ns", "start_seq", "end_seq", "source"]


def _rows(table: pa.Table, columns: list[str]) -> list[dict]:
    present = [c for c in columns if c in table.column_names]
    t = table.select(present)
    if "event" in present and pa.types.is_dictionary(t.schema.field("event").type):
        t = t.set_column(present.index("event"), "event", t.column("event").cast(pa.string()))
    return t.to_pylist()


def _image(row: dict) -> str | None:
    """The row's image name; an empty one is not known (an ETL Process record always has
    an ImageFileName, empty when the logger had none; CSV leaves the cell empty: null)."""
    return row.get("image") or None


def process_instances(tables: dict[str, pa.Table], extra_pids: list[int]) -> pd.DataFrame:
    """Process instances from ProcessStart/ProcessRundown/ProcessEnd, and from
    ProcessRundownEnd for pids nothing else describes (see Trace.processes)."""
    rows = _rows(
        tables["processes"],
        ["seq", "time_ns", "event", "pid", "parent_pid", "image", "wow64"],
    )
    out: list[dict] = []
    live: dict[int, int] = {}  # pid -> index in out of the newest instance without an end
    ended: dict[int, int] = {}  # pid -> end_seq of its newest ended instance
    for r in rows:
        pid = r.get("pid")
        if pid is None:
            continue
        ev = r["event"]
        if ev in ("ProcessStart", "ProcessRundown"):
            if ev == "ProcessRundown" and pid in live and out[live[pid]]["source"] == "rundown":
                continue  # duplicate rundown (merged kernel sessions)
            live[pid] = len(out)
            out.append(
                {
                    "pid": pid,
                    "image": _image(r),
                    "parent_pid": r.get("parent_pid"),
                    "wow64": r.get("wow64"),
                    "start_ns": r["time_ns"] if ev == "ProcessStart" else None,
                    "end_ns": None,
                    "start_seq": r["seq"] if ev == "ProcessStart" else None,
                    "end_seq": None,
                    "source": "start" if ev == "ProcessStart" else "rundown",
                }
            )
        elif ev == "ProcessRundownEnd":
            idx = live.get(pid)
            if idx is not None:  # described already: that instance stays as it is
                if out[idx]["image"] is None:
                    out[idx]["image"] = _image(r)
                continue
            live[pid] = len(out)
            out.append(
                {
                    "pid": pid, "image": _image(r), "parent_pid": r.get("parent_pid"),
                    "wow64": r.get("wow64"), "start_ns": None, "end_ns": None,
                    "start_seq": ended.get(pid), "end_seq": None, "source": "rundown_end",
                }
            )
        elif ev == "ProcessEnd":
            idx = live.pop(pid, None)
            if idx is None:  # ended without a start in the trace: alive when it began
                idx = len(out)
                out.append(
                    {
                        "pid": pid, "image": _image(r), "parent_pid": r.get("parent_pid"),
                        "wow64": r.get("wow64"), "start_ns": None, "end_ns": None,
                        "start_seq": None, "end_seq": None, "source": "implicit",
                    }
                )
            out[idx]["end_ns"] = r["time_ns"]
            out[idx]["end_seq"] = ended[pid] = r["seq"]
            if out[idx]["image"] is None:
                out[idx]["image"] = _image(r)
    known = {o["pid"] for o in out}
    for pid in sorted(set(extra_pids) | set(WELL_KNOWN_IMAGES)):
        if pid not in known:
            out.append(
                {
                    "pid": pid, "image": None, "parent_pid": None, "wow64": None,
                    "start_ns": None, "end_ns": None, "start_seq": None, "end_seq": None,
                    "source": "implicit",
                }
            )
    for o in out:
        if o["image"] is None and o["pid"] in WELL_KNOWN_IMAGES:
            o["image"] = WELL_KNOWN_IMAGES[o["pid"]]
    df = _frame(out, PROCESS_COLUMNS, ("pid", "parent_pid", "wow64", "start_ns", "end_ns", "start_seq", "end_seq"))
    df["image"] = df["image"].astype("string")
    return df


def thread_instances(tables: dict[str, pa.Table]) -> pd.DataFrame:
    """Thread instances from ThreadStart/ThreadRundown/ThreadEnd, and from
    ThreadRundownEnd for tids nothing else describes (see Trace.threads)."""
    rows = _rows(tables["threads"], ["seq", "time_ns", "event", "pid", "tid"])
    out: list[dict] = []
    live: dict[int, int] = {}
    ended: dict[int, int] = {}  # tid -> end_seq of its newest ended instance
    for r in rows:
        tid = r.get("tid")
        if tid is None:
            continue
        ev = r["event"]
        if ev in ("ThreadStart", "ThreadRundown"):
            if ev == "ThreadRundown" and tid in live and out[live[tid]]["source"] == "rundown":
                continue
            live[tid] = len(out)
            out.append(
                {
                    "tid": tid, "pid": r.get("pid"),
                    "start_ns": r["time_ns"] if ev == "ThreadStart" else None, "end_ns": None,
                    "start_seq": r["seq"] if ev == "ThreadStart" else -1, "end_seq": None,
                    "source": "start" if ev == "ThreadStart" else "rundown",
                }
            )
        elif ev == "ThreadRundownEnd":
            idx = live.get(tid)
            if idx is not None:  # described already: that instance stays as it is
                if out[idx]["pid"] is None:
                    out[idx]["pid"] = r.get("pid")
                continue
            live[tid] = len(out)
            out.append(
                {
                    "tid": tid, "pid": r.get("pid"), "start_ns": None, "end_ns": None,
                    "start_seq": ended.get(tid, -1), "end_seq": None, "source": "rundown_end",
                }
            )
        elif ev == "ThreadEnd":
            idx = live.pop(tid, None)
            if idx is None:
                idx = len(out)
                out.append(
                    {
                        "tid": tid, "pid": r.get("pid"), "start_ns": None, "end_ns": None,
                        "start_seq": -1, "end_seq": None, "source": "implicit",
                    }
                )
            out[idx]["end_ns"] = r["time_ns"]
            out[idx]["end_seq"] = ended[tid] = r["seq"]
    return _frame(out, THREAD_COLUMNS, ("tid", "pid", "start_ns", "end_ns", "start_seq", "end_seq"))


def _frame(rows: list[dict], columns: list[str], integers: tuple[str, ...]) -> pd.DataFrame:
    """Instance rows as a frame: ``columns[0]`` numbers them; ``integers`` are Int64 built
    from the Python ints (no float round trip, which turns 2**63 - 1 into 2**63)."""
    data: dict[str, object] = {columns[0]: range(len(rows))}
    for c in columns[1:]:
        values = [r[c] for r in rows]
        data[c] = pd.array(values, dtype="Int64") if c in integers else pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def live_thread_index(threads: pd.DataFrame, seq: np.ndarray, tid: np.ndarray) -> np.ndarray:
    """For each (seq, tid), the row of ``threads`` (``Trace.threads``) of that tid's newest
    instance started at or before ``seq`` and not ended before it; -1 when none (tid -1:
    none)."""
    start = threads["start_seq"].fillna(-1).to_numpy(dtype=np.int64)
    end = threads["end_seq"].fillna(np.iinfo(np.int64).max).to_numpy(dtype=np.int64)
    index = asof_index(seq, tid, start, threads["tid"].to_numpy(dtype=np.int64))
    alive = index >= 0
    alive[alive] = end[index[alive]] >= seq[alive]
    return np.where(alive, index, -1)
