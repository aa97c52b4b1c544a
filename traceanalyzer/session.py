"""``load``: files -> Trace (the capture/session step of the pipeline)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa

from traceanalyzer.errors import TraceError, TraceFormatError, tag_file
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
        needs them only for a call without a thread id.
    """
    paths = _as_paths(path_or_paths)
    if not paths:
        raise TraceError("no trace files given")
    options = ReadOptions(strict=strict, field_map=field_map, progress=progress, extra=dict(reader_options),
                          defer_cswitch=not keep_cswitch)
    tables, orders, stats, formats, deferred = [], [], Stats(), [], False
    metadata: dict[str, object] = {}
    for path in paths:
        if path.is_dir():
            raise TraceError("is a directory; pass the trace files in it", path)
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
        deferred = deferred or "cswitch" in result.deferred
        orders.append(result.order)
        stats.extend(result.stats)
        formats.append(result.metadata.get("format", "?"))
        for key, value in result.metadata.items():
            metadata.setdefault(key, value)
    metadata["formats"] = formats
    metadata["traces"] = [str(p) for p in paths]
    loader = _CSwitchReload(paths, format, options) if deferred else None
    trace = Trace.from_tables(tables, metadata, stats, paths, orders, cswitch_loader=loader)
    return trace.symbolize(symbols) if symbols is not None else trace


def _refuse_loss(stats: Stats, path: Path) -> None:
    """Strict mode: a reader that counted a loss instead of raising still fails."""
    details = stats.details(LOSS_COUNTERS, limit=1)
    if details:
        raise TraceFormatError(f"{details[0]} (--strict)", path)


class _CSwitchReload:
    """The CSwitch family of ``paths``, read again whole (``Trace.table('cswitch')`` of a
    trace loaded without them): the same rows in the same order, so the same ``seq``."""

    def __init__(self, paths: list[Path], format: str | None, options: ReadOptions) -> None:
        self.paths, self.format = paths, format
        self.options = replace(options, defer_cswitch=False, progress=None)

    def __call__(self) -> pa.Table:
        results = [read_file(path, format=self.format, options=self.options) for path in self.paths]
        return Trace.from_tables([r.table for r in results], paths=self.paths,
                                 orders=[r.order for r in results]).table("cswitch", all_columns=False)
