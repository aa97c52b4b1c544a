"""NT-kernel-logger records: Process, Thread, Image (one at a time) and CSwitch (in bulk).

Which header and hook each canonical event gets, as the Windows 10/11 kernel writes them
(seen in ShutdownPerfDiagLogger.etl, build 18362, and TraceLoggingTester.etl, build 26100):

===============  ==================  ===========  =======  ================
event            header              group/type   version  payload
===============  ==================  ===========  =======  ================
ProcessStart     SYSTEM_TRACE        0x03 / 1     4        Process_V4
ProcessEnd       SYSTEM_TRACE        0x03 / 2     4        Process_V4
ProcessRundown   PERFINFO            0x03 / 3     4        Process_V4 (DCStart)
ProcessRundownEnd PERFINFO           0x03 / 4     4        Process_V4 (DCEnd)
ThreadStart      SYSTEM_TRACE        0x05 / 1     3        Thread_V3
ThreadEnd        SYSTEM_TRACE        0x05 / 2     3        Thread_V3
ThreadRundown    SYSTEM_TRACE        0x05 / 3     3        Thread_V3 (DCStart)
ThreadRundownEnd SYSTEM_TRACE        0x05 / 4     3        Thread_V3 (DCEnd)
CSwitch          COMPACT             0x05 / 36    2        CSwitch_V2 (24 bytes)
ImageLoad        SYSTEM_TRACE        0x03 / 10    3        Image_Load (hook 0x030A)
ImageUnload      SYSTEM_TRACE        0x14 / 2     3        Image_Load
ImageRundownEnd  SYSTEM_TRACE        0x14 / 4     3        Image_Load (DCEnd)
ImageDebugId     EVENT_TRACE (full)  KernelTraceControl ImageID GUID, type 36, v2: DbgID_RSDS
===============  ==================  ===========  =======  ================

Values the canonical table does not carry (stack bases, directory table base, the SID,
...) are filled with fixed, plausible constants derived from the ids, so the output is
deterministic. A null id is written as 0xFFFFFFFF (-1).
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

import numpy as np

from traceanalyzer.model.debug_id import parse_debug_id
from traceanalyzer.synth.etl_format import (
    COMPACT_HEADER_SIZE,
    FULL_HEADER_SIZE,
    GROUP_IMAGE,
    GROUP_PROCESS,
    GROUP_THREAD,
    HEADER_TYPE,
    MARKER_FLAGS,
    PERFINFO_HEADER_SIZE,
    SYSTEM_HEADER_SIZE,
    full_header,
    perfinfo_header,
    system_header,
)

UNKNOWN_ID: Final[int] = 0xFFFFFFFF

PROCESS_VERSION: Final[int] = 4
THREAD_VERSION: Final[int] = 3
IMAGE_VERSION: Final[int] = 3
CSWITCH_VERSION: Final[int] = 2
CSWITCH_OPCODE: Final[int] = 36
CSWITCH_PAYLOAD_SIZE: Final[int] = 24

#: Process_V4 Flags bit for a 32-bit process on 64-bit Windows (TraceEvent ProcessFlags).
PROCESS_FLAG_WOW64: Final[int] = 0x2
#: ExitStatus a live process reports (STILL_ACTIVE).
STILL_ACTIVE: Final[int] = 0x103

#: (header kind, group, opcode, version) per canonical kernel event.
KERNEL_HOOKS: Final[dict[str, tuple[str, int, int, int]]] = {
    "ProcessStart": ("system", GROUP_PROCESS, 1, PROCESS_VERSION),
    "ProcessEnd": ("system", GROUP_PROCESS, 2, PROCESS_VERSION),
    "ProcessRundown": ("perfinfo", GROUP_PROCESS, 3, PROCESS_VERSION),
    "ProcessRundownEnd": ("perfinfo", GROUP_PROCESS, 4, PROCESS_VERSION),
    "ThreadStart": ("system", GROUP_THREAD, 1, THREAD_VERSION),
    "ThreadEnd": ("system", GROUP_THREAD, 2, THREAD_VERSION),
    "ThreadRundown": ("system", GROUP_THREAD, 3, THREAD_VERSION),
    "ThreadRundownEnd": ("system", GROUP_THREAD, 4, THREAD_VERSION),
    "ImageLoad": ("system", GROUP_PROCESS, 10, IMAGE_VERSION),
    "ImageUnload": ("system", GROUP_IMAGE, 2, IMAGE_VERSION),
    "ImageRundownEnd": ("system", GROUP_IMAGE, 4, IMAGE_VERSION),
}

# S-1-5-18 (LocalSystem): revision 1, 1 sub-authority, NT authority 5, RID 18.
_SID_LOCAL_SYSTEM: Final[bytes] = bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18)
_KERNEL_BASE: Final[int] = 0xFFFFC00000000000


def _id(value: int | None) -> int:
    return UNKNOWN_ID if value is None else int(value) & 0xFFFFFFFF


def _ptr(pointer_size: int, value: int) -> bytes:
    if pointer_size == 8:
        return struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)
    return struct.pack("<I", value & 0xFFFFFFFF)


def _kaddr(pointer_size: int, base_offset: int) -> int:
    """A kernel-space address that looks real for the pointer size."""
    return (_KERNEL_BASE if pointer_size == 8 else 0x80000000) + base_offset


def _record(kind: str, pointer_size: int, group: int, opcode: int, version: int,
            tid: int, pid: int, qpc: int, payload: bytes) -> bytes:
    if kind == "perfinfo":
        size = PERFINFO_HEADER_SIZE + len(payload)
        head = perfinfo_header(pointer_size, version, size, group, opcode, qpc)
    else:
        size = SYSTEM_HEADER_SIZE + len(payload)
        head = system_header(pointer_size, version, size, group, opcode, tid, pid, qpc)
    if size > 0xFFFF:
        raise ValueError(f"kernel record of {size} bytes exceeds 65535")
    return head + payload


def process_record(event: str, pointer_size: int, qpc: int, row: dict) -> bytes:
    """A Process v4 record (Start/End: SYSTEM header; Rundown: PERFINFO header).

    Payload: UniqueProcessKey, ProcessId, ParentId, SessionId, ExitStatus,
    DirectoryTableBase, Flags (0x2 = WoW64), TOKEN_USER + SID (S-1-5-18),
    ImageFileName (ANSI), CommandLine, PackageFullName, ApplicationId (UTF-16).
    """
    kind, group, opcode, version = KERNEL_HOOKS[event]
    pid = _id(row.get("pid"))
    parent = _id(row.get("parent_pid"))
    image = row.get("image") or ""
    session = UNKNOWN_ID if pid == 0 else (0 if pid == 4 else 1)
    exit_status = 0 if event == "ProcessEnd" else STILL_ACTIVE
    flags = PROCESS_FLAG_WOW64 if row.get("wow64") else 0
    token_user = _ptr(pointer_size, _kaddr(pointer_size, 0x10_0000 + (pid & 0xFFFF) * 0x40))
    token_user += b"\0" * (8 if pointer_size == 8 else 4)  # Attributes + alignment
    payload = (
        _ptr(pointer_size, _kaddr(pointer_size, 0x4000_0000 + (pid & 0xFFFFF) * 0x100))
        + struct.pack("<IIIi", pid, parent, session, exit_status)
        + _ptr(pointer_size, 0x1AD000 + (pid & 0xFFFF) * 0x1000)
        + struct.pack("<I", flags)
        + token_user
        + _SID_LOCAL_SYSTEM
        + image.encode("utf-8") + b"\0"
        + image.encode("utf-16-le") + b"\0\0"   # CommandLine
        + b"\0\0"                               # PackageFullName
        + b"\0\0"                               # ApplicationId
    )
    # Start: logged in the creating process (the parent); End: in the exiting process.
    header_pid = parent if event == "ProcessStart" and row.get("parent_pid") is not None else pid
    return _record(kind, pointer_size, group, opcode, version, _id(row.get("tid")), header_pid, qpc, payload)


def thread_record(event: str, pointer_size: int, qpc: int, row: dict) -> bytes:
    """A Thread v3 record: ProcessId, TThreadId, stack/TEB pointers, priorities, ThreadName."""
    kind, group, opcode, version = KERNEL_HOOKS[event]
    pid = _id(row.get("pid"))
    tid = _id(row.get("tid"))
    user_top = 0x10_0000_0000 + (tid & 0xFFFF) * 0x10_0000 if pointer_size == 8 else 0x0100_0000
    stack = _kaddr(pointer_size, 0x2000_0000 + (tid & 0xFFFF) * 0x8000)
    payload = (
        struct.pack("<II", pid, tid)
        + _ptr(pointer_size, stack)                   # StackBase
        + _ptr(pointer_size, stack - 0x6000)          # StackLimit
        + _ptr(pointer_size, user_top)                # UserStackBase
        + _ptr(pointer_size, user_top - 0x10000)      # UserStackLimit
        + _ptr(pointer_size, 0xFF)                    # Affinity
        + _ptr(pointer_size, 0x7FF6_2000_1000 if pointer_size == 8 else 0x0040_1000)  # Win32StartAddr
        + _ptr(pointer_size, user_top + 0x1000)       # TebBase
        + struct.pack("<IBBBB", 0, 8, 5, 2, 0)        # SubProcessTag, Base/Page/IoPriority, Flags
        + b"\0\0"                                     # ThreadName (empty; build 1903+)
    )
    return _record(kind, pointer_size, group, opcode, version, tid, pid, qpc, payload)


def image_record(event: str, pointer_size: int, qpc: int, row: dict) -> bytes:
    """An Image v3 record: ImageBase, ImageSize, ProcessId, checksum, ..., FileName (UTF-16)."""
    kind, group, opcode, version = KERNEL_HOOKS[event]
    base = int(row.get("base") or 0)
    size = int(row.get("image_size") or 0)
    pid = _id(row.get("pid"))
    name = row.get("image") or ""
    payload = (
        _ptr(pointer_size, base)
        + _ptr(pointer_size, size)
        + struct.pack("<IIIBBH", pid, 0, 0, 0, 0, 0)  # checksum, TimeDateStamp, signature
        + _ptr(pointer_size, base)                    # DefaultBase
        + b"\0" * 16                                  # Reserved1..4
        + name.encode("utf-16-le") + b"\0\0"
    )
    return _record(kind, pointer_size, group, opcode, version, _id(row.get("tid")), pid, qpc, payload)


#: KernelTraceControl's ImageID class (xperf/wpr merge) and DbgID_RSDS, its PDB record.
IMAGE_ID_GUID: Final[uuid.UUID] = uuid.UUID("b3e675d7-2554-4f18-830b-2762732560de")
DBGID_RSDS_OPCODE: Final[int] = 36
DBGID_RSDS_VERSION: Final[int] = 2


def debug_id_record(event: str, pointer_size: int, qpc: int, row: dict) -> bytes:
    """A DbgID_RSDS record (full EVENT_TRACE_HEADER with the ImageID class GUID):
    ImageBase, ProcessId, the PDB's GUID, its age, its file name (ANSI). ``debug_id`` is
    ``<guid>-<age hex>`` as the reader writes it, or another form of it
    (:func:`~traceanalyzer.model.debug_id.parse_debug_id`: symbolic's, a symbol store's)."""
    parsed = parse_debug_id(row.get("debug_id"))
    if parsed is None:
        raise ValueError(f"ImageDebugId needs debug_id as <guid>-<age>, got {row.get('debug_id')!r}")
    guid, age = parsed
    pid = _id(row.get("pid"))
    payload = (
        _ptr(pointer_size, int(row.get("base") or 0))
        + struct.pack("<I", pid)
        + guid.bytes_le
        + struct.pack("<I", age)
        + (row.get("image") or "").encode("utf-8") + b"\0"
    )
    size = FULL_HEADER_SIZE + len(payload)
    head = full_header(pointer_size, DBGID_RSDS_VERSION, size, IMAGE_ID_GUID, DBGID_RSDS_OPCODE,
                       _id(row.get("tid")), pid, qpc)
    return head + payload


def cswitch_records(pointer_size: int, qpc: np.ndarray, new_tid: np.ndarray,
                    old_tid: np.ndarray, cpu: np.ndarray) -> np.ndarray:
    """CSwitch v2 records in bulk: an (n, 48) uint8 array, one row per event.

    COMPACT header with ThreadId = ProcessId = -1 (the kernel does not fill them), then
    NewThreadId, OldThreadId, NewThreadPriority 8, OldThreadPriority 8, PreviousCState 0,
    SpareByte 0, OldThreadWaitReason 15 (WrQueue), OldThreadWaitMode 0 (KernelMode),
    OldThreadState 5 (Waiting), OldThreadWaitIdealProcessor = cpu, NewThreadWaitTime 0,
    Reserved 0.
    """
    dtype = np.dtype([
        ("marker", "<u4"), ("size", "<u2"), ("opcode", "u1"), ("group", "u1"),
        ("tid", "<u4"), ("pid", "<u4"), ("ts", "<u8"),
        ("new_tid", "<u4"), ("old_tid", "<u4"), ("new_prio", "i1"), ("old_prio", "i1"),
        ("cstate", "u1"), ("spare", "i1"), ("wait_reason", "i1"), ("wait_mode", "i1"),
        ("state", "i1"), ("ideal", "i1"), ("wait_time", "<u4"), ("reserved", "<u4"),
    ])
    assert dtype.itemsize == COMPACT_HEADER_SIZE + CSWITCH_PAYLOAD_SIZE
    out = np.zeros(len(qpc), dtype=dtype)
    out["marker"] = CSWITCH_VERSION | HEADER_TYPE[("compact", pointer_size)] << 16 | MARKER_FLAGS << 24
    out["size"] = dtype.itemsize
    out["opcode"] = CSWITCH_OPCODE
    out["group"] = GROUP_THREAD
    out["tid"] = UNKNOWN_ID
    out["pid"] = UNKNOWN_ID
    out["ts"] = qpc
    out["new_tid"] = new_tid
    out["old_tid"] = old_tid
    out["new_prio"] = 8
    out["old_prio"] = 8
    out["wait_reason"] = 15
    out["state"] = 5
    out["ideal"] = (cpu & 0x7F).astype(np.int8)
    return out.view(np.uint8).reshape(len(qpc), dtype.itemsize)
