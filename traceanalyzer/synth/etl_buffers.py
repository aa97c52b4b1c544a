"""Per-CPU buffer streams written to an ETL file, buffer by buffer.

Records arrive per CPU in the order they are to be logged (normally time order) as one
byte run plus each record's aligned size and timestamp. They are packed greedily into
buffers of ``buffer_size`` bytes (0x48 header + records + 0xFF fill); a buffer is written
to the file as soon as it is full, so memory stays bounded. Buffers that fill up within
one :meth:`BufferWriter.flush_ready` call are written in order of the latest timestamp
their CPU has logged so far (then CPU), as an ETW session flushes them; a CPU's buffers
thus stay in their stream order even when its records go back in time. The file therefore interleaves the CPUs' streams and is not in global time order,
like a real trace. The first buffer (the logfile header) is written last, when
BuffersWritten and EndTime are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from traceanalyzer.synth.etl_format import (
    BUFFER_FLAG_FLUSH_MARKER,
    BUFFER_FLAG_PROC_INDEX,
    BUFFER_HEADER_SIZE,
    BUFFER_TYPE_GENERIC,
    BUFFER_TYPE_HEADER,
    buffer_header,
)

#: LoggerId written into every buffer's ClientContext.
LOGGER_ID = 0x1C


@dataclass
class _Stream:
    """The partly filled buffer of one CPU."""

    parts: list[bytes] = field(default_factory=list)
    filled: int = 0
    last_qpc: int = 0
    max_qpc: int = 0
    buffers: int = 0


@dataclass
class _Done:
    last_qpc: int
    max_qpc: int
    cpu: int
    payload: bytes
    final: bool


class BufferWriter:
    """Packs per-CPU record runs into WMI buffers and writes them to ``fh``."""

    def __init__(self, fh: BinaryIO, buffer_size: int) -> None:
        if buffer_size % 8 or buffer_size < 1024 or buffer_size > 16 * 1024 * 1024:
            raise ValueError(f"buffer_size {buffer_size} must be a multiple of 8 in 1 KiB..16 MiB")
        self.fh = fh
        self.buffer_size = buffer_size
        self.capacity = buffer_size - BUFFER_HEADER_SIZE
        self.streams: dict[int, _Stream] = {}
        self.ready: list[_Done] = []
        self.buffers_written = 0  # data buffers (the header buffer is counted by the caller)
        self.records = 0

    def add_run(self, cpu: int, data: bytes, sizes: np.ndarray, qpc: np.ndarray) -> None:
        """Append records of one CPU: ``data`` is their bytes back to back (each padded to
        its aligned size in ``sizes``), ``qpc`` their timestamps, in logging order."""
        if len(sizes) == 0:
            return
        stream = self.streams.setdefault(cpu, _Stream())
        ends = np.cumsum(sizes, dtype=np.int64)
        n = len(sizes)
        start = 0
        start_byte = 0
        while start < n:
            room = self.capacity - stream.filled
            stop = int(np.searchsorted(ends, start_byte + room, side="right"))
            if stop == start:
                if stream.filled == 0:
                    raise ValueError(
                        f"a record of {int(sizes[start])} bytes does not fit a buffer of "
                        f"{self.buffer_size} bytes"
                    )
                self._close(cpu, stream, final=False)
                continue
            end_byte = int(ends[stop - 1])
            stream.parts.append(data[start_byte:end_byte])
            stream.filled += end_byte - start_byte
            stream.last_qpc = int(qpc[stop - 1])
            stream.max_qpc = max(stream.max_qpc, int(qpc[start:stop].max()))
            self.records += stop - start
            start, start_byte = stop, end_byte
            if start < n:
                self._close(cpu, stream, final=False)

    def _close(self, cpu: int, stream: _Stream, final: bool) -> None:
        self.ready.append(_Done(stream.last_qpc, stream.max_qpc, cpu, b"".join(stream.parts), final))
        stream.parts = []
        stream.filled = 0
        stream.buffers += 1

    def flush_ready(self) -> None:
        """Write the full buffers collected so far, ordered by the latest timestamp of their
        CPU's stream, then CPU (stable: one CPU's buffers keep their order)."""
        self.ready.sort(key=lambda d: (d.max_qpc, d.cpu))
        for done in self.ready:
            self._write(done)
        self.ready = []

    def finish(self) -> None:
        """Close every partly filled buffer (with the flush marker) and write them."""
        for cpu in sorted(self.streams):
            stream = self.streams[cpu]
            if stream.filled:
                self._close(cpu, stream, final=True)
        self.flush_ready()

    def _write(self, done: _Done) -> None:
        filled = BUFFER_HEADER_SIZE + len(done.payload)
        flags = BUFFER_FLAG_PROC_INDEX | (BUFFER_FLAG_FLUSH_MARKER if done.final else 0)
        self.buffers_written += 1
        head = buffer_header(
            buffer_size=self.buffer_size, filled=filled, qpc=done.last_qpc,
            sequence=self.buffers_written, cpu=done.cpu, logger_id=LOGGER_ID,
            flags=flags, buffer_type=BUFFER_TYPE_GENERIC,
        )
        self.fh.write(head + done.payload + b"\xff" * (self.buffer_size - filled))

    def header_buffer(self, record: bytes) -> bytes:
        """The first buffer of the file, holding the logfile header record."""
        aligned = record + b"\0" * (-len(record) % 8)
        filled = BUFFER_HEADER_SIZE + len(aligned)
        if filled > self.buffer_size:
            raise ValueError("the logfile header does not fit the buffer size")
        head = buffer_header(
            buffer_size=self.buffer_size, filled=filled, qpc=0, sequence=0, cpu=0,
            logger_id=LOGGER_ID, flags=BUFFER_FLAG_PROC_INDEX | BUFFER_FLAG_FLUSH_MARKER,
            buffer_type=BUFFER_TYPE_HEADER,
        )
        return head + aligned + b"\xff" * (self.buffer_size - filled)
