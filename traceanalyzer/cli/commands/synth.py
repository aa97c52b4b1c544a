"""``traceanalyzer synth``: write a scenario (or a benchmark load) as a real ETL file."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from traceanalyzer.errors import TraceError
from traceanalyzer.readers.registry import read_file
from traceanalyzer.synth.etl_bench import write_cswitch_heavy_etl
from traceanalyzer.synth.etl_format import DEFAULT_START_TIME
from traceanalyzer.synth.etl_writer import write_etl
from traceanalyzer.synth.header_rows import header_rows
from traceanalyzer.synth.make_sample_etls import exact_perf_freq


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write a scenario as a real ETL file (kernel + MdlTrace TraceLogging events)",
        description="Write the events of a scenario (canonical CSV, Parquet or any trace "
        "traceanalyzer reads) as an ETL file the way Windows writes one: logfile header, "
        "per-CPU buffers, NT-kernel-logger Process/Thread/Image/CSwitch records and the "
        "calls as TraceLogging events of the MdlTrace provider. Same input, same bytes.",
        epilog="Example: traceanalyzer synth sample_traces/seed_unlock_from_worker.csv "
        "-o /tmp/seed_unlock_from_worker.etl",
    )
    p.add_argument("scenario", nargs="?", metavar="SCENARIO.csv",
                   help="events to write (not needed with --cswitch-heavy)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.etl")
    p.add_argument("--pointer-size", type=int, choices=(4, 8), default=8,
                   help="32- or 64-bit record layouts (default 8)")
    p.add_argument("--cpus", type=int, help="NumberOfProcessors (default: highest cpu + 1)")
    p.add_argument("--perf-freq", type=int,
                   help="QPC frequency in Hz (default: 10 MHz, or 1 GHz when a time is not a "
                   "multiple of 100 ns)")
    p.add_argument("--buffer-size", type=int, default=64 * 1024, help="bytes per buffer (default 65536)")
    p.add_argument("--start-time", help="trace start, ISO 8601 (default 2026-01-01T00:00:00Z)")
    p.add_argument("--unicode-strings", action="store_true", help="UTF-16 instead of ANSI string fields")
    p.add_argument("--plain-addresses", action="store_true",
                   help="addresses as UINT64 instead of HEXINT64 (for decoders without HEXINT)")
    p.add_argument("--header-schema", action="store_true",
                   help="calls exactly as capture/mdltrace.h logs them: each caller written as its "
                   "return address, the module loaded by an ImageLoad at the trace start (no string fields)")
    p.add_argument("--cswitch-heavy", type=int, metavar="N",
                   help="instead of a scenario: N benchmark events (CSwitch plus 1%% MDL calls)")
    p.set_defaults(func=run)


def _start_time(text: str | None, output: Path) -> datetime:
    if not text:
        return DEFAULT_START_TIME
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(f"--start-time {text!r} is not an ISO 8601 time", output) from None


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    options = dict(
        pointer_size=args.pointer_size, buffer_size=args.buffer_size,
        start_time=_start_time(args.start_time, out), unicode_strings=args.unicode_strings,
        hex_addresses=not args.plain_addresses,
    )
    if args.cswitch_heavy is not None:
        if args.scenario:
            raise TraceError("give either a scenario or --cswitch-heavy, not both", out)
        summary = write_cswitch_heavy_etl(out, args.cswitch_heavy, cpus=args.cpus or 4,
                                          perf_freq=args.perf_freq or 10_000_000, **options)
    else:
        if not args.scenario:
            raise TraceError("a scenario file (or --cswitch-heavy N) is required", out)
        table = read_file(args.scenario).ordered_table()
        if args.header_schema:
            table = header_rows(table)
        summary = write_etl(table, out, cpus=args.cpus,
                            perf_freq=args.perf_freq or exact_perf_freq(table), **options)
    notes = []
    if summary["time_rounded"]:
        notes.append(f"{summary['time_rounded']} times rounded to {summary['perf_freq']} Hz ticks")
    if summary["cpu_missing"]:
        notes.append(f"{summary['cpu_missing']} rows without cpu written to CPU 0")
    print(f"wrote {out} ({summary['events']} events, {summary['buffers']} buffers, "
          f"{summary['bytes']} bytes)" + ("; " + "; ".join(notes) if notes else ""))
    return 0
