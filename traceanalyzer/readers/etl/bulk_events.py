"""Mapped TraceLogging events decoded a whole group at a time.

Events of one provider with one schema whose fields are all fixed-size scalars (the
usual MdlTrace call: pointers, sizes, enums as numbers) have identical payload layouts:
their payload bytes are gathered into an ``(n, size)`` array and viewed as a numpy
structured array, one column per field, without a Python loop per event.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES
from traceanalyzer.readers.etl.columns import int_column
from traceanalyzer.readers.etl.mapping import ProviderMap, column_value
from traceanalyzer.readers.etl.tracelogging import Schema

#: Groups smaller than this go through the per-event path (not worth the setup).
BULK_MIN_EVENTS = 32

_NP = {"b": "i1", "B": "u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4", "q": "<i8",
       "Q": "<u8", "f": "<f4", "d": "<f8"}


class EventClass:
    """What one (provider, schema) pair decodes to; cached by the walk's hash."""

    __slots__ = ("label", "schema", "pmap", "provider")

    def __init__(self, label: str, schema: Schema | None, pmap: ProviderMap | None, provider: str) -> None:
        self.label, self.schema, self.pmap, self.provider = label, schema, pmap, provider


def _dtype(fmt: str) -> np.dtype:
    formats = [np.dtype(_NP[ch]) for ch in fmt[1:]]
    offsets = np.cumsum([0] + [f.itemsize for f in formats[:-1]]).tolist()
    return np.dtype({"names": [f"f{i}" for i in range(len(formats))], "formats": formats,
                     "offsets": offsets, "itemsize": sum(f.itemsize for f in formats)})


def _convert(column: str, values: np.ndarray) -> pa.Array:
    typ = COLUMNS[column]
    if column in ENUM_ALIASES or column == "status" or pa.types.is_string(typ):
        uniq, inverse = np.unique(values, return_inverse=True)
        names = pa.array([column_value(column, v) for v in uniq.tolist()], pa.string())
        return names.take(pa.array(inverse.astype(np.int32)))
    if values.dtype.kind == "f":
        values = values.astype(np.int64)
    return int_column(values, None, typ)


def bulk_events(data: np.ndarray, rec: dict[str, np.ndarray], members: np.ndarray, cls: EventClass,
                time_base: Any, out: list[dict[str, pa.Array]]) -> np.ndarray:
    """Decode ``members`` in bulk into ``out`` when the class allows; returns the rest."""
    if cls.pmap is None or cls.schema is None:
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
    event = cls.pmap.event(cls.schema.name)
    chunk: dict[str, pa.Array] = {
        "time_ns": int_column(time_base.to_ns(rec["ts"][done]), None, pa.int64()),
        "event": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(done), np.int32)), pa.array([event])),
        "cpu": int_column(rec["cpu"][done], None, pa.int32()),
        "pid": int_column(pid, pid >= 0, pa.int64()),
        "tid": int_column(tid, tid >= 0, pa.int64()),
    }
    for i, f in enumerate(cls.schema.fields):
        col = cls.pmap.column(cls.schema.name, f.name)
        if col is not None:
            chunk[col] = _convert(col, values[f"f{i}"])
    out.append(chunk)
    return members[~fits]
