"""Parquet: the canonical table itself, as written by ``traceanalyzer convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.fileio import arrow_file
from traceanalyzer.model.schema import REQUIRED_COLUMNS
from traceanalyzer.model.stats import Stats
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.convert import Problems, canonicalize_columns, report_bad_cells
from traceanalyzer.readers.registry import register_reader

#: Key in the Parquet schema metadata that holds the trace metadata (JSON).
METADATA_KEY = b"traceanalyzer.metadata"


class ParquetReader:
    name = "parquet"
    extensions = (".parquet", ".pq")

    def sniff(self, head: bytes, path: Path) -> bool:
        return head[:4] == b"PAR1"

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        try:
            table = pq.read_table(arrow_file(path))  # any file name (arrow_file)
            table.validate(full=True)  # e.g. invalid UTF-8 in a string column
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # (a column name not UTF-8)
            raise TraceFormatError(f"not a readable Parquet file: {exc}", path) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise TraceFormatError(f"Parquet file lacks column(s) {', '.join(missing)}", path)
        # no rows is fine in convert's file of a trace with only counters (it has metadata)
        if table.num_rows == 0 and not (table.schema.metadata or {}).get(METADATA_KEY):
            raise TraceEmptyError("Parquet file holds no events", path)
        meta, saved_stats = _metadata(table, path)
        raw = table.replace_schema_metadata(None)
        table, bad = canonicalize_columns(raw)
        report = Problems(path, options.strict, where="row")
        report_bad_cells(bad, raw, report, 0)
        report.raise_if_strict()
        if table.column("time_ns").null_count or table.column("event").null_count:
            keep = pc.and_(pc.is_valid(table.column("time_ns")), pc.is_valid(table.column("event")))
            dropped = table.num_rows - pc.sum(pc.cast(keep, pa.int64())).as_py()
            report.count("bad_rows", dropped, detail="time_ns or event missing or not valid")
            table = table.filter(keep)
            if table.num_rows == 0:
                raise TraceFormatError("no readable rows (every time_ns or event is missing or not valid)", path)
        stats = report.stats
        stats.extend(saved_stats)
        meta["format"] = "parquet"
        return ReadResult(table, meta, stats)


def _metadata(table: pa.Table, path: Path) -> tuple[dict[str, Any], Stats]:
    """The trace metadata and counters ``convert`` stored in the schema metadata."""
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if not raw:
        return {}, Stats()
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            raise ValueError("not an object")
        saved = Stats()
        for entry in meta.pop("stats", []):
            saved.add(**entry)
    except (ValueError, TypeError) as exc:
        raise TraceFormatError(f"Parquet metadata {METADATA_KEY.decode()} is not what convert writes: {exc}",
                               path) from None
    return meta, saved


register_reader(ParquetReader())
