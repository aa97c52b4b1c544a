"""Integer codes shared by the replay kernel and the Python around it."""

from __future__ import annotations

from typing import Final

# --- event codes (the replay stream) -------------------------------------------------
EVENTS: Final[tuple[str, ...]] = (
    "IoAllocateMdl",                  # 0
    "IoFreeMdl",                      # 1
    "IoBuildPartialMdl",              # 2
    "MmProbeAndLockPages",            # 3
    "MmProbeAndLockProcessPages",     # 4
    "MmUnlockPages",                  # 5
    "MmBuildMdlForNonPagedPool",      # 6
    "MmAllocatePagesForMdl",          # 7
    "MmAllocatePagesForMdlEx",        # 8
    "MmFreePagesFromMdl",             # 9
    "MmMapLockedPagesSpecifyCache",   # 10
    "MmMapLockedPages",               # 11
    "MmUnmapLockedPages",             # 12
    "MmAllocateMappingAddress",       # 13
    "MmFreeMappingAddress",           # 14
    "MmMapLockedPagesWithReservedMapping",  # 15
    "MmUnmapReservedMapping",         # 16
    "MmPrepareMdlForReuse",           # 17
    "KeStackAttachProcess",           # 18
    "KeUnstackDetachProcess",         # 19
    "ExFreePoolMdl",                  # 20
    "IoCompleteRequest",              # 21
    "ProcessEnd",                     # 22 (synthesised from the process instances)
)
EVENT_CODE: Final[dict[str, int]] = {name: i for i, name in enumerate(EVENTS)}

E_IOALLOC, E_IOFREE, E_PARTIAL, E_LOCK, E_LOCKPROC, E_UNLOCK, E_BUILDNP = 0, 1, 2, 3, 4, 5, 6
E_ALLOCPAGES, E_ALLOCPAGESEX, E_FREEPAGES, E_MAPSC, E_MAP, E_UNMAP = 7, 8, 9, 10, 11, 12
E_RSV_ALLOC, E_RSV_FREE, E_RSV_MAP, E_RSV_UNMAP, E_PREPARE = 13, 14, 15, 16, 17
E_ATTACH, E_DETACH, E_EXFREE, E_IRPCOMPLETE, E_PROCEND = 18, 19, 20, 21, 22

# --- rules the kernel emits (index = code) -------------------------------------------
KERNEL_RULES: Final[tuple[str, ...]] = (
    "UNLOCK_WHILE_USER_MAPPED",        # 0
    "USER_UNMAP_WRONG_PROCESS",        # 1
    "USER_UNMAP_AFTER_OWNER_EXIT",     # 2
    "LOCKED_PAGES_AT_PROCESS_EXIT",    # 3
    "USER_MAPPING_NOT_UNMAPPED_AT_EXIT",  # 4
    "FREE_PAGES_WHILE_USER_MAPPED",    # 5
    "USER_MAP_IN_ARBITRARY_CONTEXT",   # 6
    "USER_MAP_KERNEL_MEMORY",          # 7
    "CACHE_TYPE_CONFLICT",             # 8
    "UNLOCK_NOT_LOCKED",               # 9
    "DOUBLE_LOCK",                     # 10
    "FREE_MDL_WHILE_LOCKED",           # 11
    "LOCKED_MDL_NEVER_UNLOCKED",       # 12
    "LOCK_IN_WRONG_PROCESS",           # 13
    "KMAP_UNLOCKED_MDL",               # 14
    "KMAP_SECOND_SYSTEM_MAPPING",      # 15
    "KUNMAP_NOT_MAPPED",               # 16
    "KUNMAP_WRONG_VA_OR_MDL",          # 17
    "USER_MAP_UNBALANCED",             # 18
    "KMAP_LEAK",                       # 19
    "MDL_USE_AFTER_FREE",              # 20
    "MDL_STRUCT_LEAK",                 # 21
    "MAP_FAILED_UNCHECKED",            # 22
    "UNLOCK_BUILT_OR_PARTIAL_MDL",     # 23
    "LOCK_BUILT_OR_PARTIAL_MDL",       # 24
    "KUNMAP_NONPAGED_MDL",             # 25
    "UNLOCK_ALLOCATED_PAGES_MDL",      # 26
    "ALLOC_PAGES_LEAK",                # 27
    "ALLOC_PAGES_WRONG_FREE",          # 28
    "FREE_PAGES_WRONG_MDL",            # 29
    "ALLOC_PAGES_SHORT",               # 30
    "PARTIAL_SOURCE_NOT_LOCKED",       # 31
    "PARTIAL_RANGE_INVALID",           # 32
    "PARTIAL_OUTLIVES_SOURCE",         # 33
    "PARTIAL_REUSE_WITHOUT_PREPARE",   # 34
    "PARTIAL_UNMAP_ILLEGAL",           # 35
    "RESERVED_MAP_WHILE_MAPPED",       # 36
    "RESERVED_UNMAP_NOT_MAPPED",       # 37
    "RESERVED_FREE_WHILE_MAPPED",      # 38
    "RESERVED_TAG_MISMATCH",           # 39
    "RESERVED_LEAK",                   # 40
    "DRIVER_FREES_IO_MANAGER_MDL",     # 41
    "USER_MAP_OUTLIVES_IRP",           # 42
)
RULE_CODE: Final[dict[str, int]] = {name: i for i, name in enumerate(KERNEL_RULES)}

# --- the rule codes by name (the kernel's handlers use these) ------------------------
R: Final[dict[str, int]] = RULE_CODE
UNLOCK_WHILE_USER_MAPPED = R["UNLOCK_WHILE_USER_MAPPED"]
USER_UNMAP_WRONG_PROCESS = R["USER_UNMAP_WRONG_PROCESS"]
USER_UNMAP_AFTER_OWNER_EXIT = R["USER_UNMAP_AFTER_OWNER_EXIT"]
LOCKED_PAGES_AT_PROCESS_EXIT = R["LOCKED_PAGES_AT_PROCESS_EXIT"]
USER_MAPPING_NOT_UNMAPPED_AT_EXIT = R["USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]
FREE_PAGES_WHILE_USER_MAPPED = R["FREE_PAGES_WHILE_USER_MAPPED"]
USER_MAP_IN_ARBITRARY_CONTEXT = R["USER_MAP_IN_ARBITRARY_CONTEXT"]
USER_MAP_KERNEL_MEMORY = R["USER_MAP_KERNEL_MEMORY"]
CACHE_TYPE_CONFLICT = R["CACHE_TYPE_CONFLICT"]
UNLOCK_NOT_LOCKED = R["UNLOCK_NOT_LOCKED"]
DOUBLE_LOCK = R["DOUBLE_LOCK"]
FREE_MDL_WHILE_LOCKED = R["FREE_MDL_WHILE_LOCKED"]
LOCKED_MDL_NEVER_UNLOCKED = R["LOCKED_MDL_NEVER_UNLOCKED"]
LOCK_IN_WRONG_PROCESS = R["LOCK_IN_WRONG_PROCESS"]
KMAP_UNLOCKED_MDL = R["KMAP_UNLOCKED_MDL"]
KMAP_SECOND_SYSTEM_MAPPING = R["KMAP_SECOND_SYSTEM_MAPPING"]
KUNMAP_NOT_MAPPED = R["KUNMAP_NOT_MAPPED"]
KUNMAP_WRONG_VA_OR_MDL = R["KUNMAP_WRONG_VA_OR_MDL"]
USER_MAP_UNBALANCED = R["USER_MAP_UNBALANCED"]
KMAP_LEAK = R["KMAP_LEAK"]
MDL_USE_AFTER_FREE = R["MDL_USE_AFTER_FREE"]
MDL_STRUCT_LEAK = R["MDL_STRUCT_LEAK"]
MAP_FAILED_UNCHECKED = R["MAP_FAILED_UNCHECKED"]
UNLOCK_BUILT_OR_PARTIAL_MDL = R["UNLOCK_BUILT_OR_PARTIAL_MDL"]
LOCK_BUILT_OR_PARTIAL_MDL = R["LOCK_BUILT_OR_PARTIAL_MDL"]
KUNMAP_NONPAGED_MDL = R["KUNMAP_NONPAGED_MDL"]
UNLOCK_ALLOCATED_PAGES_MDL = R["UNLOCK_ALLOCATED_PAGES_MDL"]
ALLOC_PAGES_LEAK = R["ALLOC_PAGES_LEAK"]
ALLOC_PAGES_WRONG_FREE = R["ALLOC_PAGES_WRONG_FREE"]
FREE_PAGES_WRONG_MDL = R["FREE_PAGES_WRONG_MDL"]
PARTIAL_UNMAP_ILLEGAL = R["PARTIAL_UNMAP_ILLEGAL"]
ALLOC_PAGES_SHORT = R["ALLOC_PAGES_SHORT"]
PARTIAL_SOURCE_NOT_LOCKED = R["PARTIAL_SOURCE_NOT_LOCKED"]
PARTIAL_RANGE_INVALID = R["PARTIAL_RANGE_INVALID"]
PARTIAL_OUTLIVES_SOURCE = R["PARTIAL_OUTLIVES_SOURCE"]
PARTIAL_REUSE_WITHOUT_PREPARE = R["PARTIAL_REUSE_WITHOUT_PREPARE"]
RESERVED_MAP_WHILE_MAPPED = R["RESERVED_MAP_WHILE_MAPPED"]
RESERVED_UNMAP_NOT_MAPPED = R["RESERVED_UNMAP_NOT_MAPPED"]
RESERVED_FREE_WHILE_MAPPED = R["RESERVED_FREE_WHILE_MAPPED"]
RESERVED_TAG_MISMATCH = R["RESERVED_TAG_MISMATCH"]
RESERVED_LEAK = R["RESERVED_LEAK"]
DRIVER_FREES_IO_MANAGER_MDL = R["DRIVER_FREES_IO_MANAGER_MDL"]
USER_MAP_OUTLIVES_IRP = R["USER_MAP_OUTLIVES_IRP"]

# MDL kinds (bit flags on a lifetime)
K_IOALLOC, K_NONPAGED, K_PAGES, K_PARTIAL, K_UNKNOWN = 1, 2, 4, 8, 16
KIND_NAMES: Final[dict[int, str]] = {
    K_IOALLOC: "io_allocated", K_NONPAGED: "nonpaged_built", K_PAGES: "pages_allocated",
    K_PARTIAL: "partial", K_UNKNOWN: "unknown_origin",
}

# mapping / lock end reasons
END_REASONS: Final[tuple[str, ...]] = (
    "live", "unmap", "unlock", "process_exit", "mdl_freed", "pages_freed",
    "irp_completed", "reallocated", "trace_end",
)
R_LIVE, R_UNMAP, R_UNLOCK, R_EXIT, R_FREED, R_PAGESFREED, R_IRP, R_REALLOC, R_TRACE_END = range(9)

# lock states
LS_UNLOCKED, LS_LOCKED, LS_UNKNOWN = 0, 1, 2

# what a lifetime first seen mid-life (allocated before the trace) may hold unseen: a
# system mapping (until a call shows the state: a kernel map or unmap, or a routine that
# releases it) and user mappings (for its whole life). Bit flags on the lifetime.
US_SYSMAP, US_USERMAP = 1, 2

MODE_KERNEL, MODE_USER = 0, 1

USER_SPACE_LIMIT: Final[int] = 0x0000800000000000
