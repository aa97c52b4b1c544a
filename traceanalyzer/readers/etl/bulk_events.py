"""Mapped TraceLogging events decoded a whole group at a time, whatever their schema.

All events of one provider with one schema share a *plan*: per field, how its length is
found (fixed size, zero-terminated ANSI or UTF-16 string, a UINT16 count of bytes or of
fixed-size elements, a SID). A compiled walk (:func:`field_spans`) finds every field's
byte span in every event of the group, without a Python object per event. Then:

* plain numbers (the usual MdlTrace call: pointers, sizes, enums as numbers) are
  gathered into one ``(n, size)`` array per field and viewed as numpy integers;
* every other field (strings, counted and binary data, arrays, SIDs, GUIDs, FILETIME,
  booleans, characters) is *dictionary-encoded* by its bytes: a hash per span, the
  distinct values decoded once each by the per-event decoder (``decode_field``; callers,
  images, status and enum names come from small vocabularies); a candidate value is
  compared byte for byte, so a hash collision cannot merge two values.

Events whose spans do not fit their payload go back to the per-event path (which counts
them); schemas with structs stay on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import pyarrow as pa

from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES
from traceanalyzer.readers.convert import Converted, integers_to_column, value_for_column
from traceanalyzer.readers.etl import tracelogging as tl
from traceanalyzer.readers.etl.columns import ORDER_KEY, int_column
from traceanalyzer.readers.etl.walk import _i64
from traceanalyzer.readers.field_map import EventMapping

#: Columns the EVENT_HEADER and the buffer supply; a payload field never overrides them.
HEADER_COLUMNS = frozenset({"time_ns", "event", "cpu"})

#: Groups smaller than this go through the per-event path (not worth the setup).
BULK_MIN_EVENTS = 32

# span kinds of a plan step (arg: bytes, character width, or element size)
FIXED, ZSTRING, COUNTED, SID = 0, 1, 2, 3

_NP = {"b": "i1", "B": "u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4", "q": "<i8",
       "Q": "<u8", "f": "<f4", "d": "<f8"}
#: in-types of 16 fixed bytes decoded by value (GUID, SYSTEMTIME)
_SIXTEEN = (tl.IN_GUID, tl.IN_SYSTEMTIME)
_COUNTED_BYTES = (tl.IN_BINARY, tl.IN_COUNTEDBINARY, tl.IN_COUNTEDSTRING, tl.IN_COUNTEDANSISTRING)


class EventClass:
    """What one (provider, schema) pair decodes to; cached by the walk's hash."""

    __slots__ = ("label", "schema", "mapping", "provider", "_plan")

    def __init__(self, label: str, schema: tl.Schema | None, mapping: EventMapping | None, provider: str) -> None:
        self.label, self.schema, self.mapping, self.provider = label, schema, mapping, provider
        self._plan: Plan | None | bool = False

    def column(self, field_name: str) -> str | None:
        """The canonical payload column of a field, or None (not mapped, or a header column)."""
        col = self.mapping.column(field_name) if self.mapping is not None else None
        return col if col is not None and col not in HEADER_COLUMNS else None

    def plan(self) -> "Plan | None":
        """The schema's bulk plan (None: this schema stays on the per-event path)."""
        if self._plan is False:
            self._plan = compile_plan(self.schema) if self.schema is not None else None
        return self._plan  # type: ignore[return-value]


@dataclass(frozen=True)
class Plan:
    """Per field: span kind and argument, and the numpy type when it is a plain number
    (None: decoded by value through the dictionary)."""

    kinds: np.ndarray
    args: np.ndarray
    numeric: tuple[str | None, ...]


def _step(f: tl.Field) -> tuple[int, int, str | None] | None:
    """(kind, arg, numpy type or None) of one field; None when it cannot be walked."""
    t = f.in_type
    fmt = tl.FIXED.get(t)
    size = np.dtype(_NP[fmt]).itemsize if fmt else (16 if t in _SIXTEEN else None)
    if f.members or t == tl.IN_STRUCT:
        return None
    if f.count == "custom":
        return COUNTED, 1, None
    if f.count == "const":
        return (FIXED, size * f.const_count, None) if size is not None else None
    if f.count == "var":
        return (COUNTED, size, None) if size is not None else None
    if fmt is not None:
        special = t in (tl.IN_FILETIME, tl.IN_BOOL32) or f.out_type & 0x7F in (tl.OUT_STRING, tl.OUT_BOOLEAN)
        return FIXED, size, None if special else _NP[fmt]
    if t in _SIXTEEN:
        return FIXED, 16, None
    if t == tl.IN_NULL:
        return FIXED, 0, None
    if t == tl.IN_UNICODESTRING:
        return ZSTRING, 2, None
    if t == tl.IN_ANSISTRING:
        return ZSTRING, 1, None
    if t in _COUNTED_BYTES:
        return COUNTED, 1, None
    if t == tl.IN_SID:
        return SID, 0, None
    return None


def compile_plan(schema: tl.Schema) -> Plan | None:
    """The bulk plan of ``schema``, or None when a field cannot be walked in bulk."""
    steps = [_step(f) for f in schema.fields]
    if any(s is None for s in steps):
        return None
    return Plan(np.array([s[0] for s in steps], np.int64), np.array([s[1] for s in steps], np.int64),
                tuple(s[2] for s in steps))


@nb.njit(cache=True)
def field_spans(data, starts, ends, kinds, args, offs, lens, ok):
    """Byte span ``[offs, offs + lens)`` of every field of every event (payload
    ``[starts, ends)``); ``ok[i]`` False when event i's fields do not fit its payload."""
    m = kinds.shape[0]
    for i in range(starts.shape[0]):
        p = starts[i]
        end = ends[i]
        good = p >= 0
        for j in range(m):
            if not good:
                break
            k = kinds[j]
            a = args[j]
            q = p
            if k == 0:
                q = p + a
            elif k == 1:
                while True:
                    if q + a > end:
                        good = False
                        break
                    zero = True
                    for t in range(a):
                        if data[q + t] != 0:
                            zero = False
                    q += a
                    if zero:
                        break
            elif k == 2:
                if p + 2 > end:
                    good = False
                else:
                    q = p + 2 + (np.int64(data[p]) | (np.int64(data[p + 1]) << 8)) * a
            else:
                if p + 8 > end:
                    good = False
                else:
                    q = p + 8 + 4 * np.int64(data[p + 1])
            if q > end:
                good = False
            offs[i, j] = p
            lens[i, j] = q - p
            p = q
        ok[i] = good


@nb.njit(cache=True)
def dictionary_codes(data, offs, lens, codes, firsts):
    """Dictionary-encode spans by their bytes in one pass: ``codes[i]`` = index of span
    i's value, ``firsts[c]`` = first row holding value c; returns the number of values.
    An open-addressing table keyed by an FNV-1a hash (8 bytes at a time); a candidate is
    compared byte for byte, so a hash collision never merges two values."""
    n = offs.shape[0]
    size = 64
    while size < 2 * n:
        size *= 2
    slots = np.full(size, -1, np.int64)
    mask = size - 1
    distinct = 0
    for i in range(n):
        o = offs[i]
        length = lens[i]
        h = np.uint64(14695981039346656037) ^ np.uint64(length)
        k = o
        while k + 8 <= o + length:
            h = (h ^ np.uint64(_i64(data, k))) * np.uint64(1099511628211)
            k += 8
        while k < o + length:
            h = (h ^ np.uint64(data[k])) * np.uint64(1099511628211)
            k += 1
        s = np.int64(h >> np.uint64(40)) & mask  # FNV's low bits see only the low bits of each word
        while True:
            c = slots[s]
            if c < 0:
                slots[s] = distinct
                firsts[distinct] = i
                codes[i] = distinct
                distinct += 1
                break
            r = firsts[c]
            if lens[r] == length:
                a = offs[r]
                same = True
                for q in range(length):
                    if data[a + q] != data[o + q]:
                        same = False
                        break
                if same:
                    codes[i] = c
                    break
            s = (s + 1) & mask
    return distinct


@nb.njit(cache=True)
def gather_fixed(data, offs, fields, sizes, out):
    """One pass over the events: row i of ``out`` = the bytes of fields ``fields``
    (``sizes[k]`` bytes each, at ``offs[i, fields[k]]``) side by side."""
    for i in range(offs.shape[0]):
        c = 0
        for k in range(fields.shape[0]):
            o = offs[i, fields[k]]
            for b in range(sizes[k]):
                out[i, c + b] = data[o + b]
            c += sizes[k]


def _numbers(column: str, values: np.ndarray) -> Converted:
    typ = COLUMNS[column]
    if column in ENUM_ALIASES or column == "status" or pa.types.is_string(typ):
        uniq, inverse = np.unique(values, return_inverse=True)
        converted = [value_for_column(column, v) for v in uniq.tolist()]
        names = pa.array([v for v, _bad in converted], pa.string())
        bad = np.array([b for _v, b in converted], dtype=bool)[inverse]
        return Converted(names.take(pa.array(inverse.astype(np.int32))), bad)
    return integers_to_column(pa.array(values), column)


def _by_value(data: np.ndarray, f: tl.Field, column: str, offs: np.ndarray, lens: np.ndarray,
              ptr: int) -> tuple[Converted, list[Any]]:
    """``column`` from spans decoded once per distinct value (and the decoded values, by
    row, of the bad ones)."""
    inverse = np.empty(len(offs), np.int32)
    firsts = np.empty(len(offs), np.int64)
    distinct = dictionary_codes(data, np.ascontiguousarray(offs), np.ascontiguousarray(lens), inverse, firsts)
    first = firsts[:distinct]
    decoded = [tl.decode_field(f, bytes(data[o:o + n]), ptr) for o, n in zip(offs[first].tolist(), lens[first].tolist())]
    converted = [value_for_column(column, v) for v in decoded]
    array = pa.array([v for v, _bad in converted], COLUMNS.get(column, pa.string())).take(pa.array(inverse))
    bad = np.array([b for _v, b in converted], dtype=bool)[inverse]
    return Converted(array, bad), [decoded[k] for k in inverse[bad].tolist()[:1]]


def bulk_events(data: np.ndarray, rec: dict[str, np.ndarray], members: np.ndarray, cls: EventClass,
                time_base: Any, out: list[dict[str, pa.Array]],
                bad_values: Callable[[EventClass, str, str, int, int, Any], None],
                unmapped: Callable[[str, int], None] | None = None) -> np.ndarray:
    """Decode ``members`` in bulk into ``out`` when the class allows; returns the rest.

    ``bad_values(cls, column, field, count, record offset, first value)`` is told of
    values that do not fit their column (they are null); ``unmapped(field, n)`` of fields
    no column takes (as the per-event path counts them)."""
    plan = cls.plan() if cls.mapping is not None else None
    if plan is None or cls.mapping is None or cls.schema is None:
        return members
    n, m = len(members), len(plan.kinds)
    offs, lens, ok = np.zeros((n, m), np.int64), np.zeros((n, m), np.int64), np.zeros(n, np.bool_)
    field_spans(data, rec["a"][members], rec["pos"][members] + rec["size"][members], plan.kinds, plan.args,
                offs, lens, ok)
    done = members[ok]
    if len(done) < BULK_MIN_EVENTS:
        return members
    offs, lens = offs[ok], lens[ok]
    ptr = 8 if (rec["htype"][done] == 0x13).all() else 4
    pid, tid = rec["pid"][done], rec["tid"][done]
    chunk: dict[str, pa.Array] = {
        "time_ns": int_column(time_base.to_ns(rec["ts"][done]), None, pa.int64()),
        "event": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(done), np.int32)),
                                                pa.array([cls.mapping.canonical])),
        "cpu": int_column(rec["cpu"][done], None, pa.int32()),
        "pid": int_column(pid, pid >= 0, pa.int64()),
        "tid": int_column(tid, tid >= 0, pa.int64()),
        ORDER_KEY: int_column(rec["key"][done], None, pa.int64()),
    }
    skipped: list[str] = []
    bad: list[tuple[str, str, int, int, Any]] = []
    numeric = [j for j, t in enumerate(plan.numeric) if t is not None and cls.column(cls.schema.fields[j].name)]
    sizes = np.array([np.dtype(plan.numeric[j]).itemsize for j in numeric], np.int64)
    starts = dict(zip(numeric, np.cumsum(sizes) - sizes))
    raw = np.empty((len(done), int(sizes.sum())), np.uint8)
    gather_fixed(data, offs, np.array(numeric, np.int64), sizes, raw)
    for j, f in enumerate(cls.schema.fields):
        col = cls.column(f.name)
        if col is None:
            skipped.append(f.name)
            continue
        np_type = plan.numeric[j]
        if np_type is not None:
            at = int(starts[j])
            values = np.ascontiguousarray(raw[:, at:at + np.dtype(np_type).itemsize]).view(np_type).reshape(len(done))
            res = _numbers(col, values)
            first_values = [values[res.bad][:1].tolist()[0]] if res.bad.any() else []
        else:
            res, first_values = _by_value(data, f, col, offs[:, j], lens[:, j], ptr)
        if res.bad.any():
            row = int(np.flatnonzero(res.bad)[0])
            bad.append((col, f.name, int(res.bad.sum()), int(rec["pos"][done][row]), first_values[0]))
        chunk[col] = res.array
    for col, name, count, pos, value in bad:
        bad_values(cls, col, name, count, pos, value)
    out.append(chunk)
    if unmapped is not None:
        for name in skipped:
            unmapped(name, len(done))
    return members[~ok]
