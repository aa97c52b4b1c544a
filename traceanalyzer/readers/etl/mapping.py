"""Which provider events become canonical rows, and how their fields map to columns.

Built in: the TraceLogging provider ``MdlTrace`` (matched by its traits name or by the
name-hash GUID): event name = TraceLogging event name, field names = column names.
A mapping file (``ReadOptions.field_map``, JSON) adds a driver's own names::

    {"providers": [{"provider": "Contoso.MdlTracer",          # name or GUID
                    "events": {"AllocMdl": "IoAllocateMdl"},  # event -> canonical event
                    "fields": {"Mdl": "mdl", "Length": "size"},   # field -> column
                    "event_fields": {"AllocMdl": {"Buf": "va"}}}]}  # per-event overrides

Events of a mapped provider missing from ``events`` keep their own name; fields missing
from the maps keep their name when it is a canonical column, else are counted as
``unmapped_fields``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES
from traceanalyzer.readers.etl.tracelogging import provider_guid

MDLTRACE_NAME = "MdlTrace"
MDLTRACE_GUID = provider_guid(MDLTRACE_NAME)
#: columns the EVENT_HEADER and the buffer supply; a payload field never overrides them
HEADER_COLUMNS = frozenset({"time_ns", "event", "cpu"})


@dataclass
class ProviderMap:
    """Names for one provider."""

    events: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    event_fields: dict[str, dict[str, str]] = field(default_factory=dict)

    def event(self, name: str) -> str:
        """The canonical event name of the provider's event ``name``."""
        return self.events.get(name, name)

    def column(self, event: str, field_name: str) -> str | None:
        """The column of field ``field_name`` of the provider's event ``event`` (its own
        name, before mapping); None when it is no canonical payload column."""
        col = self.event_fields.get(event, {}).get(field_name) or self.fields.get(field_name) or field_name
        return col if col in COLUMNS and col not in HEADER_COLUMNS else None


@dataclass
class FieldMap:
    """Providers read as canonical rows, by lower-cased name and by GUID."""

    by_name: dict[str, ProviderMap] = field(default_factory=dict)
    by_guid: dict[uuid.UUID, ProviderMap] = field(default_factory=dict)

    def lookup(self, name: str | None, guid: uuid.UUID) -> ProviderMap | None:
        if name is not None:
            hit = self.by_name.get(name.lower())
            if hit is not None:
                return hit
        return self.by_guid.get(guid)


def load_field_map(path: str | Path | None) -> FieldMap:
    """The built-in MdlTrace map plus the providers of the mapping file ``path``."""
    fm = FieldMap()
    builtin = ProviderMap()
    fm.by_name[MDLTRACE_NAME.lower()] = builtin
    fm.by_guid[MDLTRACE_GUID] = builtin
    if path is None:
        return fm
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = doc["providers"]
        if not isinstance(entries, list):
            raise TypeError("'providers' is not a list")
        for entry in entries:
            pm = ProviderMap(
                events=dict(entry.get("events", {})), fields=dict(entry.get("fields", {})),
                event_fields={k: dict(v) for k, v in entry.get("event_fields", {}).items()},
            )
            key = str(entry["provider"]).strip()
            try:
                fm.by_guid[uuid.UUID(key.strip("{}"))] = pm
            except ValueError:
                fm.by_name[key.lower()] = pm
                fm.by_guid[provider_guid(key)] = pm
    except FileNotFoundError:
        raise TraceFormatError("mapping file not found", path) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TraceFormatError(f"bad mapping file: {exc}", path) from None
    return fm


def column_value(column: str, value: Any) -> Any:
    """A decoded field value converted to the column's type (None when it does not fit;
    a negative number in an unsigned column is read as its two's complement)."""
    if value is None:
        return None
    aliases = ENUM_ALIASES.get(column)
    if aliases is not None:
        return aliases.get(str(value).strip(), str(value))
    typ = COLUMNS[column]
    if column == "status":
        return f"0x{value & 0xFFFFFFFF:08X}" if isinstance(value, int) else str(value)
    if typ == "string":
        return str(value)
    if column == "tag" and isinstance(value, str):
        return int.from_bytes(value.encode("latin-1", "replace")[:4].ljust(4, b" "), "little")
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        try:
            value = int(str(value), 0)
        except ValueError:
            return None
    bits = typ.bit_width
    if pa.types.is_unsigned_integer(typ):
        return value & ((1 << bits) - 1) if -(1 << (bits - 1)) <= value < (1 << bits) else None
    return value if -(1 << (bits - 1)) <= value < (1 << (bits - 1)) else None
