"""Dictionary codes of string columns (rules and the model compare small integers, not
strings), and all-null columns that take no memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def as_dictionary(col: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """``col`` as one dictionary array with a single dictionary (chunks unified)."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 0:
            return pa.array([], type=col.type)
        col = col.unify_dictionaries().combine_chunks()
    return col


def dictionary_codes(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """(codes, names): row i holds ``names[codes[i]]``; a null row has code -1."""
    d = as_dictionary(col)
    idx = d.indices
    codes = (pc.fill_null(idx, -1) if idx.null_count else idx).to_numpy(zero_copy_only=False)
    return codes, d.dictionary.to_pylist()


def event_masks(col: pa.Array | pa.ChunkedArray, *names: str) -> list[np.ndarray]:
    """For each of ``names``, the rows of the string column ``col`` that hold it (all
    False when none does): one dictionary encoding, no string comparison per row."""
    codes, values = dictionary_codes(col)
    return [codes == values.index(name) if name in values else np.zeros(codes.size, bool)
            for name in names]


def int_column(table: pa.Table, name: str, rows: np.ndarray | None = None,
               fill: int = -1) -> np.ndarray:
    """An integer column (at ``rows``) as a writable int64 array, nulls (and every row,
    when the table lacks the column) as ``fill``; unsigned values past 2**63 keep their
    bits (addresses)."""
    n = table.num_rows if rows is None else len(rows)
    if name not in table.column_names:
        return np.full(n, fill, dtype=np.int64)
    col = table.column(name)
    if rows is not None:
        col = col.take(pa.array(rows))
    values = pc.fill_null(col.cast(pa.int64(), safe=False), fill).to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.int64)  # a copy: callers write to it


def take_column(table: pa.Table, column: str, idx: np.ndarray) -> np.ndarray:
    """Values of ``table[column]`` at row indices, as an object array (None where ``idx``
    is -1, and everywhere when the table lacks the column)."""
    idx = np.asarray(idx, dtype=np.int64)
    if column not in table.column_names or idx.size == 0:
        return np.full(idx.size, None, dtype=object)
    col = table.column(column)
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    taken = pc.take(col, pa.array(np.maximum(idx, 0), mask=idx < 0))
    return np.asarray(taken.to_pylist(), dtype=object)


def gather(values: np.ndarray, idx: np.ndarray, fill: object) -> np.ndarray:
    """``values[idx]`` where ``idx >= 0``, else ``fill`` (also when ``values`` is empty:
    a trace-quality finding on a trace with no calls or processes has only -1 indices).

    Use this, never ``np.where(idx >= 0, values[np.maximum(idx, 0)], fill)``: np.where
    evaluates both branches, and ``values[0]`` of an empty array raises IndexError."""
    idx = np.asarray(idx, dtype=np.int64)
    if len(values) == 0:
        return np.full(idx.shape, fill, dtype=object if fill is None or isinstance(fill, str)
                       else np.int64)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], fill)


def null_column(n: int, typ: pa.DataType) -> pa.Array:
    """An all-null column of ``n`` rows. For strings and fixed-width types its buffers are
    zeroed by calloc: untouched zero pages, no resident memory (``pa.nulls`` writes
    them); other types come from ``pa.nulls``."""
    if not (pa.types.is_string(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ)):
        return pa.nulls(n, typ)
    bitmap = pa.py_buffer(np.zeros((n + 7) // 8, np.uint8))
    if pa.types.is_string(typ):
        offsets = pa.py_buffer(np.zeros(n + 1, np.int32))
        return pa.Array.from_buffers(typ, n, [bitmap, offsets, pa.py_buffer(b"")], null_count=n)
    width = typ.bit_width // 8
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(np.zeros(n * width, np.uint8))], null_count=n)
