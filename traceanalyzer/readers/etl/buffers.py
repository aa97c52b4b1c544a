"""The buffer layer: memory-map the file, check every WMI buffer header, decompress.

Produces *segments*: byte ranges holding the records of one buffer, either inside the
memory-mapped file (uncompressed buffers, no copy) or inside one array of decompressed
bytes (buffers with BufferFlag 0x40, LZXpress plain LZ77 as ETW's relogger writes them,
decompressed by :mod:`.lzxpress` into exactly the length the buffer header declares).
Damaged buffers are counted (``corrupt_buffers``), a file that ends inside a buffer is
counted (``truncated_file``), and both are skipped in lenient mode, or raise in strict
mode.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.readers.etl import layout as L
from traceanalyzer.readers.etl import lzxpress
from traceanalyzer.readers.gzip_limit import check_expansion, limits_from


_RELEASE_EVERY = 64 << 20


@dataclass
class Segments:
    """Record ranges of the buffers: ``start``/``end`` index ``arena`` (0 file, 1 decompressed)."""

    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)
    arena: list[int] = field(default_factory=list)
    file_offset: list[int] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)   # one message per damaged buffer
    truncated: list[str] = field(default_factory=list)  # the file ends inside a buffer
    truncated_tail: int = 0                              # bytes after the last whole buffer
    seen: int = 0                                        # buffer headers met (damaged ones too)


def open_map(path: Path, extra: dict[str, Any] | None = None,
             cut: list[str] | None = None) -> tuple[mmap.mmap | None, np.ndarray]:
    """Memory-map ``path`` read-only; (map, uint8 view). Raises TraceEmptyError on 0 bytes.

    A gzip-compressed ETL (``.etlgz``, ``.etl.gz``) is decompressed into an unlinked
    temporary file that is mapped instead (bounded memory; gone when the map closes),
    within the expansion limits of :mod:`traceanalyzer.readers.gzip_limit` (``extra``:
    the reader options that may override them). Gzip data that ends early (a file cut
    short) gives what decompressed; what is wrong is appended to ``cut`` (when given:
    the reader counts it as ``truncated_file``; else it is an error)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size == 0:
                raise TraceEmptyError("file is empty (0 bytes)", path)
            fh.seek(0)
            if fh.read(2) == GZIP_MAGIC:
                fh.seek(0)
                with _gunzip_to_temp(fh, path, *limits_from(extra or {}), cut) as tmp:
                    mm = mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ)
            else:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise TraceFormatError(f"cannot read: {exc.strerror or exc}", path) from None
    return mm, np.frombuffer(mm, dtype=np.uint8)


GZIP_MAGIC = b"\x1f\x8b"


def _gunzip_to_temp(fh, path: Path, max_bytes: int, max_ratio: float, cut: list[str] | None = None):
    """An unlinked temporary file holding the decompressed gzip stream of ``fh`` (up to
    where it ends early, noted in ``cut``; without ``cut`` that is an error)."""
    import tempfile
    import zlib

    tmp = tempfile.TemporaryFile()
    try:
        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not z.eof and (chunk := fh.read(1 << 20)):
            while chunk and not z.eof:  # at most 16 MB of output in memory at a time
                tmp.write(z.decompress(chunk, 1 << 24))
                chunk = z.unconsumed_tail
                check_expansion(path, tmp.tell(), fh.tell() - len(chunk), max_bytes, max_ratio)
        if not z.eof:
            tmp.write(z.flush())
            what = (f"truncated gzip data (the compressed stream ends early, after {fh.tell()} bytes, "
                    f"{tmp.tell()} bytes of ETL data): the rest of the file is lost")
            if cut is None or tmp.tell() == 0:
                raise TraceFormatError(what, path)
            cut.append(what)
        tmp.write(z.flush())
        if tmp.tell() == 0:
            raise TraceEmptyError("file is empty (gzip of 0 bytes)", path)
        tmp.flush()
    except zlib.error as exc:
        tmp.close()
        raise TraceFormatError(f"corrupt gzip data: {exc}", path) from None
    except BaseException:
        tmp.close()
        raise
    return tmp


def plausible_first_buffer(head: bytes) -> bool:
    """True if ``head`` starts with a WMI buffer holding the logfile header record."""
    if len(head) < L.BUFFER_HEADER_SIZE + 8:
        return False
    size, = struct.unpack_from("<I", head, L.OFF_BUFFER_SIZE)
    filled, flags = struct.unpack_from("<IH", head, L.OFF_FILLED)
    if not (L.BUFFER_HEADER_SIZE < size <= L.MAX_BUFFER_SIZE and L.BUFFER_HEADER_SIZE < filled <= size):
        return False
    if flags & L.BUFFER_FLAG_COMPRESSED:
        return True
    marker, _size, hook = struct.unpack_from("<IHH", head, L.BUFFER_HEADER_SIZE)
    return marker >> 24 == 0xC0 and (marker >> 16) & 0xFF in (L.SYSTEM32, L.SYSTEM64) and hook == 0


def scan_buffers(path: Path, view: np.ndarray, nominal_size: int | None, strict: bool,
                 release: Callable[[int, int], None] | None = None) -> tuple[Segments, np.ndarray]:
    """Walk the buffer headers of the whole file; (segments, decompressed arena).

    ``nominal_size`` is the logfile header's BufferSize: an uncompressed buffer of
    another size is damaged (a relogged file's first buffer, and uncompressed buffers
    among compressed ones, may be smaller) and the walk goes on at the nominal size.
    ``release(lo, hi)`` is called for every ~64 MB of file scanned: reading one header per
    buffer maps the pages around it (fault-around), which would add the file to our RSS."""
    total = view.shape[0]
    released = 0
    seg = Segments()
    decompressed: list[bytes] = []
    dec_len = 0
    off = 0
    raw = memoryview(view)
    seen_compressed = False
    while off < total:
        if total - off < L.BUFFER_HEADER_SIZE:
            seg.truncated_tail = total - off
            _damage(path, seg.truncated, off, f"the file ends {total - off} bytes into a buffer header", strict)
            break
        seg.seen += 1
        size, = struct.unpack_from("<I", raw, off + L.OFF_BUFFER_SIZE)
        cpu, = struct.unpack_from("<H", raw, off + L.OFF_PROCESSOR)
        filled, flags = struct.unpack_from("<IH", raw, off + L.OFF_FILLED)
        compressed = bool(flags & L.BUFFER_FLAG_COMPRESSED)
        limit = nominal_size or L.MAX_BUFFER_SIZE
        size_ok = L.BUFFER_HEADER_SIZE <= size <= L.MAX_BUFFER_SIZE
        # compressed buffers: BufferSize = bytes stored, filled = length once decompressed
        filled_ok = L.BUFFER_HEADER_SIZE <= filled <= (limit if compressed else size)
        if not size_ok or not filled_ok:
            _damage(path, seg.corrupt, off, f"bad buffer header (BufferSize {size}, filled {filled})", strict)
            if not nominal_size:
                break
            off += nominal_size
            continue
        step = size
        if not compressed and nominal_size and size != nominal_size and not (
                size < nominal_size and (off == 0 or seen_compressed)):
            _damage(path, seg.corrupt, off,
                    f"BufferSize {size} differs from the logfile header's {nominal_size}", strict)
            step = nominal_size
            filled = min(filled, nominal_size)
        seen_compressed |= compressed
        end = off + (size if compressed else filled)
        # ETW fills the unused rest of a buffer with 0xFF: data there means the filled
        # length was cut (records after it would be lost silently)
        if not compressed and off + filled + 4 <= min(off + size, total) and \
                bytes(raw[off + filled:off + filled + 4]) != b"\xff\xff\xff\xff":
            _damage(path, seg.corrupt, off,
                    f"data after the filled length 0x{filled:x} (the unused rest should be 0xFF)", strict)
        whole = off + (size if compressed else step)  # ETW writes whole buffers
        if whole > total:
            _damage(path, seg.truncated, off,
                    f"the file ends inside this buffer: {whole - off} bytes expected, {total - off} present", strict)
            end = min(end, total)
        if compressed:
            data = _decompress(path, seg, off, bytes(raw[off + L.BUFFER_HEADER_SIZE:end]),
                               filled - L.BUFFER_HEADER_SIZE, strict)
            if data:
                seg.start.append(dec_len)
                seg.end.append(dec_len + len(data))
                seg.arena.append(1)
                decompressed.append(data)
                dec_len += len(data)
            else:
                off += step
                continue
        else:
            seg.start.append(off + L.BUFFER_HEADER_SIZE)
            seg.end.append(end)
            seg.arena.append(0)
        seg.cpu.append(cpu & 0x7FF)
        seg.file_offset.append(off)
        off += step
        if release is not None and off - released >= _RELEASE_EVERY:
            release(released, off)
            released = off
    arena = np.frombuffer(b"".join(decompressed), dtype=np.uint8) if decompressed else np.zeros(0, np.uint8)
    return seg, arena


def _decompress(path: Path, seg: Segments, off: int, stored: bytes, declared: int, strict: bool) -> bytes:
    """The decompressed records (exactly ``declared`` bytes), or b"" with the buffer counted."""
    data, outcome = lzxpress.decompress(stored, declared)
    if outcome == lzxpress.OVERFLOW:
        what = f"compressed buffer decompresses beyond its declared {declared} bytes"
    elif outcome == lzxpress.BAD_INPUT:
        what = "compressed buffer does not decompress (input ends inside a token or a match points before the data)"
    elif len(data) != declared:
        what = f"compressed buffer decompresses to {len(data)} bytes, its header declares {declared}"
    else:
        return data
    _damage(path, seg.corrupt, off, what, strict)
    return b""


def _damage(path: Path, into: list[str], offset: int, what: str, strict: bool) -> None:
    message = f"buffer at offset 0x{offset:x}: {what}"
    if strict:
        raise TraceFormatError(message, path)
    into.append(message)
