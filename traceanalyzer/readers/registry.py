"""The reader registry: readers picked by content first, then by extension; overridable.

>>> from traceanalyzer.readers import read_file
>>> result = read_file("trace.csv")                    # doctest: +SKIP
>>> result = read_file("trace.txt", format="xperf")    # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from traceanalyzer.errors import TraceEmptyError, TraceError, UnknownFormatError
from traceanalyzer.readers.base import ReadOptions, ReadResult, Reader

_READERS: dict[str, Reader] = {}


def register_reader(reader: Reader) -> Reader:
    """Add (or replace) a reader under ``reader.name``; returns it (usable as decorator on instances)."""
    _READERS[reader.name] = reader
    return reader


def readers() -> dict[str, Reader]:
    """The registered readers by name."""
    _load_builtin()
    return dict(_READERS)


def pick_reader(path: str | Path, format: str | None = None) -> Reader:
    """The reader for a file: by ``format`` name if given, else by content, else by extension."""
    _load_builtin()
    path = Path(path)
    if format is not None:
        try:
            return _READERS[format]
        except KeyError:
            raise TraceError(
                f"unknown format {format!r}; known: {', '.join(sorted(_READERS))}", path
            ) from None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        raise TraceError("no such file", path) from None
    except IsADirectoryError:
        raise TraceError("is a directory, not a trace file", path) from None
    except OSError as exc:
        raise TraceError(f"cannot open: {exc.strerror}", path) from None
    if not head:
        raise TraceEmptyError("file is empty (0 bytes)", path)
    candidates = list(_READERS.values())
    if head[:2] == b"\x1f\x8b":  # gzip: sniff the text inside, among readers that take .gz
        head = read_head(path, 4096)
        candidates = [r for r in candidates if any(e.endswith("gz") for e in r.extensions)]
    for reader in candidates:
        try:
            if reader.sniff(head, path):
                return reader
        except Exception:  # a sniffer must never break picking
            continue
    suffix = "".join(path.suffixes[-2:]).lower()
    for reader in _READERS.values():
        if any(suffix.endswith(ext) for ext in reader.extensions):
            return reader
    raise UnknownFormatError(
        "not a trace format traceanalyzer knows (expected ETL, canonical CSV, xperf text, "
        "WPA CSV export or Parquet); choose a reader with --format (format=... in Python)",
        path,
    )


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of a file's content (decompressed if it is gzip)."""
    with open(path, "rb") as fh:
        head = fh.read(size)
    if head[:2] != b"\x1f\x8b":
        return head
    import zlib

    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, size)
    except zlib.error as exc:
        raise TraceError(f"corrupt gzip data: {exc}", path) from None


def read_file(
    path: str | Path, format: str | None = None, options: ReadOptions | None = None
) -> ReadResult:
    """Read one file with the reader picked by :func:`pick_reader`."""
    reader = pick_reader(path, format)
    return reader.read(Path(path), options or ReadOptions())


_BUILTIN_LOADED = False


def _load_builtin() -> None:
    """Import the built-in reader modules (each registers itself)."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    import importlib

    for module in ("parquet", "csv_canonical", "etl", "xperf_text", "wpa_csv"):
        importlib.import_module(f"traceanalyzer.readers.{module}")
