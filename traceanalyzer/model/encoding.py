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
