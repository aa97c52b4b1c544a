"""Parse and analysis problems as data: a table of counters with a severity.

Readers and analyses never drop anything silently: whatever they skip they count
here (Perfetto-style ``stats``). ``Trace.stats`` is one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

import pandas as pd

Severity = Literal["info", "warning", "error"]


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
    came from; ``detail`` refines it (e.g. ``provider/event`` for unknown events).
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
        key = (name, source, detail)
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = StatEntry(name, int(value), severity, source, detail)
        else:
            entry.value += int(value)

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

    def to_frame(self) -> pd.DataFrame:
        """Columns: name, value, severity, source, detail (one row per counter)."""
        rows = [vars(e) for e in self.entries.values()]
        return pd.DataFrame(rows, columns=["name", "value", "severity", "source", "detail"])

    def __repr__(self) -> str:
        return f"Stats({len(self.entries)} counters)"
