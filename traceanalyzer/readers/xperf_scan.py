"""Compiled line scan for xperf dumper text: lines, commas and event names of a byte block.

The dumper writes one event per line, fields separated by commas, the event type first.
:func:`scan_block` walks a block of UTF-8 bytes once (numba) and records, per non-empty
line, its number, its trimmed span, where its commas are and a hash of its event type
name. :class:`SpanCells` then hands out one field of many rows as an Arrow string array
(the same text ``pyarrow.compute.split_pattern(line, ",")`` would give), so the converters
of :mod:`traceanalyzer.readers.convert` see exactly the cells of the per-line path.

Lines the scan does not take (:attr:`LineScan.slow`) go through the reader's general path:
those with double quotes (a quoted cell may hold commas), ``Error`` lines, and lines whose
first or last character, or the end of their event name, is not plain ASCII (Arrow trims
Unicode whitespace there; the scan only ASCII blanks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numba import njit

#: Byte classes of the scan: 1 comma, 2 newline, 3 double quote.
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[ord(",")] = 1
_CLASS[ord("\n")] = 2
_CLASS[ord('"')] = 3


@njit(cache=True, nogil=True)
def _separators(data, table, commas, newlines, quotes):  # pragma: no cover - compiled
    """Positions of every comma, newline and quote of ``data``; returns the three counts."""
    c = 0
    n_nl = 0
    n_q = 0
    for k in range(data.size):
        t = table[data[k]]
        if t != 0:
            if t == 1:
                commas[c] = k
                c += 1
            elif t == 2:
                newlines[n_nl] = k
                n_nl += 1
            else:
                quotes[n_q] = k
                n_q += 1
    return c, n_nl, n_q


@njit(cache=True, inline="always")
def _blank(b):  # pragma: no cover - compiled
    return b == 32 or (9 <= b <= 13)


@njit(cache=True, inline="always")
def _same(data, a, b, length):  # pragma: no cover - compiled
    for m in range(length):
        if data[a + m] != data[b + m]:
            return False
    return True


@njit(cache=True, inline="always")
def _span(start, end, comma_base, n_fields, commas, i, index):  # pragma: no cover - compiled
    """Byte span of field ``index`` of line ``i`` (the line has more than ``index`` fields)."""
    base = comma_base[i]
    a = start[i] if index == 0 else commas[base + index - 1] + 1
    b = end[i] if index == n_fields[i] - 1 else commas[base + index]
    return a, b


_TABLE_SLOTS = 1024  # open addressing table of event type names (power of two)
_MAX_NAMES = 512  # distinct event type names per block taken by the scan; more: general path


@njit(cache=True, nogil=True)
def _lines(data, newlines, n_nl, commas, n_commas, quotes, n_quotes, first_line,
           numbers, start, end, comma_base, n_fields, code, quoted,
           slots, name_start, name_len, name_hash):  # pragma: no cover - compiled
    """Per non-empty line: number, trimmed span, first comma, field count, whether it has
    a double quote, and the code of its event type name (:data:`ERROR_LINE` for a line
    starting with ``Error``).

    Names are told apart by their bytes (a hash only picks the slot) and coded in order of
    first appearance. Returns (lines written, distinct names, lines the scan cannot read:
    a first or last character, or the end of the name, outside printable ASCII, where
    Arrow's Unicode trimming could differ; or more than _MAX_NAMES names).
    """
    n = data.size
    out = 0
    c = 0
    q = 0
    names = 0
    odd_lines = 0
    line_start = 0
    for li in range(n_nl + 1):
        line_end = newlines[li] if li < n_nl else n
        if li == n_nl and line_start >= n:
            break
        s = line_start
        e = line_end
        while s < e and _blank(data[s]):
            s += 1
        while e > s and _blank(data[e - 1]):
            e -= 1
        while c < n_commas and commas[c] < line_start:
            c += 1
        while q < n_quotes and quotes[q] < line_start:
            q += 1
        if e > s:
            c_end = c
            while c_end < n_commas and commas[c_end] < line_end:
                c_end += 1
            numbers[out] = first_line + li
            start[out] = s
            end[out] = e
            comma_base[out] = c
            n_fields[out] = c_end - c + 1
            quoted[out] = q < n_quotes and quotes[q] < line_end
            first = data[s]
            last = data[e - 1]
            if first >= 128 or last >= 128 or first < 32 or last < 32:
                odd_lines += 1
            found = -1
            if (e - s >= 5 and data[s] == 69 and data[s + 1] == 114 and data[s + 2] == 114
                    and data[s + 3] == 111 and data[s + 4] == 114):  # "Error"
                found = -2
            ne = commas[c] if c < c_end else e
            while ne > s and _blank(data[ne - 1]):
                ne -= 1
            if ne > s and (data[ne - 1] >= 128 or data[ne - 1] < 32):
                odd_lines += 1
            if found == -1:
                length = ne - s
                h = np.uint64(14695981039346656037)
                for m in range(s, ne):
                    h = (h ^ np.uint64(data[m])) * np.uint64(1099511628211)
                slot = np.int64(h & np.uint64(_TABLE_SLOTS - 1))
                while slots[slot] != 0:
                    g = slots[slot] - 1
                    if name_hash[g] == h and name_len[g] == length and _same(data, s, name_start[g], length):
                        found = g
                        break
                    slot = (slot + 1) & (_TABLE_SLOTS - 1)
                if found < 0:
                    if names < _MAX_NAMES:
                        found = names
                        name_hash[names] = h
                        name_start[names] = s
                        name_len[names] = length
                        slots[slot] = names + 1
                        names += 1
                    else:
                        odd_lines += 1
            code[out] = found
            out += 1
        line_start = line_end + 1
    return out, names, odd_lines


@njit(cache=True, nogil=True)
def _field_spans(start, end, comma_base, n_fields, commas, rows, index, starts, ends):  # pragma: no cover - compiled
    """Byte span of field ``index`` of each row."""
    for r in range(rows.size):
        starts[r], ends[r] = _span(start, end, comma_base, n_fields, commas, rows[r], index)


@njit(cache=True, nogil=True)
def _gather(data, starts, ends, offsets, out):  # pragma: no cover - compiled
    pos = 0
    for i in range(starts.size):
        offsets[i] = pos
        for k in range(starts[i], ends[i]):
            out[pos] = data[k]
            pos += 1
    offsets[starts.size] = pos


@njit(cache=True, nogil=True)
def _gather_fields(data, start, end, comma_base, n_fields, commas, rows, fields, offsets, out):  # pragma: no cover - compiled
    """Fields ``fields`` of each row copied row by row (each line is read once, while it is
    in cache): field f's cells go to ``out[offsets[f, 0]:offsets[f, -1]]``.

    The first pass finds each cell's span (kept, not looked up again: that lookup cost
    more than the copy) and sizes each field's part; the second copies. ``offsets`` is
    (fields, rows+1).
    """
    n = rows.size
    nf = fields.size
    first = np.empty((n, nf), dtype=np.int64)
    for f in range(nf):
        offsets[f, 0] = 0
    for r in range(n):
        for f in range(nf):
            a, b = _span(start, end, comma_base, n_fields, commas, rows[r], fields[f])
            first[r, f] = a
            offsets[f, r + 1] = offsets[f, r] + (b - a)
    pos = 0
    for f in range(nf):
        shift = pos
        pos += offsets[f, n]
        for r in range(n + 1):
            offsets[f, r] += shift
    for r in range(n):
        for f in range(nf):
            a = first[r, f]
            k = offsets[f, r]
            for m in range(offsets[f, r + 1] - k):
                out[k + m] = data[a + m]
    return pos


def gather_strings(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """The byte spans ``[starts, ends)`` of ``data`` (valid UTF-8) as an Arrow string array."""
    n = len(starts)
    total = int((ends - starts).sum()) if n else 0
    offsets = np.empty(n + 1, dtype=np.int64 if total >= 1 << 31 else np.int32)
    out = np.empty(max(total, 1), dtype=np.uint8)
    _gather(data, starts, ends, offsets, out)
    typ = pa.large_string() if offsets.dtype == np.int64 else pa.string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


#: :attr:`LineScan.code` of a line starting with ``Error`` (xperf's decoding errors).
ERROR_LINE = -2


@dataclass
class LineScan:
    """The non-empty lines of one block (see :func:`scan_block`); index = kept line."""

    data: np.ndarray
    numbers: np.ndarray  #: file line number
    start: np.ndarray  #: trimmed of ASCII blanks
    end: np.ndarray
    comma_base: np.ndarray  #: index in ``commas`` of the line's first comma
    n_fields: np.ndarray
    commas: np.ndarray
    code: np.ndarray  #: index in ``names``, or :data:`ERROR_LINE`
    quoted: np.ndarray  #: the line has a double quote (a cell may hold commas)
    names: list[str]  #: event type names (trimmed), in order of first appearance
    odd_lines: int  #: lines the scan cannot read (see :func:`_lines`); the block needs the text path
    newlines: int  #: newline characters in the block

    def lines(self, rows: np.ndarray) -> pa.Array:
        """The lines of ``rows``, trimmed, as strings."""
        return gather_strings(self.data, self.start[rows], self.end[rows])


def scan_block(data: np.ndarray, first_line: int) -> LineScan:
    """Scan a block of UTF-8 bytes (cut at a line end, or the file's last bytes)."""
    n = data.size
    commas = np.empty(n + 1, dtype=np.int64)
    newlines = np.empty(n + 1, dtype=np.int64)
    quotes = np.empty(n + 1, dtype=np.int64)
    n_c, n_nl, n_q = _separators(data, _CLASS, commas, newlines, quotes)
    commas = commas[:n_c]
    newlines = newlines[:n_nl]
    quotes = quotes[:n_q]
    size = n_nl + 1
    numbers, start, end, comma_base, n_fields = (np.empty(size, dtype=np.int64) for _ in range(5))
    code = np.empty(size, dtype=np.int32)
    quoted = np.empty(size, dtype=np.bool_)
    slots = np.zeros(_TABLE_SLOTS, dtype=np.int64)
    name_start = np.empty(_MAX_NAMES, dtype=np.int64)
    name_len = np.empty(_MAX_NAMES, dtype=np.int64)
    name_hash = np.empty(_MAX_NAMES, dtype=np.uint64)
    count, n_names, odd = _lines(data, newlines, n_nl, commas, n_c, quotes, n_q, first_line,
                                 numbers, start, end, comma_base, n_fields, code, quoted,
                                 slots, name_start, name_len, name_hash)
    names = [bytes(data[name_start[k]:name_start[k] + name_len[k]]).decode("utf-8") for k in range(n_names)]
    k = slice(0, count)
    return LineScan(data, numbers[k], start[k], end[k], comma_base[k], n_fields[k], commas,
                    code[k], quoted[k], names, int(odd), int(n_nl))


class SpanCells:
    """Rows of one event type as fields, read from the scan's byte spans on demand."""

    def __init__(self, scan: LineScan, rows: np.ndarray) -> None:
        self.scan = scan
        self.rows = rows
        self.requested: set[int] = set()  #: the fields asked for (what to prefetch next time)
        self._ready: dict[int, pa.Array] = {}

    def prefetch(self, fields: set[int]) -> None:
        """Read these fields of every row in one pass over the lines (see :func:`_gather_fields`)."""
        if not fields or not len(self.rows):
            return
        s = self.scan
        wanted = np.array(sorted(fields), dtype=np.int64)
        offsets = np.empty((len(wanted), len(self.rows) + 1), dtype=np.int64)
        rows_bytes = int((s.end[self.rows] - s.start[self.rows]).sum())
        out = np.empty(max(rows_bytes, 1), dtype=np.uint8)
        _gather_fields(s.data, s.start, s.end, s.comma_base, s.n_fields, s.commas, self.rows, wanted, offsets, out)
        buf = pa.py_buffer(out)
        n = len(self.rows)
        for f, index in enumerate(wanted.tolist()):
            lo, hi = int(offsets[f, 0]), int(offsets[f, n])
            rel = (offsets[f] - lo).astype(np.int32)
            self._ready[index] = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(rel), buf.slice(lo, hi - lo)])

    def __len__(self) -> int:
        return len(self.rows)

    def field_counts(self) -> np.ndarray:
        return self.scan.n_fields[self.rows]

    def take(self, sel: np.ndarray) -> "SpanCells":
        return self._subset(sel)

    def filter(self, keep: np.ndarray) -> "SpanCells":
        return self._subset(keep)

    def _subset(self, sel: np.ndarray) -> "SpanCells":
        sub = SpanCells(self.scan, self.rows[sel])
        sub.requested = self.requested  # shared: what the whole group reads
        if self._ready:
            picked = pa.array(sel) if sel.dtype == np.bool_ else pa.array(sel, pa.int64())
            for index, arr in self._ready.items():
                sub._ready[index] = arr.filter(picked) if sel.dtype == np.bool_ else arr.take(picked)
        return sub

    def column(self, index: int) -> pa.Array:
        """Field ``index`` of every row, untrimmed (as split on commas); rows have it."""
        self.requested.add(index)
        if index in self._ready:
            return self._ready[index]
        s = self.scan
        starts = np.empty(len(self.rows), dtype=np.int64)
        ends = np.empty(len(self.rows), dtype=np.int64)
        _field_spans(s.start, s.end, s.comma_base, s.n_fields, s.commas, self.rows, index, starts, ends)
        return gather_strings(s.data, starts, ends)
