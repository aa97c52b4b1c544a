"""TraceLogging: the provider GUID hash, event schemas and field values.

A TraceLogging event carries its own schema in the EVENT_HEADER extended data item
``EVENT_HEADER_EXT_TYPE_EVENT_SCHEMA_TL`` (0x0B): ``UINT16 size; tags; event name\\0;``
then per field ``name\\0; UINT8 in-type [; UINT8 out-type [; tag bytes]]`` and, for
constant-count arrays, ``UINT16 count``; for custom fields ``UINT16 size`` + type info.
In-type bits: 0x1F type, 0x20 constant count, 0x40 variable count (``UINT16`` count in
the payload), 0x60 custom, 0x80 an out-type byte follows. A struct (in-type 24) takes the
next ``out-type & 0x7F`` fields as its members. The provider name is in the provider
traits item (0x0C): ``UINT16 size; name\\0; traits...``.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

#: in-type numbers (TlgIn_t)
IN_NULL, IN_UNICODESTRING, IN_ANSISTRING = 0, 1, 2
IN_INT8, IN_UINT8, IN_INT16, IN_UINT16, IN_INT32, IN_UINT32, IN_INT64, IN_UINT64 = range(3, 11)
IN_FLOAT, IN_DOUBLE, IN_BOOL32, IN_BINARY, IN_GUID, IN_POINTER_UNSUPPORTED = range(11, 17)
IN_FILETIME, IN_SYSTEMTIME, IN_SID, IN_HEXINT32, IN_HEXINT64 = range(17, 22)
IN_COUNTEDSTRING, IN_COUNTEDANSISTRING, IN_STRUCT, IN_COUNTEDBINARY = range(22, 26)

_TYPE_MASK, _CCOUNT, _VCOUNT, _CUSTOM, _CHAIN = 0x1F, 0x20, 0x40, 0x60, 0x80
#: out-types that change how an integer reads (TlgOut_t): a character, a boolean
OUT_STRING, OUT_BOOLEAN = 2, 3

#: fixed-size in-types -> struct format
FIXED: dict[int, str] = {
    IN_INT8: "b", IN_UINT8: "B", IN_INT16: "h", IN_UINT16: "H", IN_INT32: "i", IN_UINT32: "I",
    IN_INT64: "q", IN_UINT64: "Q", IN_FLOAT: "f", IN_DOUBLE: "d", IN_BOOL32: "i",
    IN_HEXINT32: "I", IN_HEXINT64: "Q", IN_FILETIME: "Q",
}

_NAMESPACE = bytes.fromhex("482C2DB2C39047C887F81A15BFC130FB")
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


class TlDecodeError(ValueError):
    """The schema or the payload does not decode."""


def provider_guid(name: str) -> uuid.UUID:
    """The GUID TraceLogging / EventSource derive from a provider name (name hash).

    SHA-1 over the EventSource namespace (big-endian bytes) and the upper-cased name in
    UTF-16BE; the first 16 bytes, byte 7 set to version 5, read as a little-endian GUID.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE + name.upper().encode("utf-16-be")).digest()[:16])
    digest[7] = (digest[7] & 0x0F) | 0x50
    return uuid.UUID(bytes_le=bytes(digest))


@dataclass
class Field:
    """One field of a schema; ``members`` for a struct."""

    name: str
    in_type: int
    out_type: int = 0
    count: str = ""          # "", "const", "var" or "custom"
    const_count: int = 0
    members: list["Field"] = field(default_factory=list)


@dataclass
class Schema:
    """An event's name and fields."""

    name: str
    fields: list[Field]

    def fixed_format(self) -> str | None:
        """``struct`` format of the payload when every field is a fixed-size scalar."""
        fmt = []
        for f in self.fields:
            if f.count or f.members or f.in_type not in FIXED or f.out_type & 0x7F == OUT_STRING:
                return None
            fmt.append(FIXED[f.in_type])
        return "<" + "".join(fmt)


def _cstr(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.find(b"\0", pos)
    if end < 0:
        raise TlDecodeError("unterminated name in the schema")
    return buf[pos:end].decode("utf-8", "replace"), end + 1


def parse_provider_name(traits: bytes) -> str | None:
    """The provider name from a provider-traits blob, None when absent."""
    if len(traits) < 3:
        return None
    end = traits.find(b"\0", 2)
    if end < 0:
        return None
    return traits[2:end].decode("utf-8", "replace") or None


def parse_schema(meta: bytes) -> Schema:
    """Decode TraceLogging event metadata (the 0x0B extended item)."""
    if len(meta) < 3:
        raise TlDecodeError("schema shorter than 3 bytes")
    size, = struct.unpack_from("<H", meta, 0)
    meta = meta[: min(size, len(meta))] if size >= 3 else meta
    pos = 2
    while pos < len(meta) and meta[pos] & 0x80:  # event tags (chained bytes)
        pos += 1
    pos += 1
    name, pos = _cstr(meta, pos)
    flat: list[Field] = []
    while pos < len(meta):
        fname, pos = _cstr(meta, pos)
        if pos >= len(meta):
            raise TlDecodeError(f"field {fname!r} has no in-type")
        raw_in = meta[pos]
        pos += 1
        out = 0
        if raw_in & _CHAIN:
            if pos >= len(meta):
                raise TlDecodeError(f"field {fname!r} lacks its out-type")
            out = meta[pos]
            pos += 1
            while out & 0x80 and pos < len(meta):  # field tags: chained bytes
                more = meta[pos]
                pos += 1
                if not more & 0x80:
                    break
        f = Field(fname, raw_in & _TYPE_MASK, out)
        flag = raw_in & _CUSTOM
        if flag == _CCOUNT:
            if pos + 2 > len(meta):
                raise TlDecodeError(f"field {fname!r} lacks its constant count")
            f.count, f.const_count = "const", struct.unpack_from("<H", meta, pos)[0]
            pos += 2
        elif flag == _VCOUNT:
            f.count = "var"
        elif flag == _CUSTOM:
            if pos + 2 > len(meta):
                raise TlDecodeError(f"field {fname!r} lacks its custom type info")
            info, = struct.unpack_from("<H", meta, pos)
            f.count = "custom"
            pos += 2 + info
        flat.append(f)
    return Schema(name, _nest(flat))


def _nest(flat: list[Field]) -> list[Field]:
    """Group struct members (the ``out_type & 0x7F`` fields after a struct) under it."""
    it = iter(flat)

    def take(n: int | None) -> list[Field]:
        out: list[Field] = []
        while n is None or len(out) < n:
            try:
                f = next(it)
            except StopIteration:
                if n is not None:
                    raise TlDecodeError("struct with fewer members than declared") from None
                break
            if f.in_type == IN_STRUCT:
                f.members = take(f.out_type & 0x7F)
            out.append(f)
        return out

    return take(None)


class _Reader:
    __slots__ = ("buf", "pos", "ptr")

    def __init__(self, buf: bytes, ptr: int) -> None:
        self.buf, self.pos, self.ptr = buf, 0, ptr

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise TlDecodeError("payload ends inside a field")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def zstring(self, width: int) -> str:
        step = width
        i = self.pos
        buf = self.buf
        while True:
            if i + step > len(buf):
                raise TlDecodeError("string not terminated")
            if buf[i:i + step] == b"\0" * step:
                break
            i += step
        raw = buf[self.pos:i]
        self.pos = i + step
        return raw.decode("utf-16-le" if width == 2 else "utf-8", "replace")


def _filetime(v: int) -> Any:
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=v // 10)
    except OverflowError:
        return v


def _sid(r: _Reader) -> str:
    head = r.take(8)
    count = head[1]
    subs = struct.unpack(f"<{count}I", r.take(4 * count))
    authority = int.from_bytes(head[2:8], "big")
    return "S-" + "-".join(str(x) for x in (head[0], authority, *subs))


def _scalar(r: _Reader, f: Field) -> Any:
    t = f.in_type
    fmt = FIXED.get(t)
    if fmt is not None:
        v = struct.unpack("<" + fmt, r.take(struct.calcsize(fmt)))[0]
        if t == IN_FILETIME:
            return _filetime(v)
        out = f.out_type & 0x7F
        if t == IN_BOOL32 or out == OUT_BOOLEAN:
            return bool(v)
        if out == OUT_STRING and t in (IN_INT8, IN_UINT8, IN_INT16, IN_UINT16):
            return chr(v & 0xFFFF)
        return v
    if t == IN_UNICODESTRING:
        return r.zstring(2)
    if t == IN_ANSISTRING:
        return r.zstring(1)
    if t in (IN_BINARY, IN_COUNTEDBINARY):
        return r.take(r.u16())
    if t == IN_COUNTEDSTRING:
        return r.take(r.u16()).decode("utf-16-le", "replace")
    if t == IN_COUNTEDANSISTRING:
        return r.take(r.u16()).decode("utf-8", "replace")
    if t == IN_GUID:
        return uuid.UUID(bytes_le=r.take(16))
    if t == IN_SYSTEMTIME:
        y, mo, _dow, d, h, mi, s, ms = struct.unpack("<8H", r.take(16))
        try:
            return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc)
        except ValueError:
            return (y, mo, d, h, mi, s, ms)
    if t == IN_SID:
        return _sid(r)
    if t == IN_STRUCT:
        return {m.name: _value(r, m) for m in f.members}
    if t == IN_NULL:
        return None
    raise TlDecodeError(f"field {f.name!r}: unknown in-type {t}")


def _value(r: _Reader, f: Field) -> Any:
    if f.count == "custom":
        return r.take(r.u16())
    if f.count == "const":
        return [_scalar(r, f) for _ in range(f.const_count)]
    if f.count == "var":
        return [_scalar(r, f) for _ in range(r.u16())]
    return _scalar(r, f)


def decode_payload(schema: Schema, payload: bytes, pointer_size: int = 8) -> dict[str, Any]:
    """Field name -> value for one event (raises :class:`TlDecodeError` when it does not fit).

    Values: ints, floats, bool (BOOL32, out-type BOOLEAN), str (strings, chars: 8/16-bit ints
    with out-type STRING, SID as ``S-1-...``), bytes (binary,
    custom), uuid.UUID, datetime (FILETIME / SYSTEMTIME, UTC), lists (arrays), dicts (structs).
    """
    r = _Reader(payload, pointer_size)
    return {f.name: _value(r, f) for f in schema.fields}


def decode_field(f: Field, raw: bytes, pointer_size: int = 8) -> Any:
    """The value of one field whose payload bytes are exactly ``raw`` (as decode_payload
    would give it; the bulk decoder calls this once per distinct value)."""
    return _value(_Reader(raw, pointer_size), f)
