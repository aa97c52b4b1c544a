"""``traceanalyzer check``: the CI regression gate (exit 0 pass, 1 regression)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, ContextManager

from traceanalyzer.cli.common import add_reading_options
from traceanalyzer.escape import terminal_text
from traceanalyzer.gate.command import DEFAULT_TIMEOUT, CheckRequest, run_gate
from traceanalyzer.gate.runner import Progress
from traceanalyzer.progress import make_progress
from traceanalyzer.vocabulary import SEVERITIES

DESCRIPTION = """\
Compare the findings and leak figures of TRACE_OR_DIR... against a baseline file.

Each trace is identified by its path relative to the folder given, so tonight's
nightly/case42.etl matches case42.etl in the baseline. Findings are compared by
problem (rule + call site, whichever processes it hit) and count, never by address,
pid or time; a call site symbolized with --symbols is matched without its offset
(rule + module!function), so a rebuilt driver's known problems stay known, while a
rebuild read without symbols moves every module+offset and its findings look new.
A trace fails when it has a new problem at or above --fail-on, or more occurrences of
a known one beyond the count tolerance (max of --count-abs-tol and --count-rel-tol x
baseline; default 0: any growth), or when bytes held at the end or leaked at process
exits grow beyond the tolerance (max of --leak-abs-tol bytes and --leak-rel-tol x
baseline).

Verdicts: passed, FAILED, new trace (not in the baseline), missing trace (in the
baseline, not found), ERROR (unreadable, or events lost to damage: a truncated file,
corrupt buffers, truncated records, bad rows; --allow-loss accepts those). New and
missing traces pass unless --fail-on-new SEV / --fail-on-missing. Exit 0 if nothing
failed, 1 if a trace failed, 2 for bad usage or an unreadable or damaged trace or
baseline; --update-baseline exits 0, or 2 when a trace is ERROR (it keeps its old
entry).

Traces are analysed in parallel (--jobs, default: all CPUs) or on a Dask cluster
(--scheduler); results are cached next to the baseline by file hash and reading
options, so a re-run only analyses changed traces. Each trace runs in a worker
process with a time limit (--timeout); a trace that times out or whose worker dies (out
of memory, killed) is an ERROR of its own, the other traces go on.

Each trace is read as hazards reads one: --format, --strict, --field-map,
--gz-max-bytes, --gz-max-ratio and --symbols apply to every trace (with --symbols
callers are module!function+offset); give the same ones for the baseline and tonight.
"""

EPILOG = """\
examples:
  traceanalyzer check nightly/ --baseline ci/mdl-baseline.json --update-baseline
  traceanalyzer check nightly/ --baseline ci/mdl-baseline.json --junit junit.xml --sarif mdl.sarif
  traceanalyzer check nightly/ --baseline ci/mdl-baseline.json --history ci/history \\
      --trend USER_MAPPING_NOT_UNMAPPED_AT_EXIT --trend-png trend.png
"""


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "check",
        help="regression gate for CI: compare findings and leaks with a baseline",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("traces", nargs="*", metavar="TRACE_OR_DIR", help="trace files or folders of traces")
    p.add_argument("--baseline", metavar="FILE", type=Path, help="baseline JSON file (required with traces)")
    p.add_argument("--update-baseline", action="store_true", help="write tonight's results as the new baseline")
    p.add_argument("--fail-on", choices=SEVERITIES, default="high",
                   help="least severe severity of a new finding that fails the gate (default: high)")
    p.add_argument("--ignore", metavar="RULE", action="append", default=[],
                   help="rule ID (any case) whose new findings never fail the gate (repeatable; still "
                   "reported); an unknown ID is exit 2 naming the closest IDs")
    p.add_argument("--allow-loss", action="store_true",
                   help="accept traces whose reader counted events lost to damage (truncated file, corrupt "
                   "buffers, truncated records, bad rows) instead of reporting them as ERROR")
    p.add_argument("--fail-on-missing", action="store_true",
                   help="a trace in the baseline but not found in this run fails the gate")
    p.add_argument("--fail-on-new", choices=SEVERITIES, metavar="SEV",
                   help="a trace not in the baseline fails when it has a finding at or above SEV "
                   "(default: new traces never fail)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit per trace; a trace that takes longer is an ERROR (default: {DEFAULT_TIMEOUT:g})")
    p.add_argument("--leak-rel-tol", type=float, default=0.10, metavar="FRACTION",
                   help="allowed relative growth of leaked bytes (default: 0.10)")
    p.add_argument("--leak-abs-tol", type=int, default=16384, metavar="BYTES",
                   help="allowed absolute growth of leaked bytes (default: 16384)")
    p.add_argument("--count-rel-tol", type=float, default=0.0, metavar="FRACTION",
                   help="allowed relative growth of a known problem's count (default: 0, any "
                   "growth fails; 1.0: 3 -> 6 passes, 3 -> 300 fails)")
    p.add_argument("--count-abs-tol", type=int, default=0, metavar="N",
                   help="allowed absolute growth of a known problem's count (default: 0)")
    p.add_argument("--junit", metavar="FILE", type=Path, help="write JUnit XML (one testcase per trace)")
    p.add_argument("--sarif", metavar="FILE", type=Path, help="write a SARIF 2.1.0 log")
    p.add_argument("--json", metavar="FILE", type=Path, help="write the verdicts as JSON ('-' for stdout)")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="local worker processes (default: all CPUs)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on an existing dask.distributed cluster")
    p.add_argument("--pattern", metavar="GLOB", help="file names to take from folders (default: trace suffixes)")
    p.add_argument("--skip", metavar="GLOB", action="append", default=[],
                   help="file names never taken from folders (repeatable), e.g. '*.expected.csv'")
    add_reading_options(p.add_argument_group(
        "reading the traces", "as for hazards, applied to every trace (and part of the cache key)"))
    p.add_argument("--no-cache", action="store_true", help="analyse every trace, ignore and keep no cache")
    p.add_argument("--cache-dir", metavar="DIR", type=Path, help="result cache (default: BASELINE_STEM.cache/)")
    p.add_argument("--history", metavar="DIR", type=Path, help="record this run's summary in DIR (for trends)")
    p.add_argument("--trend", metavar="ID",
                   help="plot a problem over the history: its problem id (problems[].problem_id of hazards "
                   "--json, 'problem' in this report) or a unique prefix of one, or a rule ID for all its "
                   "problems; not a finding's fingerprint")
    p.add_argument("--trend-trace", metavar="TRACE", help="with --trend: only this trace ID")
    p.add_argument("--trend-png", metavar="FILE", type=Path, help="where --trend writes (default: DIR/trend-ID.png)")
    p.add_argument("-q", "--quiet", action="store_true", help="list only traces that did not simply pass")
    p.add_argument("-v", "--verbose", action="store_true", help="also list findings below --fail-on and fixed ones")
    p.set_defaults(func=run)


class _Console:
    """The gate's text on the terminal: with ``--json -`` stdout carries only the JSON
    document and the status lines go to stderr."""

    def __init__(self, json_to_stdout: bool) -> None:
        self._notes_to_stderr = json_to_stdout

    def progress(self) -> ContextManager[Progress]:
        return make_progress("checking", unit="trace")

    def report(self, line: str) -> None:
        print(line)  # the CLI escapes text on stdout

    def note(self, line: str) -> None:
        if self._notes_to_stderr:
            print(terminal_text(line), file=sys.stderr)
        else:
            print(line)


def run(args: argparse.Namespace) -> int:
    """Run the gate; returns the exit code (0 pass, 1 regression).

    Bad input (missing baseline, unreadable trace, bad option) raises :class:`TraceError`
    from :func:`gate.command.run_gate`; the CLI front end turns it into exit 2 with one line.
    """
    request = CheckRequest(**{f.name: getattr(args, f.name) for f in fields(CheckRequest)})
    return run_gate(request, _Console(request.json_to_stdout))
