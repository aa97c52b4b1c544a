"""The canonical event table (``docs/trace-format.md``): column names, types, event names.

Every reader produces this table; everything downstream reads only it (split into
per-family tables by :class:`traceanalyzer.model.trace.Trace`).

Nothing here imports pandas: readers and the model build Arrow tables from these
definitions.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

# --- columns ---------------------------------------------------------------------------

#: Canonical columns and their Arrow types, in documentation order.
COLUMNS: Final[dict[str, pa.DataType]] = {
    "time_ns": pa.int64(),
    "event": pa.string(),
    "cpu": pa.int32(),
    "pid": pa.int64(),
    "tid": pa.int64(),
    "mdl": pa.uint64(),
    "source_mdl": pa.uint64(),
    "va": pa.uint64(),
    "size": pa.uint64(),
    "requested_size": pa.uint64(),
    "access_mode": pa.string(),
    "operation": pa.string(),
    "cache_type": pa.string(),
    "mapped_va": pa.uint64(),
    "priority": pa.uint32(),
    "bugcheck_on_failure": pa.int8(),
    "irp": pa.uint64(),
    "tag": pa.uint32(),
    "target_pid": pa.int64(),
    "effective_pid": pa.int64(),
    "irql": pa.int8(),
    "status": pa.string(),
    "caller": pa.string(),
    "new_tid": pa.int64(),
    "old_tid": pa.int64(),
    "new_pid": pa.int64(),
    "old_pid": pa.int64(),
    "parent_pid": pa.int64(),
    "image": pa.string(),
    "wow64": pa.int8(),
    "base": pa.uint64(),
    "image_size": pa.uint64(),
    "return_address": pa.uint64(),
    "debug_id": pa.string(),
}

REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("time_ns", "event")

#: Columns holding addresses or byte counts (unsigned 64-bit; hex or decimal in text).
ADDRESS_COLUMNS: Final[frozenset[str]] = frozenset(
    name for name, typ in COLUMNS.items() if typ == pa.uint64()
)

#: Pointer-valued columns where 0 is a NULL pointer (a TraceLogging pointer has no null):
#: the model stores them as null. ``mdl`` 0 is a NULL MDL (an allocator that failed, or a
#: call on a NULL pointer). ``mapped_va`` is not here: 0 there means the map call failed.
NULL_POINTER_COLUMNS: Final[tuple[str, ...]] = (
    "mdl", "source_mdl", "va", "irp", "base", "return_address",
)
#: Events whose 0 in a NULL_POINTER_COLUMNS column is a real address: IoBuildPartialMdl's
#: VirtualAddress is an address inside the source MDL, and an MmAllocatePagesForMdl(Ex)
#: MDL's virtual range starts at 0.
ZERO_IS_ADDRESS: Final[dict[str, tuple[str, ...]]] = {"va": ("IoBuildPartialMdl",)}

#: Integer columns (hex ``0x`` or decimal in text).
INTEGER_COLUMNS: Final[frozenset[str]] = frozenset(
    name for name, typ in COLUMNS.items() if pa.types.is_integer(typ)
)

# --- event names -------------------------------------------------------------------------

#: ``*Rundown`` is the rundown at the trace start (DCStart: alive when the trace began),
#: ``*RundownEnd`` the one at the trace end (DCEnd: still alive when it ended; a
#: circular-buffer recording often has only this one). Neither starts nor ends anything.
PROCESS_EVENTS: Final[tuple[str, ...]] = ("ProcessStart", "ProcessEnd", "ProcessRundown", "ProcessRundownEnd")
THREAD_EVENTS: Final[tuple[str, ...]] = ("ThreadStart", "ThreadEnd", "ThreadRundown", "ThreadRundownEnd")
CSWITCH_EVENTS: Final[tuple[str, ...]] = ("CSwitch",)
#: The events of an image itself (its load, unload, rundown at the trace end).
IMAGE_LOAD_EVENTS: Final[tuple[str, ...]] = ("ImageLoad", "ImageUnload", "ImageRundownEnd")
#: ``ImageDebugId`` names the PDB build of the image at ``base`` (DbgID_RSDS, added when
#: xperf or wpr merges a trace): ``debug_id`` (GUID-age) and ``image`` (the PDB's name).
#: It is no image: a count of images or a module's name is taken from IMAGE_LOAD_EVENTS.
IMAGE_EVENTS: Final[tuple[str, ...]] = IMAGE_LOAD_EVENTS + ("ImageDebugId",)
#: System events that the replay consumes together with the calls.
IO_EVENTS: Final[tuple[str, ...]] = ("IoCompleteRequest",)

SYSTEM_EVENTS: Final[tuple[str, ...]] = (
    PROCESS_EVENTS + THREAD_EVENTS + CSWITCH_EVENTS + IMAGE_EVENTS + IO_EVENTS
)

CALL_EVENTS: Final[tuple[str, ...]] = (
    "IoAllocateMdl",
    "IoFreeMdl",
    "IoBuildPartialMdl",
    "MmProbeAndLockPages",
    "MmProbeAndLockProcessPages",
    "MmUnlockPages",
    "MmBuildMdlForNonPagedPool",
    "MmAllocatePagesForMdl",
    "MmAllocatePagesForMdlEx",
    "MmFreePagesFromMdl",
    "MmMapLockedPagesSpecifyCache",
    "MmMapLockedPages",
    "MmUnmapLockedPages",
    "MmAllocateMappingAddress",
    "MmFreeMappingAddress",
    "MmMapLockedPagesWithReservedMapping",
    "MmUnmapReservedMapping",
    "MmPrepareMdlForReuse",
    "KeStackAttachProcess",
    "KeUnstackDetachProcess",
    "ExFreePoolMdl",
)

KNOWN_EVENTS: Final[frozenset[str]] = frozenset(SYSTEM_EVENTS + CALL_EVENTS)

# --- families: how the Trace splits the canonical table --------------------------------

#: family name -> (event names, columns kept besides time_ns/event/seq)
FAMILIES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "cswitch": (CSWITCH_EVENTS, ("cpu", "new_tid", "old_tid", "new_pid", "old_pid")),
    "processes": (
        PROCESS_EVENTS,
        ("cpu", "pid", "tid", "parent_pid", "image", "wow64"),
    ),
    "threads": (THREAD_EVENTS, ("cpu", "pid", "tid")),
    "images": (IMAGE_EVENTS, ("cpu", "pid", "tid", "image", "base", "image_size", "debug_id")),
    "calls": (
        CALL_EVENTS + IO_EVENTS,
        tuple(
            c
            for c in COLUMNS
            if c
            not in (
                "time_ns",
                "event",
                "new_tid",
                "old_tid",
                "new_pid",
                "old_pid",
                "parent_pid",
                "image",
                "wow64",
                "base",
                "image_size",
                "debug_id",
            )
        ),
    ),
}

#: Events not in any family (unknown names) go to this family with every column kept.
OTHER_FAMILY: Final[str] = "other"

# --- enumerations --------------------------------------------------------------------

ACCESS_MODES: Final[tuple[str, ...]] = ("KernelMode", "UserMode")
OPERATIONS: Final[tuple[str, ...]] = ("IoReadAccess", "IoWriteAccess", "IoModifyAccess")
CACHE_TYPES: Final[tuple[str, ...]] = (
    "MmNonCached",
    "MmCached",
    "MmWriteCombined",
    "MmHardwareCoherentCached",
    "MmNonCachedUnordered",
    "MmUSWCCached",
)

#: Text forms accepted for enum columns -> canonical name (numbers per docs/trace-format.md).
ENUM_ALIASES: Final[dict[str, dict[str, str]]] = {
    "access_mode": {
        **{m: m for m in ACCESS_MODES},
        "0": "KernelMode",
        "1": "UserMode",
        "kernel": "KernelMode",
        "user": "UserMode",
    },
    "operation": {
        **{o: o for o in OPERATIONS},
        "0": "IoReadAccess",
        "1": "IoWriteAccess",
        "2": "IoModifyAccess",
    },
    "cache_type": {
        **{c: c for c in CACHE_TYPES},
        **{str(i): c for i, c in enumerate(CACHE_TYPES)},
    },
}

#: MdlMappingNoExecute flag in the ``priority`` column.
MDL_MAPPING_NO_EXECUTE: Final[int] = 0x40000000

#: Top of the 64-bit user address space used by the rules (docs/rules.md).
USER_RANGE_END_64: Final[int] = 0x7FFFFFFF0000
USER_RANGE_END_WOW64: Final[int] = 0xFFFFFFFF
#: Addresses below this are user addresses (canonical lower half on x64).
USER_SPACE_LIMIT: Final[int] = 0x0000800000000000

PAGE_SIZE: Final[int] = 4096

SYSTEM_PID: Final[int] = 4
IDLE_PID: Final[int] = 0


def family_of(event: str) -> str:
    """Name of the family table an event name belongs to (``other`` when unknown)."""
    for family, (events, _cols) in FAMILIES.items():
        if event in events:
            return family
    return OTHER_FAMILY
