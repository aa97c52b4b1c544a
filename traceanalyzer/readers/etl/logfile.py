"""The TRACE_LOGFILE_HEADER record (first record of the first buffer): clock and counters.

Layout (64-bit; 32-bit pointers shift everything after LogFileName by 8 bytes):
BufferSize @0, Version @4, ProviderVersion (OS build) @8, NumberOfProcessors @0xC,
EndTime @0x10, TimerResolution @0x18, MaximumFileSize @0x1C, LogFileMode @0x20,
BuffersWritten @0x24, StartBuffers @0x28, PointerSize @0x2C, EventsLost @0x30,
CpuSpeedInMHz @0x34, LoggerName/LogFileName pointers @0x38/@0x40, TIME_ZONE_INFORMATION
(0xAC) @0x48, 4 bytes padding, BootTime @0xF8, PerfFreq @0x100, StartTime @0x108,
ReservedFlags (clock type) @0x110, BuffersLost @0x114. The pointer size of the layout is
that of the record header (SYSTEM32 / SYSTEM64), as dissect.etl does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from traceanalyzer.readers.etl import layout as L

_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


@dataclass
class LogfileHeader:
    """Facts from the logfile header that the reader uses."""

    buffer_size: int
    os_version: str
    os_build: int
    cpus: int
    end_time: int
    buffers_written: int
    log_file_mode: int
    pointer_size: int
    events_lost: int
    cpu_mhz: int
    perf_freq: int
    boot_time: int           # FILETIME
    start_time: int          # FILETIME
    clock_type: int
    buffers_lost: int
    header_ts: int           # clock value of the logfile-header record = StartTime
    logger_name: str

    def ticks_per_second(self) -> int:
        """Clock frequency of the record timestamps (QPC, 100 ns system time or cycles)."""
        if self.clock_type == L.CLOCK_SYSTEM_TIME:
            return 10_000_000
        if self.clock_type == L.CLOCK_CPU_CYCLES and self.cpu_mhz > 0:
            return self.cpu_mhz * 1_000_000
        return self.perf_freq if self.perf_freq > 0 else 10_000_000

    def start_time_utc(self) -> str | None:
        """StartTime as an ISO-8601 UTC string, None when out of range."""
        try:
            return (_EPOCH + timedelta(microseconds=self.start_time // 10)).isoformat()
        except (OverflowError, ValueError):
            return None


def parse_logfile_header(record: bytes, pointer_size: int, header_ts: int) -> LogfileHeader | None:
    """Decode the payload of the logfile-header record; None if it is too short."""
    shift = 0 if pointer_size == 8 else -8
    need = 0x118 + shift
    if len(record) < need:
        return None
    (buffer_size, version, build, cpus, end_time, _res, _maxsize, mode, written, _start_buffers,
     ptr, lost, mhz) = struct.unpack_from("<IIIIQIIIIIIII", record, 0)
    boot, freq, start, clock, buffers_lost = struct.unpack_from("<QQQII", record, 0xF8 + shift)
    names = record[need:]
    logger = ""
    end = names.find(b"\0\0")
    while end != -1 and end % 2:
        end = names.find(b"\0\0", end + 1)
    if end > 0:
        logger = names[:end].decode("utf-16-le", "replace")
    major, minor = version & 0xFF, (version >> 8) & 0xFF
    return LogfileHeader(
        buffer_size=buffer_size, os_version=f"{major}.{minor}", os_build=build, cpus=cpus,
        end_time=end_time, buffers_written=written, log_file_mode=mode, pointer_size=ptr, events_lost=lost,
        cpu_mhz=mhz, perf_freq=freq, boot_time=boot, start_time=start, clock_type=clock, buffers_lost=buffers_lost,
        header_ts=header_ts, logger_name=logger,
    )
