"""The MdlTrace TraceLogging schema (``mdltrace_schema.json``): one source for all sides.

What ``capture/mdltrace.h`` logs for each call (event name, field names, field types and
order), generated from this file; the ETL writer (``synth``) writes calls with the same
fields; the ETL reader maps them to canonical columns by name. Hot events carry only
fixed-size fields: pointers, integers, enums as UINT8 with the values of ``enums``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("mdltrace_schema.json")


@dataclass(frozen=True)
class FieldType:
    """A field type of the schema: TraceLogging in-type(s), C type and macro."""

    name: str
    in_type: int
    in_type_32: int
    c_type: str
    macro: str

    def in_type_for(self, pointer_size: int) -> int:
        """The in-type written by a driver with this pointer size."""
        return self.in_type if pointer_size == 8 else self.in_type_32


@dataclass(frozen=True)
class EventSchema:
    """One MdlTrace event: its fields in order (own fields, then the common ones)."""

    name: str
    own_fields: tuple[str, ...]
    common_fields: tuple[str, ...]
    routines: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.own_fields + self.common_fields


@dataclass(frozen=True)
class MdlTraceSchema:
    """The whole schema file."""

    provider: str
    guid: str
    level: int
    keyword: int
    types: dict[str, FieldType]
    field_types: dict[str, str]
    enums: dict[str, dict[str, int]]
    events: dict[str, EventSchema]

    def field_type(self, column: str) -> FieldType:
        """The type a field (canonical column) is logged with."""
        return self.types[self.field_types[column]]

    def event_fields(self, event: str) -> tuple[str, ...]:
        """The fields of ``event`` in logging order (empty for an event not in the schema)."""
        ev = self.events.get(event)
        return ev.fields if ev is not None else ()


def _parse(doc: dict[str, Any]) -> MdlTraceSchema:
    types = {
        name: FieldType(name, int(t["in_type"]), int(t.get("in_type_32", t["in_type"])), t["c_type"], t["macro"])
        for name, t in doc["types"].items()
    }
    field_types = dict(doc["field_types"])
    unknown = {t for t in field_types.values() if t not in types}
    if unknown:
        raise ValueError(f"{SCHEMA_PATH.name}: unknown field types {sorted(unknown)}")
    common = tuple(doc["common_fields"])
    events = {
        name: EventSchema(name, tuple(e["fields"]), common, tuple(e["routines"]))
        for name, e in doc["events"].items()
    }
    for ev in events.values():
        missing = [f for f in ev.fields if f not in field_types]
        if missing or len(set(ev.fields)) != len(ev.fields):
            raise ValueError(f"{SCHEMA_PATH.name}: event {ev.name}: bad fields {missing or ev.fields}")
    return MdlTraceSchema(doc["provider"], doc["guid"], int(doc["level"]), int(doc["keyword"]), types,
                          field_types, {k: dict(v) for k, v in doc["enums"].items()}, events)


@lru_cache(maxsize=1)
def mdltrace_schema() -> MdlTraceSchema:
    """The schema of ``mdltrace_schema.json`` (read once)."""
    return _parse(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
