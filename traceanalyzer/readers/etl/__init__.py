"""Our own ETL reader: WMI buffers -> the canonical event table (docs/etl.md).

Registered as ``"etl"`` for ``.etl`` files (and gzip-compressed ``.etlgz``/``.etl.gz``); the sniffer recognises a WMI buffer whose
first record is the logfile header (or a compressed first buffer).
"""

from __future__ import annotations

from pathlib import Path

from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.etl.buffers import plausible_first_buffer
from traceanalyzer.readers.etl.reader import EtlBatches, read_etl
from traceanalyzer.readers.registry import register_reader


class EtlReader:
    """ETW trace files (.etl) written by the Windows ETW runtime or by our writer."""

    name = "etl"
    extensions = (".etl", ".etlgz", ".etl.gz")

    def sniff(self, head: bytes, path: Path) -> bool:
        """True if ``head`` starts with a WMI buffer holding a logfile header."""
        return plausible_first_buffer(head)

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read the whole file (memory-mapped); see :func:`read_etl`."""
        return read_etl(Path(path), options)


register_reader(EtlReader())

__all__ = ["EtlBatches", "EtlReader", "read_etl"]
