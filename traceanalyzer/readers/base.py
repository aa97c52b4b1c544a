"""What a reader is and what it returns.

A reader turns one file into the canonical event table (``model/schema.py``). It is
registered under a name with the extensions it claims and a content sniffer; see
``readers/registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import pyarrow as pa

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
    """

    strict: bool = False
    field_map: str | Path | None = None
    progress: Callable[[int, int], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    defer_cswitch: bool = False


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
        of equal times (ETL: a CPU's records in the order it logged them), the row
        permutation that puts the table in time order; None = sort by ``time_ns``,
        equal times in row order (:meth:`ordered_table`; ``Trace`` uses it).
    """

    table: pa.Table
    metadata: dict[str, Any] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    deferred: tuple[str, ...] = ()
    order: np.ndarray | None = None

    def ordered_table(self) -> pa.Table:
        """The table in time order (equal times as the reader orders them)."""
        if self.order is not None:
            return self.table.take(pa.array(self.order))
        times = self.table.column("time_ns").to_numpy()
        if times.size < 2 or bool(np.all(times[1:] >= times[:-1])):
            return self.table
        return self.table.take(pa.array(np.argsort(times, kind="stable")))


class Reader(Protocol):
    """A trace reader. Register one with :func:`traceanalyzer.readers.register_reader`."""

    name: str
    extensions: tuple[str, ...]

    def sniff(self, head: bytes, path: Path) -> bool:
        """True if the first bytes of the file look like this reader's format."""

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read the whole file. Raise TraceFormatError (naming the file) on bad input."""
