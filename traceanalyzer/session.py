"""``load``: files -> Trace (the capture/session step of the pipeline)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.errors import TraceError, TraceFileChangedError, TraceFormatError, tag_file
from traceanalyzer.escape import path_text
from traceanalyzer.model.stats import LOSS_COUNTERS, Stats
from traceanalyzer.model.trace import Trace
from traceanalyzer.readers import ReadOptions, read_file
from traceanalyzer.readers.base import start_filetime


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

    Several files are put on one clock first: each file's times count from its own
    start, so the files that know theirs as an absolute time (ETL: the logfile header's
    StartTime; xperf text: Trace Start) are shifted by how much later than the earliest
    of them they started, which becomes time 0 (:func:`time_offsets`). A file without
    one (canonical CSV, WPA CSV, Parquet) keeps its times: they are taken to count from
    that earliest start. ``trace.metadata["files"]`` says, per file, its start and shift.

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
    metas: list[dict[str, object]] = []
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
        metas.append(result.metadata)
        for key, value in result.metadata.items():
            metadata.setdefault(key, value)
    metadata["formats"] = formats
    metadata["traces"] = [path_text(p) for p in paths]
    offsets = time_offsets(metas)
    if len(paths) > 1:
        _note_alignment(metadata, paths, metas, offsets)
        tables = [shift_times(t, off) for t, off in zip(tables, offsets)]
    loader = _CSwitchReload(paths, format, options, identities, offsets) if deferred else None
    del result  # the trace takes the readers' wide tables (freed column by column as it splits them)
    trace = Trace.from_tables(tables, metadata, stats, paths, orders, cswitch_loader=loader,
                              order_keys=keys, consume=True, left_out=left_out)
    del tables, orders, keys
    pa.default_memory_pool().release_unused()  # and what splitting them freed
    return trace.symbolize(symbols) if symbols is not None else trace


def time_offsets(metas: list[dict[str, object]]) -> list[int]:
    """Nanoseconds to add to each file's ``time_ns`` (``metas``: each file's
    ``ReadResult.metadata``) so that all count from the earliest absolute start.

    Files of one boot that share a QPC clock (ETL files whose headers give the same
    BootTime, clock type QPC and rate) are aligned by the clock value of their starts,
    to the tick; otherwise by their start times (FILETIME, 100 ns). A file without an
    absolute start (:func:`~traceanalyzer.readers.base.start_filetime` None) gets 0."""
    starts = {i: s for i, s in enumerate(map(start_filetime, metas)) if s is not None}
    offsets = [0] * len(metas)
    if len(starts) < 2:
        return offsets
    rate = _shared_qpc(metas[i] for i in starts)
    if rate is not None:
        ticks = {i: int(metas[i]["start_clock"]) for i in starts}  # type: ignore[call-overload]
        first = min(ticks.values())
        for i in starts:
            offsets[i] = ((ticks[i] - first) * 1_000_000_000 + rate // 2) // rate
        return offsets
    first = min(starts.values())
    for i, start in starts.items():
        offsets[i] = (start - first) * 100
    return offsets


def _shared_qpc(metas: Iterable[dict[str, object]]) -> int | None:
    """The QPC rate (ticks/s) of ETL files of one boot sharing one QPC clock (same
    BootTime, clock type and rate, each with its start's clock value); None otherwise."""
    clocks = {(m.get("boot_time_filetime"), m.get("clock_type"), m.get("ticks_per_second"),
               isinstance(m.get("start_clock"), int)) for m in metas}
    if len(clocks) != 1:
        return None
    boot, kind, rate, has_start = clocks.pop()
    ok = bool(boot) and kind == "QPC" and isinstance(rate, int) and rate > 0 and has_start
    return rate if ok else None  # type: ignore[return-value]


def shift_times(table: pa.Table, offset_ns: int) -> pa.Table:
    """``table`` with ``offset_ns`` added to every ``time_ns``."""
    if not offset_ns:
        return table
    at = table.column_names.index("time_ns")
    return table.set_column(at, "time_ns", pc.add_checked(table.column(at), pa.scalar(offset_ns, pa.int64())))


def _note_alignment(metadata: dict[str, object], paths: list[Path], metas: list[dict[str, object]],
                    offsets: list[int]) -> None:
    """``metadata["files"]``: per file its start (ISO, None when it has none) and the
    shift of its times; ``start_time_utc``/``start_time_filetime``: the earliest start."""
    metadata["files"] = [{"trace": path_text(p), "start_time_utc": m.get("start_time_utc") if start_filetime(m) else None,
                          "offset_ns": off} for p, m, off in zip(paths, metas, offsets)]
    known = [m for m in metas if start_filetime(m) is not None]
    if known:
        earliest = min(known, key=lambda m: start_filetime(m) or 0)
        metadata["start_time_utc"] = earliest.get("start_time_utc")
        metadata["start_time_filetime"] = start_filetime(earliest)


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
                 identities: dict[Path, FileIdentity | None] | None = None,
                 offsets: list[int] | None = None) -> None:
        self.paths, self.format = paths, format
        self.offsets = offsets or [0] * len(paths)
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
        return Trace.from_tables([shift_times(r.table, off) for r, off in zip(results, self.offsets)],
                                 paths=self.paths,
                                 orders=[r.order for r in results], order_keys=[r.order_key for r in results],
                                 ).table("cswitch", all_columns=False)
