"""Mapped TraceLogging events decoded a whole group at a time.

Events of one provider with one schema whose fields are all fixed-size scalars (the
usual MdlTrace call: pointers, sizes, enums as numbers) have identical payload layouts:
their payload bytes are gathered into an ``(n, size)`` array and viewed as a numpy
structured array, one column per field, without a Python loop per event.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pyarrow as pa

from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES
from traceanalyzer.readers.convert import Converted, integers_to_column, value_for_column
from traceanalyzer.readers.etl.columns import int_column
from traceanalyzer.readers.etl.tracelogging import Schema
from traceanalyzer.readers.field_map import EventMapping

#: Columns the EVENT_HEADER and the buffer supply; a payload field never overrides them.
HEADER_COLUMNS = frozenset({"time_ns", "event", "cpu"})

#: Groups smaller than this go through the per-event path (not worth the setup).
BULK_MIN_EVENTS = 32

_NP = {"b": "i1", "B": "u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4", "q": "<i8",
       "Q": "<u8", "f": "<f4", "d": "<f8"}


class EventClass:
    """What one (provider, schema) pair decodes to; cached by the walk's hash."""

    __slots__ = ("label", "schema", "mapping", "provider")

    def __init__(self, label: str, schema: Schema | None, mapping: EventMapping | None, provider: str) -> None:
        self.label, self.schema, self.mapping, self.provider = label, schema, mapping, provider

    def column(self, field_name: str) -> str | None:
        """The canonical payload column of a field, or None (not mapped, or a header column)."""
        col = self.mapping.column(field_name) if self.mapping is not None else None
        return col if col is not None and col not in HEADER_COLUMNS else None


def _dtype(fmt: str) -> np.dtype:
    formats = [np.dtype(_NP[ch]) for ch in fmt[1:]]
    offsets = np.cumsum([0] + [f.itemsize for f in formats[:-1]]).tolist()
    return np.dtype({"names": [f"f{i}" for i in range(len(formats))], "formats": formats,
                     "offsets": offsets, "itemsize": sum(f.itemsize for f in formats)})


def _convert(column: str, values: np.ndarray) -> Converted:
    typ = COLUMNS[column]
    if column in ENUM_ALIASES or column == "status" or pa.types.is_string(typ):
        uniq, inverse = np.unique(values, return_inverse=True)
        converted = [value_for_column(column, v) for v in uniq.tolist()]
        names = pa.array([v for v, _bad in converted], pa.string())
        bad = np.array([b for _v, b in converted], dtype=bool)[inverse]
        return Converted(names.take(pa.array(inverse.astype(np.int32))), bad)
    return integers_to_column(pa.array(values), column)


def bulk_events(data: np.ndarray, rec: dict[str, np.ndarray], members: np.ndarray, cls: EventClass,
                time_base: Any, out: list[dict[str, pa.Array]],
                bad_values: Callable[[EventClass, str, str, int, int, Any], None]) -> np.ndarray:
    """Decode ``members`` in bulk into ``out`` when the class allows; returns the rest.

    ``bad_values(cls, column, field, count, record offset, first value)`` is told of
    values that do not fit their column (they are null)."""
    if cls.mapping is None or cls.schema is None:
        return members
    fmt = cls.schema.fixed_format()
    if fmt is None:
        return members
    dtype = _dtype(fmt)
    start = rec["a"][members]
    fits = (rec["pos"][members] + rec["size"][members] - start == dtype.itemsize) & (start >= 0)
    done = members[fits]
    if len(done) < BULK_MIN_EVENTS:
        return members
    start = start[fits]
    raw = data[start[:, None] + np.arange(dtype.itemsize)]
    values = np.ascontiguousarray(raw).view(dtype).reshape(len(done))
    pid, tid = rec["pid"][done], rec["tid"][done]
    event = cls.mapping.canonical
    chunk: dict[str, pa.Array] = {
        "time_ns": int_column(time_base.to_ns(rec["ts"][done]), None, pa.int64()),
        "event": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(done), np.int32)), pa.array([event])),
        "cpu": int_column(rec["cpu"][done], None, pa.int32()),
        "pid": int_column(pid, pid >= 0, pa.int64()),
        "tid": int_column(tid, tid >= 0, pa.int64()),
    }
    for i, f in enumerate(cls.schema.fields):
        col = cls.column(f.name)
        if col is not None:
            res = _convert(col, values[f"f{i}"])
            if res.bad.any():
                first = int(np.flatnonzero(res.bad)[0])
                bad_values(cls, col, f.name, int(res.bad.sum()), int(rec["pos"][done][first]),
                           values[f"f{i}"][first].item())
            chunk[col] = res.array
    out.append(chunk)
    return members[~fits]
