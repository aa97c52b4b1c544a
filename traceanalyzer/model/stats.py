"""Parse and analysis problems as data: a table of counters with a severity.

Readers and analyses never drop anything silently: whatever they skip they count
here (Perfetto-style ``stats``). ``Trace.stats`` is one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

import pandas as pd

from traceanalyzer.escape import path_text

Severity = Literal["info", "warning", "error"]

#: Every data-quality counter a reader reports, with what it means (the ``stats`` of
#: ``hazards --json``, the text footer, ``info`` and the report show all of them).
QUALITY_COUNTERS: dict[str, str] = {
    "unknown_events": "events no reader mapping classified: counted per provider/event, not analysed",
    "lost_events": "events the recording session itself reported lost (ETL header EventsLost, xperf Events Lost)",
    "lost_buffers": "buffers the recording session reported lost (ETL header BuffersLost)",
    "truncated_file": "buffers missing because the file ends early: fewer buffers than the ETL header's "
                      "BuffersWritten, or the file ends inside a buffer; a .csv.gz or .etl.gz whose gzip data "
                      "ends early (read up to the cut)",
    "corrupt_buffers": "buffers with a damaged header, a size that disagrees with the logfile header, compressed "
                       "data that does not decompress to its declared length, or records that stop before the "
                       "buffer's filled length; their records are skipped",
    "truncated_records": "records whose size runs past their buffer or that do not decode; the rest of that "
                         "buffer is skipped",
    "bad_rows": "text rows that could not be read (dropped)",
    "bad_values": "cells that are not a number or out of range for their column",
    "unreadable_mdl": "calls whose MDL address (mdl, source_mdl) is there but not an address: the call is kept, "
                      "but no rule can follow its MDL (also counted in bad_values)",
    "undecodable_bytes": "bytes of a text trace that are not UTF-8 (or UTF-16), replaced by U+FFFD (rows kept)",
    "unterminated_last_line": "a text trace whose last line has no line break: it may be cut short in that line "
                              "(a value such as 0x1234 left as 0x12); the row is read as it is",
    "implausible_header": "ETL logfile-header values out of range: clock rate (PerfFreq 0, 1 or absurd), pointer "
                          "size other than 4 or 8, start time outside 1990-2100",
    "missing_logfile_header": "an ETL file whose first buffer does not start with the logfile header",
    "time_disorder": "events earlier than the previous one of the same CPU in file order (rows kept)",
}

#: Counters that mean events of the file were lost to damage: ``check`` reports such a
#: trace as ERROR unless ``--allow-loss``; ``--strict`` makes each one an error.
LOSS_COUNTERS: tuple[str, ...] = ("truncated_file", "corrupt_buffers", "truncated_records", "bad_rows",
                                   "unreadable_mdl")


@dataclass
class StatEntry:
    name: str
    value: int
    severity: Severity = "info"
    source: str = ""
    detail: str = ""


@dataclass
class Stats:
    """Counters keyed by (name, source, detail).

    ``name`` is a stable identifier (``events``, ``unknown_events``, ``lost_events``,
    ``lost_buffers``, ``corrupt_buffers``, ``bad_rows``, ...); ``source`` is the file it
    came from; ``detail`` refines it (e.g. ``provider/event`` for unknown events). Both
    are kept as text every output can hold: a file name's bytes that are not UTF-8 as
    ``\\xNN`` (:func:`~traceanalyzer.escape.path_text`).
    """

    entries: dict[tuple[str, str, str], StatEntry] = field(default_factory=dict)

    def add(
        self,
        name: str,
        value: int = 1,
        severity: Severity = "info",
        source: str = "",
        detail: str = "",
    ) -> None:
        # (per unknown ETL event: escape only what can hold a surrogate, not ASCII text)
        if type(source) is not str or not source.isascii():
            source = path_text(source)
        if type(detail) is not str or not detail.isascii():
            detail = path_text(detail)
        key = (name, source, detail)
        entry = self.entries.get(key)
        total = int(value) + (entry.value if entry is not None else 0)
        if not -(1 << 63) <= total < (1 << 63):  # the tables and findings hold counts as int64
            raise ValueError(f"counter {name} would be {total}, out of the int64 range")
        if entry is None:
            self.entries[key] = StatEntry(name, total, severity, source, detail)
        else:
            entry.value = total

    def extend(self, other: "Stats | Iterable[StatEntry]") -> None:
        items = other.entries.values() if isinstance(other, Stats) else other
        for e in items:
            self.add(e.name, e.value, e.severity, e.source, e.detail)

    def total(self, name: str) -> int:
        """Sum of a counter over all sources and details (0 when absent)."""
        return sum(e.value for (n, _s, _d), e in self.entries.items() if n == name)

    def by_detail(self, name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for (n, _s, d), e in self.entries.items():
            if n == name:
                out[d] = out.get(d, 0) + e.value
        return out

    def details(self, names: Iterable[str], limit: int = 20) -> list[str]:
        """``name: detail`` (value in parentheses when above 1) of the named counters, at
        most ``limit`` of them, in the order they were counted."""
        wanted = set(names)
        out = [f"{e.name}: {e.detail or e.source}" + (f" ({e.value})" if e.value > 1 else "")
               for e in self.entries.values() if e.name in wanted and e.value]
        return out[:limit]

    def to_frame(self) -> pd.DataFrame:
        """Columns: name, value, severity, source, detail (one row per counter)."""
        rows = [vars(e) for e in self.entries.values()]
        return pd.DataFrame(rows, columns=["name", "value", "severity", "source", "detail"])

    def __repr__(self) -> str:
        return f"Stats({len(self.entries)} counters)"
