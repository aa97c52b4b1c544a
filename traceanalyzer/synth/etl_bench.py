"""Large synthetic ETL files for benchmarks: mostly CSwitch, some MDL calls.

:func:`write_cswitch_heavy_etl` generates the events chunk by chunk (numpy, no per-event
Python loop for the switches) and streams them through :func:`write_etl`, so a 10M- or
50M-event file is written in bounded memory.

Layout of the generated trace (deterministic for given arguments): a rundown of
``processes`` processes with ``threads_per_process`` threads each at time 0, then events
every ``spacing_ns`` nanoseconds round-robin over the CPUs. Each event is a CSwitch to the
next thread of a fixed pseudo-random schedule, except every ``call_every``-th event,
which is an MDL call by the thread running on that CPU, cycling IoAllocateMdl ->
MmProbeAndLockPages -> MmUnlockPages -> IoFreeMdl over fresh MDL addresses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.synth.etl_writer import write_etl

_CALLS = ("IoAllocateMdl", "MmProbeAndLockPages", "MmUnlockPages", "IoFreeMdl")
_MDL_BASE = 0xFFFFC30A4B000000
_VA_BASE = 0x0000_01F0_0000_0000


def _schedule(k: np.ndarray, cpu: np.ndarray, n_threads: int) -> np.ndarray:
    """Index of the thread that runs after the k-th switch on a CPU (a fixed hash)."""
    h = (k.astype(np.uint64) * np.uint64(2654435761) + cpu.astype(np.uint64) * np.uint64(40503)) >> np.uint64(7)
    return (h % np.uint64(n_threads)).astype(np.int64)


def _table(columns: dict[str, Any]) -> pa.Table:
    return pa.table({name: pa.array(values, type=COLUMNS[name]) if not isinstance(values, pa.Array) else values
                     for name, values in columns.items()})


def _rundown(processes: int, threads_per_process: int) -> pa.Table:
    pids = [1000 + 4 * p for p in range(processes)]
    rows: dict[str, list] = {c: [] for c in ("time_ns", "event", "cpu", "pid", "tid", "parent_pid", "image")}
    for pid in pids:
        rows["time_ns"].append(0)
        rows["event"].append("ProcessRundown")
        rows["cpu"].append(0)
        rows["pid"].append(pid)
        rows["tid"].append(None)
        rows["parent_pid"].append(4)
        rows["image"].append(f"app{pid}.exe")
    for p, pid in enumerate(pids):
        for t in range(threads_per_process):
            rows["time_ns"].append(0)
            rows["event"].append("ThreadRundown")
            rows["cpu"].append(0)
            rows["pid"].append(pid)
            rows["tid"].append(_tid(p, t, threads_per_process))
            rows["parent_pid"].append(None)
            rows["image"].append(None)
    return _table(rows)


def _tid(p: int | np.ndarray, t: int | np.ndarray, threads_per_process: int) -> Any:
    return 20000 + 4 * (p * threads_per_process + t)


def _chunk(start: int, stop: int, *, cpus: int, processes: int, threads_per_process: int,
           call_every: int, spacing_ns: int) -> pa.Table:
    i = np.arange(start, stop, dtype=np.int64)
    cpu = i % cpus
    k = i // cpus
    n_threads = processes * threads_per_process
    new_idx = _schedule(k, cpu, n_threads)
    old_idx = _schedule(k - 1, cpu, n_threads)
    tids = _tid(np.arange(n_threads) // threads_per_process, np.arange(n_threads) % threads_per_process,
                threads_per_process)
    pids = 1000 + 4 * (np.arange(n_threads) // threads_per_process)
    is_call = (i % call_every) == call_every - 1 if call_every else np.zeros(len(i), bool)
    call_no = i // call_every if call_every else i
    kind = np.where(is_call, 1 + call_no % 4, 0)
    names = pa.array(("CSwitch",) + _CALLS)
    mdl = np.uint64(_MDL_BASE) + (call_no // 4).astype(np.uint64) * np.uint64(0x1000)
    running = old_idx  # the thread switched in by the previous switch on this CPU
    null = ~is_call
    allocate = is_call & (kind == 1)
    probe = is_call & (kind == 2)
    columns = {
        "time_ns": i * spacing_ns,
        "event": pa.DictionaryArray.from_arrays(pa.array(kind.astype(np.int32)), names),
        "cpu": cpu.astype(np.int32),
        "pid": pa.array(pids[running], type=pa.int64(), mask=null),
        "tid": pa.array(tids[running], type=pa.int64(), mask=null),
        "new_tid": pa.array(tids[new_idx], type=pa.int64(), mask=is_call),
        "old_tid": pa.array(tids[old_idx], type=pa.int64(), mask=is_call),
        "mdl": pa.array(mdl, type=pa.uint64(), mask=null),
        "va": pa.array((_VA_BASE + (call_no // 4) * 0x2000).astype(np.uint64), type=pa.uint64(), mask=~allocate),
        "size": pa.array(np.full(len(i), 8192, np.uint64), type=pa.uint64(), mask=~allocate),
        "access_mode": _constant_strings("UserMode", probe),
        "operation": _constant_strings("IoWriteAccess", probe),
    }
    return pa.table(columns)


def _constant_strings(text: str, present: np.ndarray) -> pa.Array:
    """A dictionary-encoded string column: ``text`` where present, null elsewhere."""
    indices = pa.array(np.zeros(len(present), np.int32), mask=~present)
    return pa.DictionaryArray.from_arrays(indices, pa.array([text]))


def cswitch_heavy_chunks(n_events: int, *, cpus: int = 4, processes: int = 16,
                         threads_per_process: int = 8, call_every: int = 100,
                         spacing_ns: int = 1000, chunk_rows: int = 1 << 18) -> Iterator[pa.Table]:
    """The events of :func:`write_cswitch_heavy_etl` as time-ordered Arrow chunks."""
    if n_events < 0 or cpus < 1 or processes < 1 or threads_per_process < 1:
        raise ValueError("n_events >= 0 and cpus, processes, threads_per_process >= 1 are required")
    yield _rundown(processes, threads_per_process)
    for start in range(0, n_events, chunk_rows):
        yield _chunk(start, min(n_events, start + chunk_rows), cpus=cpus, processes=processes,
                     threads_per_process=threads_per_process, call_every=call_every,
                     spacing_ns=spacing_ns)


def write_cswitch_heavy_etl(path: str | Path, n_events: int, *, cpus: int = 4,
                            processes: int = 16, threads_per_process: int = 8,
                            call_every: int = 100, spacing_ns: int = 1000,
                            chunk_rows: int = 1 << 18, **write_options: Any) -> dict[str, Any]:
    """Write a benchmark ETL of ``n_events`` events (plus the rundown) in bounded memory.

    Every ``call_every``-th event is an MDL call (0 = none), the rest are CSwitch
    records. ``write_options`` go to :func:`write_etl` (pointer_size, buffer_size, ...).
    Returns :func:`write_etl`'s summary dict.
    """
    chunks = cswitch_heavy_chunks(n_events, cpus=cpus, processes=processes,
                                  threads_per_process=threads_per_process, call_every=call_every,
                                  spacing_ns=spacing_ns, chunk_rows=chunk_rows)
    return write_etl(chunks, path, cpus=cpus, **write_options)
