"""Cell values -> canonical column values: the one place every reader converts through.

Every function works on whole Arrow arrays (a compiled scan for integers, pyarrow.compute
elsewhere) and returns the converted array with a bool mask of the cells that held a
value which is not valid for the column (:class:`Converted`). What a reader does with
that mask is the same everywhere (:class:`Problems`): lenient, the cell becomes null
and is counted as ``bad_values`` (detail = what); strict, the first one raises
:class:`~traceanalyzer.errors.TraceFormatError` naming the line (or row) and column.

The rules (docs/text_formats.md, "Values"):

- Null: an empty cell and the tokens of :data:`NULL_TOKENS` (any case) are null, not bad.
- Integers: decimal (optional sign), ``0x`` hex (1-16 digits, the unsigned value),
  ``true``/``false`` (1/0). A value is never wrapped: one that does not fit the column's
  type is bad. Pointer columns (:data:`POINTER_COLUMNS`, uint64 addresses) also take a
  negative decimal down to -2**63 as the two's complement of the address (a pointer
  printed as a signed 64-bit number), and exactly 16 hex digits without ``0x`` as hex
  (``%p`` of a 64-bit pointer: ``ffffc30a4b2f1000``); byte counts and other unsigned
  columns do not.
- A bad cell of an MDL column (:data:`MDL_COLUMNS`) is counted twice: as ``bad_values``
  and as ``unreadable_mdl``, a loss (the call is kept, but no rule can follow its MDL).
- Numbers already typed (Parquet, an ETL payload field): integers out of the column's
  range are bad; a float is taken when it is integral and in range, NaN is null, any
  other float is bad.
- Enums (``ENUM_ALIASES``): names or numbers (decimal or hex), any case; others are bad.
- ``tag``: an integer, or 1-4 characters (pool tag, first character in the lowest byte).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES, NULL_POINTER_COLUMNS
from traceanalyzer.model.stats import Stats

#: Cell texts that mean "no value" (compared case-insensitively): not counted as bad.
NULL_TOKENS: tuple[str, ...] = ("", "<none>", "<null>", "<unknown>", "n/a", "#n/a", "null", "nan")

#: uint64 columns that hold addresses (a negative decimal is the address's signed view):
#: the pointer columns of the schema, and ``mapped_va`` (where 0 is not NULL but a failure).
POINTER_COLUMNS: frozenset[str] = frozenset(NULL_POINTER_COLUMNS) | {"mapped_va"}

#: Columns naming the MDL a call acts on: a bad cell there loses the call for the
#: analysis, so it is also counted as ``unreadable_mdl`` (a loss counter).
MDL_COLUMNS: frozenset[str] = frozenset({"mdl", "source_mdl"})

#: Digits of an address written as hex without ``0x`` (``%p`` of a 64-bit pointer).
BARE_HEX_DIGITS = 16


def count_bad_cells(stats: Stats, source: str | Path, column: str | None, count: int, detail: str,
                    first_at: str, message: str) -> None:
    """Count ``count`` bad cells of ``column`` as ``bad_values`` (detail ``detail``), and,
    in an MDL column, as the loss ``unreadable_mdl`` too, naming the file, where the first
    is (``first_at``: ``line 12``, ``record at 0x1a0``) and ``message``."""
    if not count:
        return
    stats.add("bad_values", count, "warning", source=str(source), detail=detail)
    if column in MDL_COLUMNS:
        stats.add("unreadable_mdl", count, "warning", source=str(source),
                  detail=f"{Path(source).name} {first_at} (the first): {message}")


def null_token_variants() -> list[str]:
    """:data:`NULL_TOKENS` in the spellings met in files (for case-sensitive matchers)."""
    return sorted({v for t in NULL_TOKENS for v in (t, t.upper(), t.title(), t.capitalize())} | {"NaN"})


_NULL_SET = pa.array(null_token_variants(), pa.string())


@dataclass
class Converted:
    """A converted column and the rows whose value was present but not valid (now null)."""

    array: pa.Array
    bad: np.ndarray


# --- reporting --------------------------------------------------------------------------


@dataclass
class Problems:
    """Counters and the first problem of one read (shared by every reader).

    ``count`` adds a stat; ``problem`` remembers the earliest problem by line (or row);
    ``flag`` does both for a bad-value mask; ``raise_if_strict`` raises the earliest
    problem as ``TraceFormatError("<path>: line N: ...")`` in strict mode.
    """

    path: Path
    strict: bool
    stats: Stats = field(default_factory=Stats)
    first: tuple[int, str] | None = None
    where: str = "line"

    def count(self, name: str, value: int, severity: str = "warning", detail: str = "") -> None:
        if value:
            self.stats.add(name, int(value), severity, source=str(self.path), detail=detail)  # type: ignore[arg-type]

    def problem(self, line: int, message: str, *, cause: bool = False) -> None:
        """Remember ``message`` if it is the earliest; ``cause``: it explains whatever else
        went wrong in its line (a file cut short there), so it wins a tie."""
        if self.first is None or line < self.first[0] or (cause and line == self.first[0]):
            self.first = (line, message)

    def flag(self, bad: np.ndarray, lines: np.ndarray, what: str, texts: pa.Array | None = None,
             name: str = "bad_values", column: str | None = None) -> None:
        """Count the rows of ``bad`` under ``name`` (detail ``what``); remember the first.
        ``column``: the canonical column of the cells (bad values of an MDL column are
        also counted as ``unreadable_mdl``, :meth:`bad_cells`)."""
        if not bad.any():
            return
        i = int(np.flatnonzero(bad)[np.argmin(lines[bad])])
        shown = ""
        if texts is not None:
            value = texts[i].as_py()
            shown = f" {value.strip() if isinstance(value, str) else value!r}" if value is not None else ""
        message = f"bad {what} value{shown}"
        if name == "bad_values":
            self.bad_cells(column, int(bad.sum()), what, int(lines[i]), message)
        else:
            self.count(name, int(bad.sum()), detail=what)
        self.problem(int(lines[i]), message)

    def bad_cells(self, column: str | None, count: int, detail: str, line: int, message: str) -> None:
        """:func:`count_bad_cells` of this read (``line``: where the first is)."""
        count_bad_cells(self.stats, self.path, column, count, detail, f"{self.where} {line}", message)

    def raise_if_strict(self) -> None:
        if self.strict and self.first is not None:
            line, message = self.first
            raise TraceFormatError(f"{self.where} {line}: {message}", self.path)


# --- text cells ---------------------------------------------------------------------------


def as_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous string array (dictionary decoded, chunks combined)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    elif not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def clean_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trim whitespace and one pair of enclosing quotes; null tokens -> null."""
    arr = pc.utf8_trim_whitespace(as_strings(arr))
    if pc.any(pc.match_substring(arr, '"')).as_py():
        arr = pc.replace_substring_regex(arr, pattern=r'^"(.*)"$', replacement=r"\1")
    is_null = pc.is_in(arr, value_set=_NULL_SET)
    if pc.any(is_null).as_py():
        arr = pc.if_else(is_null, pa.scalar(None, pa.string()), arr)
    return arr


def _mask(expr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(expr, False).to_numpy(zero_copy_only=False), dtype=bool)


# --- integers ------------------------------------------------------------------------------

_OK, _EMPTY, _NOT_NUMBER, _TOO_BIG = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def _scan_integers(offsets, data, mag, neg, status, bare_hex):  # pragma: no cover - compiled
    """Decimal (optional sign) / 0x-hex cells -> magnitude, sign, status per cell;
    ``bare_hex``: also a cell of exactly 16 hex digits, as hex."""
    n = offsets.size - 1
    for i in range(n):
        start = offsets[i]
        end = offsets[i + 1]
        while start < end and (data[start] == 32 or data[start] == 9):
            start += 1
        while end > start and (data[end - 1] == 32 or data[end - 1] == 9 or data[end - 1] == 13):
            end -= 1
        mag[i] = 0
        neg[i] = False
        if start == end:
            status[i] = 1
            continue
        signed = data[start] == 45 or data[start] == 43  # '-' / '+'
        if signed:
            neg[i] = data[start] == 45
            start += 1
            if start == end:
                status[i] = 2
                continue
        value = np.uint64(0)
        st = 0
        prefixed = end - start > 2 and data[start] == 48 and (data[start + 1] == 120 or data[start + 1] == 88)
        if prefixed or (bare_hex and not signed and end - start == 16):
            if prefixed:
                start += 2
            digits = 0
            for j in range(start, end):
                c = data[j]
                if 48 <= c <= 57:
                    d = c - 48
                elif 97 <= c <= 102:
                    d = c - 87
                elif 65 <= c <= 70:
                    d = c - 55
                else:
                    st = 2
                    break
                if value == 0 and d == 0:
                    continue  # leading zeros
                digits += 1
                if digits > 16:
                    st = 3
                    continue  # keep scanning: a later non-hex character makes it not a number
                value = value * np.uint64(16) + np.uint64(d)
            if neg[i] and st == 0:
                st = 2  # -0x...: not a form any tool writes
        else:
            for j in range(start, end):
                c = data[j]
                if 48 <= c <= 57:
                    if st == 3:
                        continue
                    nv = value * np.uint64(10) + np.uint64(c - 48)
                    if value > np.uint64(1844674407370955161) or nv < value:
                        st = 3
                        continue
                    value = nv
                else:
                    st = 2
                    break
        mag[i] = value
        status[i] = st
    return 0


def _limits(column: str | None, typ: pa.DataType) -> tuple[int, int]:
    """The accepted value range [lo, hi] of a canonical integer column."""
    bits = typ.bit_width
    if pa.types.is_unsigned_integer(typ):
        lo = -(1 << 63) if column in POINTER_COLUMNS else 0
        return lo, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _fit(mag: np.ndarray, neg: np.ndarray, ok: np.ndarray, column: str | None, typ: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """(array of ``typ``, fits mask) from magnitudes and signs: the range rule."""
    lo, hi = _limits(column, typ)
    neg = neg & (mag != 0)
    fits = ok & np.where(neg, mag <= np.uint64(-lo), mag <= np.uint64(hi))
    if pa.types.is_unsigned_integer(typ):
        vals = np.where(neg, np.uint64(0) - mag, mag)  # two's complement (pointers only)
        out = pa.array(np.where(fits, vals, 0).astype(np.uint64), pa.uint64(), mask=~fits)
    else:
        vals = np.where(neg, (np.uint64(0) - mag).view(np.int64), mag.view(np.int64))
        out = pa.array(np.where(fits, vals, 0), pa.int64(), mask=~fits)
    return (out.cast(typ) if out.type != typ else out), fits


def _scan(arr: pa.Array, bare_hex: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, dtype=np.uint8)
    mag = np.empty(n, dtype=np.uint64)
    neg = np.empty(n, dtype=np.bool_)
    status = np.empty(n, dtype=np.int8)
    _scan_integers(offsets, data, mag, neg, status, bare_hex)
    if arr.null_count:
        status[np.asarray(arr.is_null())] = _EMPTY
    return mag, neg, status


def parse_integers(arr: pa.Array | pa.ChunkedArray, column: str | None = None,
                   typ: pa.DataType | None = None) -> Converted:
    """Integer cells (decimal, ``0x`` hex, ``true``/``false``; in a pointer column also 16
    hex digits without ``0x``) -> the column's type.

    Null tokens are null without being bad; anything else that is not an integer in the
    column's range (:func:`_limits`) is null and flagged.
    """
    typ = typ if typ is not None else COLUMNS[column] if column is not None else pa.int64()
    arr = as_strings(arr)
    bare_hex = column in POINTER_COLUMNS
    mag, neg, status = _scan(arr, bare_hex)
    odd = np.flatnonzero(status == _NOT_NUMBER)
    if len(odd):  # quotes, null tokens, true/false: only the distinct odd cells, in Python
        texts = arr.take(pa.array(odd))
        enc = pc.dictionary_encode(texts)
        uniq = [_odd_integer(t, bare_hex) for t in enc.dictionary.to_pylist()]
        idx = enc.indices.to_numpy(zero_copy_only=False)
        for k, (st, m, ng) in enumerate(uniq):
            if st == _NOT_NUMBER:
                continue
            rows = odd[idx == k]
            status[rows], mag[rows], neg[rows] = st, m, ng
    present = status != _EMPTY
    out, fits = _fit(mag, neg, status == _OK, column, typ)
    return Converted(out, present & ~fits)


def _odd_integer(text: str, bare_hex: bool = False) -> tuple[int, int, bool]:
    """(status, magnitude, negative) of a cell the compiled scan did not read
    (``bare_hex``: 16 hex digits without ``0x`` are hex, as in a pointer column)."""
    t = text.strip()
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        t = t[1:-1].strip()
    low = t.lower()
    if low in NULL_TOKENS:
        return _EMPTY, 0, False
    if low in ("true", "false"):
        return _OK, int(low == "true"), False
    if t != text.strip():  # was quoted: scan the inside
        if bare_hex and re.fullmatch(_BARE_HEX, t):
            return _OK, int(t, 16), False
        m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]+|[0-9]+)", t)
        if m:
            v = int(m.group(2), 0) if m.group(2)[:2].lower() == "0x" else int(m.group(2))
            if m.group(1) == "-" and m.group(2)[:2].lower() == "0x":
                return _NOT_NUMBER, 0, False
            if v >= 1 << 64:
                return _TOO_BIG, 0, False
            return _OK, v, m.group(1) == "-"
    return _NOT_NUMBER, 0, False


_BARE_HEX = f"[0-9a-fA-F]{{{BARE_HEX_DIGITS}}}"


def integers_to_column(arr: pa.Array | pa.ChunkedArray, column: str | None = None,
                       typ: pa.DataType | None = None) -> Converted:
    """Typed numbers (integers, floats, booleans) -> the column's type by the range rule."""
    typ = typ if typ is not None else COLUMNS[column] if column is not None else pa.int64()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = len(arr)
    if arr.type == typ:
        return Converted(arr, np.zeros(n, dtype=bool))
    if pa.types.is_boolean(arr.type):
        arr = arr.cast(pa.uint8())
    valid = _mask(pc.is_valid(arr))
    if pa.types.is_floating(arr.type):
        f = pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False).astype(np.float64)
        nan = np.isnan(f)
        valid &= ~nan
        integral = np.isfinite(f) & (np.floor(f) == f) & (np.abs(f) < 2.0**64)
        ok = valid & integral
        neg = f < 0
        mag = np.zeros(n, dtype=np.uint64)
        mag[ok] = np.abs(f[ok]).astype(np.uint64)
    elif pa.types.is_integer(arr.type):
        raw = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
        ok = valid
        if raw.dtype.kind == "u":
            mag, neg = raw.astype(np.uint64), np.zeros(n, dtype=bool)
        else:
            raw = raw.astype(np.int64)
            neg = raw < 0
            mag = np.where(neg, np.uint64(0) - raw.view(np.uint64), raw.view(np.uint64)).astype(np.uint64)
    else:
        return parse_integers(arr, column, typ)
    out, fits = _fit(mag, neg, ok, column, typ)
    return Converted(out, valid & ~fits)


def int_value(column: str, value: Any) -> tuple[int | None, bool]:
    """One decoded value -> (the column's value or None, bad). For per-event decoding."""
    if value is None:
        return None, False
    if isinstance(value, bool):
        value = int(value)
    elif isinstance(value, float):
        if math.isnan(value):
            return None, False
        if not math.isfinite(value) or not value.is_integer():
            return None, True
        value = int(value)
    elif not isinstance(value, int):
        text = str(value).strip().strip('"')
        st, mag, neg = _odd_integer(f'"{text}"', column in POINTER_COLUMNS)  # read as a quoted cell
        if st != _OK:
            return None, st != _EMPTY
        value = -mag if neg else mag
    lo, hi = _limits(column, COLUMNS[column])
    if not lo <= value <= hi:
        return None, True
    if value < 0 and pa.types.is_unsigned_integer(COLUMNS[column]):
        value &= (1 << 64) - 1
    return value, False


# --- enums, pool tags ------------------------------------------------------------------------


def enum_value(column: str, value: Any) -> tuple[str | None, bool]:
    """One enum value (name or number, any case) -> (canonical name or None, bad)."""
    if value is None:
        return None, False
    if isinstance(value, bool):
        value = int(value)
    key = str(value).strip()
    if key.lower() in NULL_TOKENS:
        return None, False
    aliases = ENUM_ALIASES[column]
    canon = aliases.get(key)
    if canon is None:
        lowered = key.lower()
        canon = aliases.get(lowered) or next((v for k, v in aliases.items() if k.lower() == lowered), None)
    if canon is None and lowered.startswith("0x"):
        try:
            canon = aliases.get(str(int(lowered, 16)))
        except ValueError:
            pass
    return canon, canon is None


def enum_values(arr: pa.Array | pa.ChunkedArray, column: str) -> Converted:
    """Enum cells (``KernelMode``, ``0``, ``0x1``...) -> canonical names (others bad)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type):
        arr = arr.cast(pa.int64()).cast(pa.string())
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(as_strings(arr))
    mapped, unknown = [], []
    for text in enc.dictionary.to_pylist():
        canon, bad = enum_value(column, text)
        mapped.append(canon)
        unknown.append(bad)
    indices = enc.indices
    out = pa.array(mapped, pa.string()).take(indices)
    bad = np.zeros(len(arr), dtype=bool)
    if len(unknown):
        valid = _mask(pc.is_valid(indices))
        idx = pc.fill_null(indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        bad = np.asarray(unknown, dtype=bool)[idx] & valid
    return Converted(out, bad)


def pool_tag(text: str) -> int | None:
    """A pool tag of 1-4 characters -> the ULONG the kernel sees (first character lowest)."""
    if not 0 < len(text) <= 4:
        return None
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return int.from_bytes(raw.ljust(4, b" "), "little")


def pool_tags(arr: pa.Array | pa.ChunkedArray) -> Converted:
    """``tag`` cells: integers (uint32), or 1-4 characters as a pool tag."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return integers_to_column(arr, "tag")
    res = parse_integers(arr, "tag")
    if not res.bad.any():
        return res
    cleaned = clean_strings(arr).to_pylist()
    out = res.array.to_pylist()
    bad = res.bad.copy()
    for i in np.flatnonzero(bad):
        text = cleaned[i]
        code = pool_tag(text) if text is not None else None
        if code is not None:
            out[i] = code
            bad[i] = False
    return Converted(pa.array(out, type=pa.uint32()), bad)


def value_for_column(column: str, value: Any) -> tuple[Any, bool]:
    """One decoded payload value (ETL) -> (the column's value or None, bad).

    Enums and pool tags as above; ``status`` logged as a number becomes ``0x%08X``
    (an NTSTATUS); other string columns take the value's text.
    """
    if value is None:
        return None, False
    if column in ENUM_ALIASES:
        return enum_value(column, value)
    typ = COLUMNS[column]
    if column == "status" and isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value & 0xFFFFFFFF:08X}", False
    if pa.types.is_string(typ):
        return str(value), False
    if column == "tag" and isinstance(value, str):
        code = pool_tag(value)
        return (code, False) if code is not None else int_value(column, value)
    return int_value(column, value)


# --- decimals --------------------------------------------------------------------------------

_INT64_MAX = (1 << 63) - 1


def normalize_locale(arr: pa.Array, decimal: str) -> pa.Array:
    """Number texts of a UI locale with thousands separators removed and '.' as decimal."""
    thousands = "," if decimal == "." else "."
    arr = clean_strings(arr)
    arr = pc.replace_substring_regex(arr, pattern="[\\s\u00a0\u202f'" + re.escape(thousands) + "]", replacement="")
    if decimal != ".":
        arr = pc.replace_substring(arr, pattern=decimal, replacement=".")
    return arr


def parse_locale_decimal(arr: pa.Array, decimal: str) -> tuple[pa.Array, np.ndarray, bool]:
    """Numbers in a UI locale -> (int64 array if every value is integral else float64, bad, integral)."""
    norm = normalize_locale(arr, decimal)
    present = _mask(pc.is_valid(norm))
    is_int = _mask(pc.match_substring_regex(norm, r"^[+-]?[0-9]{1,18}$"))
    is_num = _mask(pc.match_substring_regex(norm, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"))
    bad = present & ~is_num
    valid = pa.array(is_num)
    if (is_int == is_num).all():
        vals = pc.cast(pc.if_else(valid, norm, "0"), pa.int64())
        return pc.if_else(valid, vals, pa.scalar(None, pa.int64())), bad, True
    vals = pc.cast(pc.if_else(valid, norm, "0"), pa.float64())
    return pc.if_else(valid, vals, pa.scalar(None, pa.float64())), bad, False


def parse_scaled_decimal(arr: pa.Array, decimal: str, digits: int) -> tuple[pa.Array, np.ndarray]:
    """Exact fixed-point parse: value * 10**digits as int64, extra digits truncated.

    Used for times: seconds with ``digits=9`` give nanoseconds without float rounding.
    A value whose result does not fit int64 is bad (null), never wrapped.
    """
    trimmed = pc.utf8_trim_whitespace(as_strings(arr))
    if trimmed.null_count == 0:
        try:  # common case: plain integers
            ints = pc.cast(trimmed, pa.int64())
            return pc.multiply_checked(ints, 10**digits), np.zeros(len(arr), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    norm = normalize_locale(arr, decimal)
    parts = pc.extract_regex(norm, r"^(?P<sign>[+-]?)(?P<i>[0-9]*)(?:\.(?P<f>[0-9]*))?$")
    present = _mask(pc.is_valid(norm))
    matched = _mask(pc.is_valid(parts))
    ipart = pc.struct_field(parts, "i")
    fpart = pc.struct_field(parts, "f")
    nonempty = _mask(pc.greater(pc.add(pc.utf8_length(ipart), pc.utf8_length(fpart)), 0))
    ok = matched & nonempty
    ipart = pc.fill_null(pc.if_else(pc.equal(ipart, ""), "0", ipart), "0")
    scan = parse_integers(ipart, typ=pa.int64())
    ints = pc.fill_null(scan.array, 0).to_numpy(zero_copy_only=False)
    limit = _INT64_MAX // 10**digits
    ok &= ~scan.bad & (ints < limit)
    ints = np.where(ok, ints, 0)
    if digits > 0:
        frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.fill_null(fpart, ""), width=digits, padding="0"), 0, digits)
        fracs = pc.cast(frac, pa.int64()).to_numpy(zero_copy_only=False)
    else:
        fracs = np.zeros(len(norm), dtype=np.int64)
    sign = np.where(_mask(pc.equal(pc.struct_field(parts, "sign"), "-")), -1, 1)
    vals = sign * (ints * np.int64(10**digits) + np.where(ok, fracs, 0))
    return pa.array(vals, type=pa.int64(), mask=~ok), present & ~ok


# --- one column, one table ---------------------------------------------------------------------


def _strings(arr: pa.Array, column: str) -> Converted:
    return Converted(clean_strings(arr), np.zeros(len(arr), dtype=bool))


def _integers(arr: pa.Array, column: str) -> Converted:
    return integers_to_column(arr, column)


#: How a column kind is converted (by :func:`converter_of`).
CONVERTERS: dict[str, Callable[[pa.Array, str], Converted]] = {
    "enum": enum_values,
    "tag": lambda arr, column: pool_tags(arr),
    "integer": _integers,
    "string": _strings,
}


def converter_of(column: str) -> Callable[[pa.Array, str], Converted]:
    """The converter for a canonical column (unknown names: string)."""
    if column in ENUM_ALIASES:
        return CONVERTERS["enum"]
    if column == "tag":
        return CONVERTERS["tag"]
    typ = COLUMNS.get(column, pa.string())
    return CONVERTERS["integer" if pa.types.is_integer(typ) else "string"]


def to_canonical(arr: pa.Array, column: str) -> Converted:
    """Convert cells (text or typed) to the canonical type of ``column`` (schema.COLUMNS)."""
    return converter_of(column)(arr, column)


def canonicalize_columns(table: pa.Table) -> tuple[pa.Table, dict[str, Converted]]:
    """Every canonical column of ``table`` in its canonical type.

    ``event`` becomes dictionary-encoded; unknown columns are kept as they are; string
    columns keep their text (a canonical table's strings are not cleaned). Returns the
    table and, per column with bad cells, its :class:`Converted` (cells now null).
    """
    cols = []
    bad: dict[str, Converted] = {}
    for name, col in zip(table.column_names, table.columns):
        typ = COLUMNS.get(name)
        if typ is None:
            cols.append(col)
        elif name == "event":
            col = col.cast(pa.string()) if not pa.types.is_dictionary(col.type) else col
            cols.append(pc.dictionary_encode(col) if not pa.types.is_dictionary(col.type) else col)
        elif pa.types.is_null(col.type):
            cols.append(pa.nulls(len(col), typ))
        elif name in ENUM_ALIASES or pa.types.is_integer(typ):
            res = to_canonical(col, name)
            if res.bad.any():
                bad[name] = res
            cols.append(res.array)
        else:
            cols.append(col.cast(typ) if col.type != typ else col)
    return pa.table(cols, names=table.column_names), bad


def why_bad(column: str, text: Any) -> str:
    """Why a cell of ``column`` is bad, for an error message (``'300' is out of range ...``)."""
    if column in ENUM_ALIASES:
        names = sorted(set(ENUM_ALIASES[column].values()))
        return f"{text!r} is not one of {', '.join(names)}"
    typ = COLUMNS.get(column, pa.string())
    number = isinstance(text, int) or (isinstance(text, float) and math.isfinite(text) and text.is_integer())
    if isinstance(text, str):
        number = re.fullmatch(r'\s*"?[+-]?([0-9]+|0[xX][0-9a-fA-F]+)"?\s*', text) is not None
    if number and pa.types.is_integer(typ):
        lo, hi = _limits(column, typ)
        return f"{text!r} is out of range ({lo}..{hi})"
    if column in POINTER_COLUMNS:
        return f"{text!r} is not an address (0x hex, {BARE_HEX_DIGITS} hex digits, or decimal)"
    return f"{text!r} is not {'a number or a 4-character pool tag' if column == 'tag' else 'a number'}"


def report_bad_cells(bad: dict[str, Converted], table: pa.Table, report: Problems, first: int) -> None:
    """Count the bad cells of :func:`canonicalize_columns` (``bad_values``, detail = column)
    and remember the earliest (``column 'c': <why>`` at row + ``first``) for strict mode."""
    for column, res in bad.items():
        rows = np.flatnonzero(res.bad)
        row = int(rows[0])
        message = f"column {column!r}: {why_bad(column, table.column(column)[row].as_py())}"
        report.bad_cells(column, len(rows), column, row + first, message)
        report.problem(row + first, message)
