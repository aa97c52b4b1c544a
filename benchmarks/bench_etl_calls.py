"""Benchmark: call-heavy ETL (MdlTrace events with string fields), bulk vs per-event decoding.

    python benchmarks/bench_etl_calls.py [--events 400000] [--calls 0.5] [--unicode] [--repeat 3]

Writes an ETL whose events are ``--calls`` MdlTrace calls (each with its caller as a
string field, and a text status on some) and CSwitch records for the rest, then reads
it with ``read_etl`` in a fresh child process per run: the default bulk decoder, and the
per-event Python path (bulk turned off). Prints one line per run (median of
``--repeat``): decoder, events, seconds, events/s, peak RSS (MB). The first child run
also loads the numba-compiled kernels from their cache.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CALLERS = [f"stordrv.sys+0x{0x1a00 + 0x40 * k:x}" for k in range(24)] + ["netdrv.sys+0x2b00", "fltmgr.sys+0x10"]
EVENTS = ["IoAllocateMdl", "MmProbeAndLockPages", "MmMapLockedPagesSpecifyCache", "MmUnmapLockedPages",
          "MmUnlockPages", "IoFreeMdl"]


def write_trace(path: Path, events: int, calls: float, unicode: bool) -> int:
    """The call-heavy ETL: per I/O, the six calls of one MDL's life, CSwitch in between."""
    from traceanalyzer.synth.etl_writer import write_etl

    table = call_heavy_table(events, calls)
    write_etl(table, path, unicode_strings=unicode)
    return table.num_rows


def write_trace_csv(path: Path, events: int, calls: float) -> int:
    """The same events as :func:`write_trace`, as canonical CSV (addresses as ``0x`` hex):
    the other side of the target "call-heavy ETL no slower than the same trace as CSV"."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from traceanalyzer.synth.scenario import HEX_COLUMNS

    table = call_heavy_table(events, calls)
    for k, name in enumerate(table.column_names):
        if name in HEX_COLUMNS:
            hexed = pa.array([None if v is None else f"0x{v:x}" for v in table[name].to_pylist()], pa.string())
            table = table.set_column(k, name, hexed)
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    return table.num_rows


def call_heavy_table(events: int, calls: float):
    """The call-heavy event table (canonical columns) both writers write."""
    import pyarrow as pa

    from traceanalyzer.model.schema import COLUMNS

    n_calls = int(events * calls) // len(EVENTS) * len(EVENTS)
    rows = {c: [] for c in ("time_ns", "event", "cpu", "pid", "tid", "mdl", "va", "size", "access_mode",
                            "operation", "cache_type", "mapped_va", "status", "caller", "new_tid", "old_tid")}
    t = 0
    switches_per_io = max(0, round((events - n_calls) / max(1, n_calls // len(EVENTS))))
    for io in range(n_calls // len(EVENTS)):
        mdl = 0xFFFFC30A00000000 + 0x1000 * (io % 50_000)
        for k, event in enumerate(EVENTS):
            t += 700
            values = dict(time_ns=t, event=event, cpu=io % 4, pid=4, tid=1000 + io % 16, mdl=mdl,
                          caller=CALLERS[(io + k) % len(CALLERS)])
            if event == "IoAllocateMdl":
                values.update(va=0xFFFFB00000000000 + 0x10000 * (io % 997), size=4096 * (1 + io % 16))
            elif event == "MmProbeAndLockPages":
                values.update(access_mode="KernelMode", operation="IoReadAccess",
                              status="exception" if io % 1000 == 999 else "0x00000000")
            elif event == "MmMapLockedPagesSpecifyCache":
                values.update(access_mode="KernelMode", cache_type="MmCached", mapped_va=0xFFFF800000000000 + io,
                              status="0x00000000")
            elif event == "MmUnmapLockedPages":
                values.update(mapped_va=0xFFFF800000000000 + io)
            for c in rows:
                rows[c].append(values.get(c))
        for s in range(switches_per_io):
            t += 300
            for c in rows:
                rows[c].append({"time_ns": t, "event": "CSwitch", "cpu": (io + s) % 4,
                                "new_tid": 1000 + (io + s) % 16, "old_tid": 1000 + (io + s + 1) % 16}.get(c))
    return pa.table({c: pa.array(v, COLUMNS[c]) for c, v in rows.items()})


def _child(mode: str, path: str) -> None:
    from traceanalyzer.readers.base import ReadOptions
    from traceanalyzer.readers.etl import events as etl_events
    from traceanalyzer.readers.etl import read_etl

    if mode == "per-event":
        etl_events.BULK_MIN_EVENTS = 10**12
    t0 = time.perf_counter()
    n = read_etl(Path(path), ReadOptions()).table.num_rows
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"events": n, "seconds": seconds, "rss_mb": rss}))


def _run(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--calls", type=float, default=0.5, help="fraction of events that are MDL calls")
    ap.add_argument("--unicode", action="store_true", help="UTF-16 string fields (default: ANSI)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.etl"
        t = time.perf_counter()
        n = write_trace(path, args.events, args.calls, args.unicode)
        print(f"wrote {n:,} events ({args.calls:.0%} calls, {'UTF-16' if args.unicode else 'ANSI'} strings, "
              f"{path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        _run("bulk", path)  # warm the numba cache and the page cache
        print(f"{'decoder':22} {'events':>10} {'seconds':>8} {'events/s':>12} {'peak RSS MiB':>12}")
        for mode in ("bulk", "per-event"):
            runs = [_run(mode, path) for _ in range(args.repeat)]
            sec = statistics.median(r["seconds"] for r in runs)
            rss = statistics.median(r["rss_mb"] for r in runs)
            print(f"read_etl ({mode}){'':{12 - len(mode)}} {runs[0]['events']:>10,} {sec:>8.2f} "
                  f"{runs[0]['events'] / sec:>12,.0f} {rss:>12.0f}")


if __name__ == "__main__":
    main()
