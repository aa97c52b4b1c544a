"""The Python path for rare records: Process, Image, classic (GUID) and provider events.

Kernel Process/Image records and their classic-header twins (full EVENT_TRACE_HEADER
with the Process/Thread/Image class GUID) become canonical rows; EVENT_HEADER events of
a mapped provider (``MdlTrace`` or the mapping file) become call rows; everything else is
counted per provider/event in ``unknown_events`` (and kept as ``<Provider>/<Event>`` rows
with ``ReadOptions.extra["keep_unknown"]``).
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pyarrow as pa

from traceanalyzer.model.stats import Stats
from traceanalyzer.readers.etl import fallback, kernel
from traceanalyzer.readers.etl import layout as L
from traceanalyzer.readers.etl.bulk_events import (
    BULK_MIN_EVENTS,
    EventClass as _EventClass,
    bulk_events,
    decode_bulk_all,
)
from traceanalyzer.readers.etl.columns import ORDER_KEY, rows_table
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers.convert import count_bad_cells, value_for_column, why_bad
from traceanalyzer.readers.field_map import FieldMap
from traceanalyzer.readers.etl.tracelogging import (
    TlDecodeError,
    decode_payload,
    parse_provider_name,
    parse_schema,
)

_PTR64 = frozenset({L.SYSTEM64, L.COMPACT64, L.PERFINFO64, L.EVENT64, L.FULL64, L.INSTANCE64})
_CLASS_OF_GUID = {L.PROCESS_GUID: L.K_PROCESS, L.THREAD_GUID: L.K_THREAD, L.IMAGE_GUID: L.K_IMAGE}
_FIELDS = ("pos", "size", "hsize", "htype", "kind", "hook", "version", "tid", "pid", "ts", "a", "b", "c", "h", "cpu",
           "key")


def _fitting_pointer_size(layout: str, payload: bytes, version: int, ptr: int) -> int:
    """``ptr`` unless only the other pointer size fits the payload exactly
    (:func:`kernel.layout_fits`)."""
    other = 12 - ptr
    if not kernel.layout_fits(layout, payload, version, ptr) and kernel.layout_fits(layout, payload, version, other):
        return other
    return ptr


class RareDecoder:
    """Accumulates rows of the rare records of all chunks."""

    def __init__(self, src: str, stats: Stats, field_map: FieldMap, time_base: Any, keep_unknown: bool,
                 etlparser_fallback: bool = False, strict: bool = False, pointer_size: int | None = None) -> None:
        self.src, self.stats, self.field_map, self.time = src, stats, field_map, time_base
        #: the trace's pointer size (logfile header), None when it is not 4 or 8
        self.pointer_size = pointer_size if pointer_size in (4, 8) else None
        self.strict = strict
        self.keep_unknown = keep_unknown
        self.etlparser_fallback = etlparser_fallback
        self.rows: list[dict[str, Any]] = []
        self.chunks: list[dict[str, pa.Array]] = []
        self.classes: dict[int, _EventClass] = {}

    # --- entry point -------------------------------------------------------------------
    def decode(self, data: np.ndarray, rec: dict[str, np.ndarray], idx: np.ndarray) -> None:
        """Decode records ``idx`` of a walk chunk (``rec`` as :func:`walk.walk` returns)."""
        if not len(idx):
            return
        events = idx[rec["kind"][idx] == L.K_EVENT]
        slow = [idx[rec["kind"][idx] != L.K_EVENT]]
        if len(events):
            hashes, inverse = np.unique(rec["h"][events], return_inverse=True)
            groups: list[tuple[_EventClass | None, np.ndarray]] = []
            for g, h in enumerate(hashes.tolist()):
                members = events[inverse == g]
                first = int(members[0])
                cls = self.classes.get(h)
                if cls is None and rec["a"][first] >= 0:
                    cls = self._classify(data, int(rec["pos"][first]), int(rec["b"][first]), int(rec["c"][first]))
                    self.classes[h] = cls
                groups.append((cls, members))
            # the compiled walks first (on two threads when large), then, class by class in
            # this order, the columns and counters
            in_bulk = [cls is not None and len(members) >= BULK_MIN_EVENTS for cls, members in groups]
            walked = iter(decode_bulk_all(data, rec, [g for g, b in zip(groups, in_bulk) if b]))
            for (cls, members), bulk in zip(groups, in_bulk):
                if bulk:
                    members = bulk_events(data, rec, members, cls, next(walked), self.time,
                                          self.chunks, self.bad_values, self._unmapped_counter(cls))
                slow.append(members)
        idx = np.sort(np.concatenate(slow))
        cols = [rec[k][idx].tolist() for k in _FIELDS]
        for *fields, key in zip(*cols):
            before = len(self.rows)
            self._record(data, *fields)
            for row in self.rows[before:]:
                row[ORDER_KEY] = key

    def _record(self, data: np.ndarray, pos: int, size: int, hsize: int, htype: int, kind: int, hook: int,
                version: int, tid: int, pid: int, ts: int, a: int, b: int, c: int, h: int, cpu: int) -> None:
        """Decode one record into ``self.rows`` (none when it is not a row or does not decode)."""
        try:
            if kind == L.K_EVENT:
                self._event(data, pos, size, tid, pid, ts, a, b, c, h, cpu, htype)
                return
            payload = bytes(data[pos + hsize:pos + size])
            ptr = 8 if htype in _PTR64 else 4
            if kind == L.K_KERNEL_OTHER:  # only with etlparser_fallback (counted by the reader)
                self._fallback(hook, version, payload, ts, cpu, pid, tid)
                return
            if kind == L.K_CLASSIC:
                guid = uuid.UUID(bytes_le=bytes(data[pos + 0x18:pos + 0x28])) if htype in (L.FULL32, L.FULL64) else None
                kind = _CLASS_OF_GUID.get(guid, -1)
                if guid == L.IMAGE_ID_GUID and hook == L.DBGID_RSDS_OPCODE:
                    # the merge writes ImageBase with the trace's pointer size
                    ptr = _fitting_pointer_size("debug_id", payload, version, self.pointer_size or ptr)
                    self._debug_id(payload, ptr, ts, cpu, pid, tid)
                    return
                if kind == -1:
                    self._unknown(f"{guid or 'instance'}/{hook}", ts, cpu, pid, tid)
                    return
                group = {L.K_PROCESS: L.GROUP_PROCESS, L.K_THREAD: L.GROUP_THREAD, L.K_IMAGE: L.GROUP_IMAGE}[kind]
                opcode = hook
                if kind != L.K_THREAD:  # the header's pointer size unless only the other fits
                    ptr = _fitting_pointer_size("image" if kind == L.K_IMAGE else "process", payload, version, ptr)
            else:
                group, opcode = hook >> 8, hook & 0xFF
            self._kernel(kind, group, opcode, version, ptr, payload, ts, cpu, pid, tid)
        except (kernel.PayloadError, TlDecodeError, ValueError, IndexError, UnicodeError) as exc:
            self.stats.add("truncated_records", 1, "warning", self.src,
                           f"record at 0x{pos:x} does not decode: {exc}")

    # --- kernel ------------------------------------------------------------------------
    def _kernel(self, kind: int, group: int, opcode: int, version: int, ptr: int, payload: bytes,
                ts: int, cpu: int, hpid: int, htid: int) -> None:
        if kind == L.K_PROCESS:
            name, label = kernel.PROCESS_EVENTS.get(opcode, None), "Process"
        elif kind == L.K_THREAD:
            name, label = kernel.THREAD_EVENTS.get(opcode, None), "Thread"
        else:
            name, label = kernel.IMAGE_EVENTS.get(opcode, None), "Image"
        if name is None:
            stat = kernel.NOT_A_ROW.get(opcode)
            if stat is None:
                self.stats.add("unknown_events", 1, "info", self.src, f"Kernel-{label}/{opcode}")
            else:
                self.stats.add(stat, 1, "info", self.src, f"{label}/{opcode}")
            return
        row: dict[str, Any] = {"time_ns": self.time.one(ts), "event": name, "cpu": cpu}
        if kind == L.K_PROCESS:
            row.update(kernel.process_fields(payload, version, ptr))
            # the header thread belongs to the subject only when logged in its context
            row["tid"] = htid if (htid >= 0 and hpid == row["pid"]) else None
        elif kind == L.K_THREAD:
            row.update(kernel.thread_fields(payload, version))
        else:
            row.update(kernel.image_fields(payload, version, ptr))
            if row["pid"] is None and hpid >= 0:
                row["pid"] = hpid
            row["tid"] = htid if htid >= 0 else None
        self.rows.append(row)

    def _debug_id(self, payload: bytes, ptr: int, ts: int, cpu: int, hpid: int, htid: int) -> None:
        """A DbgID_RSDS record: which PDB build an image is (``ImageDebugId``)."""
        row: dict[str, Any] = {"time_ns": self.time.one(ts), "event": "ImageDebugId", "cpu": cpu,
                               "tid": htid if htid >= 0 else None}
        row.update(kernel.debug_id_fields(payload, ptr))
        if row["pid"] is None and hpid >= 0:
            row["pid"] = hpid
        self.rows.append(row)

    def _fallback(self, hook: int, version: int, payload: bytes, ts: int, cpu: int, pid: int, tid: int) -> None:
        decoded = fallback.decode_kernel(hook >> 8, version, hook & 0xFF, payload)
        if decoded is None:
            return
        name, fields = decoded
        row: dict[str, Any] = {"time_ns": self.time.one(ts), "event": name, "cpu": cpu,
                               "pid": pid if pid >= 0 else None, "tid": tid if tid >= 0 else None}
        row.update({f"etlparser.{k}": v for k, v in fields.items()})
        self.rows.append(row)

    # --- provider events -------------------------------------------------------------------
    def _event(self, data: np.ndarray, pos: int, size: int, tid: int, pid: int, ts: int,
               a: int, b: int, c: int, h: int, cpu: int, htype: int) -> None:
        if a < 0:
            raise ValueError("extended data items overrun the record")
        cls = self.classes.get(h)
        if cls is None:
            cls = self._classify(data, pos, b, c)
            self.classes[h] = cls
        if cls.mapping is None or cls.schema is None:
            self._unknown(cls.label, ts, cpu, pid, tid)
            return
        values = decode_payload(cls.schema, bytes(data[a:pos + size]), 8 if htype == L.EVENT64 else 4)
        event = cls.mapping.canonical
        row: dict[str, Any] = {"time_ns": self.time.one(ts), "event": event, "cpu": cpu,
                               "pid": pid if pid >= 0 else None, "tid": tid if tid >= 0 else None}
        for fname, value in values.items():
            col = cls.column(fname)
            if col is None:
                self.stats.add("unmapped_fields", 1, "info", self.src, f"{cls.provider}/{cls.schema.name}/{fname}")
                continue
            row[col], bad = value_for_column(col, value)
            if bad:
                self.bad_values(cls, col, fname, 1, pos, value)
        self.rows.append(row)

    def bad_values(self, cls: _EventClass, column: str, field_name: str, count: int, pos: int, value: Any) -> None:
        """Payload values that do not fit their column (now null): counted, or raised in strict mode."""
        event = cls.schema.name if cls.schema is not None else cls.label
        if self.strict:
            raise TraceFormatError(f"record at 0x{pos:x}: {cls.provider}/{event} field {field_name!r} -> "
                                   f"column {column!r}: {why_bad(column, value)}", self.src)
        what = f"{cls.provider}/{event}.{column}"
        count_bad_cells(self.stats, self.src, column, count, what, f"record at 0x{pos:x}",
                        f"{what}: {why_bad(column, value)}")

    def _unmapped_counter(self, cls: _EventClass):
        def count(field: str, n: int) -> None:
            self.stats.add("unmapped_fields", n, "info", self.src, f"{cls.provider}/{cls.schema.name}/{field}")
        return count

    def _classify(self, data: np.ndarray, pos: int, b: int, c: int) -> _EventClass:
        guid = uuid.UUID(bytes_le=bytes(data[pos + 0x18:pos + 0x28]))
        traits = bytes(data[c >> 16:(c >> 16) + (c & 0xFFFF)]) if c else b""
        name = parse_provider_name(traits) if traits else None
        provider = name or str(guid)
        schema = None
        if b:
            try:
                schema = parse_schema(bytes(data[b >> 16:(b >> 16) + (b & 0xFFFF)]))
            except TlDecodeError as exc:
                self.stats.add("bad_schemas", 1, "warning", self.src, f"{provider}: {exc}")
        if schema is not None:
            label = f"{provider}/{schema.name}"
        else:
            event_id = int.from_bytes(bytes(data[pos + 0x28:pos + 0x2A]), "little")
            label = f"{provider}/{event_id}"
        mapping = self.field_map.lookup(name, schema.name, guid=guid, any_event=True) if schema is not None else None
        return _EventClass(label, schema, mapping, provider)

    def _unknown(self, label: str, ts: int, cpu: int, pid: int, tid: int) -> None:
        self.stats.add("unknown_events", 1, "info", self.src, label)
        if self.keep_unknown:
            self.rows.append({"time_ns": self.time.one(ts), "event": label, "cpu": cpu,
                              "pid": pid if pid >= 0 else None, "tid": tid if tid >= 0 else None})

    # --- output ------------------------------------------------------------------------
    def columns(self) -> list[dict[str, pa.Array]]:
        """The rows decoded since the last call, as chunks of canonical columns (bulk event
        groups, then the rest); the decoder starts empty again."""
        chunks, rows = self.chunks, self.rows
        self.chunks, self.rows = [], []
        if not rows:
            return chunks
        names: list[str] = []
        for row in rows:
            for k in row:
                if k not in names:
                    names.append(k)
        return [*chunks, rows_table({k: [row.get(k) for row in rows] for k in names})]
