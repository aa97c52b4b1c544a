"""``traceanalyzer report TRACE... -o DIR``: the full report as files."""

from __future__ import annotations

import argparse

from traceanalyzer.cli.common import add_trace_arguments, analyze_trace, load_trace


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = sub.add_parser(
        "report",
        help="write the full report: report.html, summary.json and timeline PNGs",
        description="Replay the trace and write into DIR: report.html (self-contained, "
        "opens offline: summary, what to fix first, an interactive timeline (zoom, "
        "hover), leak/hazard timelines, impact, sortable findings with "
        "explanation, evidence and what to do), summary.json (same shape as "
        "'hazards --json'), leak_timeline.png and hazard_timeline.png.",
        epilog="Example: traceanalyzer report sample_traces/seed_unlock_from_worker.csv "
        "-o out/",
    )
    add_trace_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="directory to write the report into (created if missing)")
    p.add_argument("--title", help="title of the HTML page (default: the trace names)")
    p.add_argument("--top", type=int, default=8, metavar="N",
                   help="processes drawn individually in the leak timeline; the rest are "
                   "summed as 'others' (default: 8)")
    p.add_argument("--static", action="store_true",
                   help="leave out the interactive (zoom, hover) timeline: a smaller page "
                   "without JavaScript plots (the PNG figures stay)")
    p.add_argument("--engine", choices=("auto", "jit", "python"), default="auto",
                   help="replay engine (default: compiled for large traces)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, analyse, write the report files and print where they are."""
    from traceanalyzer.render.report_files import write_report
    from traceanalyzer.render.text_table import problems_count_line

    analysis = analyze_trace(args, load_trace(args))
    paths = write_report(analysis, args.output, title=args.title, top_n=max(args.top, 1),
                         interactive=not args.static)
    print(problems_count_line(analysis.problems))  # what hazards counts: problems and occurrences
    print(f"report: {paths['html']}")
    for role in ("json", "leak_timeline", "hazard_timeline"):
        print(f"        {paths[role]}")
    return 0
