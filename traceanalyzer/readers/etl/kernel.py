"""Kernel Process and Image payloads (MOF layouts, 32- and 64-bit), decoded one by one.

Process v0-v5: ProcessId, ParentId, the user SID and ImageFileName; ``wow64`` from the
v4+ ``Flags`` field (bit 0x2, as PerfView's TraceEvent reads it), None before v4.
Image v0-v3: ImageBase, ImageSize, ProcessId (v1+), FileName. Thread payloads are
fixed-layout and decoded in bulk by :mod:`.walk`.
"""

from __future__ import annotations

import struct
from typing import Any

#: Process opcodes -> canonical event (None: counted, not a row; see docs/etl.md)
PROCESS_EVENTS: dict[int, str | None] = {1: "ProcessStart", 2: "ProcessEnd", 3: "ProcessRundown", 4: None, 39: None}
THREAD_EVENTS: dict[int, str | None] = {1: "ThreadStart", 2: "ThreadEnd", 3: "ThreadRundown", 4: None}
IMAGE_EVENTS: dict[int, str | None] = {10: "ImageLoad", 2: "ImageUnload", 3: "ImageLoad", 4: None}
#: why an opcode is not a row (stat name)
NOT_A_ROW: dict[int, str] = {4: "rundown_end_events", 39: "process_defunct_events"}


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
    """Skip a kernel TOKEN_USER + SID (TraceEvent's SkipSID rule)."""
    first, _ = _u32(buf, pos)
    if first == 0:
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
    i = pos
    while i + 1 < len(buf) and buf[i:i + 2] != b"\0\0":
        i += 2
    return buf[pos:i].decode("utf-16-le", "replace")


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
    if version == 0:
        size, pos = _u32(payload, pos)
        return {"base": base, "image_size": size, "pid": None, "image": _wide(payload, pos)}
    size, pos = _ptr(payload, pos, ptr)
    pid, pos = _u32(payload, pos)
    if version >= 2:
        pos += 12 + ptr + 16  # checksum, TimeDateStamp, signature/reserved, DefaultBase, Reserved1-4
    if pos > len(payload):
        raise PayloadError("payload too short")
    return {"base": base, "image_size": size, "pid": _id(pid), "image": _wide(payload, pos)}
