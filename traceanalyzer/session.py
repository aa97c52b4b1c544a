"""``load``: files -> Trace (the capture/session step of the pipeline)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa

from traceanalyzer.errors import TraceError, TraceFileChangedError, TraceFormatError, tag_file
from traceanalyzer.model.stats import LOSS_COUNTERS, Stats
from traceanalyzer.model.trace import Trace
from traceanalyzer.readers import ReadOptions, read_file


def _as_paths(path_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(path_or_paths, (str, Path)):
        return [Path(path_or_paths)]
    return [Path(p) for p in path_or_paths]


def load(
    path_or_paths: str | Path | Iterable[str | Path],
    *,
    format: str | None = None,
    strict: bool = False,
    field_map: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    symbols: str | Path | None = None,
    keep_cswitch: bool = False,
    **reader_options: object,
) -> Trace:
    """Read one or more trace files (ETL, canonical CSV, xperf text, WPA CSV, Parquet)
    and merge them by time into one :class:`Trace`.

    format: force a reader by name (see ``traceanalyzer.readers.readers()``).
    strict: fail on the first corrupt buffer or bad row instead of skipping and counting
        (any reader's loss counter, ``model.stats.LOSS_COUNTERS``, is an error).
    field_map: mapping file for a driver that logs its own provider/event/field names.
    progress: callable(done, total) for long reads.
    symbols: a folder of PDB files (or a symbol-server cache): callers become
        ``module!function+offset`` (:meth:`Trace.symbolize`).
    keep_cswitch: keep the CSwitch rows from the start. By default a reader that can
        (ETL) leaves them out once they are numbered, and ``trace.cswitch`` reads the
        files again on first use (same rows, same ``seq``): the context of the calls
        needs them only for a call without a thread id. A file changed or removed by
        then raises :class:`TraceFileChangedError` naming it (its size, modification
        time and inode are taken when it is loaded).
    """
    paths = _as_paths(path_or_paths)
    if not paths:
        raise TraceError("no trace files given")
    options = ReadOptions(strict=strict, field_map=field_map, progress=progress, extra=dict(reader_options),
                          defer_cswitch=not keep_cswitch, leave_out_deferred=len(paths) == 1)
    tables, orders, keys, stats, formats, deferred = [], [], [], Stats(), [], False
    left_out = None
    identities: dict[Path, FileIdentity | None] = {}
    metadata: dict[str, object] = {}
    for path in paths:
        if path.is_dir():
            raise TraceError("is a directory; pass the trace files in it", path)
        identity = _identity(path)  # before the read: a change during it shows later
        try:
            result = read_file(path, format=format, options=options)
        except TraceError:
            raise
        except Exception as exc:  # a bug: the CLI's internal-error line names this file
            tag_file(exc, path)
            raise
        if strict:
            _refuse_loss(result.stats, path)
        tables.append(result.table)
        # Arrow's allocator keeps what a read freed (its text batches: ~0.35 GB at 10M
        # CSV rows) for reuse unless told: give it back before the next step allocates
        pa.default_memory_pool().release_unused()
        deferred = deferred or "cswitch" in result.deferred
        identities[path] = identity
        left_out = result.left_out
        orders.append(result.order)
        keys.append(result.order_key)
        stats.extend(result.stats)
        formats.append(result.metadata.get("format", "?"))
        for key, value in result.metadata.items():
            metadata.setdefault(key, value)
    metadata["formats"] = formats
    metadata["traces"] = [str(p) for p in paths]
    loader = _CSwitchReload(paths, format, options, identities) if deferred else None
    del result  # the trace takes the readers' wide tables (freed column by column as it splits them)
    trace = Trace.from_tables(tables, metadata, stats, paths, orders, cswitch_loader=loader,
                              order_keys=keys, consume=True, left_out=left_out)
    del tables, orders, keys
    pa.default_memory_pool().release_unused()  # and what splitting them freed
    return trace.symbolize(symbols) if symbols is not None else trace


def _refuse_loss(stats: Stats, path: Path) -> None:
    """Strict mode: a reader that counted a loss instead of raising still fails."""
    details = stats.details(LOSS_COUNTERS, limit=1)
    if details:
        raise TraceFormatError(f"{details[0]} (--strict)", path)


#: What says a file is the one that was read: (size, mtime_ns, inode).
FileIdentity = tuple[int, int, int]


def _identity(path: Path) -> FileIdentity | None:
    """The file's size, modification time (ns) and inode; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class _CSwitchReload:
    """The CSwitch family of ``paths``, read again whole (``Trace.table('cswitch')`` of a
    trace loaded without them): the same rows in the same order, so the same ``seq``.

    Only when each file is still the one that was loaded (same size, mtime and inode,
    before and after the read; every file, since the ``seq`` of merged files depends on
    all of them): otherwise the rows would silently be another file's, so
    :class:`TraceFileChangedError` names it instead."""

    def __init__(self, paths: list[Path], format: str | None, options: ReadOptions,
                 identities: dict[Path, FileIdentity | None] | None = None) -> None:
        self.paths, self.format = paths, format
        self.options = replace(options, defer_cswitch=False, leave_out_deferred=False, progress=None)
        self.identities = dict(identities or {})

    def check(self) -> None:
        """Raise :class:`TraceFileChangedError` for the first file that changed or
        vanished since it was loaded."""
        for path, then in self.identities.items():
            now = _identity(path)
            if now is None:
                what = "vanished"
            elif then is not None and now != then:
                what = "changed"
            else:
                continue
            raise TraceFileChangedError(
                f"{what} since it was loaded, and its CSwitch rows are read from it again on "
                "first use; load it again (or with ta.load(..., keep_cswitch=True), which "
                "keeps them and reads the file once)", path)

    def __call__(self) -> pa.Table:
        self.check()
        results = [read_file(path, format=self.format, options=self.options) for path in self.paths]
        self.check()  # replaced while being read
        return Trace.from_tables([r.table for r in results], paths=self.paths,
                                 orders=[r.order for r in results], order_keys=[r.order_key for r in results],
                                 ).table("cswitch", all_columns=False)
