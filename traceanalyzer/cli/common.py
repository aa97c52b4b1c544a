"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import traceanalyzer as ta


#: The ``ta.load`` keywords that :func:`add_reading_options` sets (argparse dests).
READING_OPTIONS: tuple[str, ...] = ("format", "strict", "field_map", "gz_max_bytes", "gz_max_ratio", "symbols")


def add_trace_arguments(p: argparse.ArgumentParser) -> None:
    """TRACE... plus the reading options every command that loads a trace accepts."""
    p.add_argument("traces", nargs="+", metavar="TRACE",
                   help="trace file(s): .etl, .csv, xperf .txt, WPA .csv, .parquet; several are merged by time")
    add_reading_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def add_reading_options(p: argparse.ArgumentParser) -> None:
    """How a trace file is read (:data:`READING_OPTIONS`): shared by the commands that
    load one trace and by ``check``, which reads each of its traces the same way."""
    p.add_argument("--format", help="force a reader (etl, csv, xperf, wpa_csv, parquet)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 2, naming the file and offset) on anything a lenient read counts as lost "
                   "(truncated file, corrupt buffer, truncated record, bad row), an implausible ETL header, "
                   "or a text trace's bad value or bytes that are not UTF-8/UTF-16")
    p.add_argument("--field-map", metavar="FILE",
                   help="mapping file for a driver that logs its own provider/event/field names")
    p.add_argument("--gz-max-bytes", type=int, metavar="BYTES",
                   help="a .gz input may expand to at most BYTES (default: 4 GiB; 0: no limit)")
    p.add_argument("--gz-max-ratio", type=float, metavar="RATIO",
                   help="a .gz input may expand to at most RATIO times its size (default: 100; 0: no limit)")
    p.add_argument("--symbols", metavar="DIR",
                   help="folder of .pdb files (or a symbol-server cache): callers become "
                   "module!function+offset")


def reading_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ta.load`` keywords of the reading options given (those left unset are left out)."""
    return {k: v for k in READING_OPTIONS if (v := getattr(args, k, None)) is not None and v is not False}


def progress_for(args: argparse.Namespace, label: str, unit: str = "B"):
    """A progress callback for the library (None when quiet or not a terminal)."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None
    from traceanalyzer.progress import make_progress

    return make_progress(label, quiet=False, unit=unit)


def load_trace(args: argparse.Namespace) -> ta.Trace:
    return ta.load([Path(p) for p in args.traces], progress=progress_for(args, "reading"),
                   **reading_options(args))


def analyze_trace(args: argparse.Namespace, trace: ta.Trace) -> ta.Analysis:
    """``ta.analyze`` with the command's engine and a replay progress bar on a terminal."""
    progress = progress_for(args, "replaying", unit="calls")
    try:
        return ta.analyze(trace, engine=getattr(args, "engine", "auto"), progress=progress)
    finally:
        if progress is not None:
            progress.close()
