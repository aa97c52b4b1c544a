"""``traceanalyzer query``: one SQL query (DuckDB) over the trace's and analysis's tables."""

from __future__ import annotations

import argparse
import sys

from traceanalyzer.cli.common import add_trace_arguments, analyze_trace, load_trace
from traceanalyzer.errors import TraceError
from traceanalyzer.escape import csv_safe_frame


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "query",
        help="run a SQL query over the trace's tables (calls, findings, locks, ...)",
        description="Run one SQL query (DuckDB dialect) over the tables of the trace "
        "(calls, cswitch, images, other, processes, threads, events, trace_span) and of "
        "its analysis (findings, problems, lifecycles, mappings, locks, leak_timeline). "
        "The trace is replayed only when the query names an analysis table. It reads "
        "those tables only: files, URLs, ATTACH, INSTALL/LOAD and SET are refused. "
        "docs/sql.md lists the columns and example queries.",
        epilog='Example: traceanalyzer query trace.etl '
        '"select rule, count(*) from findings group by rule"',
    )
    add_trace_arguments(p)
    p.add_argument("sql", metavar="SQL", help="the query (the last argument)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print the result as CSV")
    fmt.add_argument("--json", action="store_true",
                     help="print the result as a JSON list of records")
    p.add_argument("--max-rows", type=int, default=100, metavar="N",
                   help="table output: print at most N rows, count the rest (default 100; "
                   "0: the column names and the row count only)")
    p.add_argument("--engine", choices=("auto", "jit", "python"), default="auto",
                   help="replay engine when the query needs the analysis (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from traceanalyzer.query import needs_analysis, sql

    if args.max_rows < 0:
        raise TraceError("--max-rows must be 0 or more")
    needed = needs_analysis(args.sql)  # a syntax error is reported before reading the trace
    trace = load_trace(args)
    source = analyze_trace(args, trace) if needed else trace
    result = sql(source, args.sql)
    if args.csv:
        from traceanalyzer.render.csv_table import csv_frame

        sys.stdout.write(csv_safe_frame(csv_frame(result)).to_csv(index=False))
    elif args.json:
        sys.stdout.write(_json_text(result))
    else:
        sys.stdout.write(_table_text(result, args.max_rows))
    return 0


def _json_text(result) -> str:
    """The rows as a JSON list of records: ``address`` columns as ``"0x..."`` strings
    (as in ``hazards --json``), lists as arrays, missing values as null."""
    from traceanalyzer.vocabulary import format_address, is_missing

    out = result.copy()
    for c in out.columns:
        if str(out[c].dtype) == "address":
            out[c] = [None if is_missing(x) else format_address(x) for x in out[c]]
    return out.to_json(orient="records", indent=2) + "\n"


def _table_text(result, max_rows: int) -> str:
    import pandas as pd

    if result.empty:
        return f"(no rows; columns: {', '.join(map(str, result.columns))})\n"
    shown = result.head(max_rows)
    if shown.empty:  # --max-rows 0: pandas would print "Empty DataFrame ..."
        text = "  ".join(map(str, result.columns))
    else:
        with pd.option_context("display.max_columns", None, "display.width", 200,
                               "display.max_colwidth", 60):
            text = shown.to_string(index=False)
    more = len(result) - len(shown)
    tail = f"\n... {more} more rows (--max-rows, --csv or --json for all)" if more > 0 else ""
    return text + tail + "\n"
