"""A gzip-compressed ETL (``.etlgz``, ``.etl.gz``) is read as it is, in bounded memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import pick_reader, read_file

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


@pytest.mark.parametrize("cut", [20, 300])
def test_truncated_gzip_names_the_file(real_traces: Path, tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.etlgz"
    path.write_bytes((real_traces / GZ).read_bytes()[:cut])
    with pytest.raises(TraceFormatError, match="gzip") as info:
        read_file(path, format="etl")
    assert str(path) in str(info.value)
