"""Benchmark: ``report`` against ``hazards`` on a trace with many findings.

    python benchmarks/bench_report.py                     # 20,000 buggy requests
    python benchmarks/bench_report.py --bugs 100000 --sites 40

Builds a canonical-CSV trace in a temporary folder: ``--bugs`` request cycles in 7
processes, each leaving one finding pair (a double lock and an unlock of an MDL that
was never locked) from one of ``--sites`` call sites, so the findings fold into
2 x ``--sites`` problems. Times, in this process, after one load + analysis:

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
import tempfile
import time
from pathlib import Path

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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_trace(args.bugs, args.sites, Path(tmp) / "bench.csv")
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
        timed("HTML page (interactive timeline)",
              lambda: html_report(analysis, figures={}))
        print("report:")
        rep = timed("whole report folder", lambda: write_report(analysis, Path(tmp) / "out"))
        print(f"report / hazards (text + JSON): {rep / hz:.1f}x; "
              f"{1000 * rep / max(n, 1):.3f} ms per finding")


if __name__ == "__main__":
    main()
