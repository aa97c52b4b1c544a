"""Turning text columns into canonical typed Arrow columns, fast.

Integers in text traces may be decimal or ``0x`` hex, and empty means null. pyarrow's
CSV reader parses neither hex nor mixed forms, so integer columns are read as strings
and parsed here by a compiled scan over the Arrow string buffers (no Python object
per cell).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES


@njit(cache=True, nogil=True)
def _parse_int_buffers(offsets, data, out, valid):  # pragma: no cover - compiled
    """Parse decimal/hex strings; returns index of the first bad cell or -1."""
    n = offsets.size - 1
    for i in range(n):
        start = offsets[i]
        end = offsets[i + 1]
        # trim blanks
        while start < end and (data[start] == 32 or data[start] == 9):
            start += 1
        while end > start and (data[end - 1] == 32 or data[end - 1] == 9 or data[end - 1] == 13):
            end -= 1
        if start == end:
            valid[i] = False
            out[i] = 0
            continue
        neg = False
        if data[start] == 45:  # '-'
            neg = True
            start += 1
            if start == end:
                return i
        value = np.uint64(0)
        if end - start > 2 and data[start] == 48 and (data[start + 1] == 120 or data[start + 1] == 88):
            start += 2
            if end - start > 16:
                return i
            for j in range(start, end):
                c = data[j]
                if 48 <= c <= 57:
                    d = c - 48
                elif 97 <= c <= 102:
                    d = c - 87
                elif 65 <= c <= 70:
                    d = c - 55
                else:
                    return i
                value = value * np.uint64(16) + np.uint64(d)
        else:
            if end - start > 20:
                return i
            for j in range(start, end):
                c = data[j]
                if 48 <= c <= 57:
                    nv = value * np.uint64(10) + np.uint64(c - 48)
                    if nv < value:  # overflow
                        return i
                    value = nv
                else:
                    return i
        if neg:
            value = np.uint64(0) - value
        out[i] = value
        valid[i] = True
    return -1


class ColumnParseError(ValueError):
    """A cell that is not a valid value; ``row`` is 0-based within the column."""

    def __init__(self, column: str, row: int, text: str, expected: str = "a number") -> None:
        self.column, self.row, self.text = column, row, text
        super().__init__(f"column {column!r}: {text!r} is not {expected}")


def _as_string(arr: pa.Array) -> tuple[pa.Array, type]:
    """The array as (large_)string with the numpy dtype of its offsets."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type):
        return arr, np.int64
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr, np.int32


def parse_int_column(name: str, values: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> pa.Array:
    """Parse a string column of decimal / 0x-hex integers into ``typ`` (empty -> null).

    Raises ColumnParseError naming the first bad cell.
    """
    if pa.types.is_integer(values.type):
        return values.cast(typ, safe=False) if values.type != typ else values
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out_chunks = []
    base = 0
    for chunk in chunks:
        arr, off_type = _as_string(chunk)
        n = len(arr)
        bufs = arr.buffers()
        width = np.dtype(off_type).itemsize
        offsets = np.frombuffer(bufs[1], dtype=off_type, count=n + 1, offset=arr.offset * width)
        data = (
            np.frombuffer(bufs[2], dtype=np.uint8)
            if bufs[2] is not None
            else np.zeros(0, dtype=np.uint8)
        )
        out = np.empty(n, dtype=np.uint64)
        valid = np.empty(n, dtype=np.bool_)
        bad = _parse_int_buffers(offsets, data, out, valid)
        if bad >= 0:
            raise ColumnParseError(name, base + int(bad), arr[int(bad)].as_py())
        if arr.null_count:
            valid &= ~np.asarray(arr.is_null())
        if pa.types.is_signed_integer(typ):
            parsed = pa.array(out.view(np.int64), mask=~valid).cast(typ, safe=False)
        else:
            parsed = pa.array(out, mask=~valid).cast(typ, safe=False)
        out_chunks.append(parsed)
        base += n
    return pa.chunked_array(out_chunks, type=typ) if len(out_chunks) != 1 else out_chunks[0]


def normalize_enum_column(name: str, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Map accepted text/number forms of an enum column to the canonical names.

    Raises ColumnParseError for a value that is not accepted.
    """
    aliases = ENUM_ALIASES[name]
    if pa.types.is_integer(values.type):
        values = values.cast(pa.string())
    if isinstance(values, pa.ChunkedArray) and pa.types.is_dictionary(values.type):
        values = values.unify_dictionaries()
        chunks = [normalize_enum_column(name, c) for c in values.chunks]
        return pa.chunked_array(chunks, pa.string())
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = encoded.dictionary.to_pylist()
    mapped = []
    for i, text in enumerate(dictionary):
        key = text.strip() if isinstance(text, str) else text
        if key == "" or key is None:
            mapped.append(None)
            continue
        canon = aliases.get(key) or aliases.get(key.lower() if isinstance(key, str) else key)
        if canon is None:
            row = int(np.flatnonzero(np.asarray(encoded.indices.fill_null(-1)) == i)[0])
            names = sorted({v for v in aliases.values()})
            raise ColumnParseError(name, row, text, f"one of {', '.join(names)}")
        mapped.append(canon)
    return pc.take(pa.array(mapped, type=pa.string()), encoded.indices)


def _parse_tags(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Pool tags: numbers, or up to 4 ASCII characters (first one lowest, as the kernel
    sees the ULONG)."""
    from traceanalyzer.readers.text_common import parse_pool_tags

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    values, bad = parse_pool_tags(arr.cast(pa.string()))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ColumnParseError("tag", row, arr[row].as_py(), "a number or a 4-character pool tag")
    return values


def canonicalize_columns(table: pa.Table) -> pa.Table:
    """Cast every canonical column of ``table`` to its canonical type.

    Integer columns given as strings are parsed (decimal or hex); enum columns are
    normalised; ``event`` becomes dictionary-encoded; unknown columns are kept as-is.
    Raises ColumnParseError on a bad cell.
    """
    cols = []
    for name, col in zip(table.column_names, table.columns):
        typ = COLUMNS.get(name)
        if typ is None:
            cols.append(col)
        elif name == "event":
            col = col.cast(pa.string()) if not pa.types.is_dictionary(col.type) else col
            cols.append(pc.dictionary_encode(col) if not pa.types.is_dictionary(col.type) else col)
        elif name in ENUM_ALIASES:
            cols.append(normalize_enum_column(name, col))
        elif pa.types.is_integer(typ):
            if pa.types.is_null(col.type):
                cols.append(pa.nulls(len(col), typ))
            elif name == "tag" and not pa.types.is_integer(col.type):
                cols.append(_parse_tags(col))
            else:
                cols.append(parse_int_column(name, col, typ))
        else:
            cols.append(col.cast(typ) if col.type != typ else col)
    return pa.table(cols, names=table.column_names)


def count_time_disorder(table: pa.Table) -> int:
    """Rows whose time is earlier than the previous row of the same CPU, in file order
    (for readers whose rows come in file order; readers count ``time_disorder``).

    Within one CPU a trace is written in time order (per-CPU buffers), so any step back
    there is real disorder (clock trouble, a bad merge), not buffering.
    """
    if table.num_rows < 2 or "time_ns" not in table.column_names:
        return 0
    t = table.column("time_ns").to_numpy()
    if bool(np.all(t[1:] >= t[:-1])):
        return 0  # in order overall, so in order within every CPU
    if "cpu" in table.column_names:
        cpu = pc.fill_null(table.column("cpu").cast(pa.int64()), -1).to_numpy()
        order = np.argsort(cpu, kind="stable")
        t, cpu = t[order], cpu[order]
        same = cpu[1:] == cpu[:-1]
    else:
        same = np.ones(t.size - 1, dtype=bool)
    return int(np.count_nonzero(same & (t[1:] < t[:-1])))
