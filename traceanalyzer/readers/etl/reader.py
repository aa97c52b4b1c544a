"""Read one ETL file into the canonical event table.

Pipeline: memory-map -> check/decompress buffers (:mod:`.buffers`) -> logfile header
(:mod:`.logfile`) -> compiled record walk in chunks (:mod:`.walk`) -> bulk columns for
CSwitch/Thread records, a Python path for the rare ones (Process, Image, provider
events: :mod:`.kernel`, :mod:`.events`) -> Arrow column chunks, gathered into one table
(:func:`read_etl`) or streamed (:class:`EtlBatches`). Rows are in file order per walk
chunk (bulk records, then the rare ones); every row carries its stream-order key (CPU,
then position in that CPU's records), which :func:`read_etl` returns as
``ReadResult.order_key``: the time order is by (time, key), equal times by CPU, then as
logged (docs/etl.md).
"""

from __future__ import annotations

import mmap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from traceanalyzer.errors import TraceError, TraceFormatError
from traceanalyzer.model.left_out import LeftOut
from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.model.stats import Stats
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.etl import layout as L
from traceanalyzer.readers.etl.buffers import open_map, plausible_first_buffer, scan_buffers
from traceanalyzer.readers.etl.checks import (
    FALLBACK_TICKS_PER_SECOND,
    clock_rate,
    header_problems,
    missing_buffers,
)
from traceanalyzer.readers.etl.columns import (
    ORDER_KEY, assemble, dict_column, int_column, null_column, sparse_int_column,
)
from traceanalyzer.readers.etl.events import RareDecoder
from traceanalyzer.readers.etl.logfile import LogfileHeader, parse_logfile_header
from traceanalyzer.readers.field_map import field_map_from_options
from traceanalyzer.readers.etl.walk import BAD_END_MARKER, OrderCheck, count_records, stream_keys, walk

#: Records per walk chunk (bounds the temporary arrays: ~90 bytes per record).
CHUNK_RECORDS = 1 << 20
#: Buffers counted per task of the count (:meth:`_EtlWalk._count`).
_COUNT_SEGMENTS = 1024
_BULK_NAMES = ["CSwitch", "ThreadStart", "ThreadEnd", "ThreadRundown", "ThreadRundownEnd"]  # by bulk code
_RARE_KINDS = (L.K_PROCESS, L.K_IMAGE, L.K_EVENT, L.K_CLASSIC)


class TimeBase:
    """Raw clock values -> ns since the logfile-header record (trace start)."""

    def __init__(self, origin: int, ticks_per_second: int) -> None:
        self.origin = origin
        self.freq = ticks_per_second
        self.mult = 1_000_000_000 // ticks_per_second if 1_000_000_000 % ticks_per_second == 0 else 0

    def to_ns(self, ts: np.ndarray) -> np.ndarray:
        delta = ts - np.int64(self.origin)
        if self.mult:
            return delta * np.int64(self.mult)
        return np.round(delta.astype(np.float64) * (1e9 / self.freq)).astype(np.int64)

    def one(self, ts: int) -> int:
        delta = ts - self.origin
        return delta * self.mult if self.mult else round(delta * 1e9 / self.freq)


def read_etl(path: Path, options: ReadOptions) -> ReadResult:
    """Read ``path``; see docs/etl.md for the mapping, the stats and the error rules."""
    batches = EtlBatches(path, options)
    left_out = LeftOut("CSwitch") if options.defer_cswitch and options.leave_out_deferred else None
    chunks = [chunk for group in batches._groups(left_out) for chunk in group]
    table = assemble(chunks)
    del chunks
    key = table.column(ORDER_KEY) if ORDER_KEY in table.column_names else None
    table = table.drop_columns([ORDER_KEY]) if key is not None else table
    batches.stats.add("events", table.num_rows + (left_out.count if left_out else 0), "info", str(path))
    return ReadResult(table=table, metadata=batches.metadata, stats=batches.stats, order_key=key,
                      deferred=("cswitch",) if options.defer_cswitch else (), left_out=left_out)


class EtlBatches:
    """``path`` as a stream of tables, one per walk chunk (~1M records), in bounded memory.

    Iterating yields ``pa.Table`` batches whose columns are every canonical column (absent
    values null; ``event`` dictionary-encoded) plus any extra column of that batch, and
    ``stream_order`` (:data:`ORDER_KEY`): rows are not time-sorted; sorting by
    (``time_ns``, ``stream_order``), within a batch or across batches, gives the order
    ``read_etl`` gives (equal times by CPU, then as logged; docs/etl.md). ``metadata`` and
    ``stats`` are complete once iteration has finished. :func:`read_etl` is this,
    gathered into one table.
    """

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path, self.options = Path(path), options
        self.stats = Stats()
        self.metadata: dict[str, Any] = {}

    def __iter__(self) -> Iterator[pa.Table]:
        rows = 0
        for group in self._groups():
            if group:
                table = assemble(group, columns=list(COLUMNS))
                rows += table.num_rows
                yield table
        self.stats.add("events", rows, "info", str(self.path))

    def _groups(self, left_out: LeftOut | None = None) -> Iterator[list[dict[str, pa.Array]]]:
        """Column chunks per walk chunk; CSwitch rows go to ``left_out`` when given."""
        cut: list[str] = []
        mm, view = open_map(self.path, self.options.extra, cut)
        try:
            if cut:  # a .etl.gz cut short: read what decompressed (its last buffer is counted too)
                if self.options.strict:
                    raise TraceFormatError(cut[0], self.path)
                self.stats.add("truncated_file", 1, "warning", str(self.path), cut[0])
            yield from _EtlWalk(self.path, view, self.options, _Releaser(mm), self.stats, self.metadata,
                                left_out).groups()
        except TraceError as exc:
            if cut and not self.options.strict and "gzip" not in str(exc):
                raise TraceFormatError(f"{exc.message} ({cut[0]})", self.path) from None
            raise
        except (ValueError, IndexError, OverflowError, KeyError, TypeError) as exc:  # last resort
            raise TraceFormatError(f"cannot decode ({type(exc).__name__}: {exc})", self.path) from None
        finally:
            del view
            if mm is not None:
                try:
                    mm.close()
                except BufferError:  # an Arrow column still points into the map; GC closes it
                    pass


class _Releaser:
    """Drops pages of the mapped file already walked from our resident set (page cache keeps them)."""

    def __init__(self, mm: Any) -> None:
        self.mm = mm
        self.ok = hasattr(mmap, "MADV_DONTNEED")

    def __call__(self, lo: int, hi: int) -> None:
        if not self.ok or hi <= lo:
            return
        lo -= lo % mmap.PAGESIZE
        try:
            self.mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):
            self.ok = False


class _EtlWalk:
    """One pass over a mapped file: buffers, counts, logfile header, then chunk by chunk."""

    def __init__(self, path: Path, view: np.ndarray, options: ReadOptions, release: _Releaser,
                 stats: Stats, metadata: dict[str, Any], left_out: LeftOut | None = None) -> None:
        self.path, self.options, self.release, self.stats, self.metadata = path, options, release, stats, metadata
        self.left_out = left_out
        self.src = str(path)
        if not plausible_first_buffer(bytes(view[:L.BUFFER_HEADER_SIZE + 16])):
            raise TraceFormatError("not an ETL file (no WMI buffer with a logfile header at offset 0)", path)
        first_size = int(view[:4].view("<u4")[0])
        header = _first_header(view)
        nominal = header.buffer_size if header is not None and \
            L.BUFFER_HEADER_SIZE < header.buffer_size <= L.MAX_BUFFER_SIZE else first_size
        segs, dec = scan_buffers(path, view, nominal, options.strict, release)
        for message in segs.corrupt:
            stats.add("corrupt_buffers", 1, "warning", self.src, message)
        for message in segs.truncated:
            stats.add("truncated_file", 1, "warning", self.src, message)
        if not segs.start:
            raise TraceFormatError("no readable buffer", path)
        self.segs = segs
        self.arenas = (view, dec)
        self.starts = np.asarray(segs.start, np.int64)
        self.ends = np.asarray(segs.end, np.int64)
        self.cpus = np.asarray(segs.cpu, np.int32)
        self.arena_of = np.asarray(segs.arena, np.int8)

    def _count(self) -> tuple[np.ndarray, np.ndarray]:
        """Records and bulk (CSwitch/Thread) records per buffer; damaged ends counted."""
        n = len(self.starts)
        counts, bulk, bad = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint8)
        stops = np.zeros(n, np.int64)
        for k in (0, 1):
            sel = np.nonzero(self.arena_of == k)[0]
            c, b, x = np.zeros(len(sel), np.int64), np.zeros(len(sel), np.int64), np.zeros(len(sel), np.uint8)
            s = np.zeros(len(sel), np.int64)

            def count(lo: int, k: int = k, sel: np.ndarray = sel, c: np.ndarray = c, b: np.ndarray = b,
                      x: np.ndarray = x, s: np.ndarray = s) -> None:
                part = slice(lo, lo + _COUNT_SEGMENTS)
                ps = sel[part]
                count_records(self.arenas[k], self.starts[ps], self.ends[ps], c[part], b[part], x[part], s[part])
                if k == 0:
                    self.release(int(self.starts[ps].min()), int(self.ends[ps].max()))

            # two threads (the compiled count releases the GIL), each ~8 MB of buffers at a time
            with ThreadPoolExecutor(2, thread_name_prefix="traceanalyzer-etl-count") as pool:
                for _ in pool.map(count, range(0, len(sel), _COUNT_SEGMENTS)):
                    pass
            counts[sel], bulk[sel], bad[sel], stops[sel] = c, b, x, s
        for i in np.nonzero(bad)[0]:
            off = int(self.segs.file_offset[i])
            # offset of the stop inside the buffer (decompressed bytes for a compressed one)
            at = int(stops[i] - self.starts[i]) + L.BUFFER_HEADER_SIZE
            where = f"buffer at offset 0x{off:x}, record at +0x{at:x}"
            if bad[i] == BAD_END_MARKER:
                name = "corrupt_buffers"
                msg = (f"{where}: an end marker stops the records {int(self.ends[i] - stops[i])} bytes "
                       "before the buffer's filled length")
            else:
                name = "truncated_records"
                msg = f"{where}: record does not fit or does not decode (truncated or corrupt); rest of the buffer skipped"
            if self.options.strict:
                raise TraceFormatError(msg, self.path)
            self.stats.add(name, 1, "warning", self.src, msg)
        return counts, bulk

    def groups(self) -> Iterator[list[dict[str, pa.Array]]]:
        """Column chunks, one list per walk chunk; stats and metadata filled at the end."""
        counts, bulk_counts = self._count()
        header = _logfile_header(self.arenas[int(self.arena_of[0])], int(self.starts[0]), int(self.ends[0]))
        if header is None:
            if self.options.strict:
                raise TraceFormatError("the first buffer does not start with a logfile header", self.path)
            self.stats.add("missing_logfile_header", 1, "warning", self.src)
        time_base = TimeBase(header.header_ts if header else 0, self._check_header(header))
        extra = self.options.extra
        decoder = RareDecoder(self.src, self.stats, field_map_from_options(self.options.field_map, self.options.extra), time_base,
                              keep_unknown=bool(extra.get("keep_unknown", False)),
                              etlparser_fallback=bool(extra.get("etlparser_fallback", False)),
                              strict=self.options.strict,
                              pointer_size=header.pointer_size if header is not None else None)
        rare_kinds = _RARE_KINDS + ((L.K_KERNEL_OTHER,) if decoder.etlparser_fallback else ())
        kind_counts = np.zeros(16, np.int64)
        other_hooks: dict[int, int] = {}
        total, done = int(counts.sum()), 0
        order = OrderCheck()
        keys = stream_keys(self.cpus, counts)
        for k in (0, 1):
            data = self.arenas[k]
            for group in _chunks(np.nonzero((self.arena_of == k) & (counts > 0))[0], counts):
                brec, rec = walk(data, self.starts[group], self.ends[group], group.astype(np.int32),
                                 self.cpus[group], counts[group], bulk_counts[group], time_base, order,
                                 keys[group])
                rec["cpu"] = self.cpus[rec["seg"]]
                kind_counts += np.bincount(rec["kind"], minlength=16)[:16]
                self._count_skipped(rec, other_hooks)
                decoder.decode(data, rec, np.nonzero(np.isin(rec["kind"], rare_kinds))[0])
                if k == 0:
                    self.release(int(self.starts[group].min()), int(self.ends[group].max()))
                done += len(rec["pos"]) + len(brec["ts"])
                had_bulk = len(brec["ts"]) > 0
                if self.left_out is not None:
                    brec = _leave_out_cswitch(brec, self.left_out)
                # a bulk chunk whenever there were bulk records, empty if all were left
                # out: the table has the same columns and event names as with the rows
                out = [_bulk_chunk(brec, self.options.defer_cswitch)] if had_bulk else []
                yield out + decoder.columns()
                if self.options.progress is not None:
                    self.options.progress(done, total)
        if order.disorder[0]:
            self.stats.add("time_disorder", int(order.disorder[0]), "warning", self.src,
                           "records earlier than the previous record of the same CPU, in file order")
        self._finish(header, kind_counts, other_hooks, total)

    def _check_header(self, header: LogfileHeader | None) -> int:
        """Count (or, strict, raise) implausible header values and missing buffers; the
        clock rate to use."""
        if header is None:
            return FALLBACK_TICKS_PER_SECOND
        where = f"logfile header at offset 0x{L.BUFFER_HEADER_SIZE:x}"
        for problem in header_problems(header):
            if self.options.strict:
                raise TraceFormatError(f"{where}: {problem}", self.path)
            self.stats.add("implausible_header", 1, "warning", self.src, problem)
        missing = missing_buffers(header, self.segs.seen)
        if missing:
            end = int(self.arenas[0].shape[0])  # the ETL data (of a .etl.gz: decompressed)
            msg = (f"the logfile header announces {header.buffers_written} buffers, the file holds "
                   f"{self.segs.seen} (it ends at offset 0x{end:x})")
            if self.options.strict:
                raise TraceFormatError(msg, self.path)
            self.stats.add("truncated_file", missing, "warning", self.src, msg)
        return clock_rate(header)

    def _count_skipped(self, rec: dict[str, np.ndarray], other_hooks: dict[int, int]) -> None:
        # Thread and CSwitch records outside the bulk rows: payload under 8 bytes
        short = (rec["kind"] == L.K_THREAD) | (rec["kind"] == L.K_CSWITCH)
        for pos in rec["pos"][short].tolist():
            if self.options.strict:
                raise TraceFormatError(f"Thread record at 0x{pos:x}: payload shorter than 8 bytes", self.path)
            self.stats.add("truncated_records", 1, "warning", self.src, f"Thread record at 0x{pos:x}: payload too short")
        other = rec["kind"] == L.K_KERNEL_OTHER
        if other.any():
            hooks, n = np.unique(rec["hook"][other], return_counts=True)
            for hk, cnt in zip(hooks.tolist(), n.tolist()):
                other_hooks[hk] = other_hooks.get(hk, 0) + cnt

    def _finish(self, header: LogfileHeader | None, kind_counts: np.ndarray, other_hooks: dict[int, int],
                total: int) -> None:
        stats, src = self.stats, self.src
        for hook, cnt in sorted(other_hooks.items()):
            group, opcode = hook >> 8, hook & 0xFF
            stats.add("unknown_events", cnt, "info", src, f"Kernel-{L.GROUP_NAMES.get(group, hex(group))}/{opcode}")
        if kind_counts[L.K_WPP]:
            stats.add("wpp_events", int(kind_counts[L.K_WPP]), "info", src,
                      "WPP (TRACE_MESSAGE) records need TMF files; counted, not decoded")
        if kind_counts[L.K_OTHER]:
            stats.add("unknown_events", int(kind_counts[L.K_OTHER]), "info", src, "timed/error/wnode header records")
        if header is not None:
            if header.events_lost:
                stats.add("lost_events", header.events_lost, "warning", src)
            if header.buffers_lost:
                stats.add("lost_buffers", header.buffers_lost, "warning", src)
        self.metadata.update(_metadata(header, total, len(self.starts), int(kind_counts[L.K_SKIP])))


def _chunks(sel: np.ndarray, counts: np.ndarray):
    """Split segment indexes into runs of about CHUNK_RECORDS records."""
    if not len(sel):
        return
    cum = np.cumsum(counts[sel])
    cut = np.searchsorted(cum, np.arange(CHUNK_RECORDS, int(cum[-1]) + CHUNK_RECORDS, CHUNK_RECORDS), side="right")
    start = 0
    for stop in list(cut) + [len(sel)]:
        stop = max(int(stop), start + 1) if start < len(sel) else start
        if stop > start:
            yield sel[start:stop]
        start = stop


def _first_header(view: np.ndarray) -> LogfileHeader | None:
    """The logfile header of an uncompressed first buffer, read before the buffer scan
    (its BufferSize is the size every buffer should have)."""
    size, filled = int(view[:4].view("<u4")[0]), int(view[L.OFF_FILLED:L.OFF_FILLED + 4].view("<u4")[0])
    flags = int(view[L.OFF_FLAGS:L.OFF_FLAGS + 2].view("<u2")[0])
    if flags & L.BUFFER_FLAG_COMPRESSED:
        return None
    return _logfile_header(view, L.BUFFER_HEADER_SIZE, min(filled, size, view.shape[0]))


def _logfile_header(data: np.ndarray, start: int, end: int) -> LogfileHeader | None:
    if end - start < 0x20:
        return None
    head = bytes(data[start:start + 0x20])
    marker = int.from_bytes(head[:4], "little")
    htype = (marker >> 16) & 0xFF
    if marker >> 24 != 0xC0 or htype not in (L.SYSTEM32, L.SYSTEM64) or head[6:8] != b"\0\0":
        return None
    size = int.from_bytes(head[4:6], "little")
    ts = int.from_bytes(head[16:24], "little", signed=True)
    payload = bytes(data[start + 0x20:min(start + size, end)])
    return parse_logfile_header(payload, 8 if htype == L.SYSTEM64 else 4, ts)


def _leave_out_cswitch(b: dict[str, np.ndarray], left_out: LeftOut) -> dict[str, np.ndarray]:
    """The Thread rows of bulk rows ``b``; its CSwitch rows go to ``left_out``."""
    is_cs = b["code"] == 0
    left_out.add(b["ts"], b["key"], b["cpu"], is_cs)
    keep = np.flatnonzero(~is_cs)
    return b if keep.size == is_cs.size else {name: col[keep] for name, col in b.items()}


def _bulk_chunk(b: dict[str, np.ndarray], defer_cswitch: bool = False) -> dict[str, pa.Array]:
    """CSwitch / Thread rows: pid and new_tid share one buffer, tid and old_tid another.

    ``defer_cswitch``: CSwitch rows keep only time, event and cpu; pid and tid are written
    for the (rare) Thread rows only, into untouched zero pages; new_tid/old_tid all null."""
    is_cs = b["code"] == 0
    is_th = ~is_cs
    a, bb = b["a"], b["b"]
    head = {
        "time_ns": int_column(b["ts"], None, pa.int64()),
        "event": dict_column(b["code"], _BULK_NAMES),
        "cpu": int_column(b["cpu"], None, pa.int32()),
        ORDER_KEY: int_column(b["key"], None, pa.int64()),
    }
    if defer_cswitch:
        rows = np.flatnonzero(is_th)
        n = len(is_th)
        return {**head,
                "pid": sparse_int_column(n, rows, a[rows], a[rows] >= 0, pa.int64()),
                "tid": sparse_int_column(n, rows, bb[rows], bb[rows] >= 0, pa.int64()),
                "new_tid": null_column(n, pa.int64()), "old_tid": null_column(n, pa.int64())}
    return {
        **head,
        "pid": int_column(a, is_th & (a >= 0), pa.int64()),
        "tid": int_column(bb, is_th & (bb >= 0), pa.int64()),
        "new_tid": int_column(a, is_cs & (a >= 0), pa.int64()),
        "old_tid": int_column(bb, is_cs & (bb >= 0), pa.int64()),
    }


def _metadata(header: LogfileHeader | None, records: int, buffers: int, header_records: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": "etl", "records": records, "buffers": buffers,
                            "header_records": header_records}
    if header is not None:
        meta.update({
            "start_time_utc": header.start_time_utc(),
            "start_time_filetime": header.start_time,
            "boot_time_filetime": header.boot_time,
            "start_clock": header.header_ts,
            "pointer_size": header.pointer_size,
            "cpus": header.cpus,
            "os_version": header.os_version,
            "os_build": header.os_build,
            "clock_type": {1: "QPC", 2: "SystemTime", 3: "CPUCycle"}.get(header.clock_type, str(header.clock_type)),
            "ticks_per_second": clock_rate(header),
            "buffer_size": header.buffer_size,
            "logger_name": header.logger_name,
            "events_lost": header.events_lost,
            "buffers_lost": header.buffers_lost,
        })
    return meta
