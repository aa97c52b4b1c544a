"""Which files the gate checks, and the ID each one has in the baseline.

A trace's ID is its path relative to the folder named on the command line, with ``/``
separators: ``check nightly/`` finds ``nightly/sub/case42.etl`` as ``sub/case42.etl``, so
tonight's folder matches last night's baseline wherever either lives. A file named
directly has its file name as ID. An ID is text every output can hold: a name's bytes
that are not UTF-8 are written as ``\\xNN`` (:func:`~traceanalyzer.escape.path_text`).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text

#: Suffixes taken from a folder when no ``pattern`` is given (plus those of registered readers).
DEFAULT_TRACE_SUFFIXES: tuple[str, ...] = (".etl", ".csv", ".txt", ".parquet", ".pq")


@dataclass(frozen=True)
class TraceFile:
    """One trace to check: its ID, its path, and the folder the ID is relative to."""

    trace_id: str
    path: Path
    root: Path


def trace_suffixes() -> tuple[str, ...]:
    """Default suffixes plus every registered reader's extensions (lower case)."""
    suffixes = set(DEFAULT_TRACE_SUFFIXES)
    try:
        from traceanalyzer.readers.registry import readers

        for reader in readers().values():
            suffixes.update(str(e).lower() for e in getattr(reader, "extensions", ()))
    except Exception:  # a broken reader module must not hide the defaults
        pass
    return tuple(sorted(suffixes))


def _wanted(name: str, pattern: str | None, suffixes: Sequence[str], skip: Sequence[str] = ()) -> bool:
    if name.startswith(".") or any(fnmatch.fnmatch(name, g) for g in skip):
        return False
    if pattern is not None:
        return fnmatch.fnmatch(name, pattern)
    low = name.lower()
    return any(low.endswith(s) for s in suffixes)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.endswith(".cache"))
        for name in sorted(filenames):
            yield Path(dirpath) / name


def discover(
    inputs: Sequence[str | Path],
    pattern: str | None = None,
    exclude: Iterable[str | Path] = (),
    skip: Sequence[str] = (),
) -> list[TraceFile]:
    """The trace files named by ``inputs`` (files or folders, searched recursively).

    pattern: a glob on file names (e.g. ``*.etl``) choosing files inside folders; by
        default every file with a trace suffix (:func:`trace_suffixes`). Hidden files and
        folders, and ``*.cache`` folders (result caches), are skipped.
    exclude: paths never taken (the baseline file itself, for instance).
    skip: globs on file names never taken from folders (e.g. ``*.expected.csv``).

    Raises :class:`TraceError` for an input that does not exist, for two traces with
    the same ID, and when nothing at all is found. The list is sorted by ID.
    """
    suffixes = trace_suffixes() if pattern is None else ()
    excluded = {Path(p).resolve() for p in exclude}
    found: dict[str, TraceFile] = {}

    def add(tf: TraceFile) -> None:
        if tf.path.resolve() in excluded:
            return
        other = found.get(tf.trace_id)
        if other is not None and other.path.resolve() != tf.path.resolve():
            raise TraceError(
                f"two traces have the ID {tf.trace_id!r} ({other.path} and {tf.path}); "
                "check one folder per run",
                tf.path,
            )
        found[tf.trace_id] = tf

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in _walk(p):
                if _wanted(f.name, pattern, suffixes, skip):
                    add(TraceFile(path_text(f.relative_to(p).as_posix()), f, p))
        elif p.is_file():
            add(TraceFile(path_text(p.name), p, p.parent))
        else:
            raise TraceError("no such trace file or folder", p)
    if not found:
        what = f"matching {pattern!r}" if pattern else f"with a trace suffix ({', '.join(suffixes)})"
        raise TraceError(f"no trace files {what} found", ", ".join(str(i) for i in inputs))
    return [found[k] for k in sorted(found)]
