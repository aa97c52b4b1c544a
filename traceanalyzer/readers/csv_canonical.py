"""The canonical CSV of docs/trace-format.md: a header row of canonical column names, any order.

Read with pyarrow's streaming CSV reader in batches of ~8 MB of text, each made
canonical before the next is read (the text table of the whole file never sits in
memory); columns pyarrow cannot type itself (hex integers, enums, pool tags) are
converted by :mod:`traceanalyzer.readers.convert`. With ``ReadOptions.defer_cswitch``
(what ``ta.load`` asks unless ``keep_cswitch``) CSwitch rows keep only time, event and
cpu, after the other rows (``ReadResult.order_key`` keeps file order for equal times);
``trace.cswitch`` reads the file again. A UTF-16 file (LE or BE, with its BOM) is
transcoded to UTF-8 on the way in (:class:`_Transcode`); UTF-8 goes to pyarrow as it is.
"""

from __future__ import annotations

import codecs
import io
import re
import sys
import threading
from array import array
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.fileio import arrow_file
from traceanalyzer.model.encoding import null_column
from traceanalyzer.model.schema import ADDRESS_COLUMNS, COLUMNS, ENUM_ALIASES, REQUIRED_COLUMNS
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.convert import (
    Converted, Problems, canonicalize_columns, null_token_variants, why_bad,
)
from traceanalyzer.readers.gzip_limit import CountingFile, limited_gzip
from traceanalyzer.readers.registry import read_head, register_reader
from traceanalyzer.readers.text_common import TAIL_BYTES, Decoded, line_left_open, note_line_left_open


#: BOM -> the codec of a UTF-16 text (decoded after its BOM).
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def _codec(head: bytes) -> str:
    """``utf-16-le``/``utf-16-be`` for a text starting with a UTF-16 BOM, else ``utf-8``."""
    return _UTF16_BOMS.get(head[:2], "utf-8")


def _utf8_head(head: bytes) -> bytes:
    """The first bytes of the file as UTF-8 (a UTF-16 head decoded, its BOM dropped; a
    character cut by the end of the head left out)."""
    codec = _codec(head)
    if codec == "utf-8":
        return head
    return codecs.getincrementaldecoder(codec)("replace").decode(head[2:]).encode("utf-8")


def _header_names(head: bytes) -> list[str]:
    first = _utf8_head(head).split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf").rstrip(b"\r")
    return [c.strip().strip(b'"').decode("utf-8", "replace") for c in first.split(b",")]


def _check_header_utf8(head: bytes, path: Path) -> None:
    """TraceFormatError naming the byte when the header line is not UTF-8 (its column
    names would not match, and the error would blame a missing column)."""
    first, newline, _ = _utf8_head(head).partition(b"\n")
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

    def _read_batches(self, path: Path, names: list[str], options: ReadOptions, codec: str = "utf-8") -> _Batches:
        """Every batch of the file read and made canonical (see :class:`_Batches`); a
        conversion error of pyarrow's in a column starts the read again with that
        column as text (e.g. hex in a pid column: parsed by us). Damage is read around
        and noted in the batches (:class:`_Damage`): rows with another number of fields
        than the header are skipped, bytes that are not UTF-8 replaced (the read starts
        again through :class:`_Transcode` when pyarrow meets one), a ``.gz`` cut short
        read up to the cut. ``codec``: a UTF-16 file is read through :class:`_Transcode`
        from the start (bytes that are not UTF-16 replaced alike)."""
        types = self._types(names)
        repair = codec != "utf-8"
        for _attempt in range(len(names) + 2):
            damage = _Damage(len(names))
            out = _Batches(options.defer_cswitch, damage)
            source, limiter, fixer = _source(path, options.progress, options.extra or {}, repair, codec)
            try:
                with _bad_row_text_noted(damage):  # open_csv parses the first block
                    reader = pacsv.open_csv(
                        source,
                        # one thread: the invalid-row handler then gets each row's line number
                        read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES, use_threads=False),
                        parse_options=pacsv.ParseOptions(newlines_in_values=False,
                                                         invalid_row_handler=damage.on_invalid_row),
                        convert_options=pacsv.ConvertOptions(
                            column_types=types,
                            null_values=null_token_variants(),
                            strings_can_be_null=True,
                            quoted_strings_can_be_null=True,
                        ),
                    )
                    parsed = [n.strip() for n in reader.schema.names]
                    if parsed != names:  # e.g. a stray quote joins lines into the header
                        raise TraceFormatError(
                            "malformed CSV header: it parses as "
                            f"{', '.join(repr(n) for n in parsed[:3])}{', ...' if len(parsed) > 3 else ''}, "
                            "not as its commas separate it (a stray double quote?)", path)
                    held = None  # the last batch waits: a cut .gz may end inside its last row
                    for batch in reader:
                        if held is not None:
                            out.add(held)
                        held = pa.Table.from_batches([batch])
                # what the text read ends with: the transcoded text, else the gzip data, else the file
                ends = fixer if fixer is not None else limiter
                if limiter is not None and limiter.truncated is not None:
                    held = damage.gzip_cut(limiter, out.rows + (held.num_rows if held is not None else 0), held,
                                           ends.last not in (b"", b"\n", b"\r"))
                if held is not None:
                    out.add(held)
                last = 1 + out.rows + len(damage.skipped)  # the last line read
                if last > 1 and (ends.open_line and (limiter is None or limiter.truncated is None)
                                 if ends is not None else line_left_open(_tail(path))):
                    damage.open_line = last
                if fixer is not None:
                    damage.undecodable(fixer)
                return out
            except pa.ArrowInvalid as exc:
                if not repair and (_not_utf8(exc) or damage.row_not_utf8):
                    repair = True  # read again with the bytes that are not UTF-8 replaced
                    continue
                col = _failed_column(exc, names)
                if col is None or types.get(col) == pa.string():
                    raise TraceFormatError(f"malformed CSV: {_first_line(exc)}", path) from None
                types[col] = pa.string()
            except OSError as exc:  # a .gz that is not gzip at all, or corrupt
                raise TraceFormatError(f"cannot read: {_first_line(exc)}", path) from None
        raise TraceFormatError("malformed CSV", path)

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read in batches of ~8 MB of text, each made canonical before the next is read
        (so the text table of the whole file never sits in memory). With
        ``options.defer_cswitch`` the CSwitch rows keep only time, event and cpu."""
        head = read_head(path, 65536)
        codec = _codec(head)
        if not _utf8_head(head).strip():
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
        batches = self._read_batches(path, names, options, codec)
        report = Problems(path, options.strict)
        batches.report(report)
        if batches.rows == 0:
            if report.first is not None:
                line, what = report.first
                raise TraceFormatError(f"no readable rows (line {line}: {what})", path)
            raise TraceEmptyError("CSV has a header but no event rows", path)
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

    def __init__(self, defer_cswitch: bool, damage: _Damage) -> None:
        self.defer_cswitch = defer_cswitch
        self.damage = damage
        self.parts: list[pa.Table] = []
        self.cswitch_parts: list[pa.Table] = []
        #: per batch, in file order: which of its (kept) rows are deferred CSwitch rows
        self.is_cswitch: list[np.ndarray] = []
        self.rows = 0
        #: column -> [bad cells, first bad row (0-based), its text]
        self.bad_cells: dict[str, list[Any]] = {}
        #: what made rows unplaceable -> [rows, first row (0-based), message]
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
        first = self.rows
        bad = bad_time.bad if bad_time is not None else np.zeros(table.num_rows, dtype=bool)
        no_time = np.asarray(table.column("time_ns").is_null()) & ~bad
        no_event = np.asarray(table.column("event").is_null())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            why = f"column 'time_ns': {why_bad('time_ns', raw.column('time_ns')[row].as_py())}"
            self._drop("time_ns is not a valid time", bad, first + row, why)
        for empty, column in ((no_time, "time_ns"), (no_event & ~bad & ~no_time, "event")):
            if empty.any():
                self._drop(f"{column} is empty", empty, first + int(np.flatnonzero(empty)[0]), f"{column} is empty")
        drop = bad | no_time | no_event
        return table.filter(pa.array(~drop)) if drop.any() else table

    def _drop(self, detail: str, rows: np.ndarray, row: int, message: str) -> None:
        entry = self.dropped.setdefault(detail, [0, row, message])
        entry[0] += int(rows.sum())

    def report(self, report: Problems) -> None:
        line_of = self.damage.line_of
        for column, (count, row, text) in self.bad_cells.items():
            message = f"column {column!r}: {why_bad(column, text)}"
            report.bad_cells(column, count, column, line_of(row), message)
            report.problem(line_of(row), message)
        for detail in ("time_ns is not a valid time", "time_ns is empty", "event is empty"):
            if detail in self.dropped:
                count, row, message = self.dropped[detail]
                report.count("bad_rows", count, detail=detail)
                report.problem(line_of(row), message)
        self.damage.report(report)

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


class _Damage:
    """What one read skipped or repaired, and where (line numbers count the header as
    line 1 and, as everywhere in this reader, not blank lines, which pyarrow skips).

    - rows whose number of fields is not the header's: skipped by pyarrow's invalid-row
      handler (:meth:`on_invalid_row`: with one parsing thread it gets each row's line),
      counted as ``bad_rows`` by number of fields;
    - a ``.gz`` cut short (:meth:`gzip_cut`): ``truncated_file`` naming the file and
      where it stops, and its last row, when the cut left it with all its fields (the
      last value cut), is dropped as a bad row;
    - a file whose last line has no line break (:attr:`open_line`): it may be cut in
      that line, ``unterminated_last_line``; the row is read as it is (a plain file cannot tell
      a cut from a missing line break);
    - bytes that are not UTF-8 (UTF-16 in a UTF-16 file) (:meth:`undecodable`): replaced
      by U+FFFD, counted as ``undecodable_bytes``.

    Strict mode makes the first of these (by line) the error. The clean path costs
    nothing: the handler is only called for a bad row."""

    def __init__(self, width: int) -> None:
        self.width = width
        #: line of every skipped row, in file order
        self.skipped = array("q")
        #: number of fields -> [rows, first line]; blank rows (spaces) are skipped, not counted
        self.bad_rows: dict[int, list[int]] = {}
        #: (line, what) of the last row of a cut .gz that kept all its fields
        self.cut_row: tuple[int, str] | None = None
        #: (line, what, counter detail naming the file) of a .gz cut short
        self.cut: tuple[int, str, str] | None = None
        #: the last line, when no line break ends it (the file may be cut there)
        self.open_line: int | None = None
        #: (byte sequences replaced, line of the first, what it is, the encoding)
        self.replaced: tuple[int, int, str, str] | None = None
        #: a bad row's text was not UTF-8 (pyarrow could not hand it over): read again repaired
        self.row_not_utf8 = False

    def on_invalid_row(self, row: Any) -> str:
        line = row.number if row.number is not None else 1 + len(self.skipped)
        self.skipped.append(line)
        if row.text.strip():
            entry = self.bad_rows.setdefault(row.actual_columns, [0, line])
            entry[0] += 1
        return "skip"

    def line_of(self, row: int) -> int:
        """The line of the ``row``-th row read (0-based), skipped rows counted."""
        if not self.skipped:
            return 2 + row
        skipped = np.frombuffer(self.skipped, dtype=np.int64)
        # rows read before the i-th skipped line: skipped[i] - 2 - i (non-decreasing)
        before = int(np.searchsorted(skipped - 2 - np.arange(skipped.size), row, side="right"))
        return 2 + row + before

    def gzip_cut(self, limiter: Any, rows: int, last: pa.Table | None, inside: bool) -> pa.Table | None:
        """Note where a cut ``.gz`` stops (``rows``: rows read, ``last``: the last batch,
        ``inside``: the text ends inside a line); returns the last batch without its last
        row when the cut fell in its last value."""
        compressed, text = limiter.truncated
        line = 1 + rows + len(self.skipped)  # the last line read
        if inside and last is not None and last.num_rows and (not self.skipped or self.skipped[-1] != line):
            self.skipped.append(line)
            self.cut_row = (line, "row cut short by the end of the gzip data")
            last = last.slice(0, last.num_rows - 1)
        at = line if inside else line + 1
        what = f"the gzip data ends early (after {compressed} compressed bytes, {text} bytes of text)"
        self.cut = (at, f"{what}: the rest of the file is lost",
                    f"{limiter.path.name}: {what}, in line {at}: the rest of the file is lost")
        return last

    def undecodable(self, fixer: _Transcode) -> None:
        if fixer.replaced:
            line, bad = fixer.first
            self.replaced = (fixer.replaced, line, Decoded("", encoding=fixer.label, bad=bad).what(), fixer.label)

    def report(self, report: Problems) -> None:
        if self.cut is not None:  # first: at the same line as the cut row, it says more
            line, what, detail = self.cut
            report.count("truncated_file", 1, detail=detail)
            report.problem(line, what)
        if self.open_line is not None:
            note_line_left_open(report, self.open_line)
        for fields, (count, line) in sorted(self.bad_rows.items()):
            what = f"{fields} field{'s' if fields != 1 else ''}, the header has {self.width}"
            report.count("bad_rows", count, detail=f"{what} (first at line {line})")
            report.problem(line, what)
        if self.cut_row is not None:
            line, what = self.cut_row
            report.count("bad_rows", 1, detail=f"{what} (line {line})")
        if self.replaced is not None:
            count, line, what, label = self.replaced
            report.count("undecodable_bytes", count, detail=f"non-{label} bytes replaced by U+FFFD (first at line {line})")
            report.problem(line, what)


class _Transcode(io.RawIOBase):
    """The text of ``raw`` (in ``codec``; a UTF-16 file after its 2-byte BOM) as UTF-8,
    every sequence that is not ``codec`` replaced by U+FFFD (as ``bytes.decode(errors=
    "replace")``): counted, the first one's line and byte kept; and how the text ends
    (:attr:`open_line`, :attr:`last`), which the raw bytes of UTF-16 cannot tell. Used
    for UTF-16 files, and for UTF-8 once pyarrow has met bytes that are not UTF-8 (the
    read starts again through this)."""

    def __init__(self, raw: Any, codec: str = "utf-8") -> None:
        self.raw = raw
        self.codec = codec
        self.label = "UTF-16" if codec.startswith("utf-16") else "UTF-8"
        self._decoder = codecs.getincrementaldecoder(codec)("replace")
        self._bom = 2 if self.label == "UTF-16" else 0  # bytes of BOM still to drop
        self._out = b""
        self._lines = 1  # line of the next byte
        self._done = False
        self.replaced = 0
        self.first: tuple[int, bytes] | None = None  # (line, its bytes)
        #: the text after the last line break holds more than blanks
        self.open_line = False
        #: the last character given out, UTF-8 encoded (b"" before any)
        self.last = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out and not self._done:
            data = self.raw.read(1 << 20)
            self._done = not data
            if self._bom:
                dropped = data[:self._bom]
                data, self._bom = data[self._bom:], self._bom - len(dropped)
            held = self._decoder.getstate()[0]
            text = self._decoder.decode(data, final=self._done)
            replaced = text.count("\ufffd") - (held + data).count("\ufffd".encode(self.codec))
            if replaced > 0:
                self.replaced += replaced
                if self.first is None:
                    self.first = self._first_bad(held + data)
            self._out = text.encode("utf-8")
            self._lines += text.count("\n")
            self._note_end(text)
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _first_bad(self, whole: bytes) -> tuple[int, bytes]:
        """(line, bytes) of the first sequence of ``whole`` that is not ``codec``."""
        try:
            whole.decode(self.codec)
            at = end = len(whole)  # only a character cut by the end of the file
        except UnicodeDecodeError as exc:
            at, end = exc.start, exc.end
        before = whole[:at].decode(self.codec, errors="replace")
        return self._lines + before.count("\n"), whole[at:end] or b"\0"

    def _note_end(self, text: str) -> None:
        if not text:
            return
        self.last = text[-1].encode("utf-8")
        cut = max(text.rfind("\n"), text.rfind("\r"))
        self.open_line = bool(text[cut + 1:].strip()) or (cut < 0 and self.open_line)

    def close(self) -> None:
        self.raw.close()
        super().close()


@contextmanager
def _bad_row_text_noted(damage: _Damage) -> Iterator[None]:
    """pyarrow cannot hand a bad row to the handler when its text is not UTF-8: it
    reports that through ``sys.unraisablehook`` (a traceback on stderr) and stops with
    a parse error. Noted here instead (``damage.row_not_utf8``: the read starts again
    repaired); anything else goes to the hook as before. Reads on several threads share
    one dispatching hook, installed by the first and removed by the last."""
    global _hook_users, _hook_previous
    with _hook_lock:
        if _hook_users == 0:
            _hook_previous = sys.unraisablehook
            sys.unraisablehook = _dispatch_unraisable
        _hook_users += 1
    try:
        yield
    finally:
        with _hook_lock:
            _hook_users -= 1
            if _hook_users == 0 and sys.unraisablehook is _dispatch_unraisable:
                sys.unraisablehook = _hook_previous


_hook_lock = threading.Lock()
_hook_users = 0
_hook_previous: Callable[[Any], None] = sys.unraisablehook


def _dispatch_unraisable(unraisable: Any) -> None:
    """A bad row's text that is not UTF-8, raised around any read's invalid-row handler:
    noted on that read's :class:`_Damage`; everything else to the previous hook."""
    damage = getattr(unraisable.object, "__self__", None)
    if isinstance(damage, _Damage) and isinstance(unraisable.exc_value, UnicodeDecodeError):
        damage.row_not_utf8 = True
    else:
        _hook_previous(unraisable)


def _tail(path: Path) -> bytes:
    """The last bytes of the file (:func:`line_left_open`)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, fh.seek(0, io.SEEK_END) - TAIL_BYTES))
        return fh.read()


def _not_utf8(exc: Exception) -> bool:
    """True for pyarrow's error on a cell that is not UTF-8."""
    return "invalid UTF8" in str(exc)


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


def _source(path: Path, progress: Callable[[int, int], None] | None, extra: dict[str, Any],
            repair: bool = False, codec: str = "utf-8") -> tuple[Any, Any, _Transcode | None]:
    """(what pyarrow reads, the gzip limiter or None, the transcoder or None). What
    pyarrow reads: the file (:func:`arrow_file`: any name), a counting stream over it
    (with a progress callback), or for ``.gz`` the decompressed content within the
    expansion limits; with ``repair`` through :class:`_Transcode` from ``codec``."""
    limiter = None
    if path.name.endswith(".gz"):
        limiter = limited_gzip(path, extra, progress)[1]
        raw: Any = limiter
    elif progress is None and not repair:
        return arrow_file(path), None, None
    else:
        raw = CountingFile(path, progress)
    fixer = _Transcode(raw, codec) if repair else None
    return pa.PythonFile(fixer if fixer is not None else raw, mode="r"), limiter, fixer
