"""A gzip-compressed ETL (``.etlgz``, ``.etl.gz``) is read as it is, in bounded memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import ReadOptions, pick_reader, read_file

GZ = Path("jtmoon79__super-speedy-syslog-searcher") / "CldFlt0-2025-12-21-121418.etlgz"


def test_etlgz_reads_like_the_plain_file(real_traces: Path, tmp_path: Path) -> None:
    src = real_traces / GZ
    plain = tmp_path / "CldFlt0.etl"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    assert pick_reader(src).name == "etl"
    got, want = read_file(src), read_file(plain)
    assert got.metadata["records"] == want.metadata["records"]
    assert got.stats.total("wpp_events") == 13  # SOURCES.md: 13 WPP records
    assert got.table.equals(want.table)


def test_etl_gz_suffix_and_content_both_pick_the_etl_reader(real_traces: Path, tmp_path: Path) -> None:
    path = tmp_path / "trace.etl.gz"
    path.write_bytes((real_traces / GZ).read_bytes())
    assert pick_reader(path).name == "etl"


def test_truncated_gzip_with_nothing_decompressed_names_the_file(real_traces: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.etlgz"
    path.write_bytes((real_traces / GZ).read_bytes()[:20])
    with pytest.raises(TraceFormatError, match="gzip") as info:
        read_file(path, format="etl")
    assert str(path) in str(info.value)


def test_truncated_gzip_is_read_up_to_the_cut(tmp_path: Path) -> None:
    """As a plain ETL cut short: the events before the cut are read and the cut is
    counted as truncated_file (the gzip cut, naming where, and the buffer it ends in);
    --strict makes the cut the error."""
    plain = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.etl"
    data = gzip.compress(plain.read_bytes(), mtime=0)
    path = tmp_path / "cut.etl.gz"
    cut = len(data) // 2  # inside the second (last) buffer
    path.write_bytes(data[:cut])
    whole, got = read_file(plain), read_file(path)
    assert 0 < got.table.num_rows < whole.table.num_rows
    common = got.table.column_names  # the part has fewer kinds of events, so fewer columns
    rows = whole.ordered_table().select(common).to_pylist()
    assert got.ordered_table().to_pylist() == rows[: got.table.num_rows]
    details = [e.detail for e in got.stats.entries.values() if e.name == "truncated_file"]
    assert details[0].startswith(f"truncated gzip data (the compressed stream ends early, after {cut} bytes")
    assert details[1].startswith("buffer at offset 0x2000: the file ends inside this buffer")
    with pytest.raises(TraceFormatError, match=r"cut\.etl\.gz: truncated gzip data") as info:
        read_file(path, options=ReadOptions(strict=True))
    assert str(info.value).startswith(str(path))
