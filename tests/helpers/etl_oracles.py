"""Test helpers: a scenario covering every event kind, and two independent ETL decoders.

dissect.etl (AGPL, test-only) and etl-parser read the files the writer produces; the
tests compare what they decode with the scenario rows. Neither decoder shares code with
the writer.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

ADDR = 0xFFFFC30A4B2F1000
DRIVER = "\\SystemRoot\\System32\\drivers\\mydriver.sys"
DRIVER_BASE = 0xFFFFF80012340000

_INT_COLUMNS = ("cpu", "pid", "tid", "parent_pid", "wow64", "new_tid", "old_tid", "target_pid",
                "effective_pid", "bugcheck_on_failure", "priority", "tag", "irql")
_U64_COLUMNS = ("mdl", "source_mdl", "va", "size", "requested_size", "mapped_va", "base",
                "image_size", "irp", "return_address")


def scenario_rows() -> list[dict[str, Any]]:
    """Rows of every kind the writer handles, on 3 CPUs, times in whole 100 ns ticks."""
    return [
        dict(time_ns=0, event="ProcessRundown", cpu=0, pid=4, parent_pid=0, image="System"),
        dict(time_ns=100, event="ProcessRundown", cpu=0, pid=1234, parent_pid=500, image="app.exe"),
        dict(time_ns=200, event="ProcessRundown", cpu=0, pid=1300, parent_pid=500, image="app32.exe", wow64=1),
        dict(time_ns=300, event="ThreadRundown", cpu=0, pid=1234, tid=5678),
        dict(time_ns=400, event="ThreadRundown", cpu=0, pid=4, tid=8),
        dict(time_ns=500, event="ImageLoad", cpu=1, pid=4, tid=8, image=DRIVER, base=DRIVER_BASE, image_size=0x20000),
        dict(time_ns=1000, event="CSwitch", cpu=0, new_tid=5678, old_tid=0),
        dict(time_ns=1100, event="CSwitch", cpu=2, new_tid=8, old_tid=0),
        dict(time_ns=2000, event="IoAllocateMdl", cpu=0, pid=1234, tid=5678, mdl=ADDR, va=0x7FF612340000,
             size=8192, irp=0xFFFFC30A00001000, caller="mydriver.sys+0x1a2b", status="0x0"),
        dict(time_ns=3000, event="MmProbeAndLockPages", cpu=0, pid=1234, tid=5678, mdl=ADDR,
             access_mode="UserMode", operation="IoWriteAccess"),
        dict(time_ns=4000, event="MmMapLockedPagesSpecifyCache", cpu=1, pid=1234, tid=5678, mdl=ADDR,
             access_mode="UserMode", cache_type="MmCached", mapped_va=0x1F0000, priority=0x40000010,
             bugcheck_on_failure=0, return_address=DRIVER_BASE + 0x1A2B),
        dict(time_ns=4500, event="MmAllocatePagesForMdlEx", cpu=2, pid=4, tid=8, requested_size=65536,
             size=61440, cache_type="MmNonCached", caller="mydriver.sys+0x2000", status="0x0", irql=2),
        dict(time_ns=5000, event="KeStackAttachProcess", cpu=1, pid=4, tid=8, target_pid=1234),
        dict(time_ns=5100, event="KeUnstackDetachProcess", cpu=1, pid=4, tid=8, effective_pid=4),
        dict(time_ns=6000, event="CSwitch", cpu=1, new_tid=9, old_tid=8),
        dict(time_ns=6500, event="MmAllocateMappingAddress", cpu=2, pid=4, tid=8, tag=0x6C644D4D,
             mapped_va=0xFFFFA00000000000, size=4096),
        dict(time_ns=7000, event="ThreadEnd", cpu=0, pid=1234, tid=5678),
        dict(time_ns=8000, event="ProcessEnd", cpu=0, pid=1234, tid=5678, parent_pid=500, image="app.exe"),
        dict(time_ns=9000, event="ImageUnload", cpu=1, pid=4, tid=8, image=DRIVER, base=DRIVER_BASE, image_size=0x20000),
        dict(time_ns=9500, event="ProcessStart", cpu=0, pid=2000, tid=77, parent_pid=1300, image="child.exe"),
        dict(time_ns=9600, event="ThreadStart", cpu=0, pid=2000, tid=2004),
        dict(time_ns=9700, event="IoCompleteRequest", cpu=0, pid=2000, tid=2004, irp=0xFFFFC30A00001000),
    ]


def scenario_frame(rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The scenario as a DataFrame with nullable integer columns."""
    rows = rows if rows is not None else scenario_rows()
    names = list(dict.fromkeys(c for row in rows for c in row))
    data = {}
    for col in names:
        values = [row.get(col) for row in rows]
        dtype = "Int64" if col in _INT_COLUMNS else "UInt64" if col in _U64_COLUMNS else None
        # built from Python ints directly: a float detour would round 64-bit addresses
        data[col] = pd.array(values, dtype=dtype) if dtype else values
    return pd.DataFrame(data)


# --- dissect.etl ---------------------------------------------------------------------------

def dissect_records(path: str | Path, limit: int | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """(logfile header struct, records in file order) as decoded by dissect.etl.

    Each record: cpu (buffer ProcessorIndex), header (class name), provider (UUID as
    dissect reports it), symbol, version, tid, pid, filetime, fields (decoded payload or
    {}), extensions ({ext type: data}), payload (bytes after the header).
    ``limit``: stop after that many records.
    """
    from dissect.etl.etl import ETL

    _patch_dissect_32bit()
    out = []
    with open(path, "rb") as fh:
        etl = ETL(fh)
        for buf in etl.buffers():
            for rec in buf:
                head = rec.header
                event = rec.event
                fields = dict(event._struct.__values__) if event._struct is not None else {}
                ext = {}
                if type(head).__name__ == "EventHeader":
                    ext = {int(x.ext_type): x for x in head.header_extensions}
                out.append({
                    "cpu": buf.header.ProcessorIndex,
                    "buffer_flags": int(buf.header.BufferFlag),
                    "header": type(head).__name__,
                    "marker": head.marker,
                    "provider": event.provider_id(),
                    "symbol": event.symbol(),
                    "version": getattr(head, "version", None),
                    "tid": getattr(head, "thread_id", None),
                    "pid": getattr(head, "process_id", None),
                    "filetime": etl.get_filetime_for_event(head.time_delta),
                    "fields": fields,
                    "extensions": ext,
                    "payload": bytes(head.payload),
                })
                if limit is not None and len(out) >= limit:
                    return etl.logfile_header, out
        return etl.logfile_header, out


_KERNEL_GUIDS = (
    "68fdd900-4a3e-11d1-84f4-0000f80464e3",  # EventTrace (logfile header)
    "3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c",  # Process
    "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c",  # Thread
    "2cb15d1d-5fc1-11d2-abe1-00a0c911f518",  # Image
)


def _patch_dissect_32bit() -> None:
    """dissect.etl 3.14 declares EtwPointer.as_32bit without @classmethod, so every
    32-bit payload fails with TypeError; make it the classmethod it is meant to be."""
    from dissect.etl import manifest

    for guid in _KERNEL_GUIDS:
        for klass in manifest.lookup(uuid.UUID(guid)).c_parser.EtwPointer.__mro__:
            method = klass.__dict__.get("as_32bit")
            if method is not None and not isinstance(method, classmethod):
                klass.as_32bit = classmethod(method)


# --- etl-parser ----------------------------------------------------------------------------

def etlparser_records(path: str | Path) -> list[dict[str, Any]]:
    """Records as etl-parser decodes them, in file order: kind ('system', 'perfinfo',
    'event'), timestamp (raw QPC), tid, pid, mof class name, event type name, fields
    (decoded payload / TraceLogging values) or error (its exception class name)."""
    from etl.etl import IEtlFileObserver, build_from_stream

    out: list[dict[str, Any]] = []

    class Observer(IEtlFileObserver):
        def on_event_record(self, event):
            rec = {"kind": "event", "timestamp": event.get_timestamp(), "tid": event.get_thread_id(),
                   "pid": event.get_process_id()}
            try:
                parsed = event.parse_tracelogging()
                rec.update(name=parsed.get_name(), fields=dict(parsed))
            except Exception as exc:  # noqa: BLE001 - record which decodes fail
                rec["error"] = type(exc).__name__
            out.append(rec)

        def on_trace_record(self, event):
            out.append({"kind": "trace"})

        def on_perfinfo_trace(self, obj):
            rec = {"kind": "perfinfo", "timestamp": obj.get_timestamp()}
            _mof(obj, rec)
            out.append(rec)

        def on_system_trace(self, obj):
            rec = {"kind": "system", "tid": obj.get_thread_id(), "pid": obj.get_process_id(),
                   "timestamp": obj.source.system_header.system_time}
            _mof(obj, rec)
            out.append(rec)

        def on_win_trace(self, obj):
            out.append({"kind": "win"})

    build_from_stream(Path(path).read_bytes()).parse(Observer())
    return out


def _mof(obj: Any, rec: dict[str, Any]) -> None:
    try:
        mof = obj.get_mof()
    except Exception as exc:  # noqa: BLE001
        rec["error"] = type(exc).__name__
        return
    rec["mof"] = type(mof).__name__
    rec["type"] = mof.get_event_definition()
    rec["fields"] = {k: v for k, v in mof.source.items() if not k.startswith("_")}
    if "ImageFileName" in rec["fields"]:
        rec["image"] = mof.get_image_file_name()
    if "FileName" in rec["fields"]:
        rec["image"] = bytes(mof.source.FileName.string[:-2]).decode("utf-16-le")


def uuid_as_dissect_reports_event_header(guid: uuid.UUID) -> uuid.UUID:
    """dissect.etl 3.14 reads EVENT_HEADER.ProviderId big-endian (its bug, seen on the
    real lxcore_kernel.etl too); this is what it reports for a provider GUID."""
    return uuid.UUID(bytes=guid.bytes_le)


def record_marker(data: bytes, offset: int) -> tuple[int, int]:
    """(header type byte, record size) of the record at ``offset`` of a buffer."""
    marker = struct.unpack_from("<I", data, offset)[0]
    header_type = (marker >> 16) & 0xFF
    if header_type in (0x12, 0x13):
        return header_type, marker & 0xFFFF
    return header_type, struct.unpack_from("<H", data, offset + 4)[0]


# --- canonical rows back from an ETL file (dissect + the documented inverse mapping) ---

_SYMBOL_EVENTS = {
    "Process/Start": "ProcessStart", "Process/End": "ProcessEnd", "Process/DCStart": "ProcessRundown",
    "Thread/Start": "ThreadStart", "Thread/End": "ThreadEnd", "Thread/DCStart": "ThreadRundown",
    "Thread/CSwitch": "CSwitch", "Image/Load": "ImageLoad", "Image/UnLoad": "ImageUnload",
}
_TL_FORMATS = {3: "<b", 4: "<B", 5: "<h", 6: "<H", 7: "<i", 8: "<I", 9: "<q", 10: "<Q", 20: "<I", 21: "<Q"}
_ENUMS = {
    "access_mode": ("KernelMode", "UserMode"),
    "operation": ("IoReadAccess", "IoWriteAccess", "IoModifyAccess"),
    "cache_type": ("MmNonCached", "MmCached", "MmWriteCombined", "MmHardwareCoherentCached",
                   "MmNonCachedUnordered", "MmUSWCCached"),
}


def _id(value: int | None) -> int | None:
    return None if value is None or value == 0xFFFFFFFF else value


def tracelogging_fields(schema: bytes, data: bytes) -> tuple[str, dict[str, Any]]:
    """(event name, field values) of a TraceLogging event, decoded from its schema."""
    pos = 2
    while schema[pos] & 0x80:
        pos += 1
    pos += 1
    end = schema.index(b"\0", pos)
    name, pos = schema[pos:end].decode(), end + 1
    values: dict[str, Any] = {}
    at = 0
    while pos < len(schema):
        end = schema.index(b"\0", pos)
        field, in_type = schema[pos:end].decode(), schema[end + 1]
        pos = end + 2
        if in_type == 2:
            stop = data.index(b"\0", at)
            values[field], at = data[at:stop].decode(), stop + 1
        elif in_type == 1:
            stop = next(i for i in range(at, len(data), 2) if data[i:i + 2] == b"\0\0")
            values[field], at = data[at:stop].decode("utf-16-le"), stop + 2
        else:
            (values[field],) = struct.unpack_from(_TL_FORMATS[in_type], data, at)
            at += struct.calcsize(_TL_FORMATS[in_type])
    assert at == len(data)
    return name, values


def canonical_rows(path: str | Path) -> list[dict[str, Any]]:
    """The canonical rows of an ETL file, decoded with dissect.etl and the inverse of the
    mapping in docs/etl_writer.md (times from dissect's 100 ns FILETIMEs)."""
    header, records = dissect_records(path)
    rows = []
    for rec in records[1:]:
        row: dict[str, Any] = {"time_ns": (rec["filetime"] - header.start_time) * 100, "cpu": rec["cpu"]}
        f = rec["fields"]
        if rec["header"] == "EventHeader":
            ext = rec["extensions"]
            name, values = tracelogging_fields(bytes(ext[0x0B].EventSchema),
                                               rec["payload"][ext[0x0C].size + ext[0x0B].size:])
            row.update(event=name, pid=_id(rec["pid"]), tid=_id(rec["tid"]))
            for column, value in values.items():
                row[column] = _ENUMS[column][value] if column in _ENUMS else value
        else:
            event = _SYMBOL_EVENTS[rec["symbol"]]
            row["event"] = event
            if event.startswith("Process"):
                row.update(pid=_id(f["ProcessId"]), parent_pid=_id(f["ParentId"]),
                           image=f["ImageFileName"].decode(), wow64=1 if f["Flags"] & 2 else 0)
                if rec["header"] == "SystemHeader":
                    row["tid"] = _id(rec["tid"])
            elif event.startswith("Thread"):
                row.update(pid=_id(f["ProcessId"]), tid=_id(f["TThreadId"]))
            elif event == "CSwitch":
                row.update(new_tid=_id(f["NewThreadId"]), old_tid=_id(f["OldThreadId"]))
            else:
                row.update(pid=_id(f["ProcessId"]), tid=_id(rec["tid"]), image=f["FileName"],
                           base=f["ImageBase"], image_size=f["ImageSize"])
        rows.append(row)
    return rows
