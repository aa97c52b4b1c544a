"""What a reader is and what it returns.

A reader turns one file into the canonical event table (``model/schema.py``). It is
registered under a name with the extensions it claims and a content sniffer; see
``readers/registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import pyarrow as pa

from traceanalyzer.model.left_out import LeftOut
from traceanalyzer.model.stats import Stats


@dataclass
class ReadOptions:
    """Options every reader receives (readers ignore what does not apply to them).

    strict: fail on the first corrupt buffer / bad row instead of skipping and counting.
    field_map: path of a mapping file (provider/event/field names -> canonical names).
    progress: callable(done_units, total_units) for progress display, or None.
    extra: reader-specific options by name.
    defer_cswitch: the caller numbers the CSwitch rows but will not keep them (it reads
        them again when asked): a reader may then give CSwitch rows only ``time_ns``,
        ``event`` and ``cpu`` and say so in ``ReadResult.deferred``.
    leave_out_deferred: with ``defer_cswitch``, a reader may leave the CSwitch rows out
        of the table altogether and return what their ``seq`` needs as
        ``ReadResult.left_out`` (``load`` asks for it when it reads one file: merging
        several files by time needs the rows).
    """

    strict: bool = False
    field_map: str | Path | None = None
    progress: Callable[[int, int], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    defer_cswitch: bool = False
    leave_out_deferred: bool = False


@dataclass
class ReadResult:
    """One file read.

    table: canonical columns (any subset beyond time_ns/event, in any order, extra
        columns kept). ``event`` may be dictionary-encoded. Rows need not be sorted.
    metadata: facts about the file (``format``, ``start_time_utc`` ISO string,
        ``pointer_size``, ``cpus``, ``os_version``...), all JSON-serialisable.
    stats: counters of what was skipped, lost or unknown.
    deferred: families whose rows carry only ``time_ns``, ``event`` and ``cpu``
        (``("cswitch",)`` when the reader honoured ``ReadOptions.defer_cswitch``).
    order: for a reader whose rows are not in time order and that knows the true order
        of equal times, the row permutation that puts the table in time order; None =
        sort by ``time_ns``, equal times by ``order_key`` or else in row order
        (:meth:`time_order`, :meth:`ordered_table`; ``Trace`` uses them).
    order_key: the same knowledge as one integer per row, cheaper than a permutation
        (ETL: each record's stream key, CPU then position in that CPU's records): the
        time order is by (``time_ns``, ``order_key``). A ``Trace`` that ranks only some
        rows counts the others with it and never sorts the whole table.
    left_out: the CSwitch rows left out of ``table`` (``ReadOptions.leave_out_deferred``):
        their count, time range, CPUs, and each one's time and ``order_key``.
    """

    table: pa.Table
    metadata: dict[str, Any] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    deferred: tuple[str, ...] = ()
    order: np.ndarray | None = None
    order_key: pa.ChunkedArray | None = None
    left_out: LeftOut | None = None

    def time_order(self) -> np.ndarray | None:
        """The row permutation into time order (equal times as the reader orders them);
        None when the rows are in that order already."""
        if self.order is not None:
            return self.order
        return order_by_key(self.table.column("time_ns"), self.order_key)

    def ordered_table(self) -> pa.Table:
        """The table in time order (equal times as the reader orders them)."""
        order = self.time_order()
        return self.table if order is None else self.table.take(pa.array(order))


def order_by_key(times: pa.ChunkedArray, key: pa.ChunkedArray | None = None) -> np.ndarray | None:
    """The permutation sorting rows by time, equal times by ``key`` (None: in row order);
    None when the rows are sorted already. A stable sort by time, then only the rows in
    runs of equal times re-sorted by (time, key)."""
    t = times.to_numpy()
    if t.size < 2 or bool(np.all(t[1:] >= t[:-1])) and key is None:
        return None
    order = np.argsort(t, kind="stable")
    if key is not None:
        ordered = t[order]
        tie = ordered[1:] == ordered[:-1]
        if tie.any():
            k = key.to_numpy()
            at = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
            rows = order[at]
            order[at] = rows[np.lexsort((k[rows], t[rows]))]
    return None if bool(np.all(order[1:] > order[:-1])) else order


_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def _filetime(year: int) -> int:
    return int((datetime(year, 1, 1, tzinfo=timezone.utc) - _FILETIME_EPOCH).total_seconds()) * 10_000_000


#: FILETIMEs (100 ns since 1601) of a believable trace start: 1990-01-01 .. 2100-01-01.
EARLIEST_START, LATEST_START = _filetime(1990), _filetime(2100)


def start_filetime(metadata: dict[str, Any]) -> int | None:
    """The absolute time (FILETIME) of a file's ``time_ns`` 0: an ETL file's logfile-header
    StartTime (``start_time_filetime``), an xperf text's Trace Start
    (``trace_start_filetime``); None for a format without one (CSV, WPA CSV, Parquet)
    or when it lies outside 1990-2100 (a header that cannot be believed)."""
    value = metadata.get("start_time_filetime", metadata.get("trace_start_filetime"))
    if isinstance(value, int) and EARLIEST_START <= value <= LATEST_START:
        return value
    return None


class Reader(Protocol):
    """A trace reader. Register one with :func:`traceanalyzer.readers.register_reader`."""

    name: str
    extensions: tuple[str, ...]

    def sniff(self, head: bytes, path: Path) -> bool:
        """True if the first bytes of the file look like this reader's format."""

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read the whole file. Raise TraceFormatError (naming the file) on bad input."""
