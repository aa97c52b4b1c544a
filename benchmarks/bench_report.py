"""Benchmark: ``report`` against ``hazards`` on a trace with many findings.

    python benchmarks/bench_report.py                     # 20,000 buggy requests
    python benchmarks/bench_report.py --bugs 50000        # 100,000 findings
    python benchmarks/bench_report.py --bugs 50000 --pad 10000000   # ... in 10M events
    python benchmarks/bench_report.py --bugs 50000 --pad 10000000 --trace /tmp/b10m.csv \
        --no-parts --repeat 3 --baseline /tmp/main-wt     # A/B against main, medians of 3

Builds a canonical-CSV trace in a temporary folder (in a child process): ``--bugs``
request cycles in 7 processes, each leaving one finding pair (a double lock and an
unlock of an MDL that was never locked) from one of ``--sites`` call sites, so the
findings fold into 2 x ``--sites`` problems. ``--pad N`` adds CSwitch events until the
trace has about N events, so the 100k findings sit in a trace of realistic size;
``--trace FILE`` keeps it for the next run.

First, end to end, the commands as a user runs them (each in its own process: wall
time, CPU time and peak RSS of the child): ``traceanalyzer hazards TRACE`` (and
``--json``) against ``traceanalyzer report TRACE -o DIR``, ``--repeat`` times, medians;
then the same on a small sample trace: what the report costs on any trace (imports,
drawing three figures, the page), the part of its difference to ``hazards --json`` that
does not grow with the findings. ``--baseline DIR`` runs the same commands of another
checkout alternately with ours, so a busy machine loads both alike (CPU time varies less
than wall time there).

Then, in this process, after one load + analysis (last, and the trace written by a
child: a child's peak RSS includes that of the process that started it, so a big
benchmark process would set the floor of every command's):

* ``hazards``: the default text output (problems) and the JSON summary;
* findings at scale (issue 15 target 4), on a fresh analysis of the same trace: the
  findings table, the problems, the ``summary()`` dict and the JSON streamed to a file;
* ``report``: the whole report folder (PNG figures, HTML with the interactive timeline,
  summary.json), and its parts: each figure, the HTML page.

The report draws problems, not findings (problem lanes above 200 findings, at most
2,000 finding rows in the HTML, thinned interactive data), so its time should grow
like the JSON's, not with one matplotlib artist per finding.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

import traceanalyzer as ta
from traceanalyzer.plot.hazard_timeline import plot_hazard_timeline_for
from traceanalyzer.plot.impact import plot_impact_for
from traceanalyzer.plot.leak_timeline import plot_leak_timeline_for
from traceanalyzer.plot.style import figure_png
from traceanalyzer.render import render
from traceanalyzer.render.html_report import html_report
from traceanalyzer.render.json_summary import write_summary_json
from traceanalyzer.render.report_files import write_report
from traceanalyzer.synth.scenario import Scenario

MDL = 0xFFFFC30A4B000000

#: A sample trace of a few events and findings: ``report`` against ``hazards`` on it is
#: what the report costs whatever the trace (imports, drawing three figures, the page).
SMALL_TRACE = Path(__file__).resolve().parents[1] / "sample_traces" / "seed_unlock_from_worker.csv"


def make_trace(bugs: int, sites: int, path: Path) -> Path:
    s = Scenario(driver="benchdrv.sys", step_ns=1_000)
    procs = [s.process(pid=1000 + i, image=f"app{i}.exe", tid=2000 + i) for i in range(7)]
    t = 1_000_000
    for k in range(bugs):
        th = procs[k % 7]
        mdl = MDL + 0x1000 * (k % 4096)
        site = 0x1000 + 0x40 * (k % sites)
        s.at(t).allocate_mdl(th, mdl=mdl, va=0x10000, size=8192)
        s.probe_and_lock(th, mdl=mdl, caller=f"benchdrv.sys+0x{site:x}")
        s.probe_and_lock(th, mdl=mdl, caller=f"benchdrv.sys+0x{site:x}")  # DOUBLE_LOCK
        s.unlock(th, mdl=mdl)
        s.unlock(th, mdl=mdl, caller=f"benchdrv.sys+0x{site + 0x20:x}")  # UNLOCK_NOT_LOCKED
        s.free_mdl(th, mdl=mdl)
        t += 50_000
    return s.to_csv(path)


def pad_with_cswitch(path: Path, n_events: int) -> None:
    """Add CSwitch rows (2 CPUs, the benchmark's threads) until ``path`` has about
    ``n_events`` rows, merged in time order."""
    calls = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("mdl", "va", "size", "caller", "image")}))
    n = n_events - calls.num_rows
    if n <= 0:
        return
    t = calls.column("time_ns").to_numpy()
    rng = np.random.default_rng(1)
    tids = np.array([2000 + i for i in range(7)])
    cs = pa.table({
        "time_ns": pa.array(np.sort(rng.integers(int(t.min()), int(t.max()), n))),
        "event": pa.array(np.full(n, "CSwitch", dtype=object), pa.string()),
        "cpu": pa.array(rng.integers(0, 2, n)),
        "new_tid": pa.array(tids[rng.integers(0, 7, n)]),
        "old_tid": pa.array(tids[rng.integers(0, 7, n)]),
    })
    merged = pa.concat_tables([calls, cs], promote_options="permissive")
    order = np.argsort(merged.column("time_ns").to_numpy(), kind="stable")
    pacsv.write_csv(merged.take(order), path)


def run_cli(label: str, args: list[str], code: str | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) time of ``traceanalyzer ARGS`` in a child process,
    run from the package in folder ``code`` (default: the one imported here); prints
    them with the child's peak RSS. The child starts in ``code`` too: ``python -m`` puts
    its working folder first on the import path, ahead of PYTHONPATH, so a child started
    in another checkout would run that checkout's package."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "traceanalyzer", *args],
                             stdout=subprocess.DEVNULL, env=env, cwd=code)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, args)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"  {label:<42} {took:8.2f} s   (CPU {cpu:.2f} s, peak RSS "
          f"{usage.ru_maxrss / 1024:.0f} MiB)", flush=True)
    return took, cpu


def end_to_end(path: Path, out: Path, repeat: int, baseline: str | None) -> None:
    """``hazards`` and ``report`` as a user runs them, ``repeat`` times each, medians;
    with ``baseline`` the same commands of that checkout, alternating with ours (A/B in
    the same run, so a busy machine loads both alike)."""
    here = str(Path(__file__).resolve().parents[1])  # this checkout, whatever is installed
    path, out = path.resolve(), out.resolve()  # the children start in their checkouts
    codes = {"this": here}
    if baseline is not None:
        codes["baseline"] = str(Path(baseline).resolve())
    commands = {"hazards": ["hazards", str(path)],
                "hazards --json": ["hazards", "--json", str(path)],
                "report": ["report", str(path), "-o", str(out)]}
    for name, code in codes.items():  # untimed: numba's disk cache of each checkout
        run_cli(f"warm-up ({name})", ["hazards", str(path)], code)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for i in range(repeat):
        print(f"round {i + 1} of {repeat}:")
        for cmd, args in commands.items():
            for name, code in codes.items():
                times.setdefault((name, cmd), []).append(
                    run_cli(f"traceanalyzer {cmd} ({name})", args, code))
    print(f"medians of {repeat} (wall s / CPU s):")
    for name in codes:
        med = {cmd: (statistics.median(w for w, _ in times[(name, cmd)]),
                     statistics.median(c for _, c in times[(name, cmd)])) for cmd in commands}
        cells = "  ".join(f"{cmd} {w:.1f} / {c:.1f}" for cmd, (w, c) in med.items())
        print(f"  {name:<9} {cells}  ->  report / hazards: wall "
              f"{med['report'][0] / med['hazards'][0]:.2f}x, CPU "
              f"{med['report'][1] / med['hazards'][1]:.2f}x; report - hazards --json: wall "
              f"{med['report'][0] - med['hazards --json'][0]:+.2f} s")


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    print(f"  {label:<34} {took:8.2f} s")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bugs", type=int, default=20_000, help="buggy request cycles")
    ap.add_argument("--sites", type=int, default=40, help="call sites they come from")
    ap.add_argument("--pad", type=int, default=0,
                    help="add CSwitch events up to about this many events in all")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end commands")
    ap.add_argument("--no-parts", action="store_true",
                    help="skip the in-process timings (only the end-to-end commands)")
    ap.add_argument("--trace", type=Path, metavar="FILE",
                    help="keep the trace in FILE (made when missing, reused when present: "
                    "--bugs/--sites/--pad only make it)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="end-to-end runs of each command (medians)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="a checkout of another commit (e.g. a worktree of main): its "
                    "commands run alternately with ours, A/B in the same run")
    ap.add_argument("--write", nargs=4, metavar=("BUGS", "SITES", "PAD", "PATH"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write:  # the child that writes the trace (see below)
        bugs, sites, pad, out = args.write
        make_trace(int(bugs), int(sites), Path(out))
        if int(pad):
            pad_with_cswitch(Path(out), int(pad))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace or Path(tmp) / "bench.csv"
        if not path.exists():
            # written by a child process, and the commands run before the in-process
            # parts: a child's ru_maxrss includes the RSS of the process that started it
            # (kept across fork and exec), so a big benchmark process would set the floor
            # of every command's peak RSS
            subprocess.run([sys.executable, __file__, "--write", str(args.bugs),
                            str(args.sites), str(args.pad), str(path)], check=True)
        if not args.no_cli:
            print("end to end (each command in its own process):")
            end_to_end(path, Path(tmp) / "cli_out", max(args.repeat, 1), args.baseline)
            print(f"the same on a small sample trace ({SMALL_TRACE.name}): the report's "
                  "fixed cost")
            end_to_end(SMALL_TRACE, Path(tmp) / "cli_small", max(args.repeat, 1),
                       args.baseline)
        if not args.no_parts:
            in_process(path, Path(tmp))


def in_process(path: Path, tmp: Path) -> None:
    """Times of the parts of ``hazards`` and ``report`` after one load + analysis."""
    start = time.perf_counter()
    analysis = ta.analyze(ta.load(path))
    n, p = len(analysis.findings), len(analysis.problems)
    print(f"trace: {analysis.trace.n_events} events, {n} findings, {p} problems "
          f"(load + analyze {time.perf_counter() - start:.2f} s)")
    print("hazards:")
    hz = timed("text (problems)", lambda: render(analysis, "text"))
    hz += timed("JSON summary", lambda: render(analysis, "json"))
    print("findings at scale (fresh analysis):")
    fresh = ta.analyze(analysis.trace)
    fs = timed("findings table", lambda: fresh.findings)
    fs += timed("problems table", lambda: fresh.problems)
    fs += timed("summary() dict", fresh.summary)

    def stream_json() -> None:
        with open(os.devnull, "w", encoding="utf-8") as fh:
            write_summary_json(fresh, fh)

    fs += timed("JSON streamed to a file", stream_json)
    print(f"  {'findings + problems + summary + JSON':<34} {fs:8.2f} s")
    print("report parts:")
    timed("leak timeline PNG", lambda: figure_png(plot_leak_timeline_for(analysis)))
    timed("hazard timeline PNG (problem lanes)",
          lambda: figure_png(plot_hazard_timeline_for(analysis)))
    timed("impact PNG", lambda: figure_png(plot_impact_for(analysis)))
    timed("HTML page (interactive timeline)", lambda: html_report(analysis, figures={}))
    print("report:")
    rep = timed("whole report folder", lambda: write_report(analysis, tmp / "out"))
    print(f"report / hazards (text + JSON): {rep / hz:.1f}x; "
          f"{1000 * rep / max(n, 1):.3f} ms per finding")


if __name__ == "__main__":
    main()
