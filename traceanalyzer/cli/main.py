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
from contextlib import contextmanager
from typing import Iterator, Sequence

from traceanalyzer import __version__
from traceanalyzer.cli.memory import return_big_blocks
from traceanalyzer.errors import TraceError, file_of
from traceanalyzer.escape import TerminalWriter, terminal_safe

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
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors (also after COMMAND)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from traceanalyzer.cli import commands

    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (PREFERRED_ORDER.index(n) if n in PREFERRED_ORDER else 99, n))
    for name in names:
        module = importlib.import_module(f"traceanalyzer.cli.commands.{name}")
        module.register(sub)
    for command in {id(p): p for p in sub.choices.values()}.values():
        # "run with --debug" works after the command too; absent there, the global one stands
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show Python tracebacks on errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return_big_blocks()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _human_stdout(args):
            return int(args.func(args) or 0)
    except TraceError as exc:
        if args.debug:
            raise
        _say_error(str(exc))
        return 2
    except KeyboardInterrupt:
        _say_error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line, naming the file, unless --debug
        if args.debug:
            raise
        where = file_of(exc) or ", ".join(map(str, getattr(args, "traces", None) or [])) or None
        _say_error((f"{where}: " if where else "")
                   + f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 2


def _say_error(message: str) -> None:
    """One line on stderr; file names and header bytes from a trace cannot drive the terminal."""
    print(f"traceanalyzer: {terminal_safe(message)}", file=sys.stderr)


def _machine_output(args: argparse.Namespace) -> bool:
    """True when stdout carries JSON or CSV (written as it is) rather than text for a person."""
    as_json = getattr(args, "json", None)
    return getattr(args, "csv", False) is True or as_json is True or str(as_json) == "-"


@contextmanager
def _human_stdout(args: argparse.Namespace) -> Iterator[None]:
    """While a command runs, its text output goes through :class:`TerminalWriter`
    (control characters from image names, file names, header bytes escaped)."""
    if _machine_output(args):
        yield
        return
    real = sys.stdout
    sys.stdout = TerminalWriter(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = real


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
