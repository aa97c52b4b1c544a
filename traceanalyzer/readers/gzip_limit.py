"""Bounded decompression of ``.gz`` inputs: a cap on the expanded size and ratio.

A few megabytes of gzip can expand to gigabytes of valid rows (a "zip bomb"), and a
reader that holds its table grows without limit. :func:`limited_gzip` decompresses
(zlib) through a counter that raises a :class:`TraceFormatError` naming the file,
the limit and how to raise it once the output passes ``max_bytes`` or, after the first
``RATIO_FLOOR`` bytes, ``max_ratio`` times the compressed bytes read. A stream cut short
gives what decompressed and says where it stopped (``truncated``): the reader counts it.
``ReadOptions.extra`` keys ``gz_max_bytes`` / ``gz_max_ratio`` (CLI ``--gz-max-bytes``,
``--gz-max-ratio``) override the defaults; 0 turns a limit off.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from traceanalyzer.errors import TraceFormatError

#: Default cap on the decompressed size (a 4 GiB CSV holds some 40M events).
DEFAULT_MAX_BYTES = 4 << 30
#: Default cap on decompressed / compressed bytes (real trace CSVs compress ~10x;
#: a file of one repeated row reaches ~300x).
DEFAULT_MAX_RATIO = 100.0
#: The ratio is judged only once this much has been decompressed.
RATIO_FLOOR = 64 << 20


class CountingFile(io.RawIOBase):
    """The raw file, counting the compressed bytes read (and reporting progress)."""

    def __init__(self, path: Path, progress: Callable[[int, int], None] | None) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed with this object
        self.total = path.stat().st_size
        self.done = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer) or 0
        self.done += n
        if self._progress is not None:
            self._progress(self.done, self.total)
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


class GzipLimitError(TraceFormatError):
    """A ``.gz`` input expands beyond its size or ratio limit."""


class _Limited(io.RawIOBase):
    """Decompressed bytes of ``raw``, stopped by :class:`GzipLimitError` at a limit.

    A stream that ends early (a file cut short: the compressed data stops inside a
    gzip member) is not an error here: what decompressed is read, then end of file,
    and :attr:`truncated` says where it stopped (the reader counts that as loss).
    Several members one after the other are read as one stream (as ``gzip -d`` does);
    data that is not gzip raises ``OSError`` (the reader names the file)."""

    def __init__(self, path: Path, raw: CountingFile, max_bytes: int, max_ratio: float) -> None:
        self.path, self.raw = path, raw
        self.max_bytes, self.max_ratio = max_bytes, max_ratio
        self.out = 0
        self.error: GzipLimitError | None = None
        #: set when the compressed data ends inside a member: (compressed bytes read,
        #: decompressed bytes given out)
        self.truncated: tuple[int, int] | None = None
        #: the last byte given out (b"" before any): a cut text ends without a newline
        self.last = b""
        #: the bytes after the last line break given out hold more than blanks
        self.open_line = False
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # compressed bytes read, not yet decompressed
        self._members = 0    # whole members decompressed

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        while True:
            if self._z.eof:
                self._members += 1
                self._pending = self._z.unused_data or self.raw.read(_CHUNK)
                if not self._pending:
                    return 0  # the end of the last member: the end of the data
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if not self._pending:
                self._pending = self.raw.read(_CHUNK)
                if not self._pending:  # the file ends inside a member
                    self.truncated = (self.raw.done, self.out)
                    return 0
            try:
                data = self._z.decompress(self._pending, want)
            except zlib.error as exc:
                raise OSError(f"corrupt gzip data: {exc}") from None
            self._pending = self._z.unconsumed_tail
            if data:
                n = len(data)
                buffer[:n] = data
                self.out += n
                self.last = data[-1:]
                nl = max(data.rfind(b"\n"), data.rfind(b"\r"))
                self.open_line = bool(data[nl + 1:].strip()) or (nl < 0 and self.open_line)
                self._check()
                return n

    def _check(self) -> None:
        try:
            check_expansion(self.path, self.out, self.raw.done - len(self._pending), self.max_bytes, self.max_ratio)
        except GzipLimitError as exc:
            self.error = exc
            raise

    def close(self) -> None:
        self.raw.close()
        super().close()


#: Compressed bytes read at a time.
_CHUNK = 1 << 20


def check_expansion(path: Path, out: int, read: int, max_bytes: int, max_ratio: float) -> None:
    """Raise :class:`GzipLimitError` when ``out`` decompressed bytes from ``read``
    compressed ones pass a limit (0: no limit)."""
    what = None
    if max_bytes and out > max_bytes:
        what = f"expands beyond {max_bytes} bytes (--gz-max-bytes; 0 for no limit)"
    elif max_ratio and out > RATIO_FLOOR and out > max_ratio * max(1, read):
        what = (f"expands more than {max_ratio:g} times its compressed size ({out} bytes from {read}; "
                "--gz-max-ratio, 0 for no limit): a decompression bomb?")
    if what is not None:
        raise GzipLimitError(f"gzip data {what}", path)


def limits_from(extra: dict[str, Any]) -> tuple[int, float]:
    """(max bytes, max ratio) from ``ReadOptions.extra`` (defaults when absent)."""
    max_bytes = extra.get("gz_max_bytes")
    max_ratio = extra.get("gz_max_ratio")
    return (DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes),
            DEFAULT_MAX_RATIO if max_ratio is None else float(max_ratio))


def limited_gzip(path: Path, extra: dict[str, Any],
                 progress: Callable[[int, int], None] | None = None) -> tuple[pa.NativeFile, _Limited]:
    """(a stream pyarrow can read, its limiter: ``limiter.error`` is set when a limit
    stopped it) for the decompressed content of ``path``."""
    max_bytes, max_ratio = limits_from(extra)
    limiter = _Limited(path, CountingFile(path, progress), max_bytes, max_ratio)
    return pa.PythonFile(limiter, mode="r"), limiter
