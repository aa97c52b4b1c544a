"""Arrow columns from numpy without per-row Python: masks to validity bitmaps, lazy nulls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from traceanalyzer.model.encoding import null_column
from traceanalyzer.model.schema import COLUMNS

#: Column of the walk's chunks: each row's stream-order key (``walk.stream_keys``: CPU,
#: then position in that CPU's records). ``read_etl`` hands it out as
#: ``ReadResult.order_key``; ``EtlBatches`` keeps it in every batch.
ORDER_KEY = "stream_order"


def int_column(values: np.ndarray, valid: np.ndarray | None, typ: pa.DataType) -> pa.Array:
    """An integer column of ``typ`` from ``values``; rows where ``valid`` is False are null."""
    values = np.ascontiguousarray(values.astype(typ.to_pandas_dtype(), copy=False))
    if valid is None or valid.all():
        return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(values)])
    bitmap = np.packbits(valid, bitorder="little")
    return pa.Array.from_buffers(typ, len(values), [pa.py_buffer(bitmap), pa.py_buffer(values)],
                                 null_count=int(len(values) - np.count_nonzero(valid)))


def sparse_int_column(n: int, rows: np.ndarray, values: np.ndarray, valid: np.ndarray,
                      typ: pa.DataType) -> pa.Array:
    """An ``n``-row integer column null except at ``rows`` (``values`` where ``valid``);
    the pages no row touches stay untouched zero pages (no resident memory)."""
    data = np.zeros(n, typ.to_pandas_dtype())
    bitmap = np.zeros((n + 7) // 8, np.uint8)
    rows = rows[valid]
    data[rows] = values[valid]
    np.bitwise_or.at(bitmap, rows >> 3, (1 << (rows & 7)).astype(np.uint8))
    return pa.Array.from_buffers(typ, n, [pa.py_buffer(bitmap), pa.py_buffer(data)],
                                 null_count=int(n - len(rows)))


def dict_column(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    """A dictionary<int32, string> column of ``names[codes]``."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)), pa.array(names, pa.string()))


def rows_table(cols: dict[str, list[Any]]) -> dict[str, pa.Array]:
    """Canonical columns from Python lists (``event`` dictionary-encoded)."""
    out: dict[str, pa.Array] = {}
    for name, values in cols.items():
        typ = pa.int64() if name == ORDER_KEY else COLUMNS.get(name, pa.string())
        arr = pa.array(values, type=typ)
        out[name] = arr.dictionary_encode() if name == "event" else arr
    return out


def assemble(chunks: list[dict[str, pa.Array]], columns: list[str] | None = None) -> pa.Table:
    """One table from chunks with different column sets (missing columns lazily null);
    ``columns``: columns every output has (default: those of any chunk)."""
    names: list[str] = ["time_ns", "event", *(c for c in (columns or []) if c not in ("time_ns", "event"))]
    for chunk in chunks:
        names += [c for c in chunk if c not in names]
    order = [c for c in COLUMNS if c in names] + [c for c in names if c not in COLUMNS]
    event_type = pa.dictionary(pa.int32(), pa.string())
    tables = []
    for chunk in chunks:
        n = len(chunk["time_ns"])
        arrays = []
        for c in order:
            if c in chunk:
                arr = chunk[c]
                if c == "event" and arr.type != event_type:
                    arr = arr.cast(event_type)
                arrays.append(arr)
            else:
                arrays.append(null_column(n, COLUMNS.get(c, pa.string())))
        tables.append(pa.Table.from_arrays(arrays, names=order))
    if not tables:
        return pa.Table.from_arrays(
            [pa.array([], pa.int64()), pa.array([], pa.string()).dictionary_encode().cast(event_type)],
            names=["time_ns", "event"],
        )
    return pa.concat_tables(tables)

