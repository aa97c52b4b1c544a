"""``write_parquet``: a Trace's canonical event table as the Parquet file that
``readers/parquet.py`` reads back (``traceanalyzer convert``)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from traceanalyzer.fileio import arrow_file, atomic_output
from traceanalyzer.model.trace import Trace
from traceanalyzer.readers.parquet import METADATA_KEY


def write_parquet(trace: Trace, path: str | Path) -> None:
    """Write ``trace``'s canonical event table (and its metadata and counters) to Parquet,
    atomically. Reading the file back gives the same family tables."""
    table = trace.events_table().drop_columns(["seq"])
    meta = dict(trace.metadata)
    meta.pop("traces", None)
    # unknown events kept as rows are counted again from the rows when the file is read;
    # the ones only counted (an ETL's undecoded provider events) are kept as counters
    meta["stats"] = [vars(e) for e in trace.stats.entries.values()
                     if e.name != "unknown_events" or e.detail not in trace.events_by_name]
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, default=str).encode()})
    with atomic_output(path) as tmp, arrow_file(tmp, "wb") as out:  # any file name (arrow_file)
        pq.write_table(table, out, compression="zstd")
