"""The debug id of a PDB build (its GUID and age), in the forms traces and tools write it.

The ``debug_id`` column holds ``<guid>-<age in hex>``, lower case, the age always written
(``...-0`` too; :func:`debug_id_text`). Other writers differ: ``symbolic`` leaves out an
age of 0 (``<guid>``), a symbol store writes ``<GUID><AGE>`` (no dashes, upper case),
Windows tools ``{GUID}`` with braces. :func:`parse_debug_id` reads every one of them, and
:func:`normal_debug_id` gives the one form two ids are compared in.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

__all__ = ["debug_id_text", "normal_debug_id", "parse_debug_id"]

_FORM = re.compile(
    r"^\{?(?P<guid>[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})\}?"
    r"(?:[-.]?(?P<age>[0-9a-f]{1,8}))?$", re.IGNORECASE)


def debug_id_text(guid: uuid.UUID, age: int) -> str:
    """The ``debug_id`` column's form: ``<guid>-<age in hex>``, lower case."""
    return f"{guid}-{age:x}"


def parse_debug_id(text: Any) -> tuple[uuid.UUID, int] | None:
    """(GUID, age) of a debug id in any of the forms above (no age: 0), or None for
    anything else (None, NaN, an empty or malformed text)."""
    if not isinstance(text, str):
        return None
    m = _FORM.match(text.strip())
    if m is None:
        return None
    return uuid.UUID(m.group("guid")), int(m.group("age") or "0", 16)


def normal_debug_id(text: Any) -> str | None:
    """The form two debug ids are compared in (``symbolic``'s: lower case, ``-<age hex>``
    left out for age 0), or None when ``text`` is no debug id."""
    parsed = parse_debug_id(text)
    if parsed is None:
        return None
    guid, age = parsed
    return f"{guid}-{age:x}" if age else str(guid)
