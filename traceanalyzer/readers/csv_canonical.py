"""The canonical CSV of docs/trace-format.md: a header row of canonical column names, any order.

Read with pyarrow's streaming CSV reader in batches of ~8 MB of text, each made
canonical before the next is read (the text table of the whole file never sits in
memory); columns pyarrow cannot type itself (hex integers, enums, pool tags) are
converted by :mod:`traceanalyzer.readers.convert`. With ``ReadOptions.defer_cswitch``
(what ``ta.load`` asks unless ``keep_cswitch``) CSwitch rows keep only time, event and
cpu, after the other rows (``ReadResult.order_key`` keeps file order for equal times);
``trace.cswitch`` reads the file again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.model.encoding import null_column
from traceanalyzer.model.schema import ADDRESS_COLUMNS, COLUMNS, ENUM_ALIASES, REQUIRED_COLUMNS
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.convert import (
    Converted, Problems, canonicalize_columns, null_token_variants, why_bad,
)
from traceanalyzer.readers.gzip_limit import CountingFile, limited_gzip
from traceanalyzer.readers.registry import read_head, register_reader


def _header_names(head: bytes) -> list[str]:
    first = head.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf").rstrip(b"\r")
    return [c.strip().strip(b'"').decode("utf-8", "replace") for c in first.split(b",")]


def _check_header_utf8(head: bytes, path: Path) -> None:
    """TraceFormatError naming the byte when the header line is not UTF-8 (its column
    names would not match, and the error would blame a missing column)."""
    first, newline, _ = head.partition(b"\n")
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not newline and exc.reason == "unexpected end of data":
            return  # the 64 KiB head cut a character of a very long header: not an error
        raise TraceFormatError(f"header line is not valid UTF-8 (byte 0x{first[exc.start]:02x} "
                               f"at column {exc.start + 1}); save the CSV as UTF-8", path) from None


class CanonicalCsvReader:
    """Reader for the canonical CSV (header names from ``schema.COLUMNS``)."""

    name = "csv"
    extensions = (".csv", ".csv.gz")

    def sniff(self, head: bytes, path: Path) -> bool:
        names = _header_names(head)
        return "time_ns" in names and "event" in names

    def _types(self, names: list[str]) -> dict[str, pa.DataType]:
        """What pyarrow's CSV reader converts itself: decimal integer columns natively (a
        column found to hold hex is re-read as text and parsed by us), address columns
        as text (usually hex), enum columns and ``event`` dictionary-encoded, unknown
        columns as text."""
        types: dict[str, pa.DataType] = {}
        for name in names:
            typ = COLUMNS.get(name)
            if name == "event" or name in ENUM_ALIASES:
                types[name] = pa.dictionary(pa.int32(), pa.string())
            elif typ is None or name in ADDRESS_COLUMNS or not pa.types.is_integer(typ):
                types[name] = pa.string() if typ is None or pa.types.is_integer(typ) else typ
            else:
                types[name] = typ
        return types

    def _read_batches(self, path: Path, names: list[str], options: ReadOptions) -> _Batches:
        """Every batch of the file read and made canonical (see :class:`_Batches`); a
        conversion error of pyarrow's in a column starts the read again with that
        column as text (e.g. hex in a pid column: parsed by us)."""
        types = self._types(names)
        for _attempt in range(len(names) + 1):
            out = _Batches(options.defer_cswitch)
            try:
                reader = pacsv.open_csv(
                    _source(path, options.progress, options.extra or {}),
                    read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES),
                    parse_options=pacsv.ParseOptions(newlines_in_values=False),
                    convert_options=pacsv.ConvertOptions(
                        column_types=types,
                        null_values=null_token_variants(),
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=True,
                    ),
                )
                for batch in reader:
                    out.add(pa.Table.from_batches([batch]))
                return out
            except pa.ArrowInvalid as exc:
                col = _failed_column(exc, names)
                if col is None or types.get(col) == pa.string():
                    raise TraceFormatError(f"malformed CSV: {_first_line(exc)}", path) from None
                types[col] = pa.string()
            except OSError as exc:  # a .gz that is truncated or not gzip at all
                raise TraceFormatError(f"cannot read: {_first_line(exc)}", path) from None
        raise TraceFormatError("malformed CSV", path)

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read in batches of ~8 MB of text, each made canonical before the next is read
        (so the text table of the whole file never sits in memory). With
        ``options.defer_cswitch`` the CSwitch rows keep only time, event and cpu."""
        head = read_head(path, 65536)
        if not head.strip():
            raise TraceEmptyError("file is empty", path)
        _check_header_utf8(head, path)
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
        batches = self._read_batches(path, names, options)
        if batches.rows == 0:
            raise TraceEmptyError("CSV has a header but no event rows", path)
        report = Problems(path, options.strict)
        batches.report(report)
        report.raise_if_strict()
        table, row_of = batches.table()
        if table.num_rows == 0:
            line, what = report.first if report.first is not None else (2, "no rows")
            raise TraceFormatError(f"no readable rows (line {line}: {what})", path)
        stats = report.stats
        stats.add("rows", table.num_rows, source=str(path))
        disorder = count_time_disorder(table, row_of)
        if disorder:
            stats.add("time_disorder", disorder, "warning", source=str(path))
        return ReadResult(table, {"format": "csv"}, stats,
                          deferred=("cswitch",) if options.defer_cswitch else (),
                          order_key=None if row_of is None else pa.chunked_array([row_of]))


#: Bytes of text per batch (each batch is made canonical before the next is read).
_BLOCK_BYTES = 8 << 20

#: Columns a deferred CSwitch row keeps (ReadOptions.defer_cswitch).
_DEFERRED_KEEP = ("time_ns", "event", "cpu")


class _Batches:
    """Canonical batches of one read, and what was wrong in them, reported at the end in
    the order a whole-table read reports it (bad cells by column, then dropped rows).

    Deferring CSwitch rows, each batch is cut in two: its other rows (every column) and
    its CSwitch rows (time, event and cpu only). The table puts all the other rows
    first and the CSwitch rows after them, whose other columns are untouched zero pages
    (no resident memory), and gives each row's place in the file, so that equal times
    keep file order (``ReadResult.order_key``). Nulling those columns in place instead
    kept every column of the CSwitch rows resident: ~0.5 GB at 10M rows."""

    def __init__(self, defer_cswitch: bool) -> None:
        self.defer_cswitch = defer_cswitch
        self.parts: list[pa.Table] = []
        self.cswitch_parts: list[pa.Table] = []
        #: per batch, in file order: which of its (kept) rows are deferred CSwitch rows
        self.is_cswitch: list[np.ndarray] = []
        self.rows = 0
        #: column -> [bad cells, first bad row (0-based), its text]
        self.bad_cells: dict[str, list[Any]] = {}
        #: what made rows unplaceable -> [rows, first line, message]
        self.dropped: dict[str, list[Any]] = {}

    def add(self, raw: pa.Table) -> None:
        table, bad = canonicalize_columns(raw)
        bad_time = bad.pop("time_ns", None)
        for column, res in bad.items():
            rows = np.flatnonzero(res.bad)
            entry = self.bad_cells.setdefault(column, [0, None, None])
            if entry[1] is None:
                entry[1], entry[2] = self.rows + int(rows[0]), raw.column(column)[int(rows[0])].as_py()
            entry[0] += len(rows)
        table = self._drop_rows_without_time_or_event(table, raw, bad_time)
        self.rows += raw.num_rows
        is_cs = _cswitch_rows(table) if self.defer_cswitch else None
        if is_cs is None:
            self.parts.append(table)
            if self.defer_cswitch:
                self.is_cswitch.append(np.zeros(table.num_rows, dtype=bool))
            return
        self.is_cswitch.append(is_cs)
        mask = pa.array(is_cs)
        keep = [c for c in _DEFERRED_KEEP if c in table.column_names]
        self.cswitch_parts.append(table.select(keep).filter(mask))
        if not is_cs.all():
            self.parts.append(table.filter(pc.invert(mask)))

    def _drop_rows_without_time_or_event(self, table: pa.Table, raw: pa.Table, bad_time: Converted | None) -> pa.Table:
        """Rows whose time_ns is empty or not a valid time, or whose event is empty, cannot
        be placed: dropped and counted as ``bad_rows`` (detail says which)."""
        first_line = 2 + self.rows
        bad = bad_time.bad if bad_time is not None else np.zeros(table.num_rows, dtype=bool)
        no_time = np.asarray(table.column("time_ns").is_null()) & ~bad
        no_event = np.asarray(table.column("event").is_null())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            why = f"column 'time_ns': {why_bad('time_ns', raw.column('time_ns')[row].as_py())}"
            self._drop("time_ns is not a valid time", bad, first_line + row, why)
        for empty, column in ((no_time, "time_ns"), (no_event & ~bad & ~no_time, "event")):
            if empty.any():
                self._drop(f"{column} is empty", empty, first_line + int(np.flatnonzero(empty)[0]), f"{column} is empty")
        drop = bad | no_time | no_event
        return table.filter(pa.array(~drop)) if drop.any() else table

    def _drop(self, detail: str, rows: np.ndarray, line: int, message: str) -> None:
        entry = self.dropped.setdefault(detail, [0, line, message])
        entry[0] += int(rows.sum())

    def report(self, report: Problems) -> None:
        for column, (count, row, text) in self.bad_cells.items():
            report.count("bad_values", count, detail=column)
            report.problem(row + 2, f"column {column!r}: {why_bad(column, text)}")
        for detail in ("time_ns is not a valid time", "time_ns is empty", "event is empty"):
            if detail in self.dropped:
                count, line, message = self.dropped[detail]
                report.count("bad_rows", count, detail=detail)
                report.problem(line, message)

    def table(self) -> tuple[pa.Table, np.ndarray | None]:
        """The batches as one table (chunked: each batch one chunk; a column null in every
        row takes no memory) and, when the CSwitch rows were moved after the others, each
        row's place in the file (None: the rows are in file order)."""
        parts = self.parts
        if self.cswitch_parts:
            schema = pa.unify_schemas([p.schema for p in parts + self.cswitch_parts],
                                      promote_options="permissive")
            cs = pa.concat_tables(self.cswitch_parts, promote_options="permissive")
            cols = [cs.column(f.name) if f.name in cs.column_names else null_column(cs.num_rows, f.type)
                    for f in schema]
            parts = parts + [pa.table(cols, schema=schema)]
        table = pa.concat_tables(parts, promote_options="permissive")
        for i, (name, col) in enumerate(zip(table.column_names, table.columns)):
            if col.null_count == len(col) and len(col) and not pa.types.is_dictionary(col.type):
                table = table.set_column(i, name, null_column(len(col), col.type))
        is_cs = np.concatenate(self.is_cswitch) if self.cswitch_parts else np.zeros(0, dtype=bool)
        if is_cs.all():  # no CSwitch row, or nothing else: the rows are in file order
            return table, None
        # int32 while the row numbers fit: 40 MB less than int64 at 10M rows
        row_type = np.int32 if is_cs.size < 2**31 else np.int64
        return table, np.concatenate([np.flatnonzero(~is_cs).astype(row_type),
                                      np.flatnonzero(is_cs).astype(row_type)])


def _cswitch_rows(table: pa.Table) -> np.ndarray | None:
    """Bool mask of the CSwitch rows of a batch; None when it has none."""
    events = table.column("event").combine_chunks()
    if not pa.types.is_dictionary(events.type):
        events = pc.dictionary_encode(events)
    names = events.dictionary.to_pylist()
    if "CSwitch" not in names:
        return None
    is_cs = pc.fill_null(pc.equal(events.indices, names.index("CSwitch")), False)
    mask = is_cs.to_numpy(zero_copy_only=False)
    return mask if mask.any() else None


def _failed_column(exc: Exception, names: list[str]) -> str | None:
    """The column a pyarrow conversion error is about ('In CSV column #5: ...')."""
    m = re.search(r"CSV column #(\d+)", str(exc))
    if not m or "conversion error" not in str(exc):
        return None
    i = int(m.group(1))
    return names[i] if i < len(names) else None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def count_time_disorder(table: pa.Table, row_of: np.ndarray | None = None) -> int:
    """Rows whose time is earlier than the previous row of the same CPU, in file order
    (for readers whose rows come in file order; readers count ``time_disorder``).
    ``row_of``: each row's place in the file when the table holds them in another order.

    Within one CPU a trace is written in time order (per-CPU buffers), so any step back
    there is real disorder (clock trouble, a bad merge), not buffering.
    """
    if table.num_rows < 2 or "time_ns" not in table.column_names:
        return 0

    def in_file_order(values: np.ndarray) -> np.ndarray:
        if row_of is None:
            return values
        out = np.empty_like(values)
        out[row_of] = values  # row_of is a permutation
        return out

    t = in_file_order(table.column("time_ns").to_numpy())
    if bool(np.all(t[1:] >= t[:-1])):
        return 0  # in order overall, so in order within every CPU
    if "cpu" in table.column_names:
        cpu = in_file_order(pc.fill_null(table.column("cpu").cast(pa.int64()), -1).to_numpy())
        order = np.argsort(cpu, kind="stable")
        t, cpu = t[order], cpu[order]
        same = cpu[1:] == cpu[:-1]
    else:
        same = np.ones(t.size - 1, dtype=bool)
    return int(np.count_nonzero(same & (t[1:] < t[:-1])))


register_reader(CanonicalCsvReader())


def _source(path: Path, progress: Callable[[int, int], None] | None, extra: dict[str, Any]) -> Any:
    """What pyarrow reads: the path itself, a counting stream over it (with a progress
    callback), or for ``.gz`` the decompressed content within the expansion limits."""
    if path.name.endswith(".gz"):
        return limited_gzip(path, extra, progress)[0]
    if progress is None:
        return path
    return pa.PythonFile(CountingFile(path, progress), mode="r")
