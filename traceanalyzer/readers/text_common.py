"""Helpers shared by the text-export readers (xperf dumper text, WPA CSV).

- :func:`decode_bytes`, :func:`decode_text`: bytes -> text, undecodable bytes replaced and
  counted (:class:`Undecodable`: as ``undecodable_bytes``, the first one a strict error).
- :func:`split_fields`: one text line -> fields, honouring double quotes (xperf style).
- :func:`normalize_header`: the key column names are matched by.
- :func:`parse_name_pid`: ``name (PID)`` cells -> (name, pid).
- :func:`decimal_votes`, :func:`guess_decimal_separator`: which decimal separator a UI
  locale wrote (``"16,384"``, German ``"1,176567818"``).
- :func:`assemble`: per-event-type column dicts -> one table.

Cell values are converted by :mod:`traceanalyzer.readers.convert`; field maps live in
:mod:`traceanalyzer.readers.field_map`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers.convert import Problems, clean_strings, parse_integers


# --- text -------------------------------------------------------------------------------


def decode_bytes(data: bytes) -> tuple[str, int]:
    """Decode a text export: BOM-detected UTF-16/UTF-8, else UTF-8 with replacement.

    Returns (text, number of undecodable bytes sequences replaced by U+FFFD). A BOM is
    removed. :func:`decode_text` also says where the first one is.
    """
    decoded = decode_text(data)
    return decoded.text, decoded.replaced


@dataclass(frozen=True)
class Decoded:
    """Text of :func:`decode_text`.

    replaced: byte sequences that were not ``encoding`` and became U+FFFD (a U+FFFD the
    data itself holds is not counted); line: the line of the first (1 = the first line
    of ``data``; 0 when none); bad: its bytes."""

    text: str
    replaced: int = 0
    encoding: str = "UTF-8"
    line: int = 0
    bad: bytes = b""

    def what(self) -> str:
        """The first replaced sequence as the strict error says it (as the canonical CSV
        reader: ``a byte that is not UTF-8 (0xe9)``)."""
        shown = " ".join(f"0x{b:02x}" for b in self.bad[:4])
        many = len(self.bad) > 1
        return f"{'bytes' if many else 'a byte'} that {'are' if many else 'is'} not {self.encoding} ({shown})"


def decode_text(data: bytes) -> Decoded:
    """Decode a text export: BOM-detected UTF-16/UTF-8, else UTF-8; a BOM is removed.

    Sequences that are not of that encoding become U+FFFD, counted, the first one's line
    and bytes kept (the clean path decodes once; only text with such bytes is decoded
    again to find them)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec, label = "utf-16", "UTF-16"
    else:
        codec, label = "utf-8", "UTF-8"
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
    try:
        return Decoded(data.decode(codec), encoding=label)
    except UnicodeDecodeError as exc:
        start, end = exc.start, exc.end
    text = data.decode(codec, errors="replace")
    replaced = text.count("\ufffd") - data.decode(codec, errors="ignore").count("\ufffd")
    before = data[:start].decode(codec, errors="replace")  # valid up to the first bad sequence
    return Decoded(text, max(replaced, 1), label, before.count("\n") + 1, data[start:end])


#: Bytes of a file's end that :func:`line_left_open` needs (a longer last line holds
#: more than blanks anyway).
TAIL_BYTES = 4096


def line_left_open(tail: bytes) -> bool:
    """True when ``tail``, the last bytes of a text file, end inside a line that holds
    more than blanks: no line break ends the file, so it may be cut short in that line
    (every tool that writes these formats ends its last line with one)."""
    if not tail or tail.endswith((b"\n", b"\r")):
        return False
    return bool(tail[max(tail.rfind(b"\n"), tail.rfind(b"\r")) + 1:].strip())


def note_line_left_open(report: Problems, line: int) -> None:
    """Count a file whose last line (``line``) has no line break as
    ``unterminated_last_line``: its last value may be cut (``...,0x1234`` read as
    ``...,0x12``). Not a loss (the row is read as it is, and a forgotten line break looks
    the same), a warning; strict mode raises it, before any other problem of that line."""
    what = "the last line has no line break at its end: the file may be cut short in it"
    report.count("unterminated_last_line", 1, "warning",
                 detail=f"{report.path.name}: {what} (line {line}; read as it is)")
    report.problem(line, what, cause=True)


@dataclass
class Undecodable:
    """Replaced sequences of a read that decodes its text in parts (:func:`decode_text`
    per block): counted as ``undecodable_bytes`` once at the end (detail: the first
    line), the first one a problem (strict mode raises it, as the canonical CSV reader)."""

    count: int = 0
    encoding: str = "UTF-8"
    first: tuple[int, str] | None = None

    def add(self, decoded: Decoded, first_line: int = 1) -> None:
        """``decoded`` holds the text from line ``first_line`` of the file."""
        if not decoded.replaced:
            return
        self.count += decoded.replaced
        if self.first is None:
            self.encoding = decoded.encoding
            self.first = (first_line + decoded.line - 1, decoded.what())

    def report(self, report: Problems) -> None:
        if self.first is None:
            return
        line, what = self.first
        report.count("undecodable_bytes", self.count,
                     detail=f"non-{self.encoding} bytes replaced by U+FFFD (first at line {line})")
        report.problem(line, what)


def split_fields(line: str) -> tuple[list[str], bool]:
    """Split one comma-separated line; commas inside double quotes do not split.

    xperf quotes strings (``"\\Device\\...\\a.exe"``) but does not escape quotes, and a
    quoted part may be followed by more text in the same field (command lines); a
    doubled quote inside quotes is read as one quote (CSV style). Fields are stripped
    of surrounding whitespace and of one pair of enclosing quotes.

    Returns (fields, balanced): ``balanced`` is False when a quote was left open.
    """
    fields: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == '"':
            if quoted and i + 1 < n and line[i + 1] == '"':
                cur.append('""')  # kept doubled; _strip_quotes undoes it in a quoted cell
                i += 2
                continue
            quoted = not quoted
            cur.append(ch)
        elif ch == "," and not quoted:
            fields.append(_strip_quotes("".join(cur).strip()))
            cur = []
        else:
            cur.append(ch)
        i += 1
    fields.append(_strip_quotes("".join(cur).strip()))
    return fields, not quoted


def _strip_quotes(text: str) -> str:
    """A cell that is one quoted string loses its quotes (doubled quotes -> one); others stay."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    return text


def normalize_header(name: str) -> str:
    """Key for matching column names across tool versions: lower case, no blanks or '_'."""
    return re.sub(r"[\s_]+", "", name).lower()


def find_column(keys: list[str], aliases: tuple[str, ...]) -> int | None:
    """Position in ``keys`` (normalized header names) of the first alias present, in the
    aliases' order of preference; None when none is."""
    for alias in aliases:
        if alias in keys:
            return keys.index(alias)
    return None


# --- name (PID) --------------------------------------------------------------------------

_NAME_PID_RE = r'^"?(?P<name>.*?)"?\s*\(\s*(?P<pid>-?[0-9]+)\s*\)$'


def parse_name_pid(arr: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Split ``name (PID)`` cells (xperf pads: ``System (   4)``; may quote the name).

    A bare integer is read as a PID without a name. Returns (names: string,
    pids: int64, bad: bool mask of non-empty cells that are neither). Works on the
    distinct values only (process columns repeat a few values many times).
    """
    enc = pc.dictionary_encode(arr)
    names_d, pids_d, bad_d = _parse_name_pid_values(enc.dictionary)
    indices = enc.indices
    valid = pc.is_valid(indices).to_numpy(zero_copy_only=False)
    idx = pc.fill_null(indices, 0).to_numpy(zero_copy_only=False)
    bad = (bad_d[idx] if len(bad_d) else np.zeros(len(arr), dtype=bool)) & valid
    return names_d.take(indices), pids_d.take(indices), bad


def _parse_name_pid_values(arr: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    arr = clean_strings(arr)
    parts = pc.extract_regex(arr, _NAME_PID_RE)
    names = pc.struct_field(parts, "name")
    pid_text = pc.struct_field(parts, "pid")
    bare = pc.match_substring_regex(arr, r"^-?[0-9]+$")
    pid_text = pc.if_else(pc.fill_null(bare, False), arr, pid_text)
    parsed = parse_integers(pid_text, "pid")
    pids, bad_pid = parsed.array, parsed.bad
    names = pc.if_else(pc.equal(names, ""), pa.scalar(None, pa.string()), names)
    present = pc.fill_null(pc.is_valid(arr), False).to_numpy(zero_copy_only=False)
    matched = pc.fill_null(pc.is_valid(pid_text), False).to_numpy(zero_copy_only=False)
    bad = (present & ~matched) | bad_pid
    return names, pids, bad


# --- locale numbers --------------------------------------------------------------------------

_SEPARATED_RE = re.compile(r"^[+-]?[0-9]+([.,][0-9]+)+$")


def decimal_votes(values: Iterable[str | None]) -> tuple[int, int]:
    """Votes (for '.', for ',') as decimal separator from number texts.

    Rule (documented in docs/text_formats.md): a number with both separators has its
    decimal separator last (``1,234.5``); one separator used twice or more is a thousands
    separator (``1,234,567``); one separator followed by other than exactly three digits
    is a decimal separator (``1,176567818``, ``0.5``). ``16,384`` alone is ambiguous.
    """
    dot = comma = 0
    for text in values:
        if not text or not _SEPARATED_RE.match(text):
            continue
        last_dot, last_comma = text.rfind("."), text.rfind(",")
        if last_dot >= 0 and last_comma >= 0:
            if last_dot > last_comma:
                dot += 1
            else:
                comma += 1
            continue
        sep = "." if last_dot >= 0 else ","
        if text.count(sep) > 1:
            if sep == ".":
                comma += 1
            else:
                dot += 1
            continue
        if len(text) - text.rfind(sep) - 1 != 3:
            if sep == ".":
                dot += 1
            else:
                comma += 1
    return dot, comma


def guess_decimal_separator(values: Iterable[str | None], default: str = ".") -> tuple[str, str]:
    """Decimal separator of number texts by :func:`decimal_votes`; (separator, source).

    source is ``"data"`` when the votes decide, ``"default"`` when there is no
    evidence or a tie (then ``default``).
    """
    dot, comma = decimal_votes(values)
    if dot == comma:
        return default, "default"
    return ("." if dot > comma else ","), "data"


# --- assembling the table ------------------------------------------------------------------------


def assemble_keyed(parts: list[dict[str, pa.Array]], key: str) -> tuple[pa.Table, pa.ChunkedArray | None]:
    """Concatenate per-event-type column dicts into one table (missing columns null,
    canonical columns of their schema type), without moving a row: one chunk per part,
    and its ``key`` column taken out (the file order: ``ReadResult.order_key``). Sorting
    10M rows of text columns into file order would copy the whole table."""
    table = _concat(parts)
    if key not in table.column_names:
        return table, None
    column = table.column(key)
    if column.null_count:  # every part carries its rows' key (a part without one would be null)
        raise ValueError(f"assemble_keyed: {column.null_count} rows without {key!r}")
    return table.drop_columns([key]), column.cast(pa.int64()) if column.type != pa.int64() else column


def _concat(parts: list[dict[str, pa.Array]]) -> pa.Table:
    names: list[str] = []
    for part in parts:
        for name in part:
            if name not in names:
                names.append(name)
    types: dict[str, pa.DataType] = {}
    for name in names:
        if name in COLUMNS:
            types[name] = COLUMNS[name]
        else:
            found = [p[name].type for p in parts if name in p]
            types[name] = found[0] if all(t == found[0] for t in found) else pa.string()
    tables = []
    for part in parts:
        n = len(next(iter(part.values()))) if part else 0
        cols = []
        for name in names:
            if name in part:
                col = part[name]
                if col.type != types[name]:
                    col = col.cast(types[name])
                cols.append(col)
            else:
                cols.append(pa.nulls(n, types[name]))
        tables.append(pa.table(cols, names=names))
    if not tables:
        return pa.table({"time_ns": pa.array([], pa.int64()), "event": pa.array([], pa.string())})
    return pa.concat_tables(tables)
