"""Benchmark: ``traceanalyzer check`` on a folder of small traces, by engine and workers.

    python benchmarks/bench_check.py                 # 200 traces, 1 and 2 workers
    python benchmarks/bench_check.py --traces 50 --workers 1 2 4

Writes N small canonical-CSV traces (a nightly test case each: a few clean request
cycles, a leaked user mapping, every fourth case also an unlock-while-mapped from a
worker thread), makes a baseline, then times the whole check (discover, hash, analyse,
compare) without the result cache for:

* the local engine with 1 worker (in this process) and a process pool of 2 (or more);
* a Dask ``LocalCluster`` on 127.0.0.1 (worker processes, 1 thread each) with the same
  worker counts; cluster start-up is timed separately, not in the check;
* and once with a warm cache (every trace a cache hit).

Prints wall time, traces/s, events/s and peak RSS of this process and of its children
(pool workers; Dask workers are children of this process too).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from traceanalyzer.gate.cache import ResultCache
from traceanalyzer.gate.check import run_check
from traceanalyzer.gate.runner import RunOptions
from traceanalyzer.synth.scenario import Scenario

MDL, UVA, KVA = 0xFFFFC30A4B2F0000, 0x000001F000000000, 0xFFFFB00012340000


def make_case(i: int, requests: int) -> Scenario:
    """One small nightly case; ``i`` varies pids, addresses and (every 4th) a hazard."""
    s = Scenario(driver="benchdrv.sys")
    worker = s.at(0).system_thread(tid=88 + i)
    app = s.at(100_000).process(pid=1000 + 4 * i, image=f"app{i % 7}.exe", tid=5000 + 4 * i)
    t = 1_000_000
    for r in range(requests):
        mdl, va, kva = MDL + r * 0x1000, UVA + r * 0x100000, KVA + r * 0x10000
        s.at(t).allocate_mdl(app, mdl=mdl, va=va, size=8192)
        s.at(t + 10_000).probe_and_lock(app, mdl=mdl)
        s.at(t + 20_000).map_kernel(app, mdl=mdl, mapped_va=kva)
        s.at(t + 30_000).unmap(app, mdl=mdl, mapped_va=kva)
        s.at(t + 40_000).unlock(app, mdl=mdl)
        s.at(t + 50_000).free_mdl(app, mdl=mdl)
        t += 100_000
    leak = MDL + 0x800000
    s.at(t).allocate_mdl(app, mdl=leak, va=UVA + 0x8000000, size=8192)
    s.at(t + 10_000).probe_and_lock(app, mdl=leak)
    s.at(t + 20_000).map_user(app, mdl=leak, mapped_va=UVA + 0x9000000)
    if i % 4 == 0:
        bad = MDL + 0x900000
        s.at(t + 30_000).allocate_mdl(app, mdl=bad, va=UVA + 0xA000000, size=4096)
        s.at(t + 40_000).probe_and_lock(app, mdl=bad)
        s.at(t + 50_000).map_user(app, mdl=bad, mapped_va=UVA + 0xB000000)
        s.at(t + 60_000).unlock(worker, mdl=bad)
    s.at(t + 1_000_000).process_end(app)
    return s


def make_folder(root: Path, n: int, requests: int) -> int:
    """Write ``n`` traces into ``root``; returns the total number of events."""
    root.mkdir(parents=True, exist_ok=True)
    events = 0
    for i in range(n):
        s = make_case(i, requests)
        s.to_csv(root / f"case{i:04d}.csv")
        events += len(s.rows)
    return events


def peak_mb() -> tuple[float, float]:
    """Peak RSS (MiB) of this process and of its largest waited-for child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def timed_check(folder: Path, baseline: Path, opts: RunOptions, cache: bool = False,
                repeat: int = 1) -> tuple[float, int, list[float]]:
    """Best wall time of ``repeat`` checks (the machine may be shared), exit code, all times."""
    times, code = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = run_check([folder], baseline, run_options=opts, use_cache=cache)
        times.append(time.perf_counter() - start)
        code = out.result.exit_code
    return min(times), code, times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=200)
    ap.add_argument("--requests", type=int, default=20, help="clean request cycles per trace")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the best is reported")
    ap.add_argument("--dir", type=Path, help="keep the traces here (default: a temporary folder)")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="bench_check_")
    base_dir = args.dir or Path(tmp.name)
    folder, baseline = base_dir / "nightly", base_dir / "baseline.json"
    t0 = time.perf_counter()
    events = make_folder(folder, args.traces, args.requests)
    print(f"{args.traces} traces, {events} events ({events / args.traces:.0f} per trace), "
          f"written in {time.perf_counter() - t0:.1f} s to {folder}")

    # baseline (also warms numba's JIT in this process, which forked pool workers inherit)
    t0 = time.perf_counter()
    run_check([folder], baseline, update_baseline=True, run_options=RunOptions(jobs=1), use_cache=False)
    print(f"baseline written in {time.perf_counter() - t0:.1f} s (1 worker, includes JIT warm-up)")

    rows = []

    def report(label: str, seconds: float, code: int, times: list[float]) -> None:
        own, kids = peak_mb()
        rows.append(label)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{label:<34} {seconds:7.2f} s  {args.traces / seconds:7.1f} traces/s  "
              f"{events / seconds:10.0f} events/s  exit {code}  peak RSS self {own:.0f} MiB, "
              f"children {kids:.0f} MiB  (runs: {runs} s)", flush=True)

    for n in args.workers:
        report(f"local, {n} worker(s)" + (" (in-process)" if n == 1 else " (process pool)"),
               *timed_check(folder, baseline, RunOptions(jobs=n), repeat=args.repeat))

    cache_dir = base_dir / "bench.cache"
    run_check([folder], baseline, run_options=RunOptions(jobs=max(args.workers), cache=ResultCache(cache_dir)))
    report("local, warm cache (all hits)",
           *timed_check(folder, baseline, RunOptions(jobs=1, cache=ResultCache(cache_dir)), cache=True,
                        repeat=args.repeat))

    if not args.no_dask:
        from distributed import LocalCluster

        for n in args.workers:
            t0 = time.perf_counter()
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=50)
            started = time.perf_counter() - t0
            try:
                opts = RunOptions(scheduler=cluster.scheduler_address)
                warm, _, _ = timed_check(folder, baseline, opts)  # first run: worker imports + JIT
                result = timed_check(folder, baseline, opts, repeat=args.repeat)
            finally:
                cluster.close()
            print(f"  (Dask cluster of {n} started in {started:.1f} s; first check with cold workers {warm:.2f} s)")
            report(f"Dask LocalCluster, {n} worker(s)", *result)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
