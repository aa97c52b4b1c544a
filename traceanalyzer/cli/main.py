"""The ``traceanalyzer`` command: a thin argparse front end over the library.

Each command is a module in ``cli/commands/`` with ``register(subparsers)`` (which
sets ``func=run``) and ``run(args) -> int``. This is the only layer that prints or
exits; library errors become exit code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from traceanalyzer import __version__
from traceanalyzer.errors import TraceError

#: Order in ``--help``; other modules found in cli/commands/ follow.
PREFERRED_ORDER = ("info", "hazards", "report", "check", "convert", "synth")


class _Parser(argparse.ArgumentParser):
    """Keeps description/epilog line breaks (help ends with a literal example)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="traceanalyzer",
        description="Find MDL misuse by Windows kernel drivers in ETW traces "
        "(ETL, canonical CSV, xperf text, WPA CSV, Parquet).",
        epilog="Example: traceanalyzer hazards sample_traces/seed_unlock_from_worker.csv",
    )
    parser.add_argument("--version", action="version", version=f"traceanalyzer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from traceanalyzer.cli import commands

    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (PREFERRED_ORDER.index(n) if n in PREFERRED_ORDER else 99, n))
    for name in names:
        module = importlib.import_module(f"traceanalyzer.cli.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except TraceError as exc:
        if args.debug:
            raise
        print(f"traceanalyzer: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("traceanalyzer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line unless --debug
        if args.debug:
            raise
        print(
            f"traceanalyzer: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
