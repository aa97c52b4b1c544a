"""``traceanalyzer info``: what is in the trace."""

from __future__ import annotations

import argparse
import json

from traceanalyzer.cli.common import add_trace_arguments, load_trace
from traceanalyzer.info import trace_info


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="what is in the trace: time span, events, processes, threads, CPUs, data quality, "
        "and whether everything the analysis needs was recorded",
        description="Show what a trace holds: time span, events by name, processes, "
        "threads, CPUs and data-quality counters (lost, unknown, unattributed), and whether "
        "everything the analysis needs was recorded (MDL calls, process, thread, context-switch "
        "and image events, no loss) with what to record when something is missing.",
        epilog="Example: traceanalyzer info trace.etl --json",
    )
    add_trace_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = trace_info(load_trace(args))
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    lo, hi = info["time_span_ns"]
    print(f"traces:     {', '.join(info['traces'])} ({', '.join(info['formats'])})")
    if info.get("start_time_utc"):
        print(f"started:    {info['start_time_utc']}")
    for f in info["files"]:  # several files: how they were put on one clock
        print(f"  {f['trace']}: " + (f"started {f['start_time_utc']}, times +{_s(f['offset_ns'])} s"
                                     if f["start_time_utc"] else "no absolute start, times as they are"))
    print(f"time span:  {_s(lo)} .. {_s(hi)} s ({info['duration_s']:.6f} s)")
    print(f"events:     {info['events']}  (calls: {info['calls']})")
    print(f"cpus:       {', '.join(map(str, info['cpus'])) or '-'}")
    print(f"processes:  {len(info['processes'])}   threads: {info['threads']}")
    print("\nevents by name:")
    width = max((len(n) for n in info["events_by_name"]), default=10)
    for name, count in info["events_by_name"].items():
        print(f"  {name:<{width}}  {count:>10}")
    print("\nprocesses (alive from .. to, seconds):")
    for p in info["processes"][:50]:
        life = f"{_s(p['start_ns']) if p['start_ns'] is not None else '(before)'} .. " \
               f"{_s(p['end_ns']) if p['end_ns'] is not None else '(after)'}"
        print(f"  {p['pid']:>7}  {p['image'] or '?':<28} {life}")
    if len(info["processes"]) > 50:
        print(f"  ... and {len(info['processes']) - 50} more (--json lists all)")
    print("\ndata quality:")
    for name, value in info["quality"].items():
        flag = "  <-- check" if value else ""
        print(f"  {name:<22} {value:>10}{flag}")
    problems = info["problems"]
    if problems:
        print("\nproblems (lost or implausible; --strict makes them errors):")
        for line in problems[:20]:
            print(f"  {line}")
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more (--json lists all)")
    unknown = info["unknown_by_event"]
    if unknown:
        print("\nnot understood (counted, not analysed):")
        for name, count in list(unknown.items())[:20]:
            print(f"  {name or '?':<50} {count:>10}")
        if len(unknown) > 20:
            print(f"  ... and {len(unknown) - 20} more (--json lists all)")
    counted = _other_info_counters(info["stats"])
    if counted:
        print("\nalso counted (info):")
        for (name, detail), count in list(counted.items())[:20]:
            print(f"  {name:<22} {count:>10}  {detail}")
        if len(counted) > 20:
            print(f"  ... and {len(counted) - 20} more (--json lists all)")
    recording = info["recording"]
    print("\nrecording: " + ("complete (everything the analysis needs was recorded)" if recording["complete"]
                             else "missing " + ", ".join(recording["missing"])))
    for check in recording["checks"]:
        print(f"  {'ok     ' if check['ok'] else 'MISSING'}  {check['name']:<17} {check['detail']}")
        if not check["ok"]:
            print(f"           -> {check['remedy']}")
    return 0


def _other_info_counters(stats: list[dict]) -> dict[tuple[str, str], int]:
    """The info counters the sections above do not show (WPP records, Process Defunct records,
    xperf Stack rows, ...): (name, detail) -> count, summed over the traces."""
    counted: dict[tuple[str, str], int] = {}
    for row in stats:
        if row["severity"] != "info" or row["name"] in ("events", "rows", "unknown_events") or not row["value"]:
            continue
        key = (row["name"], row.get("detail") or "")
        counted[key] = counted.get(key, 0) + int(row["value"])
    return counted


def _s(ns: int) -> str:
    """Trace time in seconds, as the hazards table prints it."""
    return f"{ns / 1e9:.6f}"
