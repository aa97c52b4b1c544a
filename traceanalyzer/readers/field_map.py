"""Provider/event/field names -> canonical event and column names, for every reader.

One field map serves the ETL, xperf text and WPA CSV readers (``ReadOptions.field_map``
or ``ReadOptions.extra["field_map"]``: a JSON file path, a parsed dict, or a
:class:`FieldMap`). Two JSON forms are accepted (docs/text_formats.md, "Field maps")::

    {"events": [{"provider": "Contoso-Driver", "event": "AllocMdl", "opcode": "*",
                 "canonical": "IoAllocateMdl", "fields": {"Mdl": "mdl"}}]}

    {"providers": [{"provider": "Contoso.MdlTracer",          # name or GUID
                    "events": {"AllocMdl": "IoAllocateMdl"},  # event -> canonical event
                    "fields": {"Mdl": "mdl", "Length": "size"},   # field -> column
                    "event_fields": {"AllocMdl": {"Buf": "va"}}}]}  # per-event overrides

Built in: the provider ``MdlTrace`` (by name, or by its name-hash GUID in ETL) maps
each event to itself and each field named as a canonical column to that column.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.model.schema import COLUMNS, KNOWN_EVENTS
from traceanalyzer.readers.text_common import normalize_header

#: The provider whose events map 1:1 onto the canonical call names and columns.
MDL_PROVIDER = "MdlTrace"


@functools.lru_cache(maxsize=None)
def provider_guid(name: str) -> uuid.UUID:
    """The TraceLogging name-hash GUID of a provider name (imported late: the ETL
    package imports this module)."""
    from traceanalyzer.readers.etl.tracelogging import provider_guid as tl_guid

    return tl_guid(name)


@dataclass
class EventMapping:
    """How one source event becomes a canonical event.

    canonical: canonical event name; fields: source field name -> canonical column.
    identity: source field names equal to canonical column names map to themselves.
    """

    canonical: str
    fields: dict[str, str] = field(default_factory=dict)
    identity: bool = False

    def __post_init__(self) -> None:
        self._keys = {normalize_header(k): v for k, v in self.fields.items()}

    def column(self, name: str) -> str | None:
        """The canonical column of source field ``name`` (any case/spacing), or None."""
        target = self.fields.get(name) or self._keys.get(normalize_header(name))
        if target is None and self.identity and name in COLUMNS:
            target = name
        return target


@dataclass
class _Entry:
    provider: str
    guid: uuid.UUID | None
    event: str
    opcode: str
    mapping: EventMapping


@dataclass
class FieldMap:
    """Entries looked up by (provider, event, opcode) with ``*`` wildcards, in order."""

    entries: list[_Entry] = field(default_factory=list)

    def lookup(self, provider: str | None, event: str | None, opcode: str | None = None,
               guid: uuid.UUID | None = None, any_event: bool = False) -> EventMapping | None:
        """The mapping for a source event, or None when the event is not mapped.

        A provider matches by name (any case) or, given ``guid``, by GUID (an entry's
        provider GUID, or the name-hash GUID of its name). An entry whose canonical is
        ``*`` keeps the source event name; it applies only to canonical event names
        unless ``any_event`` (ETL keeps a mapped provider's other events as rows).
        """
        prov = (provider or "").lower()
        ev = (event or "").lower()
        op = (opcode or "").lower()
        for entry in self.entries:
            if not (entry.provider in ("*", prov) or (guid is not None and entry.guid == guid)):
                continue
            if entry.event not in ("*", ev) or entry.opcode not in ("*", op):
                continue
            mapping = entry.mapping
            if mapping.canonical == "*":  # wildcard event: keep the source event name
                if event is not None and (event in KNOWN_EVENTS or any_event):
                    return EventMapping(event, mapping.fields, mapping.identity)
                continue
            return mapping
        builtin = prov == MDL_PROVIDER.lower() or (guid is not None and guid == provider_guid(MDL_PROVIDER))
        if builtin and event is not None and (event in KNOWN_EVENTS or any_event):
            return EventMapping(event, {}, identity=True)
        return None


def _guid_of(provider: str) -> uuid.UUID | None:
    if provider == "*":
        return None
    try:
        return uuid.UUID(provider.strip("{}"))
    except ValueError:
        return provider_guid(provider)


def _parse_entry(raw: Any, source: str) -> _Entry:
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
    provider = str(raw.get("provider", "*")).strip()
    mapping = EventMapping(canonical, fields, identity=bool(raw.get("identity", not fields)))
    return _Entry(provider.lower(), _guid_of(provider), event.lower(), str(raw.get("opcode", "*")).lower(), mapping)


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
        raise TraceFormatError("field map must be a JSON object with an 'events' or 'providers' list", source)
    return FieldMap([_parse_entry(e, source) for e in data["events"]])


def _provider_form(providers: list[Any], source: str) -> list[dict[str, Any]]:
    """The ``providers`` form as ``events`` entries.

    Listed events get their canonical name; other events of the provider keep their
    name; fields not in the maps keep their name when it is a canonical column.
    """
    out: list[dict[str, Any]] = []
    for entry in providers:
        if not isinstance(entry, Mapping) or "provider" not in entry:
            raise TraceFormatError(f"field map: provider entry without 'provider': {entry!r}", source)
        try:
            provider = str(entry["provider"]).strip()
            fields = dict(entry.get("fields", {}))
            per_event = {str(k): dict(v) for k, v in dict(entry.get("event_fields", {})).items()}
            events = {str(k): v for k, v in dict(entry.get("events", {})).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise TraceFormatError(f"field map: bad provider entry {entry!r}: {exc}", source) from None
        for event, canonical in events.items():
            out.append({"provider": provider, "event": event, "canonical": canonical,
                        "fields": {**fields, **per_event.get(event, {})}, "identity": True})
        for event, extra in per_event.items():
            if event not in events:
                out.append({"provider": provider, "event": event, "canonical": "*",
                            "fields": {**fields, **extra}, "identity": True})
        out.append({"provider": provider, "event": "*", "canonical": "*", "fields": fields, "identity": True})
    return out


def field_map_from_options(field_map: Any, extra: Mapping[str, Any]) -> FieldMap:
    """The FieldMap given by ``ReadOptions.field_map`` or ``ReadOptions.extra['field_map']``."""
    spec = field_map if field_map is not None else extra.get("field_map")
    return load_field_map(spec)
