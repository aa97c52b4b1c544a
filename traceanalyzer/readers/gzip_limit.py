"""Bounded decompression of ``.gz`` inputs: a cap on the expanded size and ratio.

A few megabytes of gzip can expand to gigabytes of valid rows (a "zip bomb"), and a
reader that holds its table grows without limit. :func:`limited_gzip` decompresses
(pyarrow's native gzip) through a counter that raises a :class:`TraceFormatError`
naming the file, the limit and how to raise it once the output passes ``max_bytes`` or,
after the first ``RATIO_FLOOR`` bytes, ``max_ratio`` times the compressed bytes read.
``ReadOptions.extra`` keys ``gz_max_bytes`` / ``gz_max_ratio`` (CLI ``--gz-max-bytes``,
``--gz-max-ratio``) override the defaults; 0 turns a limit off.
"""

from __future__ import annotations

import io
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
    """Decompressed bytes of ``raw``, stopped by :class:`GzipLimitError` at a limit."""

    def __init__(self, path: Path, raw: CountingFile, max_bytes: int, max_ratio: float) -> None:
        self.path, self.raw = path, raw
        self.stream = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "gzip")
        self.max_bytes, self.max_ratio = max_bytes, max_ratio
        self.out = 0
        self.error: GzipLimitError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.out += n
        self._check()
        return n

    def _check(self) -> None:
        try:
            check_expansion(self.path, self.out, self.raw.done, self.max_bytes, self.max_ratio)
        except GzipLimitError as exc:
            self.error = exc
            raise

    def close(self) -> None:
        self.stream.close()
        self.raw.close()
        super().close()


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
