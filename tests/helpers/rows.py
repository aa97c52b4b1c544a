"""Build small traces in memory for the core and lifecycle tests (no files)."""

from __future__ import annotations

import pyarrow as pa

import traceanalyzer as ta
from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.model.trace import Trace
from traceanalyzer.readers.convert import canonicalize_columns


def trace_from_rows(rows: list[dict]) -> Trace:
    """A Trace from canonical rows (dicts with time_ns, event and any canonical columns)."""
    names: list[str] = []
    for r in rows:
        for k in r:
            if k not in names:
                names.append(k)
    cols = {}
    for n in names:
        values = [r.get(n) for r in rows]
        typ = COLUMNS.get(n, pa.string())
        if typ == pa.uint64():
            cols[n] = pa.array(values, pa.uint64())
        elif pa.types.is_integer(typ):
            cols[n] = pa.array(values, pa.int64()).cast(typ)
        else:
            cols[n] = pa.array(values, pa.string())
    table, _bad = canonicalize_columns(pa.table(cols))
    return Trace.from_tables([table], paths=["<memory>"])


def analyze_rows(rows: list[dict], engine: str = "python") -> ta.Analysis:
    return ta.analyze(trace_from_rows(rows), engine=engine)


def rules_of(analysis: ta.Analysis, min_rank: str = "low") -> list[str]:
    """Rule IDs of findings at or above a severity, sorted."""
    from traceanalyzer.vocabulary import SEVERITY_RANK

    f = analysis.findings
    keep = f["severity"].astype(str).map(SEVERITY_RANK) <= SEVERITY_RANK[min_rank]
    return sorted(f.loc[keep, "rule"].tolist())


#: Three user processes (pid, image, main thread) for the replay scenarios; PRELUDE
#: starts them and System (pid 4) with its worker thread 88.
PROCS = [(100, "a.exe", 1000), (200, "b.exe", 2000), (300, "c.exe", 3000)]
PRELUDE = [
    {"time_ns": 0, "event": "ProcessRundown", "pid": 4, "image": "System"},
    {"time_ns": 0, "event": "ThreadRundown", "pid": 4, "tid": 88},
] + [
    r
    for pid, image, tid in PROCS
    for r in (
        {"time_ns": 0, "event": "ProcessStart", "pid": pid, "image": image},
        {"time_ns": 0, "event": "ThreadStart", "pid": pid, "tid": tid},
    )
]
