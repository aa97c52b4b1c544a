"""Cross-checks of the logfile header against itself and against the file.

A truncated or edited file must not read as a clean one: the header says how many
buffers were written and how large they are, and its clock and pointer size have narrow
plausible ranges. What disagrees is reported as a message for the reader to count
(``truncated_file``, ``implausible_header``) or, under ``--strict``, to raise.
"""

from __future__ import annotations

from traceanalyzer.readers.base import EARLIEST_START, LATEST_START
from traceanalyzer.readers.etl import layout as L
from traceanalyzer.readers.etl.logfile import LogfileHeader

#: Plausible clock rates of record timestamps (ticks per second): QPC runs at 10 MHz on
#: current Windows, at a few MHz (ACPI PM, HPET) or at the TSC's GHz on older ones.
MIN_TICKS_PER_SECOND, MAX_TICKS_PER_SECOND = 1_000, 100_000_000_000
#: Fallback clock rate when the header's is implausible (the 100 ns of QPC / FILETIME).
FALLBACK_TICKS_PER_SECOND = 10_000_000
#: LogFileMode bit of a circular log file (BuffersWritten may exceed what the file holds).
_CIRCULAR = 0x2


def plausible_clock(ticks_per_second: int) -> bool:
    """True if record timestamps at this rate are believable."""
    return MIN_TICKS_PER_SECOND <= ticks_per_second <= MAX_TICKS_PER_SECOND


def header_problems(header: LogfileHeader) -> list[str]:
    """One message per implausible logfile-header value (empty when all are believable)."""
    out = []
    if not plausible_clock(header.perf_freq):
        out.append(f"PerfFreq {header.perf_freq} is implausible (expected {MIN_TICKS_PER_SECOND}.."
                   f"{MAX_TICKS_PER_SECOND} ticks/s)" + _fallback(header))
    elif not plausible_clock(header.ticks_per_second()):
        out.append(f"clock rate {header.ticks_per_second()} ticks/s (clock type {header.clock_type}, "
                   f"CpuSpeedInMHz {header.cpu_mhz}) is implausible" + _fallback(header))
    if header.pointer_size not in (4, 8):
        out.append(f"PointerSize {header.pointer_size} is neither 4 nor 8")
    if not EARLIEST_START <= header.start_time <= LATEST_START:
        out.append(f"StartTime {header.start_time} (FILETIME) is outside 1990-2100")
    return out


def clock_rate(header: LogfileHeader) -> int:
    """Ticks per second of the record timestamps: the header's, or the fallback when that
    (or, for a QPC clock, PerfFreq) is implausible."""
    tps = header.ticks_per_second()
    uses_perf_freq = header.clock_type not in (L.CLOCK_SYSTEM_TIME, L.CLOCK_CPU_CYCLES)
    if not plausible_clock(tps) or (uses_perf_freq and not plausible_clock(header.perf_freq)):
        return FALLBACK_TICKS_PER_SECOND
    return tps


def _fallback(header: LogfileHeader) -> str:
    return f"; times use {clock_rate(header)} ticks/s"


def missing_buffers(header: LogfileHeader, seen: int) -> int:
    """Buffers the header says were written that the file does not hold (0 when it cannot
    tell: BuffersWritten 0, or a circular log file)."""
    if header.buffers_written <= 0 or header.log_file_mode & _CIRCULAR:
        return 0
    return max(0, header.buffers_written - seen)
