"""The driver's calls as TraceLogging events of the ``MdlTrace`` provider.

One event per call row: EVENT_HEADER (provider = name hash of ``MdlTrace``, event id 0,
channel 11, level 4, keyword 0), two extended data items (provider traits, then the
event schema) and the user data. The event name is the canonical event name; the fields
are the row's non-null canonical columns (except time_ns, event, cpu, pid, tid, which
the header and the buffer carry), named as the columns.

Field order and in-types are those of ``capture/mdltrace.h``, from the one schema file
``model/mdltrace_schema.json``: first the event's schema fields (its own, then irql,
effective_pid, return_address) that the row has, then any other non-null column in
``schema.COLUMNS`` order (what the header never logs, e.g. a scenario's ``caller``
string). In-types (``FIELD_IN_TYPES``): addresses HEXINT64 (HEXINT32 in 32-bit traces,
what TraceLoggingPointer gives), byte counts UINT64, ids/flags UINT32, access_mode /
operation / cache_type / irql UINT8 (the docs/trace-format.md numbers), bugcheck_on_failure UINT32,
status HEXINT32 when it is a number (an ANSI string otherwise, e.g. ``exception``),
wow64 UINT8, caller / image ANSI strings (UTF-16 on request).
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Final

from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.model.schema import (
    ACCESS_MODES,
    CACHE_TYPES,
    COLUMNS,
    ENUM_ALIASES,
    OPERATIONS,
)
from traceanalyzer.synth import tracelogging as tl
from traceanalyzer.synth.etl_format import EVENT_HEADER_SIZE, HEADER_TYPE, MARKER_FLAGS

PROVIDER_NAME: Final[str] = "MdlTrace"
PROVIDER_GUID = tl.provider_guid(PROVIDER_NAME)

#: Columns that go into the EVENT_HEADER / buffer, never into the payload.
HEADER_COLUMNS: Final[frozenset[str]] = frozenset({"time_ns", "event", "cpu", "pid", "tid"})

_ADDRESS: Final[str] = "address"
_STRING: Final[str] = "string"
#: canonical column -> in-type (``_ADDRESS``/``_STRING`` resolve per pointer size / option).
FIELD_IN_TYPES: Final[dict[str, int | str]] = {
    "mdl": _ADDRESS,
    "source_mdl": _ADDRESS,
    "va": _ADDRESS,
    "size": tl.IN_UINT64,
    "requested_size": tl.IN_UINT64,
    "access_mode": tl.IN_UINT8,
    "operation": tl.IN_UINT8,
    "cache_type": tl.IN_UINT8,
    "mapped_va": _ADDRESS,
    "priority": tl.IN_UINT32,
    "bugcheck_on_failure": tl.IN_UINT32,
    "irp": _ADDRESS,
    "tag": tl.IN_UINT32,
    "target_pid": tl.IN_UINT32,
    "effective_pid": tl.IN_UINT32,
    "irql": tl.IN_UINT8,
    "status": tl.IN_HEXINT32,
    "caller": _STRING,
    "new_tid": tl.IN_UINT32,
    "old_tid": tl.IN_UINT32,
    "new_pid": tl.IN_UINT32,
    "old_pid": tl.IN_UINT32,
    "parent_pid": tl.IN_UINT32,
    "image": _STRING,
    "wow64": tl.IN_UINT8,
    "base": _ADDRESS,
    "image_size": tl.IN_UINT64,
    "return_address": _ADDRESS,
    "debug_id": _STRING,
}
assert set(FIELD_IN_TYPES) == set(COLUMNS) - HEADER_COLUMNS
assert all(FIELD_IN_TYPES[c] == (_ADDRESS if t.name == "pointer" else t.in_type)
           for c, t in ((c, mdltrace_schema().field_type(c)) for c in mdltrace_schema().field_types))

#: Payload columns in the order fields are written.
FIELD_ORDER: Final[tuple[str, ...]] = tuple(c for c in COLUMNS if c in FIELD_IN_TYPES)

_ENUM_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "access_mode": ACCESS_MODES,
    "operation": OPERATIONS,
    "cache_type": CACHE_TYPES,
}

EVENT_LEVEL: Final[int] = 4
EXTENDED_INFO_FLAG: Final[int] = 0x0001


def in_type_of(column: str, pointer_size: int, unicode_strings: bool = False,
               hex_addresses: bool = True) -> int:
    """The in-type a canonical column is written with.

    Addresses are HEXINT64/HEXINT32 by pointer size; ``hex_addresses=False`` writes them
    as UINT64/UINT32 instead (same bytes, decimal display), which decoders without
    HEXINT support (etl-parser) can read.
    """
    kind = FIELD_IN_TYPES[column]
    if kind == _ADDRESS:
        if pointer_size == 8:
            return tl.IN_HEXINT64 if hex_addresses else tl.IN_UINT64
        return tl.IN_HEXINT32 if hex_addresses else tl.IN_UINT32
    if kind == _STRING:
        return tl.IN_UNICODESTRING if unicode_strings else tl.IN_ANSISTRING
    return int(kind)


def ordered_fields(event: str, present: list[str] | tuple[str, ...]) -> list[str]:
    """The ``present`` payload columns in writing order: the event's schema fields first
    (header order), then the others in ``schema.COLUMNS`` order."""
    first = [c for c in mdltrace_schema().event_fields(event) if c in present]
    return first + [c for c in FIELD_ORDER if c in present and c not in first]


def status_number(value: object) -> int | None:
    """An NTSTATUS given as a number or ``0x`` text; None for other text (``exception``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value & 0xFFFFFFFF
    try:
        return int(str(value).strip(), 0) & 0xFFFFFFFF
    except ValueError:
        return None


def enum_number(column: str, value: object) -> int:
    """The docs/trace-format.md number of an enum column value (name, alias or number)."""
    name = ENUM_ALIASES[column].get(str(value).strip())
    if name is None:
        raise ValueError(
            f"{column} {value!r} is not one of {', '.join(_ENUM_VALUES[column])} (or their numbers)"
        )
    return _ENUM_VALUES[column].index(name)


def field_value(column: str, in_type: int, value: object) -> object:
    """The value to encode for a column (enum names become numbers; range checked)."""
    if column in _ENUM_VALUES:
        return enum_number(column, value)
    if in_type in (tl.IN_ANSISTRING, tl.IN_UNICODESTRING):
        return str(value)
    number = int(value)  # type: ignore[call-overload]
    fmt = tl.FIXED_FORMATS[in_type]
    bits = struct.calcsize(fmt) * 8
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt[-1].islower() else (0, (1 << bits) - 1)
    if not low <= number <= high:
        if column.endswith("pid") or column.endswith("tid"):
            raise ValueError(f"{column} {number} does not fit a 32-bit id")
        raise ValueError(f"{column} {number:#x} does not fit in-type {in_type} ({bits} bits)")
    return number


@lru_cache(maxsize=4096)
def _extended_items(event: str, fields: tuple[tuple[str, int], ...]) -> bytes:
    traits = tl.extended_item(tl.EXT_TYPE_PROV_TRAITS, tl.provider_traits(PROVIDER_NAME), more=True)
    schema = tl.extended_item(
        tl.EXT_TYPE_EVENT_SCHEMA_TL, tl.event_metadata(event, list(fields)), more=False
    )
    return traits + schema


def tracelogging_record(pointer_size: int, qpc: int, event: str, row: dict, tid: int, pid: int,
                        *, unicode_strings: bool = False, hex_addresses: bool = True) -> bytes:
    """One MdlTrace TraceLogging event record (EVENT_HEADER + extended items + user data)."""
    fields: list[tuple[str, int]] = []
    data = bytearray()
    for column in ordered_fields(event, [c for c in FIELD_ORDER if row.get(c) is not None]):
        value = row[column]
        in_type = in_type_of(column, pointer_size, unicode_strings, hex_addresses)
        if column == "status":
            number = status_number(value)
            if number is None:
                in_type = tl.IN_UNICODESTRING if unicode_strings else tl.IN_ANSISTRING
            else:
                value = number
        fields.append((column, in_type))
        data += tl.encode_value(in_type, field_value(column, in_type, value))
    ext = _extended_items(event, tuple(fields))
    size = EVENT_HEADER_SIZE + len(ext) + len(data)
    if size > 0xFFFF:
        raise ValueError(f"{event} record of {size} bytes exceeds 65535")
    head = struct.pack(
        "<HBBHHIIQ16sHBBBBHQQ16s",
        size, HEADER_TYPE[("event", pointer_size)], MARKER_FLAGS,
        EXTENDED_INFO_FLAG, 0,                    # Flags, EventProperty
        tid & 0xFFFFFFFF, pid & 0xFFFFFFFF, qpc,
        PROVIDER_GUID.bytes_le,
        0, 0, tl.TRACELOGGING_CHANNEL, EVENT_LEVEL, 0, 0, 0,  # Id, Version, Channel, Level, Opcode, Task, Keyword
        0,                                        # ProcessorTime (kernel-mode provider)
        b"",                                      # ActivityId
    )
    return head + ext + bytes(data)
