"""Helpers shared by the text-export readers (xperf dumper text, WPA CSV).

Everything here works on whole Arrow string arrays at once (pyarrow.compute), so a
reader parses a column of a million values without a Python loop:

- :func:`decode_bytes`: bytes -> text, undecodable bytes replaced and counted.
- :func:`split_fields`: one text line -> fields, honouring double quotes (xperf style).
- :func:`parse_name_pid`: ``name (PID)`` cells -> (name, pid).
- :func:`parse_int_column`: hex (``0x...``) or decimal integers, ``<none>`` -> null.
- :func:`parse_locale_decimal`, :func:`parse_scaled_decimal`, :func:`guess_decimal_separator`:
  numbers as a UI locale writes them (``"16,384"``, German ``"1,176567818"``).
- :func:`to_canonical`: a string column -> the canonical column's Arrow type.
- :class:`FieldMap` / :func:`load_field_map`: provider/event/field names -> canonical names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES, KNOWN_EVENTS

#: Cell texts that mean "no value" in xperf / WPA exports (compared lower-case).
NULL_TOKENS: tuple[str, ...] = ("", "<none>", "n/a", "<null>", "<unknown>")

#: The provider whose events map 1:1 onto the canonical call names and columns.
MDL_PROVIDER = "MdlTrace"

_HEX_LUT = np.zeros(256, dtype=np.uint64)
for _i, _c in enumerate("0123456789abcdef"):
    _HEX_LUT[ord(_c)] = _i
    _HEX_LUT[ord(_c.upper())] = _i


# --- text -------------------------------------------------------------------------------


def decode_bytes(data: bytes) -> tuple[str, int]:
    """Decode a text export: BOM-detected UTF-16/UTF-8, else UTF-8 with replacement.

    Returns (text, number of undecodable bytes sequences replaced by U+FFFD). A BOM is
    removed.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
        return text, text.count("\ufffd")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - data.count("\ufffd".encode("utf-8"))
    return text, max(replaced, 0)


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


# --- null tokens and trimming ------------------------------------------------------------


def clean_strings(arr: pa.Array) -> pa.Array:
    """Trim whitespace and one pair of enclosing quotes; null-tokens (``<none>``...) -> null."""
    arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    if pc.any(pc.match_substring(arr, '"')).as_py():
        arr = pc.replace_substring_regex(arr, pattern=r'^"(.*)"$', replacement=r"\1")
    is_null = pc.is_in(arr, value_set=_NULL_SET)
    if pc.any(is_null).as_py():
        arr = pc.if_else(is_null, pa.scalar(None, pa.string()), arr)
    return arr


_NULL_SET = pa.array(
    sorted({v for t in NULL_TOKENS for v in (t, t.upper(), t.title(), t.capitalize())}), pa.string()
)


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
    pids, bad_pid = parse_int_column(pid_text, pa.int64())
    names = pc.if_else(pc.equal(names, ""), pa.scalar(None, pa.string()), names)
    present = pc.fill_null(pc.is_valid(arr), False).to_numpy(zero_copy_only=False)
    matched = pc.fill_null(pc.is_valid(pid_text), False).to_numpy(zero_copy_only=False)
    bad = (present & ~matched) | bad_pid
    return names, pids, bad


# --- integers ------------------------------------------------------------------------------


def _hex_values(hex_digits: pa.Array) -> np.ndarray:
    """Values of hex digit strings of 1..16 digits (no prefix), as uint64."""
    n = len(hex_digits)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    padded = pc.utf8_lpad(hex_digits, width=16, padding="0")
    padded = pa.concat_arrays([padded])  # fresh, unsliced buffers
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[: n + 1]
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)
    chars = data[offsets[0] : offsets[0] + 16 * n].reshape(n, 16)
    nibbles = _HEX_LUT[chars]
    out = np.zeros(n, dtype=np.uint64)
    for col in range(16):
        out = (out << np.uint64(4)) | nibbles[:, col]
    return out


def parse_int_column(arr: pa.Array, typ: pa.DataType = pa.int64()) -> tuple[pa.Array, np.ndarray]:
    """Parse integer text (decimal, ``-1``, ``0x`` hex; ``true``/``false`` -> 1/0).

    Null tokens (``""``, ``<none>``...) become null without being bad. Values that do
    not parse or do not fit ``typ`` become null and are flagged in the returned bool
    mask. Unsigned 64-bit hex is exact (no float round trip).
    """
    arr = clean_strings(arr)
    n = len(arr)
    if pa.types.is_signed_integer(typ) and arr.null_count == 0:
        try:  # common case: every cell a plain decimal that fits
            return pc.cast(arr, typ), np.zeros(n, dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    values = np.zeros(n, dtype=np.uint64)
    neg = np.zeros(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    lower = pc.utf8_lower(arr)

    def mask(expr: pa.Array) -> np.ndarray:
        return pc.fill_null(expr, False).to_numpy(zero_copy_only=False)

    is_hex = mask(pc.match_substring_regex(arr, r"^0[xX][0-9a-fA-F]{1,16}$"))
    if is_hex.any():
        idx = np.flatnonzero(is_hex)
        digits = pc.utf8_slice_codeunits(arr.take(pa.array(idx)), start=2)
        values[idx] = _hex_values(digits)
        ok[idx] = True
    is_dec = mask(pc.match_substring_regex(arr, r"^\+?[0-9]{1,20}$"))
    if is_dec.any():
        idx = np.flatnonzero(is_dec)
        sub = pc.utf8_ltrim(arr.take(pa.array(idx)), characters="+")
        try:
            values[idx] = pc.cast(sub, pa.uint64()).to_numpy(zero_copy_only=False)
            ok[idx] = True
        except pa.ArrowInvalid:  # a 20-digit value beyond 2**64-1: element by element
            for j, text in zip(idx, sub.to_pylist()):
                v = int(text)
                if v < 2**64:
                    values[j] = v
                    ok[j] = True
    is_neg = mask(pc.match_substring_regex(arr, r"^-[0-9]{1,19}$"))
    if is_neg.any():
        idx = np.flatnonzero(is_neg)
        try:
            neg_vals = pc.cast(arr.take(pa.array(idx)), pa.int64()).to_numpy(zero_copy_only=False)
            values[idx] = neg_vals.view(np.uint64)
            neg[idx] = True
            ok[idx] = True
        except pa.ArrowInvalid:
            pass
    is_true = mask(pc.equal(lower, "true"))
    is_false = mask(pc.equal(lower, "false"))
    values[is_true] = 1
    ok |= is_true | is_false
    present = mask(pc.is_valid(arr))

    if pa.types.is_unsigned_integer(typ):
        limit = np.uint64(2 ** (typ.bit_width) - 1)
        fits = ok & ~neg & (values <= limit)
        out = pa.array(values, type=pa.uint64(), mask=~fits).cast(typ)
    else:
        signed = values.view(np.int64)
        lo, hi = -(2 ** (typ.bit_width - 1)), 2 ** (typ.bit_width - 1) - 1
        big = ~neg & (values > np.uint64(2**63 - 1))
        fits = ok & ~big & (signed >= lo) & (signed <= hi)
        out = pa.array(np.where(fits, signed, 0), type=pa.int64(), mask=~fits).cast(typ)
    bad = present & ~fits
    return out, bad


def parse_pool_tags(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``tag`` cells: integers, or up to 4 ASCII characters (little-endian, as pool tags)."""
    values, bad = parse_int_column(arr, pa.uint32())
    if not bad.any():
        return values, bad
    cleaned = clean_strings(arr).to_pylist()
    out = values.to_pylist()
    for i in np.flatnonzero(bad):
        text = cleaned[i]
        if text is not None and 0 < len(text) <= 4 and text.isascii():
            out[i] = int.from_bytes(text.encode("ascii").ljust(4, b" "), "little")
            bad[i] = False
    return pa.array(out, type=pa.uint32()), bad


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


def _normalize_locale(arr: pa.Array, decimal: str) -> pa.Array:
    thousands = "," if decimal == "." else "."
    arr = clean_strings(arr)
    arr = pc.replace_substring_regex(arr, pattern="[\\s\u00a0\u202f'" + re.escape(thousands) + "]", replacement="")
    if decimal != ".":
        arr = pc.replace_substring(arr, pattern=decimal, replacement=".")
    return arr


def parse_locale_decimal(arr: pa.Array, decimal: str) -> tuple[pa.Array, np.ndarray, bool]:
    """Numbers in a UI locale -> (int64 array if every value is integral else float64, bad, integral)."""
    norm = _normalize_locale(arr, decimal)
    present = pc.fill_null(pc.is_valid(norm), False).to_numpy(zero_copy_only=False)
    is_int = pc.fill_null(pc.match_substring_regex(norm, r"^[+-]?[0-9]{1,18}$"), False).to_numpy(
        zero_copy_only=False
    )
    is_num = pc.fill_null(
        pc.match_substring_regex(norm, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"), False
    ).to_numpy(zero_copy_only=False)
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
    """
    trimmed = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    if trimmed.null_count == 0:
        try:  # common case: plain integers
            ints = pc.cast(trimmed, pa.int64())
            return pc.multiply_checked(ints, 10**digits), np.zeros(len(arr), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    norm = _normalize_locale(arr, decimal)
    parts = pc.extract_regex(norm, r"^(?P<sign>[+-]?)(?P<i>[0-9]*)(?:\.(?P<f>[0-9]*))?$")
    present = pc.fill_null(pc.is_valid(norm), False).to_numpy(zero_copy_only=False)
    matched = pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False)
    ipart = pc.struct_field(parts, "i")
    fpart = pc.struct_field(parts, "f")
    nonempty = pc.fill_null(
        pc.greater(pc.add(pc.utf8_length(ipart), pc.utf8_length(fpart)), 0), False
    ).to_numpy(zero_copy_only=False)
    ok = matched & nonempty
    ipart = pc.if_else(pc.equal(ipart, ""), "0", ipart)
    try:
        ints = pc.cast(pc.fill_null(ipart, "0"), pa.int64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        ints = np.array([int(x) if x else 0 for x in pc.fill_null(ipart, "0").to_pylist()], dtype=np.int64)
    if digits > 0:
        frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.fill_null(fpart, ""), width=digits, padding="0"), 0, digits)
        fracs = pc.cast(frac, pa.int64()).to_numpy(zero_copy_only=False)
    else:
        fracs = np.zeros(len(norm), dtype=np.int64)
    sign = np.where(pc.fill_null(pc.equal(pc.struct_field(parts, "sign"), "-"), False).to_numpy(zero_copy_only=False), -1, 1)
    vals = sign * (ints * np.int64(10**digits) + fracs)
    return pa.array(vals, type=pa.int64(), mask=~ok), present & ~ok


# --- canonical conversion ----------------------------------------------------------------------


@dataclass
class ColumnResult:
    """A converted column and the rows whose value was present but invalid."""

    array: pa.Array
    bad: np.ndarray


def map_enum(arr: pa.Array, column: str) -> ColumnResult:
    """Map enum texts (``KernelMode``, ``0``, ``1``...) through ``ENUM_ALIASES``.

    Values that are not an accepted form are kept as written and flagged bad.
    """
    arr = clean_strings(arr)
    aliases = ENUM_ALIASES[column]
    lowered = {k.lower(): v for k, v in aliases.items()}
    enc = pc.dictionary_encode(arr).combine_chunks() if isinstance(arr, pa.ChunkedArray) else pc.dictionary_encode(arr)
    dictionary = enc.dictionary.to_pylist()
    mapped = []
    unknown = []
    for text in dictionary:
        key = text if text in aliases else text.lower()
        if key.startswith("0x"):
            try:
                key = str(int(key, 16))
            except ValueError:
                pass
        value = aliases.get(key, lowered.get(key))
        mapped.append(value if value is not None else text)
        unknown.append(value is None)
    out = pa.DictionaryArray.from_arrays(enc.indices, pa.array(mapped, pa.string())).cast(pa.string())
    unknown_arr = np.array(unknown, dtype=bool)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    valid = pc.is_valid(enc.indices).to_numpy(zero_copy_only=False)
    bad = np.zeros(len(arr), dtype=bool)
    if len(unknown_arr):
        bad[valid] = unknown_arr[idx[valid].astype(np.int64)]
    return ColumnResult(out, bad)


def to_canonical(arr: pa.Array, column: str) -> ColumnResult:
    """Convert a text column to the canonical type of ``column`` (schema.COLUMNS).

    Integers: decimal or ``0x`` hex; enums via ENUM_ALIASES; ``tag`` also 4 ASCII
    characters; strings trimmed, null tokens -> null. Unknown column names stay strings.
    """
    typ = COLUMNS.get(column, pa.string())
    if column in ENUM_ALIASES:
        return map_enum(arr, column)
    if column == "tag":
        vals, bad = parse_pool_tags(arr)
        return ColumnResult(vals, bad)
    if pa.types.is_integer(typ):
        vals, bad = parse_int_column(arr, typ)
        return ColumnResult(vals, bad)
    cleaned = clean_strings(arr)
    return ColumnResult(cleaned, np.zeros(len(arr), dtype=bool))


# --- field maps ------------------------------------------------------------------------------


@dataclass
class EventMapping:
    """How one source event becomes a canonical event.

    canonical: canonical event name; fields: source field name -> canonical column.
    identity: source field names equal to canonical column names map to themselves.
    """

    canonical: str
    fields: dict[str, str] = field(default_factory=dict)
    identity: bool = False


@dataclass
class FieldMap:
    """Provider/event/field names -> canonical names (see docs/text_formats.md).

    Entries are looked up by (provider, event, opcode) with ``*`` wildcards; the
    built-in ``MdlTrace`` provider maps every canonical event name to itself with
    identity field names.
    """

    entries: list[tuple[str, str, str, EventMapping]] = field(default_factory=list)

    def lookup(self, provider: str | None, event: str | None, opcode: str | None = None) -> EventMapping | None:
        """The mapping for a source event, or None when the event is not mapped."""
        prov = (provider or "").lower()
        ev = (event or "").lower()
        op = (opcode or "").lower()
        for p, e, o, mapping in self.entries:
            if p not in ("*", prov) or e not in ("*", ev) or o not in ("*", op):
                continue
            if mapping.canonical == "*":  # wildcard event: keep the source event name
                if event in KNOWN_EVENTS:
                    return EventMapping(event, mapping.fields, mapping.identity)
                continue
            return mapping
        if prov == MDL_PROVIDER.lower() and event in KNOWN_EVENTS:
            return EventMapping(event, {}, identity=True)
        return None


def _parse_entry(raw: Mapping[str, Any], source: str) -> tuple[str, str, str, EventMapping]:
    if not isinstance(raw, Mapping):
        raise TraceFormatError(f"field map entry must be an object, got {raw!r}", source)
    try:
        event = str(raw["event"])
    except KeyError:
        raise TraceFormatError(f"field map entry without 'event': {dict(raw)!r}", source) from None
    canonical = str(raw.get("canonical", event))
    if canonical != "*" and canonical not in KNOWN_EVENTS:
        raise TraceFormatError(
            f"field map entry for {event!r}: unknown canonical event {canonical!r}", source
        )
    fields_raw = raw.get("fields", {})
    if isinstance(fields_raw, list):  # positional: Field 1..N in order
        fields = {f"Field {i}": str(c) for i, c in enumerate(fields_raw, start=1) if c}
    elif isinstance(fields_raw, Mapping):
        fields = {str(k): str(v) for k, v in fields_raw.items()}
    else:
        raise TraceFormatError(f"field map entry for {event!r}: 'fields' must be an object or list", source)
    for src, col in fields.items():
        if col not in COLUMNS:
            raise TraceFormatError(
                f"field map entry for {event!r}: field {src!r} maps to unknown column {col!r}", source
            )
    mapping = EventMapping(canonical, fields, identity=bool(raw.get("identity", not fields)))
    return (
        str(raw.get("provider", "*")).lower(),
        event.lower(),
        str(raw.get("opcode", "*")).lower(),
        mapping,
    )


def load_field_map(spec: str | Path | Mapping[str, Any] | FieldMap | None) -> FieldMap:
    """A FieldMap from a JSON file path, an already-parsed dict, or None (built-in only).

    Raises TraceFormatError naming the map file when it cannot be read or is malformed.
    """
    if spec is None:
        return FieldMap()
    if isinstance(spec, FieldMap):
        return spec
    source = "<field map>"
    if isinstance(spec, (str, Path)):
        source = str(spec)
        try:
            data = json.loads(Path(spec).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TraceFormatError("field map file not found", source) from None
        except (OSError, ValueError) as exc:
            raise TraceFormatError(f"field map is not valid JSON: {exc}", source) from None
    else:
        data = spec
    if isinstance(data, Mapping) and isinstance(data.get("providers"), list):
        return FieldMap([_parse_entry(e, source) for e in _provider_form(data["providers"], source)])
    if not isinstance(data, Mapping) or not isinstance(data.get("events"), list):
        raise TraceFormatError("field map must be a JSON object with an 'events' list", source)
    return FieldMap([_parse_entry(e, source) for e in data["events"]])


def _provider_form(providers: list[Any], source: str) -> list[dict[str, Any]]:
    """The ETL reader's mapping-file form as ``events`` entries (one file serves all readers).

    ``{"providers": [{"provider": P, "events": {src: canonical}, "fields": {src: col},
    "event_fields": {src_event: {src: col}}}]}``: listed events get their canonical
    name; other events of P keep their name (mapped only when it is canonical); fields
    not in the maps keep their name when it is a canonical column.
    """
    out: list[dict[str, Any]] = []
    for entry in providers:
        if not isinstance(entry, Mapping) or "provider" not in entry:
            raise TraceFormatError(f"mapping file: provider entry without 'provider': {entry!r}", source)
        provider = str(entry["provider"]).strip()
        fields = dict(entry.get("fields", {}))
        per_event = {str(k): dict(v) for k, v in dict(entry.get("event_fields", {})).items()}
        for event, canonical in dict(entry.get("events", {})).items():
            out.append({"provider": provider, "event": event, "canonical": canonical,
                        "fields": {**fields, **per_event.get(str(event), {})}, "identity": True})
        for event, extra in per_event.items():
            if event not in dict(entry.get("events", {})):
                out.append({"provider": provider, "event": event, "canonical": "*",
                            "fields": {**fields, **extra}, "identity": True})
        out.append({"provider": provider, "event": "*", "canonical": "*", "fields": fields, "identity": True})
    return out


def field_map_from_options(field_map: Any, extra: Mapping[str, Any]) -> FieldMap:
    """The FieldMap given by ``ReadOptions.field_map`` or ``ReadOptions.extra['field_map']``."""
    spec = field_map if field_map is not None else extra.get("field_map")
    return load_field_map(spec)


# --- assembling the table ------------------------------------------------------------------------


def assemble(parts: list[dict[str, pa.Array]], order_key: str | None = None) -> pa.Table:
    """Concatenate per-event-type column dicts into one table (missing columns null).

    Canonical columns get their schema type; with ``order_key`` the rows are sorted by
    that column (stable) and the column dropped — readers use it for file order.
    """
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
    table = pa.concat_tables(tables).combine_chunks()
    if order_key is not None and order_key in table.column_names:
        idx = pc.sort_indices(table, sort_keys=[(order_key, "ascending")])
        table = table.take(idx).drop_columns([order_key])
    return table
