"""``traceanalyzer hazards``: replay and list findings, most severe and costly first."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from traceanalyzer.cli.common import add_trace_arguments, analyze_trace, load_trace
from traceanalyzer.vocabulary import SEVERITIES, severity_rank

if TYPE_CHECKING:
    import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hazards",
        help="replay every MDL and list the hazards and leaks found",
        description="Replay every MDL lifecycle of the trace and list the problems found "
        "(findings grouped by rule and call site, with how often, since when and in which "
        "processes), most severe and most costly (bytes x seconds held) first; --all lists "
        "every finding.",
        epilog="Example: traceanalyzer hazards sample_traces/seed_unlock_from_worker.csv --json",
    )
    add_trace_arguments(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help="the JSON summary (docs/cli.md; its JSON Schema is "
                     "traceanalyzer/render/summary.schema.json)")
    fmt.add_argument("--csv", action="store_true", help="the findings table as CSV")
    p.add_argument("--all", action="store_true",
                   help="text output: one row per finding instead of one per problem")
    p.add_argument("--min-severity", choices=SEVERITIES, default="info",
                   help="hide findings below this severity (default: show all)")
    p.add_argument("--fail-on", choices=SEVERITIES, metavar="SEV",
                   help="exit 1 when a finding at or above SEV (critical, high, medium, low, info) "
                   "is present, whatever --min-severity shows (default: exit 0 after any findings)")
    p.add_argument("--engine", choices=("auto", "jit", "python"), default="auto",
                   help="replay engine (default: compiled for large traces)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from traceanalyzer.render import get_renderer

    analysis = analyze_trace(args, load_trace(args))
    name = "json" if args.json else "csv" if args.csv else "text"
    renderer = get_renderer(name)
    if name == "json":  # streamed: a million findings are never one string
        renderer.write(analysis, sys.stdout, min_severity=args.min_severity)
        out = ""
    elif name == "text":
        out = renderer.render(analysis, min_severity=args.min_severity, per_finding=args.all)
    elif _accepts_min_severity(renderer):
        out = renderer.render(analysis, min_severity=args.min_severity)
    else:
        out = renderer.render(analysis)
    if isinstance(out, bytes):
        sys.stdout.buffer.write(out)
    elif out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 1 if args.fail_on and _any_at_or_above(analysis.findings["severity"], args.fail_on) else 0


def _any_at_or_above(severities: "pd.Series", least: str) -> bool:
    """True if one of ``severities`` is ``least`` or more severe."""
    return any(severity_rank(s) <= severity_rank(least) for s in severities.unique())


def _accepts_min_severity(renderer: object) -> bool:
    import inspect

    try:
        return "min_severity" in inspect.signature(renderer.render).parameters
    except (TypeError, ValueError):
        return False


__all__ = ["register", "run"]
