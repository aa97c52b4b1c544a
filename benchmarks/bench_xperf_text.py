"""Benchmark: xperf dumper text and WPA CSV ingest into the canonical table.

    python benchmarks/bench_xperf_text.py [--events 1000000] [--keep DIR] [--wpa]

Writes a CSwitch-heavy xperf text file (70 % CSwitch, 30 % MDL calls, plus process /
thread rundown) with traceanalyzer.synth.xperf_writer, then times
``read_file(path, format="xperf")``. Prints lines, seconds, events/s and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers import ReadOptions, read_file
from traceanalyzer.synth.xperf_writer import write_xperf_text


def scenario(n: int, seed: int = 1) -> pa.Table:
    """n events: 70 % CSwitch over 4 CPUs, 30 % IoAllocateMdl/MmProbeAndLockPages/MmUnlockPages/IoFreeMdl."""
    rng = np.random.default_rng(seed)
    head = {"time_ns": [0, 0, 0, 0], "event": ["ProcessRundown", "ProcessRundown", "ThreadRundown", "ThreadRundown"],
            "pid": [1000, 2000, 1000, 2000], "tid": [None, None, 1001, 2001], "parent_pid": [4, 4, None, None],
            "image": ["a.exe", "b.exe", None, None]}
    body = n - 4
    times = np.sort(rng.integers(1, 60_000_000, body)) * 1000
    is_switch = rng.random(body) < 0.7
    cpu = rng.integers(0, 4, body)
    call_names = np.array(["IoAllocateMdl", "MmProbeAndLockPages", "MmUnlockPages", "IoFreeMdl"])
    k = np.arange(body)
    events = np.where(is_switch, "CSwitch", call_names[k % 4])
    new_tid = np.where(k % 2 == 0, 1001, 2001)
    cols: dict[str, list] = {c: list(v) for c, v in head.items()}
    for c in ("cpu", "new_tid", "old_tid", "mdl", "size", "access_mode", "operation", "caller"):
        cols.setdefault(c, [None] * 4)
    mdl = np.uint64(0xFFFFC30A4B2F0000) + (k // 4).astype(np.uint64) * np.uint64(0x100)
    cols["time_ns"] += times.tolist()
    cols["event"] += events.tolist()
    sw = is_switch.tolist()
    cols["pid"] += [None if s else (1000 if i % 2 == 0 else 2000) for i, s in enumerate(sw)]
    cols["tid"] += [None if s else (1001 if i % 2 == 0 else 2001) for i, s in enumerate(sw)]
    cols["parent_pid"] += [None] * body
    cols["image"] += [None] * body
    cols["cpu"] += cpu.tolist()
    cols["new_tid"] += [int(t) if s else None for t, s in zip(new_tid, sw)]
    cols["old_tid"] += [0 if s else None for s in sw]
    cols["mdl"] += [None if s else int(m) for m, s in zip(mdl, sw)]
    cols["size"] += [None if s or e != "IoAllocateMdl" else 8192 for e, s in zip(events, sw)]
    cols["access_mode"] += [None if s or e != "MmProbeAndLockPages" else "UserMode" for e, s in zip(events, sw)]
    cols["operation"] += [None if s or e != "MmProbeAndLockPages" else "IoReadAccess" for e, s in zip(events, sw)]
    cols["caller"] += [None if s else "mydriver.sys+0x1a2b" for s in sw]
    return pa.table({c: pa.array(v, COLUMNS[c]) for c, v in cols.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the generated file in")
    parser.add_argument("--wpa", action="store_true", help="also time a WPA Generic Events CSV of --events rows")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="xperf_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench_{args.events}.txt"
    if not path.exists():
        t0 = time.perf_counter()
        write_xperf_text(scenario(args.events), path)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    result = read_file(path, format="xperf")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = result.table.num_rows
    print(f"xperf text: {rows} events in {secs:.2f} s (CPU {cpu:.2f} s) = {rows / secs:,.0f} events/s; "
          f"peak RSS {rss / 1024:.0f} MiB (before read {rss0 / 1024:.0f} MiB)")
    if args.wpa:
        wpa = folder / f"bench_{args.events}_generic_events.csv"
        if not wpa.exists():
            write_generic_events(args.events, wpa)
        fmap = {"events": [{"provider": "MdlTrace", "event": "IoAllocateMdl", "fields": ["mdl", "va", "size", "caller"]}]}
        t0, c0 = time.perf_counter(), time.process_time()
        result = read_file(wpa, format="wpa_csv", options=ReadOptions(extra={"field_map": fmap}))
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows = result.table.num_rows
        print(f"WPA Generic Events CSV: {rows} events in {secs:.2f} s (CPU {cpu:.2f} s) = {rows / secs:,.0f} events/s; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def write_generic_events(n: int, path: Path) -> None:
    """n Generic Events rows (IoAllocateMdl with Field 1..4), English number format."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("Provider Name,Task Name,Opcode Name,Process,Thread Id,Cpu,Time (s),Field 1,Field 2,Field 3,Field 4\n")
        for i in range(n):
            fh.write(f'MdlTrace,IoAllocateMdl,win:Info,app.exe (1234),5678,{i % 4},{i // 1000}.{(i % 1000) * 1000000:09d},'
                     f'0x{0xFFFFC30A4B2F0000 + i * 0x100:016X},0x{0x7FF612340000 + i * 4096:016X},"8,192",drv.sys+0x1a2b\n')


if __name__ == "__main__":
    sys.exit(main())
