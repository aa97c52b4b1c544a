"""Readers: files -> the canonical event table. See ``registry.py``."""

from traceanalyzer.readers.base import ReadOptions, ReadResult, Reader
from traceanalyzer.readers.registry import pick_reader, read_file, readers, register_reader

__all__ = ["ReadOptions", "ReadResult", "Reader", "pick_reader", "read_file", "readers", "register_reader"]
