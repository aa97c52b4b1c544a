"""Compiled walk over the records of many WMI buffers (numba).

The walk never creates a Python object per record: :func:`count_records` sizes the
output, :func:`fill_records` writes one row per record into preallocated numpy arrays.
Fixed layouts (CSwitch, Thread) are decoded here; the rest is classified so the Python
side can decode the rare records (Process, Image, provider events) by index.

Segments are byte ranges ``[start, end)`` of the records of one buffer inside ``data``
(the memory-mapped file, or a decompressed copy of a compressed buffer).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numba as nb
import numpy as np

from traceanalyzer.readers.etl import layout as L

_K_SKIP, _K_CSWITCH, _K_THREAD, _K_PROCESS = L.K_SKIP, L.K_CSWITCH, L.K_THREAD, L.K_PROCESS
_K_IMAGE, _K_EVENT, _K_CLASSIC = L.K_IMAGE, L.K_EVENT, L.K_CLASSIC
_K_KERNEL_OTHER, _K_WPP, _K_OTHER = L.K_KERNEL_OTHER, L.K_WPP, L.K_OTHER

class TimeBaseLike(Protocol):
    """Clock origin (raw ticks), integer ns per tick (0 if not whole) and ticks per second."""

    origin: int
    mult: int
    freq: int


#: Output columns of :func:`fill_records` and their dtypes.
RECORD_DTYPES: dict[str, np.dtype] = {
    "pos": np.dtype(np.int64),      # absolute offset of the record in ``data``
    "size": np.dtype(np.int32),     # record size (unaligned)
    "htype": np.dtype(np.uint8),    # header type
    "hsize": np.dtype(np.uint8),    # header size (payload starts at pos + hsize)
    "kind": np.dtype(np.uint8),     # layout.K_* class
    "hook": np.dtype(np.uint16),    # kernel: group << 8 | opcode; provider events: opcode
    "version": np.dtype(np.uint16),
    "seg": np.dtype(np.int32),      # segment (buffer) index
    "tid": np.dtype(np.int64),      # -1 = not in the header
    "pid": np.dtype(np.int64),
    "ts": np.dtype(np.int64),       # raw clock value (QPC / FILETIME / cycles)
    "a": np.dtype(np.int64),        # CSwitch NewThreadId / Thread ProcessId / event: user-data offset
    "b": np.dtype(np.int64),        # CSwitch OldThreadId / Thread ThreadId / event: schema off<<16|len
    "c": np.dtype(np.int64),        # event: traits offset<<16|len
    "h": np.dtype(np.uint64),       # event: hash of provider GUID + TraceLogging schema
    "key": np.dtype(np.int64),      # stream order: cpu << 40 | index in that CPU's records
}


@nb.njit(cache=True, inline="always")
def _u16(d, p):
    return np.int64(d[p]) | (np.int64(d[p + 1]) << 8)


@nb.njit(cache=True, inline="always")
def _u32(d, p):
    return np.int64(d[p]) | (np.int64(d[p + 1]) << 8) | (np.int64(d[p + 2]) << 16) | (np.int64(d[p + 3]) << 24)


@nb.njit(cache=True, inline="always")
def _i64(d, p):
    lo = np.uint64(_u32(d, p))
    hi = np.uint64(_u32(d, p + 4))
    return np.int64(lo | (hi << np.uint64(32)))


@nb.njit(cache=True, inline="always")
def _id(v):
    return np.int64(-1) if v == 0xFFFFFFFF else v


@nb.njit(cache=True)
def _header(d, p, end):
    """(header type, header size, record size, ok) of the record at ``p``; size 0 = end."""
    if p + 4 > end:
        return 0, 0, 0, True
    m = _u32(d, p)
    if m == 0xFFFFFFFF:
        return 0, 0, 0, True
    flags = m >> 24
    htype = (m >> 16) & 0xFF
    if (flags & 0xC0) == 0xC0:
        if htype == 0x01 or htype == 0x02:
            hsize = 0x20
        elif htype == 0x03 or htype == 0x04:
            hsize = 0x18
        elif htype == 0x10 or htype == 0x11:
            hsize = 0x10
        elif htype == 0x12 or htype == 0x13:
            hsize = 0x50
        elif htype == 0x0A or htype == 0x14:
            hsize = 0x30
        elif htype == 0x0B or htype == 0x15:
            hsize = 0x38
        elif htype == 0x0D:
            hsize = 0x50
        elif htype == 0x0C or htype == 0x0E:
            hsize = 0x08
        else:
            return htype, 0, 0, False
    elif (flags & 0xD0) == 0x90:
        htype = 0x0F
        hsize = 0x08
    else:
        return htype, 0, 0, False
    if htype <= 0x04 or htype == 0x10 or htype == 0x11:
        if p + 8 > end:
            return htype, hsize, 0, False
        size = _u16(d, p + 4)
    else:
        size = m & 0xFFFF
    if size < hsize or p + size > end:
        return htype, hsize, size, False
    return htype, hsize, size, True


@nb.njit(cache=True, inline="always")
def _bulk_code(data, p, htype, hsize, size):
    """0 CSwitch, 1-4 Thread Start/End/DCStart/DCEnd (fixed layouts decoded in bulk),
    else -1. Kernel headers only (SYSTEM, COMPACT, PERFINFO)."""
    if (htype > 0x04 and htype != 0x10 and htype != 0x11) or data[p + 7] != 0x05 or size - hsize < 8:
        return -1
    opcode = data[p + 6]
    if opcode == 36:
        return 0
    if opcode >= 1 and opcode <= 4:
        return opcode
    return -1


#: ``bad`` codes of :func:`count_records`.
BAD_RECORD, BAD_END_MARKER = 1, 2


@nb.njit(cache=True, nogil=True)
def count_records(data, starts, ends, counts, bulk, bad, stops):
    """Records per segment into ``counts`` (of which ``bulk`` CSwitch/Thread).

    ``bad[i]`` = BAD_RECORD when segment i ends in a record that does not decode (unknown
    header, size shorter than its header or beyond the filled length), BAD_END_MARKER when
    an end marker (0xFFFFFFFF) or fewer than 4 bytes stop the walk before the filled
    length (ETW's records end exactly there: the records between were lost, even when
    0xFF follows, as it does when bytes were cut out of the buffer); ``stops[i]`` is
    where the walk stopped."""
    for i in range(starts.shape[0]):
        p = starts[i]
        end = ends[i]
        n = 0
        nb_ = 0
        while True:
            htype, hsize, size, ok = _header(data, p, end)
            if not ok:
                bad[i] = BAD_RECORD
                break
            if size == 0:
                if p < end:  # ETW's walk ends exactly at the filled length
                    bad[i] = BAD_END_MARKER
                break
            n += 1
            if _bulk_code(data, p, htype, hsize, size) >= 0:
                nb_ += 1
            p += (size + 7) & ~7
        counts[i] = n
        bulk[i] = nb_
        stops[i] = p


@nb.njit(cache=True)
def _fnv(h, d, p, n):
    """FNV-1a over ``n`` bytes at ``p``, one 8-byte word at a time (then the tail)."""
    end = p + n
    while p + 8 <= end:
        h = (h ^ np.uint64(_i64(d, p))) * np.uint64(1099511628211)
        p += 8
    while p < end:
        h = (h ^ np.uint64(d[p])) * np.uint64(1099511628211)
        p += 1
    return h


@nb.njit(cache=True)
def _event_extras(d, p, size, flags):
    """EVENT_HEADER: (user-data offset, schema off<<16|len, traits off<<16|len)."""
    q = p + 0x50
    end = p + size
    schema = np.int64(0)
    traits = np.int64(0)
    if flags & 0x0001:  # EVENT_HEADER_FLAG_EXTENDED_INFO
        while q + 8 <= end:
            item = _u16(d, q)
            ext = _u16(d, q + 2)
            more = _u16(d, q + 4)
            dsize = _u16(d, q + 6)
            if item < 8 or q + item > end or dsize > item - 8:
                return np.int64(-1), np.int64(0), np.int64(0)
            if ext == 0x0B:
                schema = ((q + 8) << 16) | dsize
            elif ext == 0x0C:
                traits = ((q + 8) << 16) | dsize
            q += item
            if not (more & 1):
                break
    return q, schema, traits


@nb.njit(cache=True, nogil=True)
def fill_records(data, starts, ends, seg_ids, seg_cpu, seg_key, origin, mult, scale, last_ts, disorder,
                 first_ts, seen, b_ts, b_cpu, b_code, b_a, b_b, b_key,
                 out_pos, out_size, out_htype, out_hsize, out_kind,
                 out_hook, out_version, out_seg, out_tid, out_pid, out_ts, out_a, out_b, out_c, out_h, out_key):
    """Bulk records (CSwitch, Thread 1-4) into ``b_*``, one row per other record into ``out_*``
    (both sized by :func:`count_records`); returns (bulk rows, other rows) written.
    ``seg_key[i]`` is the stream-order key of segment i's first record; each record's key
    (``b_key``/``out_key``) is that plus its index among the segment's records.
    Bulk times are converted here: ``(ts - origin) * mult`` ns, or ``* scale`` when mult is 0.
    ``last_ts[cpu]`` (raw clock, kept across calls) and ``disorder[0]`` count records whose
    time is earlier than the previous timed record of the same CPU in file order;
    ``first_ts[cpu]`` is the raw clock of the first timed record of each CPU, ``seen[cpu]``
    1 once there is one (what joins the order check of two halves filled apart)."""
    j = 0
    k = 0
    n_out = out_pos.shape[0]
    n_bulk = b_ts.shape[0]
    for i in range(starts.shape[0]):
        p = starts[i]
        end = ends[i]
        cpu = seg_cpu[i]
        key = seg_key[i]
        while True:
            htype, hsize, size, ok = _header(data, p, end)
            if not ok or size == 0:
                break
            code = _bulk_code(data, p, htype, hsize, size)
            if code >= 0:
                if k >= n_bulk:
                    break
                q = p + hsize
                raw = _i64(data, p + (8 if htype >= 0x10 else 16))
                if seen[cpu] == 0:
                    seen[cpu] = 1
                    first_ts[cpu] = raw
                if raw < last_ts[cpu]:
                    disorder[0] += 1
                last_ts[cpu] = raw
                delta = raw - origin
                b_ts[k] = delta * mult if mult else np.int64(np.round(delta * scale))
                b_cpu[k] = cpu
                b_code[k] = code
                if code > 0 and _u16(data, p) == 0:  # Thread v0: TThreadId first
                    b_a[k] = _id(_u32(data, q + 4))
                    b_b[k] = _id(_u32(data, q))
                else:
                    b_a[k] = _id(_u32(data, q))
                    b_b[k] = _id(_u32(data, q + 4))
                b_key[k] = key
                key += 1
                k += 1
                p += (size + 7) & ~7
                continue
            if j >= n_out:
                break
            kind = _K_OTHER
            hook = 0
            version = 0
            tid = np.int64(-1)
            pid = np.int64(-1)
            ts = np.int64(0)
            a = np.int64(0)
            b = np.int64(0)
            c = np.int64(0)
            h = np.uint64(0)
            if htype <= 0x04 or htype == 0x10 or htype == 0x11:
                version = _u16(data, p)
                opcode = data[p + 6]
                group = data[p + 7]
                hook = (np.int64(group) << 8) | opcode
                if htype == 0x10 or htype == 0x11:
                    ts = _i64(data, p + 8)
                else:
                    tid = _id(_u32(data, p + 8))
                    pid = _id(_u32(data, p + 12))
                    ts = _i64(data, p + 16)
                if group == 0x05 and opcode == 36:
                    kind = _K_CSWITCH  # only when too short for bulk: counted as truncated
                elif group == 0x05 and opcode >= 1 and opcode <= 4:
                    kind = _K_THREAD  # only when too short for bulk: counted as truncated
                elif group == 0x03 and (opcode <= 4 or opcode == 39):
                    kind = _K_PROCESS
                elif (group == 0x03 and opcode == 10) or (group == 0x14 and opcode <= 4 and opcode >= 2) or (group == 0x14 and opcode == 10):
                    kind = _K_IMAGE
                elif group == 0x00:
                    kind = _K_SKIP
                else:
                    kind = _K_KERNEL_OTHER
            elif htype == 0x12 or htype == 0x13:
                kind = _K_EVENT
                tid = _id(_u32(data, p + 8))
                pid = _id(_u32(data, p + 12))
                ts = _i64(data, p + 16)
                hook = data[p + 0x2D]
                version = data[p + 0x2A]
                a, b, c = _event_extras(data, p, size, _u16(data, p + 4))
                h = _fnv(np.uint64(14695981039346656037), data, p + 0x18, 16)
                h = _fnv(h, data, p + 0x28, 4)  # Id, Version (manifest events differ by these)
                if b != 0:
                    h = _fnv(h, data, b >> 16, b & 0xFFFF)
                if c != 0:
                    h = _fnv(h, data, c >> 16, c & 0xFFFF)
            elif htype == 0x0A or htype == 0x14 or htype == 0x0B or htype == 0x15:
                kind = _K_CLASSIC
                hook = data[p + 4]
                version = _u16(data, p + 6)
                tid = _id(_u32(data, p + 8))
                pid = _id(_u32(data, p + 12))
                ts = _i64(data, p + 16)
            elif htype == 0x0F:
                kind = _K_WPP
            if kind != _K_WPP and kind != _K_OTHER:
                if seen[cpu] == 0:
                    seen[cpu] = 1
                    first_ts[cpu] = ts
                if ts < last_ts[cpu]:
                    disorder[0] += 1
                last_ts[cpu] = ts
            out_pos[j] = p
            out_size[j] = size
            out_htype[j] = htype
            out_hsize[j] = hsize
            out_kind[j] = kind
            out_hook[j] = hook
            out_version[j] = version
            out_seg[j] = seg_ids[i]
            out_tid[j] = tid
            out_pid[j] = pid
            out_ts[j] = ts
            out_a[j] = a
            out_b[j] = b
            out_c[j] = c
            out_h[j] = h
            out_key[j] = key
            key += 1
            j += 1
            p += (size + 7) & ~7
    return k, j


class OrderCheck:
    """Per-CPU last timestamp and the count of steps back in time, across walk chunks."""

    def __init__(self) -> None:
        self.last_ts = np.full(0x800, np.iinfo(np.int64).min, np.int64)  # ProcessorIndex is 11 bits
        self.disorder = np.zeros(1, np.int64)


#: Bulk output: time_ns, cpu, code (0 CSwitch, 1-4 Thread opcode), a/b =
#: NewThreadId/OldThreadId (CSwitch) or ProcessId/ThreadId (Thread); -1 = none; key =
#: stream order (as ``RECORD_DTYPES``).
BULK_DTYPES: dict[str, np.dtype] = {
    "ts": np.dtype(np.int64), "cpu": np.dtype(np.int32), "code": np.dtype(np.int32),
    "a": np.dtype(np.int64), "b": np.dtype(np.int64), "key": np.dtype(np.int64),
}

#: Bits of a stream-order key below the CPU number (records per CPU < 2**40).
KEY_CPU_SHIFT = 40


def stream_keys(cpus: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Stream-order key of each segment's first record: ``cpu << 40`` plus the records of
    the same CPU's earlier segments (segments in file order: a CPU's buffers are written
    in the order they filled, so this is the order its records were logged)."""
    cpus = cpus.astype(np.int64)
    keys = np.empty(len(cpus), np.int64)
    if not len(cpus):
        return keys
    by_cpu = np.lexsort((np.arange(len(cpus)), cpus))  # by CPU, then file order
    sorted_cpus, sorted_counts = cpus[by_cpu], counts[by_cpu].astype(np.int64)
    before = np.cumsum(sorted_counts) - sorted_counts  # records before, over all CPUs
    first = np.r_[True, sorted_cpus[1:] != sorted_cpus[:-1]]
    before -= np.maximum.accumulate(np.where(first, before, 0))  # ... of the same CPU
    keys[by_cpu] = (sorted_cpus << KEY_CPU_SHIFT) + before
    return keys


def walk(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, seg_ids: np.ndarray,
         seg_cpu: np.ndarray, counts: np.ndarray, bulk: np.ndarray, time_base: "TimeBaseLike",
         order: "OrderCheck | None" = None,
         seg_key: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(bulk rows, other records) of the given segments, sized from :func:`count_records`;
    ``seg_key``: :func:`stream_keys` of these segments (default: as if they were all)."""
    nb_ = int(bulk.sum())
    n = int(counts.sum()) - nb_
    b = {name: np.empty(nb_, dtype) for name, dtype in BULK_DTYPES.items()}
    out = {name: np.empty(n, dtype) for name, dtype in RECORD_DTYPES.items()}
    order = order or OrderCheck()
    if seg_key is None:
        seg_key = stream_keys(seg_cpu, counts)
    fill = _Fill(data, starts, ends, seg_ids, seg_cpu, seg_key.astype(np.int64), time_base, b, out)
    cut = _half(counts) if nb_ + n >= SPLIT_MIN_RECORDS else 0
    if cut:
        saved = order.last_ts.copy(), order.disorder.copy()
        if fill.in_two(cut, counts, bulk, order):
            return b, out
        order.last_ts[:], order.disorder[:] = saved  # cannot happen (see below): once, in order
    kb, written = fill.part(0, len(starts), 0, 0, order.last_ts, order.disorder)
    if written != n or kb != nb_:  # cannot happen: both passes read the same bytes
        out = {k: v[:written] for k, v in out.items()}
        b = {k: v[:kb] for k, v in b.items()}
    return b, out


#: A walk chunk of at least this many records is filled by two threads, half of its
#: segments each (the compiled walk releases the GIL).
SPLIT_MIN_RECORDS = 1 << 16


def _half(counts: np.ndarray) -> int:
    """The segment index that splits ``counts`` into two halves of about as many records
    (0: no split, fewer than two segments)."""
    if len(counts) < 2:
        return 0
    cum = np.cumsum(counts)
    return int(min(max(np.searchsorted(cum, cum[-1] // 2) + 1, 1), len(counts) - 1))


class _Fill:
    """:func:`fill_records` over a range of a chunk's segments into the matching rows of
    the chunk's output arrays."""

    def __init__(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray, seg_ids: np.ndarray,
                 seg_cpu: np.ndarray, seg_key: np.ndarray, time_base: "TimeBaseLike",
                 b: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
        self.data, self.starts, self.ends, self.seg_ids, self.seg_cpu, self.seg_key = \
            data, starts, ends, seg_ids, seg_cpu, seg_key
        self.clock = (np.int64(time_base.origin), np.int64(time_base.mult), float(1e9 / time_base.freq))
        self.b, self.out = b, out

    def part(self, lo: int, hi: int, k: int, j: int, last_ts: np.ndarray, disorder: np.ndarray,
             first_ts: np.ndarray | None = None, seen: np.ndarray | None = None) -> tuple[int, int]:
        """Segments ``lo:hi`` into bulk rows from ``k`` and other rows from ``j``; returns
        (bulk rows, other rows) written."""
        if first_ts is None or seen is None:
            first_ts, seen = np.empty_like(last_ts), np.zeros(len(last_ts), np.uint8)
        return fill_records(self.data, self.starts[lo:hi], self.ends[lo:hi], self.seg_ids[lo:hi],
                            self.seg_cpu[lo:hi], self.seg_key[lo:hi], *self.clock, last_ts, disorder,
                            first_ts, seen, *(v[k:] for v in self.b.values()),
                            *(v[j:] for v in self.out.values()))

    def in_two(self, cut: int, counts: np.ndarray, bulk: np.ndarray, order: "OrderCheck") -> bool:
        """Segments ``:cut`` on this thread (in ``order``), ``cut:`` on another from an empty
        order state; then the second half's first record of each CPU is checked against
        the first half's last, so the disorder count is the one a single pass gives.
        False (nothing to keep) if a half did not write the rows its count promised."""
        k0 = int(bulk[:cut].sum())
        j0 = int(counts[:cut].sum()) - k0
        last2 = np.full_like(order.last_ts, np.iinfo(np.int64).min)
        disorder2 = np.zeros(1, np.int64)
        first2, seen2 = np.empty_like(last2), np.zeros(len(last2), np.uint8)
        with ThreadPoolExecutor(1, thread_name_prefix="traceanalyzer-etl-walk") as pool:
            second = pool.submit(self.part, cut, len(self.starts), k0, j0, last2, disorder2, first2, seen2)
            kb1, n1 = self.part(0, cut, 0, 0, order.last_ts, order.disorder)
            kb2, n2 = second.result()
        if (kb1, n1) != (k0, j0) or kb1 + kb2 != len(self.b["ts"]) or n1 + n2 != len(self.out["pos"]):
            return False
        joined = seen2.astype(bool)
        order.disorder[0] += disorder2[0] + int((first2[joined] < order.last_ts[joined]).sum())
        order.last_ts[joined] = last2[joined]
        return True
