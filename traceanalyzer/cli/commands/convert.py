"""``traceanalyzer convert``: ingest once (to Parquet), analyse many times."""

from __future__ import annotations

import argparse
from pathlib import Path

from traceanalyzer.cli.common import add_trace_arguments, load_trace
from traceanalyzer.model.parquet_writer import write_parquet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="write the canonical event table to Parquet",
        description="Read trace file(s) once and write the canonical event table "
        "(with the trace's metadata and counters) to a Parquet file that every command reads.",
        epilog="Example: traceanalyzer convert kernel.etl driver.etl -o trace.parquet",
    )
    add_trace_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT.parquet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    trace = load_trace(args)
    out = Path(args.output)
    write_parquet(trace, out)
    print(f"wrote {out} ({trace.n_events} events)")
    return 0
