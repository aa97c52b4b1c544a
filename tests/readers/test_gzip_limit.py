"""A .csv.gz decompression bomb stops at a size or ratio limit with a clear error naming
the file and the option that raises it; the limits are options; normal files load."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers import gzip_limit

HEADER = b"time_ns,event,pid,tid,cpu,mdl,va,size,caller\n"
ROW = b"1000000,IoAllocateMdl,1234,5678,0,0xffffc30a4b2f1000,0xffffb00012340000,8192,drv.sys+0x1a2b\n"


def _gz(path: Path, rows: int) -> Path:
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(HEADER)
        for _ in range(rows // 10_000):
            fh.write(ROW * 10_000)
        fh.write(ROW * (rows % 10_000))
    return path


@pytest.fixture()
def small_floor(monkeypatch):
    monkeypatch.setattr(gzip_limit, "RATIO_FLOOR", 1 << 20)


def test_repeated_rows_bomb_stops_at_the_ratio_limit(tmp_path: Path, small_floor) -> None:
    bomb = _gz(tmp_path / "bomb.csv.gz", 50_000)  # ~5 MB of rows, ~300x compressed
    with pytest.raises(TraceFormatError, match=r"bomb\.csv\.gz: gzip data expands more than 100 times its "
                                               r"compressed size .*--gz-max-ratio"):
        ta.load(bomb)
    assert ta.load(bomb, gz_max_ratio=0).n_events == 50_000  # the limit is an option


def test_size_limit_and_its_option(tmp_path: Path, capsys) -> None:
    path = _gz(tmp_path / "t.csv.gz", 1000)
    assert ta.load(path).n_events == 1000
    with pytest.raises(TraceFormatError, match=r"t\.csv\.gz: gzip data expands beyond 5000 bytes \(--gz-max-bytes"):
        ta.load(path, gz_max_bytes=5000)
    assert main(["info", str(path), "--gz-max-bytes", "5000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"traceanalyzer: {path}: gzip data expands beyond 5000 bytes (--gz-max-bytes; 0 for no limit)"]
    assert main(["info", str(path), "--gz-max-bytes", "0", "--json"]) == 0


def test_a_realistic_csv_gz_is_far_below_the_default_ratio(tmp_path: Path, small_floor) -> None:
    import random

    rng = random.Random(1)
    path = tmp_path / "real.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(HEADER)
        t = 0
        for i in range(20_000):
            t += rng.randint(100, 5000)
            fh.write(b"%d,IoAllocateMdl,%d,%d,%d,0x%x,0x%x,%d,drv.sys+0x%x\n" % (
                t, 1000 + i % 13, 5000 + i % 97, i % 4, 0xffffc30a4b2f0000 + rng.randint(0, 1 << 24) * 16,
                0x10000 + rng.randint(0, 1 << 30), rng.choice((4096, 8192, 65536)), rng.randint(0, 1 << 16)))
    assert ta.load(path).n_events == 20_000


def test_a_gzip_compressed_etl_is_capped_too(tmp_path: Path, small_floor) -> None:
    seed = (Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.etl").read_bytes()
    path = tmp_path / "seed.etlgz"
    path.write_bytes(gzip.compress(seed))
    assert ta.load(path).n_events > 0
    with pytest.raises(TraceFormatError, match=r"seed\.etlgz: gzip data expands beyond 4096 bytes"):
        ta.load(path, gz_max_bytes=4096)
    bomb = tmp_path / "bomb.etlgz"
    bomb.write_bytes(gzip.compress(seed + b"\xff" * (8 << 20), 9))  # 8 MB of nothing after the trace
    with pytest.raises(TraceFormatError, match=r"bomb\.etlgz: gzip data expands more than 100 times"):
        ta.load(bomb)
