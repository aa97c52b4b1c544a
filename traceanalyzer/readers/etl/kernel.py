"""Kernel Process and Image payloads (MOF layouts, 32- and 64-bit), decoded one by one.

Process v0-v5: ProcessId, ParentId, the user SID and ImageFileName; ``wow64`` from the
v4+ ``Flags`` field (bit 0x2, as PerfView's TraceEvent reads it), None before v4.
Image v0-v3: ImageBase, ImageSize, ProcessId (v1+), FileName. Thread payloads are
fixed-layout and decoded in bulk by :mod:`.walk`.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from traceanalyzer.model.debug_id import debug_id_text

#: Process opcodes -> canonical event (None: counted, not a row; see docs/etl.md).
#: 3 DCStart and 4 DCEnd are the rundowns at the trace start and end.
PROCESS_EVENTS: dict[int, str | None] = {1: "ProcessStart", 2: "ProcessEnd", 3: "ProcessRundown",
                                         4: "ProcessRundownEnd", 39: None}
THREAD_EVENTS: dict[int, str | None] = {1: "ThreadStart", 2: "ThreadEnd", 3: "ThreadRundown", 4: "ThreadRundownEnd"}
IMAGE_EVENTS: dict[int, str | None] = {10: "ImageLoad", 2: "ImageUnload", 3: "ImageLoad", 4: "ImageRundownEnd"}
#: why an opcode is not a row (stat name)
NOT_A_ROW: dict[int, str] = {39: "process_defunct_events"}


class PayloadError(ValueError):
    """A payload shorter than its layout."""


def _ptr(buf: bytes, pos: int, ptr: int) -> tuple[int, int]:
    if pos + ptr > len(buf):
        raise PayloadError("payload too short")
    return int.from_bytes(buf[pos:pos + ptr], "little"), pos + ptr


def _u32(buf: bytes, pos: int) -> tuple[int, int]:
    if pos + 4 > len(buf):
        raise PayloadError("payload too short")
    return struct.unpack_from("<I", buf, pos)[0], pos + 4


def _skip_sid(buf: bytes, pos: int, ptr: int) -> int:
    """Skip a kernel TOKEN_USER + SID (TraceEvent's SkipSID rule: a NULL pointer means no
    SID follows), except that a SID right after a NULL TOKEN_USER (revision 1, at most 15
    sub-authorities; as user-mode MOF producers write it) is skipped too."""
    first, _ = _u32(buf, pos)
    if first == 0:
        sid = pos + 2 * ptr
        if sid + 8 <= len(buf) and buf[sid] == 1 and buf[sid + 1] <= 15 and buf[sid + 2:sid + 7] == b"\0" * 5:
            return sid + 8 + 4 * buf[sid + 1]
        return pos + ptr
    pos += 2 * ptr
    if pos + 8 > len(buf):
        raise PayloadError("SID cut short")
    return pos + 8 + 4 * buf[pos + 1]


def _ansi(buf: bytes, pos: int) -> str:
    end = buf.find(b"\0", pos)
    raw = buf[pos:] if end < 0 else buf[pos:end]
    return raw.decode("utf-8", "replace")


def _wide(buf: bytes, pos: int) -> str:
    return _wide_end(buf, pos)[0]


def _wide_end(buf: bytes, pos: int) -> tuple[str, int]:
    i = pos
    while i + 1 < len(buf) and buf[i:i + 2] != b"\0\0":
        i += 2
    return buf[pos:i].decode("utf-16-le", "replace"), i + 2


def layout_fits(kind: str, payload: bytes, version: int, ptr: int) -> bool:
    """True if the payload decodes with pointer size ``ptr`` and its strings end exactly at
    the payload end (used to pick the layout of classic events whose producer's pointer
    size differs from the header's); ``kind``: image, process or debug_id (DbgID_RSDS)."""
    try:
        if kind == "debug_id":
            debug_id_fields(payload, ptr)
            return True
        if kind == "image":
            name, end = _wide_end(payload, _image_name_at(payload, version, ptr))
            return end == len(payload) and name.isprintable()
        end = _process_end(payload, version, ptr)
        return end == len(payload)
    except PayloadError:
        return False


def _process_end(payload: bytes, version: int, ptr: int) -> int:
    pos = ptr * 2 if version == 0 else ptr + 16 + (ptr if version >= 3 else 0) + (4 if version >= 4 else 0)
    pos = _skip_sid(payload, pos, ptr)
    end = payload.find(b"\0", pos)
    if end < 0:
        raise PayloadError("no image name")
    pos = end + 1
    for _ in range({0: 0, 1: 0, 2: 1, 3: 1}.get(version, 3)):
        pos = _wide_end(payload, pos)[1]
    return pos


def _id(v: int) -> int | None:
    return None if v in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF) else v


def process_fields(payload: bytes, version: int, ptr: int) -> dict[str, Any]:
    """pid, parent_pid, image, wow64 of a Process payload."""
    pos = 0
    flags = None
    if version == 0:
        pid, pos = _ptr(payload, pos, ptr)
        parent, pos = _ptr(payload, pos, ptr)
    else:
        _key, pos = _ptr(payload, pos, ptr)
        pid, pos = _u32(payload, pos)
        parent, pos = _u32(payload, pos)
        pos += 8  # SessionId, ExitStatus
        if version >= 3:
            _dtb, pos = _ptr(payload, pos, ptr)
        if version >= 4:
            flags, pos = _u32(payload, pos)
    pos = _skip_sid(payload, pos, ptr)
    return {
        "pid": _id(pid), "parent_pid": _id(parent), "image": _ansi(payload, pos),
        "wow64": None if flags is None else int(bool(flags & 0x2)),
    }


def thread_fields(payload: bytes, version: int) -> dict[str, Any]:
    """pid, tid of a Thread payload (v0 has the thread id first)."""
    a, _ = _u32(payload, 0)
    b, _ = _u32(payload, 4)
    pid, tid = (b, a) if version == 0 else (a, b)
    return {"pid": _id(pid), "tid": _id(tid)}


def image_fields(payload: bytes, version: int, ptr: int) -> dict[str, Any]:
    """base, image_size, pid (v1+), image of an Image payload."""
    base, pos = _ptr(payload, 0, ptr)
    name_at = _image_name_at(payload, version, ptr)
    if version == 0:
        size, pos = _u32(payload, pos)
        return {"base": base, "image_size": size, "pid": None, "image": _wide(payload, name_at)}
    size, pos = _ptr(payload, pos, ptr)
    pid, pos = _u32(payload, pos)
    if name_at > len(payload):
        raise PayloadError("payload too short")
    return {"base": base, "image_size": size, "pid": _id(pid), "image": _wide(payload, name_at)}


def debug_id_fields(payload: bytes, ptr: int) -> dict[str, Any]:
    """pid, base, image (the PDB's file name) and debug_id of a DbgID_RSDS payload:
    ImageBase, ProcessId, the PDB signature GUID, its age, the PDB file name (ANSI).
    ``debug_id`` in the column's form (:func:`~traceanalyzer.model.debug_id.debug_id_text`)."""
    base, pos = _ptr(payload, 0, ptr)
    pid, pos = _u32(payload, pos)
    if pos + 20 > len(payload):
        raise PayloadError("payload too short")
    guid = uuid.UUID(bytes_le=bytes(payload[pos:pos + 16]))
    age, pos = _u32(payload, pos + 16)
    # the name and its NUL end the payload (as in every real record): a name cut short,
    # bytes after it, or a pointer size the record was not written with do not fit
    end = payload.find(b"\0", pos)
    if end != len(payload) - 1:
        raise PayloadError(f"PdbFileName does not end the payload with {ptr}-byte pointers")
    name = payload[pos:end].decode("utf-8", "replace")
    if not name.isprintable():
        raise PayloadError(f"PdbFileName is not text with {ptr}-byte pointers")
    return {"base": base, "pid": _id(pid), "image": name, "debug_id": debug_id_text(guid, age)}


def _image_name_at(payload: bytes, version: int, ptr: int) -> int:
    """Offset of FileName: after ImageBase, ImageSize (v0: a ULONG), ProcessId (v1+),
    checksum ... Reserved4 (v2+)."""
    if version == 0:
        return ptr + 4
    # v2+: checksum, TimeDateStamp, signature/reserved, DefaultBase, Reserved1-4
    return 2 * ptr + 4 + (12 + ptr + 16 if version >= 2 else 0)
