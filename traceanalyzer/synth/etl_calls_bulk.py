"""MdlTrace TraceLogging records in bulk, for calls whose fields are all numbers.

Rows of one event with the same set of non-null fields and no string field have one
fixed record layout (field order and in-types from ``model/mdltrace_schema.json``);
this builds all of them at once with a numpy structured array, byte for byte what
:func:`etl_calls.tracelogging_record` builds one row at a time (a test compares the
two). Rows with string fields (caller, image, a status given as text such as
``exception``) take the per-row path.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.synth import tracelogging as tl
from traceanalyzer.synth.etl_calls import (
    EVENT_LEVEL,
    EXTENDED_INFO_FLAG,
    FIELD_ORDER,
    PROVIDER_GUID,
    _ENUM_VALUES,
    _extended_items,
    enum_number,
    field_value,
    in_type_of,
    ordered_fields,
    status_number,
)
from traceanalyzer.synth.etl_format import EVENT_HEADER_SIZE, HEADER_TYPE, MARKER_FLAGS

_STRING_TYPES = (tl.IN_ANSISTRING, tl.IN_UNICODESTRING)

_HEADER_DTYPE = [
    ("size", "<u2"), ("htype", "u1"), ("mflags", "u1"), ("flags", "<u2"), ("prop", "<u2"),
    ("tid", "<u4"), ("pid", "<u4"), ("ts", "<u8"), ("provider", "V16"),
    ("id", "<u2"), ("version", "u1"), ("channel", "u1"), ("level", "u1"), ("opcode", "u1"),
    ("task", "<u2"), ("keyword", "<u8"), ("ptime", "<u8"), ("activity", "V16"),
]


def field_columns(table: pa.Table) -> list[str]:
    """The payload columns of :data:`FIELD_ORDER` present in the table."""
    return [c for c in FIELD_ORDER if c in table.column_names]


def _values(table: pa.Table, column: str, rows: np.ndarray, in_type: int) -> np.ndarray:
    """Field values of ``rows`` (all non-null) as numbers, checked like field_value."""
    col = pc.take(table.column(column), pa.array(rows))
    if column == "status" and not pa.types.is_integer(col.type):
        numbers = [status_number(v) for v in col.to_pylist()]
        if any(v is None for v in numbers):
            raise _NotNumeric
        return np.array(numbers, dtype=np.dtype(tl.NUMPY_DTYPES[in_type]))
    if column in _ENUM_VALUES:
        encoded = pc.dictionary_encode(pc.cast(col, pa.string())).combine_chunks()
        lookup = np.array([enum_number(column, v) for v in encoded.dictionary.to_pylist()] or [0])
        return lookup[np.asarray(encoded.indices.to_numpy(zero_copy_only=False))]
    if not pa.types.is_integer(col.type):
        col = pc.cast(col, pa.int64())
    values = np.asarray(col.to_numpy() if isinstance(col, pa.Array) else col.combine_chunks().to_numpy())
    dtype = np.dtype(tl.NUMPY_DTYPES[in_type])
    info = np.iinfo(dtype)
    if values.dtype == np.uint64 and info.max < np.iinfo(np.uint64).max:
        bad = values > np.uint64(info.max)
    elif values.dtype != np.uint64:
        bad = (values < info.min) | (values > info.max)
    else:
        bad = np.zeros(len(values), bool)
    if bad.any():
        field_value(column, in_type, int(values[np.argmax(bad)]))  # raises with its message
    return values.astype(dtype)


class _NotNumeric(Exception):
    """A status that is text (``exception``): the rows take the per-row path."""


def bulk_records(table: pa.Table, rows: np.ndarray, event: str, columns: list[str],
                 qpc: np.ndarray, tid: np.ndarray, pid: np.ndarray, pointer_size: int,
                 hex_addresses: bool) -> np.ndarray | None:
    """Records of ``rows`` (same event, exactly ``columns`` non-null) as an (n, size)
    uint8 array, each padded to 8 bytes; None when a field is a string."""
    fields = [(c, in_type_of(c, pointer_size, False, hex_addresses)) for c in ordered_fields(event, columns)]
    if any(t in _STRING_TYPES for _, t in fields):
        return None
    ext = _extended_items(event, tuple(fields))
    size = EVENT_HEADER_SIZE + len(ext) + sum(np.dtype(tl.NUMPY_DTYPES[t]).itemsize for _, t in fields)
    if size > 0xFFFF:
        raise ValueError(f"{event} record of {size} bytes exceeds 65535")
    pad = -size % 8
    dtype = _HEADER_DTYPE + [("ext", f"V{len(ext)}")]
    dtype += [(f"f{i}", tl.NUMPY_DTYPES[t]) for i, (_, t) in enumerate(fields)]
    if pad:
        dtype.append(("pad", f"V{pad}"))
    out = np.zeros(len(rows), dtype=np.dtype(dtype))
    out["size"] = size
    out["htype"] = HEADER_TYPE[("event", pointer_size)]
    out["mflags"] = MARKER_FLAGS
    out["flags"] = EXTENDED_INFO_FLAG
    out["tid"] = tid
    out["pid"] = pid
    out["ts"] = qpc
    out["provider"] = np.void(PROVIDER_GUID.bytes_le)
    out["channel"] = tl.TRACELOGGING_CHANNEL
    out["level"] = EVENT_LEVEL
    out["ext"] = np.void(ext)
    try:
        for i, (column, in_type) in enumerate(fields):
            out[f"f{i}"] = _values(table, column, rows, in_type)
    except _NotNumeric:
        return None
    return out.view(np.uint8).reshape(len(rows), out.dtype.itemsize)
