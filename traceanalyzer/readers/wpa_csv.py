"""Reader for WPA "Export to CSV" / wpaexporter files.

An export holds the visible columns of one WPA table view: a header row of column
names with units in parentheses (``Time (s)``, ``Timestamp (ms)``, ``Size (B)``),
processes as ``name (PID)``, numbers in the UI locale (``"16,384"``; German
``"1,176567818"``). Two shapes are understood (docs/text_formats.md):

- Generic Events tables (a ``Provider Name`` column): each row is an event named by
  provider and task / event name; payload columns ``Field 1..N`` are mapped to
  canonical columns by a field map (``ReadOptions.field_map`` or
  ``ReadOptions.extra["field_map"]``). Unmapped events are kept as
  ``Provider/Event`` rows (which the Trace counts as ``unknown_events``).
- Any other table (Disk Usage, CPU Usage, ...): every row is kept as an event named
  ``WPA/<table>`` (the file stem, or ``extra["wpa_table"]``) with time, pid, tid and
  cpu where the table has them and every other column kept under its own name.

Options in ``ReadOptions.extra``: ``decimal`` (``"."`` or ``","``: overrides locale
detection), ``time_column`` (name of the column to read time from), ``wpa_table``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.model.schema import COLUMNS, INTEGER_COLUMNS
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.registry import register_reader
from traceanalyzer.readers.convert import (
    Problems,
    clean_strings,
    parse_locale_decimal,
    parse_scaled_decimal,
    to_canonical,
)
from traceanalyzer.readers.field_map import EventMapping, FieldMap, field_map_from_options
from traceanalyzer.readers.text_common import (
    Undecodable,
    assemble_keyed,
    decode_bytes,
    decode_text,
    TAIL_BYTES,
    find_column,
    guess_decimal_separator,
    line_left_open,
    normalize_header,
    note_line_left_open,
    parse_name_pid,
)

#: unit text (lower case) -> decimal digits of nanoseconds per unit
TIME_UNITS: dict[str, int] = {
    "s": 9, "sec": 9, "ms": 6, "µs": 3, "μs": 3, "us": 3, "ns": 0,
    "\ufffds": 3,  # 'µs' from an ANSI (cp1252) export, its 0xB5 byte replaced on decoding
}
#: Time column names in order of preference (normalized, unit removed).
TIME_NAMES = ("time", "timestamp", "eventtime", "starttime", "inittime", "completetime", "endtime", "stoptime")
_PROCESS = ("process",)
_PID = ("pid", "processid")
_TID = ("threadid", "tid")
_CPU = ("cpu",)
_PROVIDER = ("providername", "provider")
_TASK = ("taskname", "task")
_EVENT_NAME = ("eventname",)
_OPCODE = ("opcodename", "opcode")
_WPA_NAMES = frozenset(
    ("process", "processname", "threadid", "providername", "taskname", "opcodename", "field1", "cpu", "eventname")
)
_UNIT_RE = re.compile(r"^(?P<base>.*?)\s*\((?P<unit>[^()]*)\)\s*$")
_NUMBER_LIKE = re.compile(r"^\s*[+-]?[0-9][0-9.,\s\u00a0\u202f']*$")


def split_unit(name: str) -> tuple[str, str | None]:
    """``"Complete Time (s)"`` -> (``"Complete Time"``, ``"s"``); no unit -> (name, None)."""
    m = _UNIT_RE.match(name)
    if m and not m.group("unit").strip().isdigit():
        return m.group("base"), m.group("unit").strip()
    return name, None


@dataclass
class _Columns:
    """Header names and the role lookup on them."""

    names: list[str]
    keys: list[str] = field(init=False)
    units: list[str | None] = field(init=False)

    def __post_init__(self) -> None:
        bases = [split_unit(n) for n in self.names]
        self.keys = [normalize_header(b) for b, _ in bases]
        self.units = [u for _, u in bases]

    def find(self, aliases: tuple[str, ...]) -> int | None:
        return find_column(self.keys, aliases)


class WpaCsvReader:
    """The ``wpa_csv`` reader: a WPA table exported as CSV -> canonical table."""

    name = "wpa_csv"
    extensions = (".csv",)

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a CSV header of WPA column names (units in parentheses, WPA names).

        Never claims a canonical CSV (header with ``time_ns`` and ``event``) or xperf text.
        """
        text, _ = decode_bytes(head)
        first = text.splitlines()[0] if text else ""
        if not first or first.lstrip().startswith("BeginHeader"):
            return False
        try:
            names = [n.strip() for n in next(csv.reader([first]))]
        except (csv.Error, StopIteration):
            return False
        if len(names) < 2 or ("time_ns" in names and "event" in names):
            return False
        cols = _Columns(names)
        with_units = sum(1 for u in cols.units if u is not None)
        wpa_names = sum(1 for k in cols.keys if k in _WPA_NAMES)
        return with_units + wpa_names >= 2

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read the export. Columns: canonical names (time_ns, event, pid, tid, cpu,
        mapped payload columns) plus the table's other columns under their WPA names."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TraceFormatError(f"cannot open: {exc.strerror}", path) from None
        if not data.strip():
            raise TraceEmptyError("file is empty", path)
        return _Read(path, data, options).run()


class _Read:
    def __init__(self, path: Path, data: bytes, options: ReadOptions) -> None:
        self.path = path
        self.options = options
        self.report = Problems(path, options.strict)
        self.metadata: dict[str, Any] = {"format": "wpa_csv"}
        self.field_map: FieldMap = field_map_from_options(options.field_map, options.extra)
        decoded = decode_text(data)
        self.text = decoded.text
        undecodable = Undecodable()
        undecodable.add(decoded)
        undecodable.report(self.report)

    # --- parsing ----------------------------------------------------------------

    def run(self) -> ReadResult:
        first, _, _rest = self.text.partition("\n")
        try:
            header = next(csv.reader([first]))
        except (csv.Error, StopIteration):
            raise TraceFormatError("line 1: bad CSV header", self.path) from None
        cols = _Columns([h.strip() for h in header])
        if "\n" in self.text and line_left_open(self.text[-TAIL_BYTES:].encode("utf-8")):
            note_line_left_open(self.report, self.text.count("\n") + 1)
        columns, numbers = self.parse_rows(cols)
        if not len(numbers):
            if self.report.first is not None:
                raise TraceFormatError(
                    f"no readable rows (line {self.report.first[0]}: {self.report.first[1]})", self.path
                )
            raise TraceEmptyError("the export holds a header but no rows", self.path)
        decimal = self.decimal(columns)
        parts = self.convert(cols, columns, numbers, decimal)
        self.report.raise_if_strict()
        table, line = assemble_keyed(parts, "_line")  # rows by event type; file order as a key
        if table.num_rows == 0:
            raise TraceFormatError("no readable rows (no row has a valid time)", self.path)
        return ReadResult(table, self.metadata, self.report.stats, order_key=line)

    def parse_rows(self, cols: _Columns) -> tuple[list[pa.Array], np.ndarray]:
        """All data rows as string columns (pyarrow.csv) and their line numbers.

        Rows with another field count than the header are skipped and counted; blank
        lines are dropped. Line numbers assume one line per row (no quoted newlines).
        """
        width = len(cols.names)
        unique = [f"c{i}" for i in range(width)]
        invalid: list[int] = []

        def on_invalid(row: Any) -> str:
            if row.text.strip():
                invalid.append(row.number)
                self.report.count("bad_rows", 1, detail=f"{row.actual_columns} fields, header has {width}")
                self.report.problem(row.number, f"{row.actual_columns} fields, the header has {width}")
            else:
                invalid.append(row.number)
            return "skip"

        body = self.text.encode("utf-8")
        try:
            table = pacsv.read_csv(
                io.BytesIO(body),
                read_options=pacsv.ReadOptions(use_threads=False, column_names=unique, skip_rows=1,
                                               block_size=1 << 24),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in unique}, strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise TraceFormatError(f"not a readable CSV export: {exc}", self.path) from None
        n = table.num_rows
        lines = np.arange(2, 2 + n + len(invalid), dtype=np.int64)
        if invalid:
            lines = lines[~np.isin(lines, np.array(invalid, dtype=np.int64))][:n]
        columns = [table.column(c).combine_chunks() for c in unique]
        if width == 1:
            blank = pc.equal(pc.utf8_trim_whitespace(columns[0]), "").to_numpy(zero_copy_only=False)
        else:
            blank = np.ones(n, dtype=bool)
            for col in columns:
                blank &= pc.equal(col, "").to_numpy(zero_copy_only=False)
        if blank.any():
            keep = pa.array(~blank)
            columns = [c.filter(keep) for c in columns]
            lines = lines[~blank]
        return columns, lines

    def decimal(self, columns: list[pa.Array]) -> str:
        """The decimal separator: extra['decimal'] or guessed from the data (documented)."""
        forced = self.options.extra.get("decimal")
        if forced is not None:
            if forced not in (".", ","):
                raise TraceFormatError(f"option decimal must be '.' or ',', got {forced!r}", self.path)
            self.metadata.update(decimal_separator=forced, decimal_separator_source="option")
            return forced
        sample: list[str] = []
        for col in columns:
            values = col.slice(0, 5000).to_pylist()
            sample.extend(v.strip() for v in values if v and _NUMBER_LIKE.match(v))
        decimal, source = guess_decimal_separator(sample)
        self.metadata.update(decimal_separator=decimal, decimal_separator_source=source)
        return decimal

    def time_column(self, cols: _Columns) -> int:
        wanted = self.options.extra.get("time_column")
        if wanted is not None:
            if wanted in cols.names:
                return cols.names.index(wanted)
            raise TraceFormatError(f"time_column {wanted!r} is not a column ({', '.join(cols.names)})", self.path)
        for key in TIME_NAMES:
            if key in cols.keys:
                idx = cols.keys.index(key)
                unit = cols.units[idx]
                if unit is None or unit.lower() in TIME_UNITS:
                    return idx
        raise TraceFormatError(
            "no time column (expected one of Time, Timestamp, Start Time, Complete Time... "
            f"with a unit s/ms/µs/ns; columns: {', '.join(cols.names)}); pass extra time_column=...",
            self.path,
        )

    def convert(
        self, cols: _Columns, columns: list[pa.Array], numbers: np.ndarray, decimal: str
    ) -> list[dict[str, pa.Array]]:
        t_idx = self.time_column(cols)
        unit = (cols.units[t_idx] or "s").lower()
        digits = TIME_UNITS.get(unit)
        if digits is None:
            raise TraceFormatError(f"time column {cols.names[t_idx]!r}: unknown unit {unit!r}", self.path)
        self.metadata["time_column"] = cols.names[t_idx]
        time_ns, bad = parse_scaled_decimal(columns[t_idx], decimal, digits)
        if bad.any():
            self.report.count("bad_rows", int(bad.sum()), detail=f"{cols.names[t_idx]} is not a number")
            self.report.problem(int(numbers[bad].min()), f"{cols.names[t_idx]} is not a number")
        keep = ~bad & pc.is_valid(time_ns).to_numpy(zero_copy_only=False)
        if not keep.all():
            mask = pa.array(keep)
            columns = [c.filter(mask) for c in columns]
            time_ns, numbers = time_ns.filter(mask), numbers[keep]
        if len(numbers) == 0:
            return []
        used = {t_idx}
        base: dict[str, pa.Array] = {"_line": pa.array(numbers), "time_ns": time_ns}
        self.common_columns(cols, columns, numbers, used, base, decimal)
        if cols.find(_PROVIDER) is not None:
            return self.generic_events(cols, columns, numbers, used, base, decimal)
        table = str(self.options.extra.get("wpa_table") or self.path.stem)
        event = f"WPA/{table}"  # not canonical: the Trace counts these rows as unknown_events
        for idx, name in enumerate(cols.names):
            if idx not in used:  # kept under the WPA name, never under a canonical one
                base[name if name not in COLUMNS else f"wpa:{name}"] = self.keep_column(columns[idx], decimal)
        base["event"] = pa.array([event] * len(numbers), pa.string())
        return [base]

    def common_columns(
        self, cols: _Columns, columns: list[pa.Array], numbers: np.ndarray, used: set[int],
        out: dict[str, pa.Array], decimal: str,
    ) -> None:
        p_idx = cols.find(_PROCESS)
        if p_idx is not None:
            _names, pids, bad = parse_name_pid(columns[p_idx])
            self.report.flag(bad, numbers, cols.names[p_idx])
            out["pid"] = pids
            out[cols.names[p_idx]] = clean_strings(columns[p_idx])
            used.add(p_idx)
        for col, aliases in (("pid", _PID), ("tid", _TID), ("cpu", _CPU)):
            idx = cols.find(aliases)
            if idx is None or (col == "pid" and "pid" in out):
                continue
            res = to_canonical(self.plain_integers(columns[idx], decimal), col)
            self.report.flag(res.bad, numbers, cols.names[idx], columns[idx], column=col)
            out[col] = res.array
            used.add(idx)

    def generic_events(
        self, cols: _Columns, columns: list[pa.Array], numbers: np.ndarray, used: set[int],
        base: dict[str, pa.Array], decimal: str,
    ) -> list[dict[str, pa.Array]]:
        def text(aliases: tuple[str, ...]) -> pa.Array | None:
            idx = cols.find(aliases)
            if idx is None:
                return None
            used.add(idx)
            return clean_strings(columns[idx])

        provider = text(_PROVIDER)
        task = text(_TASK)
        event_name = text(_EVENT_NAME)
        opcode = text(_OPCODE)
        n = len(numbers)
        name = event_name if event_name is not None else task
        if name is None:
            name = pa.nulls(n, pa.string())
        elif event_name is not None and task is not None:
            name = pc.coalesce(event_name, task)
        if opcode is None:
            opcode = pa.nulls(n, pa.string())
        keys = pc.binary_join_element_wise(
            pc.fill_null(provider, ""), pc.fill_null(name, ""), pc.fill_null(opcode, ""), "\x1f"
        )
        enc = pc.dictionary_encode(keys)
        codes = enc.indices.to_numpy(zero_copy_only=False)
        groups = enc.dictionary.to_pylist()
        if len(groups) > 1:  # one take puts each event's rows together, then slices
            order = pa.array(np.argsort(codes, kind="stable"))
            base = {k: v.take(order) for k, v in base.items()}
            columns = [c.take(order) for c in columns]
            numbers = numbers[order.to_numpy()]
            codes = codes[order.to_numpy()]
        bounds = np.searchsorted(codes, np.arange(len(groups) + 1))
        parts = []
        for code, key in enumerate(groups):
            prov, ev, op = key.split("\x1f")
            lo, hi = int(bounds[code]), int(bounds[code + 1])
            sel = np.arange(lo, hi)
            part = {k: v.slice(lo, hi - lo) for k, v in base.items()}
            sub = [c.slice(lo, hi - lo) for c in columns]
            mapping = self.field_map.lookup(prov, ev, op)
            if mapping is None:  # kept under its name; the Trace counts it as unknown_events
                event = f"{prov}/{ev}" if ev else prov
            else:
                event = mapping.canonical
                self.map_fields(cols, sub, numbers[sel], used, mapping, part, decimal)
            part["event"] = pa.array([event] * len(sel), pa.string())
            parts.append(part)
        return parts

    def map_fields(
        self, cols: _Columns, columns: list[pa.Array], numbers: np.ndarray, used: set[int],
        mapping: EventMapping, out: dict[str, pa.Array], decimal: str,
    ) -> None:
        event = mapping.canonical
        mapped = 0
        for idx, name in enumerate(cols.names):
            if idx in used:
                continue
            target = mapping.column(name)
            if target is None:
                continue
            arr = columns[idx]
            if target in INTEGER_COLUMNS:
                arr = self.plain_integers(arr, decimal)
            res = to_canonical(arr, target)
            self.report.flag(res.bad, numbers, f"{event}.{target}", columns[idx], column=target)
            out[target] = res.array
            mapped += 1
        payload = [n for i, n in enumerate(cols.names) if i not in used and re.match(r"^Field \d+$", n)]
        if mapped == 0 and payload:
            self.report.count(
                "unmapped_fields", len(numbers),
                detail=f"{event}: payload columns {payload[0]}..{payload[-1]} need a field map",
            )

    def plain_integers(self, arr: pa.Array, decimal: str) -> pa.Array:
        """Remove thousands separators from decimal integers (``"16,384"`` -> ``16384``)."""
        thousands = "," if decimal == "." else "."
        arr = clean_strings(arr)
        if not pc.any(pc.match_substring(arr, thousands)).as_py() and not pc.any(
            pc.match_substring_regex(arr, "[\\s\u00a0\u202f']")
        ).as_py():
            return arr
        looks = pc.fill_null(pc.match_substring_regex(arr, "^[+-]?[0-9][0-9.,\\s\u00a0\u202f']*$"), False)
        stripped = pc.replace_substring_regex(arr, pattern="[\\s\u00a0\u202f'" + re.escape(thousands) + "]", replacement="")
        return pc.if_else(looks, stripped, arr)

    def keep_column(self, arr: pa.Array, decimal: str) -> pa.Array:
        """An unknown column: numbers (int64/float64) if every value is one, else text."""
        cleaned = clean_strings(arr)
        if cleaned.null_count == len(cleaned):
            return cleaned
        values, bad, _integral = parse_locale_decimal(cleaned, decimal)
        if bad.any():
            return cleaned
        return values


register_reader(WpaCsvReader())
