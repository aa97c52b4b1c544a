"""Mapped TraceLogging events decoded a whole group at a time, whatever their schema.

All events of one provider with one schema share a *plan*: per field, how its length is
found (fixed size, zero-terminated ANSI or UTF-16 string, a UINT16 count of bytes or of
fixed-size elements, a SID). One compiled pass over the events of the group
(:func:`decode_group`), without a Python object per event, walks each event's fields and
at once:

* copies plain numbers (the usual MdlTrace call: pointers, sizes, enums as numbers) side
  by side into one ``(n, bytes)`` array, viewed per field as numpy integers;
* *dictionary-encodes* every other field (strings, counted and binary data, arrays, SIDs,
  GUIDs, FILETIME, booleans, characters) by its bytes: a hash per span into a table per
  field; the distinct values are then decoded once each by the per-event decoder
  (``decode_field``; callers, images, status and enum names come from small
  vocabularies). A candidate value is compared byte for byte, so a hash collision cannot
  merge two values.

No per-field span arrays are built (:func:`field_spans` is the same walk, kept for tests
and diagnostics): each event's bytes are read once, while they are in cache.

Events whose spans do not fit their payload go back to the per-event path (which counts
them); schemas with structs stay on it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


@nb.njit(cache=True, inline="always")
def _span_end(data, p, end, k, a):
    """End of the field of span kind ``k`` (argument ``a``) starting at ``p``; -1 when it
    does not fit before ``end``."""
    q = p
    if k == 0:
        q = p + a
    elif k == 1:
        while True:
            if q + a > end:
                return -1
            zero = True
            for t in range(a):
                if data[q + t] != 0:
                    zero = False
            q += a
            if zero:
                break
    elif k == 2:
        if p + 2 > end:
            return -1
        q = p + 2 + (np.int64(data[p]) | (np.int64(data[p + 1]) << 8)) * a
    else:
        if p + 8 > end:
            return -1
        q = p + 8 + 4 * np.int64(data[p + 1])
    return q if q <= end else -1


@nb.njit(cache=True, inline="always")
def _walk_event(data, p, end, kinds, args, p_at, q_at):
    """Field j of the event whose payload is ``[p, end)`` spans ``[p_at[j], q_at[j])``;
    False when the fields do not fit the payload (``p`` < 0: no payload)."""
    if p < 0:
        return False
    for j in range(kinds.shape[0]):
        q = _span_end(data, p, end, kinds[j], args[j])
        if q < 0:
            return False
        p_at[j] = p
        q_at[j] = q
        p = q
    return True


@nb.njit(cache=True)
def field_spans(data, starts, ends, kinds, args, offs, lens, ok):
    """Byte span ``[offs, offs + lens)`` of every field of every event (payload
    ``[starts, ends)``); ``ok[i]`` False when event i's fields do not fit its payload."""
    m = kinds.shape[0]
    p_at = np.zeros(m, np.int64)
    q_at = np.zeros(m, np.int64)
    for i in range(starts.shape[0]):
        ok[i] = _walk_event(data, starts[i], ends[i], kinds, args, p_at, q_at)
        if ok[i]:
            for j in range(m):
                offs[i, j] = p_at[j]
                lens[i, j] = q_at[j] - p_at[j]


@nb.njit(cache=True, inline="always")
def _fnv_span(data, o, length):
    h = np.uint64(14695981039346656037) ^ np.uint64(length)
    k = o
    while k + 8 <= o + length:
        h = (h ^ np.uint64(_i64(data, k))) * np.uint64(1099511628211)
        k += 8
    while k < o + length:
        h = (h ^ np.uint64(data[k])) * np.uint64(1099511628211)
        k += 1
    return h


@nb.njit(cache=True, inline="always")
def _code(data, o, length, slots, first_off, first_len, distinct):
    """The dictionary code of span ``[o, o + length)`` in the open-addressing table
    ``slots`` (values: their first span in ``first_off``/``first_len``), added as code
    ``distinct`` when new. A candidate is compared byte for byte, so a hash collision
    never merges two values."""
    mask = slots.shape[0] - 1
    s = np.int64(_fnv_span(data, o, length) >> np.uint64(40)) & mask  # FNV's low bits see only the low bits of each word
    while True:
        c = slots[s]
        if c < 0:
            slots[s] = distinct
            first_off[distinct] = o
            first_len[distinct] = length
            return distinct
        if first_len[c] == length:
            a = first_off[c]
            same = True
            for q in range(length):
                if data[a + q] != data[o + q]:
                    same = False
                    break
            if same:
                return c
        s = (s + 1) & mask


def _table_size(n: int) -> int:
    size = 64
    while size < 2 * n:
        size *= 2
    return size


@nb.njit(cache=True)
def _dictionary_codes(data, offs, lens, codes, firsts, first_off, first_len, slots):
    distinct = 0
    for i in range(offs.shape[0]):
        c = _code(data, offs[i], lens[i], slots, first_off, first_len, distinct)
        codes[i] = c
        if c == distinct:
            firsts[distinct] = i
            distinct += 1
    return distinct


def dictionary_codes(data: np.ndarray, offs: np.ndarray, lens: np.ndarray, codes: np.ndarray,
                     firsts: np.ndarray) -> int:
    """Dictionary-encode spans by their bytes in one pass: ``codes[i]`` = index of span
    i's value, ``firsts[c]`` = first row holding value c; returns the number of values
    (an open-addressing table keyed by an FNV-1a hash, 8 bytes at a time)."""
    n = len(offs)
    return _dictionary_codes(data, offs, lens, codes, firsts, np.empty(n, np.int64), np.empty(n, np.int64),
                             np.full(_table_size(n), -1, np.int64))


@nb.njit(cache=True, nogil=True)
def decode_group(data, starts, ends, kinds, args, roles, slots_of, raw, codes, first_off, first_len,
                 tables, distinct, ok):
    """One pass over the events of one schema: walk each event's fields (as
    :func:`field_spans`), then, when all fit (``ok[i]``), copy field j's bytes into row i of
    ``raw`` at column ``slots_of[j]`` (``roles[j]`` 1: a plain number) or put its code
    among the distinct values of string column ``s = slots_of[j]`` in ``codes[s, i]``
    (``roles[j]`` 2: dictionary-encoded by bytes; ``tables[s]`` is that column's hash
    table, ``first_off[s]``/``first_len[s]`` its values' spans, ``distinct[s]`` their
    number). ``roles[j]`` 0: the field is walked over, not kept."""
    m = kinds.shape[0]
    p_at = np.empty(m, np.int64)
    q_at = np.empty(m, np.int64)
    for i in range(starts.shape[0]):
        ok[i] = _walk_event(data, starts[i], ends[i], kinds, args, p_at, q_at)
        if not ok[i]:
            continue
        for j in range(m):
            r = roles[j]
            if r == 1:
                at = slots_of[j]
                o = p_at[j]
                for b in range(q_at[j] - o):
                    raw[i, at + b] = data[o + b]
            elif r == 2:
                s = slots_of[j]
                c = _code(data, p_at[j], q_at[j] - p_at[j], tables[s], first_off[s], first_len[s], distinct[s])
                codes[s, i] = c
                if c == distinct[s]:
                    distinct[s] += 1


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
    return _from_codes(data, f, column, inverse, offs[first], lens[first], ptr)


def _from_codes(data: np.ndarray, f: tl.Field, column: str, codes: np.ndarray, value_offs: np.ndarray,
                value_lens: np.ndarray, ptr: int) -> tuple[Converted, list[Any]]:
    """``column`` from dictionary codes whose values are the spans ``value_offs/lens``,
    each decoded once (and the decoded values, by row, of the bad ones)."""
    decoded = [tl.decode_field(f, bytes(data[o:o + n]), ptr) for o, n in zip(value_offs.tolist(), value_lens.tolist())]
    converted = [value_for_column(column, v) for v in decoded]
    array = pa.array([v for v, _bad in converted], COLUMNS.get(column, pa.string())).take(pa.array(codes))
    bad = np.array([b for _v, b in converted], dtype=bool)[codes]
    return Converted(array, bad), [decoded[k] for k in codes[bad][:1].tolist()]


@dataclass
class Decoded:
    """What :func:`decode_bulk` walked out of a class's events, for :func:`bulk_events`."""

    plan: Plan
    columns: list[str | None]
    slots_of: np.ndarray
    raw: np.ndarray
    codes: np.ndarray
    first_off: np.ndarray
    first_len: np.ndarray
    distinct: np.ndarray
    ok: np.ndarray


def decode_bulk(data: np.ndarray, rec: dict[str, np.ndarray], members: np.ndarray,
                cls: EventClass) -> Decoded | None:
    """The compiled walk of ``members`` (:func:`decode_group`); None when the class has no
    bulk plan. Touches nothing shared: classes may be walked on several threads."""
    plan = cls.plan() if cls.mapping is not None else None
    if plan is None or cls.mapping is None or cls.schema is None:
        return None
    n, m = len(members), len(plan.kinds)
    columns = [cls.column(f.name) for f in cls.schema.fields]
    roles, slots_of = np.zeros(m, np.int64), np.zeros(m, np.int64)
    width, strings = 0, []
    for j, col in enumerate(columns):
        if col is None:
            continue
        if plan.numeric[j] is not None:
            roles[j], slots_of[j] = 1, width
            width += int(plan.args[j])
        else:
            roles[j], slots_of[j] = 2, len(strings)
            strings.append(j)
    n_str = max(1, len(strings))
    raw = np.empty((n, max(1, width)), np.uint8)
    codes = np.empty((n_str, n), np.int32)
    first_off, first_len = np.empty((n_str, n), np.int64), np.empty((n_str, n), np.int64)
    distinct, ok = np.zeros(n_str, np.int64), np.zeros(n, np.bool_)
    decode_group(data, rec["a"][members], rec["pos"][members] + rec["size"][members], plan.kinds, plan.args,
                 roles, slots_of, raw, codes, first_off, first_len,
                 np.full((n_str, _table_size(n) if strings else 1), -1, np.int64), distinct, ok)
    return Decoded(plan, columns, slots_of, raw, codes, first_off, first_len, distinct, ok)


#: Events of one walk chunk from which the classes are walked by two threads.
PARALLEL_MIN_EVENTS = 1 << 15


def decode_bulk_all(data: np.ndarray, rec: dict[str, np.ndarray],
                    groups: list[tuple[EventClass, np.ndarray]]) -> list[Decoded | None]:
    """:func:`decode_bulk` of each (class, members), on two threads when there are
    several classes and :data:`PARALLEL_MIN_EVENTS` events (the walk releases the GIL)."""
    if len(groups) < 2 or sum(len(m) for _c, m in groups) < PARALLEL_MIN_EVENTS:
        return [decode_bulk(data, rec, members, cls) for cls, members in groups]
    with ThreadPoolExecutor(2, thread_name_prefix="traceanalyzer-etl-decode") as pool:
        return list(pool.map(lambda group: decode_bulk(data, rec, group[1], group[0]), groups))


def bulk_events(data: np.ndarray, rec: dict[str, np.ndarray], members: np.ndarray, cls: EventClass,
                got: Decoded | None, time_base: Any, out: list[dict[str, pa.Array]],
                bad_values: Callable[[EventClass, str, str, int, int, Any], None],
                unmapped: Callable[[str, int], None] | None = None) -> np.ndarray:
    """The columns of ``members`` (``got``: their walk by :func:`decode_bulk`, None when
    the class has no bulk plan) into ``out``; returns the members left to the per-event
    path.

    ``bad_values(cls, column, field, count, record offset, first value)`` is told of
    values that do not fit their column (they are null); ``unmapped(field, n)`` of fields
    no column takes (as the per-event path counts them)."""
    if got is None:
        return members
    plan, columns, slots_of, ok = got.plan, got.columns, got.slots_of, got.ok
    raw, codes, first_off, first_len, distinct = got.raw, got.codes, got.first_off, got.first_len, got.distinct
    fields = cls.schema.fields
    n = len(members)
    done = members[ok]
    if len(done) < BULK_MIN_EVENTS:
        return members
    if len(done) < n:
        raw, codes = raw[ok], codes[:, ok]
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
    for j, f in enumerate(fields):
        col = columns[j]
        if col is None:
            skipped.append(f.name)
            continue
        np_type = plan.numeric[j]
        if np_type is not None:
            at = int(slots_of[j])
            values = np.ascontiguousarray(raw[:, at:at + np.dtype(np_type).itemsize]).view(np_type).reshape(len(done))
            res = _numbers(col, values)
            first_values = [values[res.bad][:1].tolist()[0]] if res.bad.any() else []
        else:
            k = int(slots_of[j])
            d = int(distinct[k])
            res, first_values = _from_codes(data, f, col, codes[k], first_off[k, :d], first_len[k, :d], ptr)
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
