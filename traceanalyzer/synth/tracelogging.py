"""TraceLogging encoding: provider GUID from a name, event metadata, field values.

What a TraceLogging provider puts into an ETW event, byte for byte:

- the provider GUID is the EventSource/TraceLogging *name hash* of the provider name
  (SHA-1 over a fixed namespace GUID and the upper-cased UTF-16BE name; first 16 bytes,
  version nibble 5) -- :func:`provider_guid`;
- the extended data item ``EVENT_HEADER_EXT_TYPE_PROV_TRAITS`` (0x0C) holds the
  provider traits blob: ``UINT16 TotalSize; char Name[]`` (UTF-8, NUL) -- :func:`provider_traits`;
- the extended data item ``EVENT_HEADER_EXT_TYPE_EVENT_SCHEMA_TL`` (0x0B) holds the event
  metadata: ``UINT16 TotalSize; UINT8 Tags (0 = none); char EventName[]; {char
  FieldName[]; UINT8 InType}...`` -- :func:`event_metadata`;
- the user data is the field values back to back, no alignment -- :func:`encode_value`.

Layouts checked against real files in ``tests/data/real`` (WindowsUpdate*.etl,
lxcore_kernel.etl): see ``docs/etl_writer.md``.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from typing import Final

# In-types (TlgIn_t / _TDH_IN_TYPE). The high bit (0x80) of the in-type byte would
# announce an out-type byte; this writer never emits out-types.
IN_UNICODESTRING: Final[int] = 1
IN_ANSISTRING: Final[int] = 2
IN_INT8: Final[int] = 3
IN_UINT8: Final[int] = 4
IN_INT16: Final[int] = 5
IN_UINT16: Final[int] = 6
IN_INT32: Final[int] = 7
IN_UINT32: Final[int] = 8
IN_INT64: Final[int] = 9
IN_UINT64: Final[int] = 10
IN_HEXINT32: Final[int] = 20
IN_HEXINT64: Final[int] = 21

#: in-type -> struct format of its fixed-size value (strings are variable).
FIXED_FORMATS: Final[dict[int, str]] = {
    IN_INT8: "<b",
    IN_UINT8: "<B",
    IN_INT16: "<h",
    IN_UINT16: "<H",
    IN_INT32: "<i",
    IN_UINT32: "<I",
    IN_INT64: "<q",
    IN_UINT64: "<Q",
    IN_HEXINT32: "<I",
    IN_HEXINT64: "<Q",
}

#: numpy dtype string of each fixed-size in-type (for vectorised user data).
NUMPY_DTYPES: Final[dict[int, str]] = {
    IN_INT8: "i1",
    IN_UINT8: "u1",
    IN_INT16: "<i2",
    IN_UINT16: "<u2",
    IN_INT32: "<i4",
    IN_UINT32: "<u4",
    IN_INT64: "<i8",
    IN_UINT64: "<u8",
    IN_HEXINT32: "<u4",
    IN_HEXINT64: "<u8",
}

#: Channel value TraceLogging events carry in their EVENT_DESCRIPTOR.
TRACELOGGING_CHANNEL: Final[int] = 11

EXT_TYPE_EVENT_SCHEMA_TL: Final[int] = 0x0B
EXT_TYPE_PROV_TRAITS: Final[int] = 0x0C

_NAMESPACE: Final[bytes] = bytes.fromhex("482C2DB2C39047C887F81A15BFC130FB")


def provider_guid(name: str) -> uuid.UUID:
    """The provider GUID TraceLogging/EventSource derive from a provider name.

    SHA-1 of the namespace GUID 482C2DB2-C390-47C8-87F8-1A15BFC130FB (big-endian
    bytes) followed by the upper-cased name in UTF-16BE; the first 16 bytes with the
    version nibble of byte 7 set to 5, read as a little-endian GUID.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE + name.upper().encode("utf-16-be")).digest()[:16])
    digest[7] = (digest[7] & 0x0F) | 0x50
    return uuid.UUID(bytes_le=bytes(digest))


def provider_traits(name: str) -> bytes:
    """The provider-traits blob: ``UINT16 TotalSize`` then the UTF-8 name and a NUL."""
    raw = name.encode("utf-8") + b"\0"
    return struct.pack("<H", 2 + len(raw)) + raw


def event_metadata(event_name: str, fields: list[tuple[str, int]]) -> bytes:
    """The TraceLogging event metadata blob for an event and its (name, in-type) fields."""
    body = b"\0" + event_name.encode("utf-8") + b"\0"
    for field_name, in_type in fields:
        if not 0 < in_type < 0x80:
            raise ValueError(f"in-type {in_type} of field {field_name!r} is not a plain in-type")
        body += field_name.encode("utf-8") + b"\0" + bytes([in_type])
    if 2 + len(body) > 0xFFFF:
        raise ValueError(f"metadata of event {event_name!r} exceeds 65535 bytes")
    return struct.pack("<H", 2 + len(body)) + body


def encode_value(in_type: int, value: object) -> bytes:
    """The user-data bytes of one field value of the given in-type."""
    if in_type == IN_ANSISTRING:
        return str(value).encode("utf-8") + b"\0"
    if in_type == IN_UNICODESTRING:
        return str(value).encode("utf-16-le") + b"\0\0"
    fmt = FIXED_FORMATS.get(in_type)
    if fmt is None:
        raise ValueError(f"in-type {in_type} is not supported by this writer")
    return struct.pack(fmt, int(value))  # type: ignore[call-overload]


def extended_item(ext_type: int, data: bytes, more: bool) -> bytes:
    """One extended data item as stored in a trace buffer.

    ``UINT16 ItemSize (8-aligned, includes this 8-byte header); UINT16 ExtType;
    UINT16 Linkage (1 = another item follows); UINT16 DataSize`` then the data and
    zero padding to the 8-byte ItemSize.
    """
    size = (8 + len(data) + 7) & ~7
    if size > 0xFFFF:
        raise ValueError("extended data item exceeds 65535 bytes")
    head = struct.pack("<HHHH", size, ext_type, 1 if more else 0, len(data))
    return head + data + b"\0" * (size - 8 - len(data))
