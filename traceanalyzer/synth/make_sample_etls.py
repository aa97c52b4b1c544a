"""Regenerate ``sample_traces/<name>.etl`` from every ``sample_traces/<name>.csv``.

Run ``python -m traceanalyzer.synth.make_sample_etls [DIR]`` after changing a scenario
CSV or the writer; a test regenerates the files into a temporary folder and compares
them byte for byte with the committed ones. The clock is chosen per scenario so that
no time is rounded: 10 MHz (Windows' usual QPC frequency) when every ``time_ns`` is a
multiple of 100 ns, otherwise 1 GHz; buffers are 8 KiB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from traceanalyzer.readers.registry import read_file
from traceanalyzer.synth.etl_writer import write_etl

#: The repository's sample folder (this file is traceanalyzer/synth/make_sample_etls.py).
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_traces"
#: 8 KiB buffers (as lxcore_kernel.etl): small scenarios make small files.
SAMPLE_BUFFER_SIZE = 8192


def exact_perf_freq(table: pa.Table) -> int:
    """10 MHz if every time_ns is a whole number of 100 ns ticks, else 1 GHz."""
    times = table.column("time_ns").to_numpy()
    return 10_000_000 if (times % 100 == 0).all() else 1_000_000_000


def scenario_table(csv_path: str | Path) -> pa.Table:
    """A scenario CSV as the canonical table (hex and decimal integers parsed)."""
    return read_file(csv_path, format="csv").table


def make_sample_etl(csv_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Write the ETL form of one scenario CSV; returns :func:`write_etl`'s summary."""
    table = scenario_table(csv_path)
    return write_etl(table, out_path, perf_freq=exact_perf_freq(table), buffer_size=SAMPLE_BUFFER_SIZE)


def scenario_csvs(directory: str | Path = SAMPLE_DIR) -> list[Path]:
    """The scenario CSVs of a folder in name order (``*.expected.csv`` hold findings)."""
    return sorted(p for p in Path(directory).glob("*.csv") if not p.name.endswith(".expected.csv"))


def make_sample_etls(directory: str | Path = SAMPLE_DIR, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Write ``<name>.etl`` next to (or into ``out_dir`` for) every scenario
    ``<name>.csv`` in ``directory``, in name order; returns the summaries."""
    target = Path(out_dir) if out_dir is not None else Path(directory)
    return [make_sample_etl(csv, target / (csv.stem + ".etl")) for csv in scenario_csvs(directory)]
