"""Benchmark: the scaling table of the README, `hazards` end to end at 1M / 10M / 100M events.

    python benchmarks/scaling.py                         # 1M and 10M, every input kind
    python benchmarks/scaling.py --sizes 100000000 --kinds etl-cswitch --repeat 1
    python benchmarks/scaling.py --markdown              # the table as the README prints it

For each input kind and size it writes a trace into a temporary folder (``--keep DIR`` to
keep and reuse them), then runs ``traceanalyzer hazards --json FILE`` as a child process
``--repeat`` times (default 3) and prints the median wall time, events/s and the child's
peak RSS (``wait4``'s ``ru_maxrss``: the whole command, from Python start to the last
byte of JSON). Input kinds:

* ``etl-cswitch``: ETL, 99 % CSwitch and 1 % MDL calls (``synth --cswitch-heavy``);
* ``etl-calls``: ETL, 50 % MdlTrace calls with string fields (callers, status), CSwitch
  for the rest (``bench_etl_calls.write_trace``);
* ``csv-calls``: the ``etl-calls`` events as canonical CSV (``bench_etl_calls.write_trace_csv``):
  the same trace in both formats, for "call-heavy ETL no slower than the same CSV";
* ``csv``: canonical CSV, ~80 % CSwitch, ~15 % calls (``bench_core.make_csv``);
* ``xperf``: xperf dumper text, 70 % CSwitch, 30 % calls (``bench_xperf_text.scenario``).

etl-parser and dissect.etl decode about 4k-30k events/s, so they are timed on a
``--sample``-event file written by the same generator (ETL kinds only: neither reads CSV
or xperf text); the ``vs etl-parser`` / ``vs dissect.etl`` columns are our end-to-end
``hazards`` rate on the big file divided by their decode-only rate on the sample.
The first run of a fresh checkout also compiles the numba kernels (cached afterwards):
run once untimed, or read the first of the ``--repeat`` runs as a cold start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmark scripts' generators

KINDS = ("etl-cswitch", "etl-calls", "csv-calls", "csv", "xperf")
SUFFIX = {"etl-cswitch": ".etl", "etl-calls": ".etl", "csv-calls": ".csv", "csv": ".csv", "xperf": ".txt"}


def _writer(kind: str) -> Callable[[Path, int], None]:
    if kind == "etl-cswitch":
        from traceanalyzer.synth.etl_bench import write_cswitch_heavy_etl

        return lambda path, n: write_cswitch_heavy_etl(path, n)
    if kind == "etl-calls":
        from bench_etl_calls import write_trace

        return lambda path, n: write_trace(path, n, 0.5, False)
    if kind == "csv-calls":
        from bench_etl_calls import write_trace_csv

        return lambda path, n: write_trace_csv(path, n, 0.5)
    if kind == "csv":
        from bench_core import make_csv

        return lambda path, n: make_csv(path, n)
    if kind == "xperf":
        from bench_xperf_text import scenario

        from traceanalyzer.synth.xperf_writer import write_xperf_text

        return lambda path, n: write_xperf_text(scenario(n), path)
    raise SystemExit(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


def _trace(folder: Path, kind: str, n: int) -> Path:
    path = folder / f"{kind}_{n}{SUFFIX[kind]}"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_name(f".{path.name}.part")
        # written by a child process: a child's ru_maxrss includes the RSS of the process
        # that started it (Linux keeps the high-water mark across fork and exec), so a
        # writer run here (several GB for 10M xperf events) would inflate every later row
        subprocess.run([sys.executable, __file__, "--write", kind, str(n), str(tmp)], check=True)
        os.replace(tmp, path)
        print(f"# wrote {path.name} ({path.stat().st_size / 1e6:,.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def _hazards(path: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, events) of one ``traceanalyzer hazards --json`` run."""
    out = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "traceanalyzer", "hazards", "--json", str(path)],
                            stdout=out, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"hazards failed on {path} (exit {proc.returncode}):\n{err}")
    out.seek(0)
    events = json.load(out)["stats"]["events"]
    return wall, usage.ru_maxrss / 1024, int(events)


def _decode_rate(decoder: str, path: Path) -> float:
    """events/s of etl-parser or dissect.etl walking ``path`` (bench_etl's child)."""
    out = subprocess.run([sys.executable, str(HERE / "bench_etl.py"), "--child", decoder, str(path)],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["events"] / r["seconds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell; the median is shown")
    ap.add_argument("--sample", type=int, default=20_000,
                    help="events in the sample that etl-parser and dissect.etl decode")
    ap.add_argument("--no-others", action="store_true", help="skip etl-parser and dissect.etl")
    ap.add_argument("--keep", type=Path, help="write (and reuse) the traces here")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--write", nargs=3, metavar=("KIND", "N", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write:
        kind, n, path = args.write
        _writer(kind)(Path(path), int(n))
        return 0

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="ta_scaling_")
    folder = args.keep or Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    others: dict[str, tuple[float, float]] = {}
    rows = []
    for kind in args.kinds:
        if kind.startswith("etl") and not args.no_others:
            sample = _trace(folder, kind, args.sample)
            others[kind] = (_decode_rate("etlparser", sample), _decode_rate("dissect", sample))
        for n in args.sizes:
            path = _trace(folder, kind, n)
            runs = [_hazards(path) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            rss = statistics.median(r[1] for r in runs)
            events = runs[0][2]
            rate = events / wall
            ep, ds = others.get(kind, (None, None))
            rows.append((kind, n, events, path.stat().st_size / 1e6, wall, rate, rss,
                         f"{rate / ep:,.0f}x" if ep else "n/a", f"{rate / ds:,.0f}x" if ds else "n/a"))
            if tmp is not None:
                path.unlink()
    head = ("input", "size", "events", "file MB", "hazards wall s", "events/s", "peak RSS MiB",
            "vs etl-parser", "vs dissect.etl")
    fmt = [lambda v: v, lambda v: f"{v / 1e6:g}M", lambda v: f"{v:,}", lambda v: f"{v:,.0f}",
           lambda v: f"{v:.2f}", lambda v: f"{v:,.0f}", lambda v: f"{v:,.0f}", lambda v: v,
           lambda v: v]
    cells = [[f(v) for f, v in zip(fmt, row)] for row in rows]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for c in cells:
            print("| " + " | ".join(c) + " |")
    else:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        for c in cells:
            print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    for kind, (ep, ds) in others.items():
        print(f"# {kind} sample ({args.sample:,} events): etl-parser {ep:,.0f} events/s, "
              f"dissect.etl {ds:,.0f} events/s (decode only)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
