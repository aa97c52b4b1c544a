"""Write the canonical event table as a real ETL file (test traces, benchmarks).

:func:`write_etl` turns events (``docs/trace-format.md`` columns) into what an ETW
session writes: the logfile-header buffer, then per-CPU WMI buffers holding
NT-kernel-logger records for Process/Thread/Image/CSwitch (:mod:`.etl_kernel`) and
``MdlTrace`` TraceLogging events for the calls (:mod:`.etl_calls`). Same input, same
bytes. Large inputs are processed in chunks and written buffer by buffer; CSwitch
records (the bulk of a real kernel trace) are built with numpy.
See ``docs/etl_writer.md`` for the mapping and its limits.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.fileio import atomic_output
from traceanalyzer.model.schema import (
    CSWITCH_EVENTS,
    IMAGE_LOAD_EVENTS,
    PROCESS_EVENTS,
    THREAD_EVENTS,
)
from traceanalyzer.synth import etl_kernel
from traceanalyzer.synth.etl_buffers import BufferWriter
from traceanalyzer.synth.etl_calls import PROVIDER_GUID, PROVIDER_NAME, tracelogging_record
from traceanalyzer.synth.etl_calls_bulk import bulk_records, field_columns
from traceanalyzer.synth.etl_format import (
    DEFAULT_START_TIME,
    DEFAULT_UPTIME_S,
    GROUP_HEADER,
    SYSTEM_HEADER_SIZE,
    logfile_header_payload,
    system_header,
    to_filetime,
)

#: Rows per chunk when a whole table is given.
CHUNK_ROWS = 1 << 18
#: Build calls without string fields in bulk (False: one by one; same bytes, slower).
BULK_CALLS = True

_KIND_CSWITCH, _KIND_KERNEL, _KIND_CALL = 0, 1, 2
_KERNEL_BUILDERS = {
    **{e: etl_kernel.process_record for e in PROCESS_EVENTS},
    **{e: etl_kernel.thread_record for e in THREAD_EVENTS},
    **{e: etl_kernel.image_record for e in IMAGE_LOAD_EVENTS},
    "ImageDebugId": etl_kernel.debug_id_record,
}



def _as_table(obj: Any) -> pa.Table:
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(obj, pd.DataFrame):
        return pa.Table.from_pandas(obj, preserve_index=False)
    raise TypeError(f"events must be a pyarrow Table or pandas DataFrame, not {type(obj).__name__}")


def _int_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values as int64 with nulls as 0, validity mask) of an integer column."""
    if name not in table.column_names:
        n = table.num_rows
        return np.zeros(n, np.int64), np.zeros(n, bool)
    col = table.column(name)
    if not pa.types.is_integer(col.type):
        col = pc.cast(col, pa.int64())
    valid = ~np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(pc.fill_null(col, 0).to_numpy(zero_copy_only=False)).astype(np.int64)
    return values, valid


class _EtlJob:
    """State of one write: clock, per-CPU order checks, counters."""

    def __init__(self, fh, *, pointer_size: int, cpus: int | None, start_time: datetime | int,
                 perf_freq: int, buffer_size: int, unicode_strings: bool, hex_addresses: bool) -> None:
        if pointer_size not in (4, 8):
            raise ValueError(f"pointer_size must be 4 or 8, not {pointer_size}")
        if perf_freq <= 0 or perf_freq > 1_000_000_000:
            raise ValueError(f"perf_freq must be in 1..1e9 Hz, not {perf_freq}")
        self.pointer_size = pointer_size
        self.cpus = cpus
        self.start_filetime = to_filetime(start_time)
        self.perf_freq = perf_freq
        self.start_qpc = DEFAULT_UPTIME_S * perf_freq
        self.unicode_strings = unicode_strings
        self.hex_addresses = hex_addresses
        self.writer = BufferWriter(fh, buffer_size)
        self.max_cpu = -1
        self.max_time_ns = 0
        self.counts: Counter[str] = Counter()
        self.time_rounded = 0
        self.cpu_missing = 0
        self.debug_id_missing = 0
        self.rows = 0

    # --- time ---------------------------------------------------------------------
    def ticks(self, time_ns: np.ndarray) -> np.ndarray:
        """QPC ticks since trace start, rounded to the nearest tick (overflow-safe)."""
        whole, frac = np.divmod(time_ns, 1_000_000_000)
        return whole * self.perf_freq + (frac * self.perf_freq + 500_000_000) // 1_000_000_000

    def count_rounded(self, time_ns: np.ndarray) -> None:
        """Count rows whose time is not a whole number of ticks."""
        frac = time_ns % 1_000_000_000
        self.time_rounded += int(np.count_nonzero((frac * self.perf_freq) % 1_000_000_000))

    # --- one chunk ------------------------------------------------------------------
    def add_chunk(self, table: pa.Table, chunk_no: int) -> None:
        if table.num_rows == 0:
            return
        for required in ("time_ns", "event"):
            if required not in table.column_names:
                raise ValueError(f"events lack the required column {required!r}")
        table = self.without_unknown_builds(table)
        time_ns, time_valid = _int_column(table, "time_ns")
        if not time_valid.all():
            raise ValueError(f"row {int(np.argmin(time_valid))} of chunk {chunk_no}: time_ns is null")
        if (time_ns < 0).any():
            raise ValueError(f"row {int(np.argmax(time_ns < 0))} of chunk {chunk_no}: negative time_ns")
        cpu, cpu_valid = _int_column(table, "cpu")
        self.cpu_missing += int(np.count_nonzero(~cpu_valid))
        if (cpu < 0).any():
            raise ValueError(f"chunk {chunk_no}: negative cpu")
        events = pc.dictionary_encode(pc.cast(table.column("event"), pa.string())).combine_chunks()
        names = events.dictionary.to_pylist()
        codes = np.asarray(events.indices.fill_null(-1).to_numpy(zero_copy_only=False))
        if (codes < 0).any():
            raise ValueError(f"row {int(np.argmax(codes < 0))} of chunk {chunk_no}: event is null")
        kind_of_name = np.array(
            [_KIND_CSWITCH if n in CSWITCH_EVENTS else _KIND_KERNEL if n in _KERNEL_BUILDERS
             else _KIND_CALL for n in names] or [0], dtype=np.int8,
        )
        kinds = kind_of_name[codes]
        # grouped by CPU, each CPU's rows in input order: a reader breaks equal times by
        # the position in the CPU's stream, and a step back in time must stay one
        order = np.argsort(cpu, kind="stable")
        qpc = (self.ticks(time_ns) + self.start_qpc).astype(np.uint64)
        self.count_rounded(time_ns)
        self.max_time_ns = max(self.max_time_ns, int(time_ns.max()))
        self.rows += table.num_rows
        for code, count in zip(*np.unique(codes, return_counts=True)):
            self.counts[names[code]] += int(count)

        # fixed-layout records in bulk: CSwitch, and calls without string fields
        groups: list[np.ndarray] = []
        group_of = np.full(len(time_ns), -1, np.int32)   # row -> its bulk group
        position = np.full(len(time_ns), -1, np.int64)   # row -> its index in that group
        # bulk rows in output order, so that each CPU's rows of a group are consecutive
        cswitch = order[kinds[order] == _KIND_CSWITCH]
        if len(cswitch):
            new_tid, new_ok = _int_column(table, "new_tid")
            old_tid, old_ok = _int_column(table, "old_tid")
            new_tid = np.where(new_ok, new_tid, etl_kernel.UNKNOWN_ID)
            old_tid = np.where(old_ok, old_tid, etl_kernel.UNKNOWN_ID)
            self._add_group(groups, group_of, position, cswitch, etl_kernel.cswitch_records(
                self.pointer_size, qpc[cswitch], new_tid[cswitch], old_tid[cswitch], cpu[cswitch]))
        calls = order[kinds[order] == _KIND_CALL]
        if len(calls) and BULK_CALLS:
            self._bulk_calls(table, calls, codes, names, qpc, groups, group_of, position)

        # every other row is built one by one (rare rows, or rows with strings)
        other = np.flatnonzero(group_of < 0)
        blobs: dict[int, bytes] = {}
        if len(other):
            sub = table.take(pa.array(other)).to_pydict()
            keys = list(sub)
            for j, row_index in enumerate(other):
                row = {k: sub[k][j] for k in keys}
                blobs[int(row_index)] = self._one_record(names[codes[row_index]], int(kinds[row_index]),
                                                         int(qpc[row_index]), row)
        self._emit(order, cpu, qpc, groups, group_of, position, blobs)

    def without_unknown_builds(self, table: pa.Table) -> pa.Table:
        """``table`` without its ImageDebugId rows whose debug_id is null (or NaN): a
        DbgID_RSDS record without its build is no record (counted in ``debug_id_missing``)."""
        is_build = pc.fill_null(pc.equal(pc.cast(table.column("event"), pa.string()), "ImageDebugId"), False)
        if not pc.any(is_build).as_py():
            return table
        ids = (table.column("debug_id").filter(is_build).to_pylist() if "debug_id" in table.column_names
               else [None] * int(pc.sum(is_build).as_py()))
        unknown = np.array([i is None or (isinstance(i, float) and math.isnan(i)) for i in ids])
        if not unknown.any():
            return table
        self.debug_id_missing += int(unknown.sum())
        drop = np.zeros(table.num_rows, bool)
        drop[np.flatnonzero(is_build.to_numpy(zero_copy_only=False))[unknown]] = True
        return table.filter(pa.array(~drop))

    @staticmethod
    def _add_group(groups, group_of, position, rows, records) -> None:
        group_of[rows] = len(groups)
        position[rows] = np.arange(len(rows))
        groups.append(records)

    def _bulk_calls(self, table, calls, codes, names, qpc, groups, group_of, position) -> None:
        """Calls with the same event and the same non-null fields, none a string, in bulk."""
        columns = field_columns(table)
        if len(columns) > 31:
            return
        mask = np.zeros(len(calls), np.int64)
        for bit, column in enumerate(columns):
            present = ~np.asarray(pc.is_null(table.column(column)).to_numpy(zero_copy_only=False), bool)
            mask |= present[calls].astype(np.int64) << bit
        keys = codes[calls].astype(np.int64) << 32 | mask
        tid, tid_ok = _int_column(table, "tid")
        pid, pid_ok = _int_column(table, "pid")
        tid = np.where(tid_ok, tid & 0xFFFFFFFF, etl_kernel.UNKNOWN_ID)
        pid = np.where(pid_ok, pid & 0xFFFFFFFF, etl_kernel.UNKNOWN_ID)
        unique, inverse = np.unique(keys, return_inverse=True)
        for g, key in enumerate(unique):
            rows = calls[inverse == g]
            event = names[int(key) >> 32]
            present = [c for bit, c in enumerate(columns) if (int(key) >> bit) & 1]
            try:
                records = bulk_records(table, rows, event, present, qpc[rows], tid[rows], pid[rows],
                                       self.pointer_size, self.hex_addresses)
            except ValueError as exc:
                raise ValueError(f"{event}: {exc}") from None
            if records is not None:
                self._add_group(groups, group_of, position, rows, records)

    def _one_record(self, event: str, kind: int, qpc: int, row: dict) -> bytes:
        try:
            if kind == _KIND_KERNEL:
                rec = _KERNEL_BUILDERS[event](event, self.pointer_size, qpc, row)
            else:
                rec = tracelogging_record(
                    self.pointer_size, qpc, event, row,
                    etl_kernel.UNKNOWN_ID if row.get("tid") is None else int(row["tid"]),
                    etl_kernel.UNKNOWN_ID if row.get("pid") is None else int(row["pid"]),
                    unicode_strings=self.unicode_strings, hex_addresses=self.hex_addresses,
                )
        except (ValueError, OverflowError, TypeError) as exc:
            raise ValueError(f"{event} at time_ns {row.get('time_ns')}: {exc}") from None
        return rec + b"\0" * (-len(rec) % 8)

    def _emit(self, order, cpu, qpc, groups, group_of, position, blobs) -> None:
        """Hand each CPU's records, in time order, to the buffer writer."""
        widths = np.array([g.shape[1] for g in groups] + [0], np.int64)  # [-1] -> 0
        bounds = np.flatnonzero(np.diff(cpu[order])) + 1
        for segment in np.split(order, bounds):
            if not len(segment):
                continue
            c = int(cpu[segment[0]])
            self._check_cpu(c)
            g, p = group_of[segment], position[segment]
            sizes = widths[g]
            # runs of rows that are consecutive records of one bulk group: one slice each
            breaks = np.flatnonzero((g[1:] != g[:-1]) | (g[1:] < 0) | (p[1:] != p[:-1] + 1)) + 1
            pieces: list[bytes] = []
            for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(segment)]):
                group = int(g[start])
                if group >= 0:
                    pieces.append(groups[group][p[start]:p[stop - 1] + 1].tobytes())
                else:
                    blob = blobs[int(segment[start])]
                    sizes[start] = len(blob)
                    pieces.append(blob)
            self.writer.add_run(c, b"".join(pieces), sizes, qpc[segment])
        self.writer.flush_ready()

    def _check_cpu(self, c: int) -> None:
        if self.cpus is not None and c >= self.cpus:
            raise ValueError(f"cpu {c} is not below cpus={self.cpus}")
        if c > 0x7FF:
            raise ValueError(f"cpu {c} exceeds the 11-bit ProcessorIndex")
        self.max_cpu = max(self.max_cpu, c)

    # --- header -------------------------------------------------------------------
    def header_buffer(self, log_file_name: str, logger_name: str, events_lost: int = 0,
                      buffers_lost: int = 0) -> bytes:
        cpus = self.cpus if self.cpus is not None else max(self.max_cpu + 1, 1)
        end_ticks = int(self.ticks(np.array([self.max_time_ns], np.int64))[0])
        filetime_per_tick = 10_000_000 / self.perf_freq
        payload = logfile_header_payload(
            pointer_size=self.pointer_size,
            buffer_size=self.writer.buffer_size,
            cpus=cpus,
            end_time=self.start_filetime + int(end_ticks * filetime_per_tick),
            buffers_written=self.writer.buffers_written + 1,
            boot_time=self.start_filetime - DEFAULT_UPTIME_S * 10_000_000,
            perf_freq=self.perf_freq,
            start_time=self.start_filetime,
            logger_name=logger_name,
            log_file_name=log_file_name,
            events_lost=events_lost,
            buffers_lost=buffers_lost,
        )
        size = SYSTEM_HEADER_SIZE + len(payload)
        record = system_header(self.pointer_size, 2, size, GROUP_HEADER, 0, 0, 0, self.start_qpc) + payload
        return self.writer.header_buffer(record)


def _chunks(events: Any) -> Iterator[pa.Table]:
    """Chunks in row order (never sorted: each CPU's rows are written in the order given):
    a whole table is sliced; an iterable of tables is taken as given."""
    if isinstance(events, (pa.Table, pa.RecordBatch)) or hasattr(events, "columns"):
        table = _as_table(events)
        for start in range(0, table.num_rows, CHUNK_ROWS):
            yield table.slice(start, CHUNK_ROWS)
        return
    if isinstance(events, Iterable):
        for chunk in events:
            yield _as_table(chunk)
        return
    raise TypeError(f"events must be a table, a DataFrame or an iterable of them, not {type(events).__name__}")


def write_etl(
    events: Any,
    path: str | Path,
    *,
    pointer_size: int = 8,
    cpus: int | None = None,
    start_time: datetime | int = DEFAULT_START_TIME,
    perf_freq: int = 10_000_000,
    buffer_size: int = 64 * 1024,
    unicode_strings: bool = False,
    hex_addresses: bool = True,
    logger_name: str = "NT Kernel Logger",
    events_lost: int = 0,
    buffers_lost: int = 0,
) -> dict[str, Any]:
    """Write events as an ETL file, the way an ETW session (NT Kernel Logger plus the
    ``MdlTrace`` TraceLogging provider) writes one.

    events: the canonical table (pyarrow Table or pandas DataFrame; ``time_ns`` since
        trace start, ``event`` names from docs/trace-format.md), or an iterable of such chunks
        (bounded memory for very large traces). Rows are not sorted: each CPU's rows are
        logged in the order given (equal times keep it; a step back in time stays one).
    path: output file (overwritten).
    pointer_size: 8 (64-bit layouts) or 4 (32-bit layouts; addresses must fit 32 bits).
    cpus: NumberOfProcessors; default: highest ``cpu`` + 1. Rows without a cpu go to CPU 0.
    start_time: trace start (datetime, naive = UTC, or FILETIME int); fixed by default so
        output is reproducible.
    perf_freq: QPC frequency; times are rounded to its ticks (10 MHz = 100 ns; pass
        1_000_000_000 to keep every nanosecond).
    buffer_size: bytes per buffer (multiple of 8, 1 KiB..16 MiB).
    unicode_strings: write status/caller/image fields as UTF-16 instead of ANSI.
    hex_addresses: addresses as HEXINT64/32 (what TraceLoggingPointer writes); False
        writes UINT64/32 (for decoders without HEXINT support).
    logger_name: session name stored in the logfile header.
    events_lost, buffers_lost: the session's loss counters stored in the logfile header
        (EventsLost, BuffersLost), to test readers' lost-event accounting.

    Returns a summary dict: ``path``, ``events`` (rows written), ``events_by_name``,
    ``buffers`` (including the header buffer), ``bytes``, ``cpus``, ``pointer_size``,
    ``perf_freq``, ``start_filetime``, ``provider_guid`` (MdlTrace), ``time_rounded``
    (rows whose time_ns is not a whole number of ticks), ``cpu_missing`` (rows written
    to CPU 0 because cpu was null), ``debug_id_missing`` (ImageDebugId rows not written:
    their debug_id is null or NaN).
    Raises :class:`traceanalyzer.errors.TraceError` naming the output file on bad input.
    """
    path = Path(path)
    try:
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:  # no partial file on failure
            job = _EtlJob(fh, pointer_size=pointer_size, cpus=cpus, start_time=start_time,
                          perf_freq=perf_freq, buffer_size=buffer_size,
                          unicode_strings=unicode_strings, hex_addresses=hex_addresses)
            fh.write(b"\0" * buffer_size)  # placeholder for the header buffer
            for n, chunk in enumerate(_chunks(events)):
                job.add_chunk(chunk, n)
            job.writer.finish()
            header = job.header_buffer(f"C:\\Traces\\{path_text(path.name)}", logger_name,
                                       events_lost, buffers_lost)
            fh.seek(0)
            fh.write(header)
    except (ValueError, TypeError) as exc:
        raise TraceError(f"cannot write ETL: {exc}", path) from None
    except OSError as exc:
        raise TraceError(f"cannot write ETL: {exc.strerror or exc}", path) from None
    buffers = job.writer.buffers_written + 1
    return {
        "path": path_text(path),
        "events": job.rows,
        "events_by_name": dict(sorted(job.counts.items())),
        "records": job.writer.records,
        "buffers": buffers,
        "bytes": buffers * buffer_size,
        "cpus": job.cpus if job.cpus is not None else max(job.max_cpu + 1, 1),
        "pointer_size": pointer_size,
        "perf_freq": perf_freq,
        "start_filetime": job.start_filetime,
        "provider": PROVIDER_NAME,
        "provider_guid": str(PROVIDER_GUID),
        "time_rounded": job.time_rounded,
        "cpu_missing": job.cpu_missing,
        "debug_id_missing": job.debug_id_missing,
    }
