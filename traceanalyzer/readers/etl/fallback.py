"""Optional fallback: kernel classes we do not decode, decoded by etl-parser.

With ``ReadOptions(extra={"etlparser_fallback": True})`` every kernel record outside
Process/Thread/Image/CSwitch is handed to etl-parser's MOF factory (``build_mof``, one
record at a time: no whole-file parse). Records it decodes become rows named
``Kernel-<etl-parser class>/<event type>`` with its scalar payload fields as extra
string columns; records it cannot decode (unknown class or version, 32-bit layouts it
misreads) stay counted only. etl-parser assumes 64-bit pointers.
"""

from __future__ import annotations

from typing import Any

_FACTORY: Any = None


def _factory() -> Any:
    global _FACTORY
    if _FACTORY is None:
        import etl.parsers.kernel  # noqa: F401 - registers the MOF classes
        from etl.parsers.kernel.core import build_mof
        from etl.wmi import EventTraceGroup

        # a construct Enum: parse the group byte to get its member
        _FACTORY = (build_mof, lambda group: EventTraceGroup.parse(bytes([group & 0xFF])))
    return _FACTORY


def decode_kernel(group: int, version: int, opcode: int, payload: bytes) -> tuple[str, dict[str, str]] | None:
    """(event name, scalar fields as strings) as etl-parser decodes the record, or None."""
    build_mof, groups = _factory()
    try:
        mof = build_mof(groups(group), version, opcode, payload)
        name = f"Kernel-{type(mof).__name__}/{mof.get_event_definition()}"
        fields = {f"{k}": str(v) for k, v in mof.source.items()
                  if not k.startswith("_") and isinstance(v, (int, str)) and not isinstance(v, bool)}
    except Exception:  # noqa: BLE001 - etl-parser raises many kinds; the record stays counted
        return None
    return name, fields
