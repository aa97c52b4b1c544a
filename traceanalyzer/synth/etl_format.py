"""ETL container layout: WMI buffer header, trace record headers, the logfile header.

Byte layouts as the Windows ETW runtime writes them (verified against the real files in
``tests/data/real``; offsets in ``docs/etl_writer.md``):

- every buffer starts with a 0x48-byte ``WMI_BUFFER_HEADER``; records follow 8-byte
  aligned (alignment gaps zero), the unused tail of the buffer is 0xFF;
- kernel records start with ``SYSTEM_TRACE_HEADER`` (0x20), its compact form (0x18,
  no CPU times) or ``PERFINFO_TRACE_HEADER`` (0x10, no thread/process ids);
- provider events start with ``EVENT_HEADER`` (0x50);
- the first buffer holds the ``TRACE_LOGFILE_HEADER`` record (group 0, type 0).
"""

from __future__ import annotations

import struct
import uuid
from datetime import datetime, timezone
from typing import Final

BUFFER_HEADER_SIZE: Final[int] = 0x48
SYSTEM_HEADER_SIZE: Final[int] = 0x20
COMPACT_HEADER_SIZE: Final[int] = 0x18
PERFINFO_HEADER_SIZE: Final[int] = 0x10
EVENT_HEADER_SIZE: Final[int] = 0x50
FULL_HEADER_SIZE: Final[int] = 0x30

# header types (the byte at offset 2 of a record); 64-bit value = 32-bit value + 1,
# except EVENT_HEADER (0x12 / 0x13).
HEADER_TYPE: Final[dict[tuple[str, int], int]] = {
    ("system", 4): 0x01,
    ("system", 8): 0x02,
    ("compact", 4): 0x03,
    ("compact", 8): 0x04,
    ("perfinfo", 4): 0x10,
    ("perfinfo", 8): 0x11,
    ("event", 4): 0x12,
    ("event", 8): 0x13,
    ("full", 4): 0x0A,
    ("full", 8): 0x14,
}
#: high byte of every record marker: TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE.
MARKER_FLAGS: Final[int] = 0xC0

# kernel groups (high byte of the hook id)
GROUP_HEADER: Final[int] = 0x00
GROUP_PROCESS: Final[int] = 0x03
GROUP_THREAD: Final[int] = 0x05
GROUP_IMAGE: Final[int] = 0x14

# buffer flags / types
BUFFER_FLAG_FLUSH_MARKER: Final[int] = 0x0001
BUFFER_FLAG_PROC_INDEX: Final[int] = 0x0020
BUFFER_TYPE_GENERIC: Final[int] = 0
BUFFER_TYPE_HEADER: Final[int] = 4
BUFFER_STATE_FLUSH: Final[int] = 3

#: ReservedFlags of the logfile header: 1 = QPC clock (PerfFreq ticks).
CLOCK_TYPE_QPC: Final[int] = 1
#: TRACE_LOGFILE_HEADER.Version bytes: OS 10.0, trace format 1.5 (all real files here).
LOGFILE_VERSION: Final[int] = 0x0501000A

FILETIME_EPOCH: Final[datetime] = datetime(1601, 1, 1, tzinfo=timezone.utc)
#: Default trace start: fixed, so the same scenario always gives the same bytes.
DEFAULT_START_TIME: Final[datetime] = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: QPC value at trace start (one hour after boot), so timestamps look like real ones.
DEFAULT_UPTIME_S: Final[int] = 3600


def to_filetime(when: datetime | int) -> int:
    """FILETIME (100 ns since 1601-01-01 UTC) of a datetime; ints pass through."""
    if isinstance(when, int):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def marker(kind: str, pointer_size: int, version: int) -> int:
    """First 32 bits of a kernel record header: Version | HeaderType << 16 | 0xC0 << 24."""
    return version | HEADER_TYPE[(kind, pointer_size)] << 16 | MARKER_FLAGS << 24


def system_header(
    pointer_size: int, version: int, size: int, group: int, opcode: int,
    tid: int, pid: int, qpc: int,
) -> bytes:
    """``SYSTEM_TRACE_HEADER``: marker, size, hook id, tid, pid, timestamp, CPU times (0)."""
    return struct.pack(
        "<IHBBIIQII", marker("system", pointer_size, version), size, opcode, group,
        tid & 0xFFFFFFFF, pid & 0xFFFFFFFF, qpc, 0, 0,
    )


def full_header(pointer_size: int, version: int, size: int, guid: uuid.UUID, opcode: int,
                tid: int, pid: int, qpc: int) -> bytes:
    """``EVENT_TRACE_HEADER`` of a classic (MOF) event: size, header type, marker flags,
    class type (opcode), level 0, version, tid, pid, timestamp, class GUID, CPU times 0."""
    return struct.pack(
        "<HBBBBHIIq16sII", size, HEADER_TYPE[("full", pointer_size)], MARKER_FLAGS, opcode, 0, version,
        tid & 0xFFFFFFFF, pid & 0xFFFFFFFF, qpc, guid.bytes_le, 0, 0,
    )


def perfinfo_header(pointer_size: int, version: int, size: int, group: int, opcode: int, qpc: int) -> bytes:
    """``PERFINFO_TRACE_HEADER``: marker, size, hook id, timestamp (no ids)."""
    return struct.pack("<IHBBQ", marker("perfinfo", pointer_size, version), size, opcode, group, qpc)


def buffer_header(
    *, buffer_size: int, filled: int, qpc: int, sequence: int, cpu: int, logger_id: int,
    flags: int, buffer_type: int,
) -> bytes:
    """``WMI_BUFFER_HEADER`` (0x48 bytes) of a flushed buffer holding ``filled`` bytes."""
    return struct.pack(
        "<IIIiQqQHHIIHH16s",
        buffer_size,        # 0x00 BufferSize
        filled,             # 0x04 SavedOffset
        filled,             # 0x08 CurrentOffset
        0,                  # 0x0C ReferenceCount
        qpc,                # 0x10 TimeStamp (flush time)
        sequence,           # 0x18 SequenceNumber
        0,                  # 0x20 ClockType/Frequency | SlistEntry
        cpu & 0x7FF,        # 0x28 ClientContext.ProcessorIndex
        logger_id,          # 0x2A ClientContext.LoggerId
        BUFFER_STATE_FLUSH,  # 0x2C State
        filled,             # 0x30 Offset (filled length)
        flags,              # 0x34 BufferFlag
        buffer_type,        # 0x36 BufferType
        b"",                # 0x38 Padding / ReferenceTime
    )


def _utf16z(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def _time_zone_utc() -> bytes:
    """TIME_ZONE_INFORMATION (0xAC bytes) of UTC, as Windows names it (tzres ids)."""
    name_std = "@tzres.dll,-932".encode("utf-16-le").ljust(64, b"\0")
    name_dst = "@tzres.dll,-931".encode("utf-16-le").ljust(64, b"\0")
    return struct.pack("<i64s16si64s16si", 0, name_std, b"", 0, name_dst, b"", 0)


def logfile_header_payload(
    *, pointer_size: int, buffer_size: int, cpus: int, end_time: int, buffers_written: int,
    boot_time: int, perf_freq: int, start_time: int, logger_name: str, log_file_name: str,
    build: int = 19045, cpu_mhz: int = 3000, events_lost: int = 0, buffers_lost: int = 0,
) -> bytes:
    """``TRACE_LOGFILE_HEADER`` (0x118 bytes on 64-bit, 0x110 on 32-bit) + the two names."""
    ptr = "Q" if pointer_size == 8 else "I"
    head = struct.pack(
        f"<IIIIQIIIIIIII{ptr}{ptr}",
        buffer_size,
        LOGFILE_VERSION,
        build,               # ProviderVersion = OS build number
        cpus,
        end_time,
        156_250,             # TimerResolution (15.625 ms)
        0,                   # MaximumFileSize
        0x00000001,          # LogFileMode: EVENT_TRACE_FILE_MODE_SEQUENTIAL
        buffers_written,
        1,                   # StartBuffers
        pointer_size,
        events_lost,
        cpu_mhz,
        10,                  # LoggerName field: HAL timer source on 6.1+ (as real files)
        7,                   # LogFileName field: likewise
    )
    tail = struct.pack("<QQQII", boot_time, perf_freq, start_time, CLOCK_TYPE_QPC, buffers_lost)
    # TIME_ZONE_INFORMATION is 0xAC bytes; the next member (BootTime) is 8-aligned.
    payload = head + _time_zone_utc() + b"\0" * 4 + tail
    assert len(payload) == (0x118 if pointer_size == 8 else 0x110)
    return payload + _utf16z(logger_name) + _utf16z(log_file_name)
