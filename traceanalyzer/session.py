"""``load``: files -> Trace (the capture/session step of the pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

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
    """
    paths = _as_paths(path_or_paths)
    if not paths:
        raise TraceError("no trace files given")
    options = ReadOptions(strict=strict, field_map=field_map, progress=progress, extra=dict(reader_options))
    tables, stats, formats = [], Stats(), []
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
        stats.extend(result.stats)
        formats.append(result.metadata.get("format", "?"))
        for key, value in result.metadata.items():
            metadata.setdefault(key, value)
    metadata["formats"] = formats
    metadata["traces"] = [str(p) for p in paths]
    trace = Trace.from_tables(tables, metadata, stats, paths)
    return trace.symbolize(symbols) if symbols is not None else trace


def _refuse_loss(stats: Stats, path: Path) -> None:
    """Strict mode: a reader that counted a loss instead of raising still fails."""
    details = stats.details(LOSS_COUNTERS, limit=1)
    if details:
        raise TraceFormatError(f"{details[0]} (--strict)", path)
