"""A Parquet file whose column names are not UTF-8 is a format error naming the file."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

import traceanalyzer as ta
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers.registry import read_file

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


def test_column_name_that_is_not_utf8(tmp_path: Path) -> None:
    """(found by tests/core/test_fuzz_pipeline.py: a 0x80 byte in the footer's schema)"""
    path = tmp_path / "t.parquet"
    pq.write_table(read_file(SAMPLES / "attach_imbalance.csv").table, path)
    good = path.read_bytes()
    start, refused = 0, 0
    while (at := good.find(b"time_ns", start)) >= 0:  # every place the name is stored
        start = at + 1
        data = bytearray(good)
        data[at + 1] = 0x80
        path.write_bytes(bytes(data))
        try:
            ta.load(path)
        except TraceFormatError as exc:
            assert str(path) in str(exc)
            refused += 1
    assert refused
