"""The canonical CSV of events.md: a header row of canonical column names, any order.

Read with pyarrow's multithreaded CSV reader; integer columns are parsed from
decimal or ``0x`` hex by :mod:`traceanalyzer.readers.columns`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.model.schema import COLUMNS, REQUIRED_COLUMNS
from traceanalyzer.model.stats import Stats
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.columns import ColumnParseError, canonicalize_columns
from traceanalyzer.readers.registry import register_reader


def _header_names(head: bytes) -> list[str]:
    first = head.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf").rstrip(b"\r")
    return [c.strip().strip(b'"').decode("utf-8", "replace") for c in first.split(b",")]


class CanonicalCsvReader:
    """Reader for the canonical CSV (header names from ``schema.COLUMNS``)."""

    name = "csv"
    extensions = (".csv", ".csv.gz")

    def sniff(self, head: bytes, path: Path) -> bool:
        names = _header_names(head)
        return "time_ns" in names and "event" in names

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        with open(path, "rb") as fh:
            head = fh.read(65536)
        if not head.strip():
            raise TraceEmptyError("file is empty", path)
        names = _header_names(head)
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise TraceFormatError(
                f"not a canonical trace CSV: header lacks required column(s) "
                f"{', '.join(missing)} (header: {', '.join(names[:8])}"
                f"{', ...' if len(names) > 8 else ''})",
                path,
            )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TraceFormatError(f"duplicate column(s) in header: {', '.join(dupes)}", path)
        # integers arrive as text (hex or decimal) and are parsed by us; other canonical
        # columns get their type; unknown columns are kept as strings.
        types = {}
        for name in names:
            typ = COLUMNS.get(name)
            if typ is None or pa.types.is_integer(typ) or name == "event":
                types[name] = pa.string()
            else:
                types[name] = typ
        types["event"] = pa.dictionary(pa.int32(), pa.string())
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise TraceFormatError(f"malformed CSV: {_first_line(exc)}", path) from None
        if table.num_rows == 0:
            raise TraceEmptyError("CSV has a header but no event rows", path)
        try:
            table = canonicalize_columns(table)
        except ColumnParseError as exc:
            raise TraceFormatError(
                f"line {exc.row + 2}: {exc}", path
            ) from None
        if table.column("time_ns").null_count:
            row = table.column("time_ns").is_null().index(True).as_py()
            raise TraceFormatError(f"line {row + 2}: time_ns is empty", path)
        if table.column("event").null_count:
            row = table.column("event").is_null().index(True).as_py()
            raise TraceFormatError(f"line {row + 2}: event is empty", path)
        stats = Stats()
        stats.add("rows", table.num_rows, source=str(path))
        return ReadResult(table, {"format": "csv"}, stats)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


register_reader(CanonicalCsvReader())
