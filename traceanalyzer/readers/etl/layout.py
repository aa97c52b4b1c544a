"""ETL byte layout facts the reader relies on (offsets verified on the real traces of tests/data/real).

Buffer: a 0x48-byte ``WMI_BUFFER_HEADER`` (BufferSize @0x00, ProcessorIndex u16 @0x28,
filled length @0x30, BufferFlag u16 @0x34, BufferType u16 @0x36), then 8-byte aligned
records; 0xFFFFFFFF marks the unused tail. Record kinds are told by the marker's top
byte (0xC0: header type in byte 2; 0x90: WPP / TRACE_MESSAGE).
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

BUFFER_HEADER_SIZE: Final[int] = 0x48
OFF_BUFFER_SIZE: Final[int] = 0x00
OFF_PROCESSOR: Final[int] = 0x28
OFF_FILLED: Final[int] = 0x30
OFF_FLAGS: Final[int] = 0x34
OFF_TYPE: Final[int] = 0x36
BUFFER_FLAG_COMPRESSED: Final[int] = 0x40
#: Largest buffer ETW allows (1 MB is the documented maximum; relogged files stay below).
MAX_BUFFER_SIZE: Final[int] = 64 << 20

# record header types (byte 2 of the marker)
SYSTEM32, SYSTEM64 = 0x01, 0x02
COMPACT32, COMPACT64 = 0x03, 0x04
FULL32, INSTANCE32 = 0x0A, 0x0B
TIMED, ERROR, WNODE, MESSAGE = 0x0C, 0x0D, 0x0E, 0x0F
PERFINFO32, PERFINFO64 = 0x10, 0x11
EVENT32, EVENT64 = 0x12, 0x13
FULL64, INSTANCE64 = 0x14, 0x15


# record classes assigned by the walk (walk.py)
K_SKIP: Final[int] = 0        # logfile header / trace-header extension records
K_CSWITCH: Final[int] = 1
K_THREAD: Final[int] = 2
K_PROCESS: Final[int] = 3
K_IMAGE: Final[int] = 4
K_EVENT: Final[int] = 5       # EVENT_HEADER (manifest / TraceLogging)
K_CLASSIC: Final[int] = 6     # full EVENT_TRACE_HEADER / instance header (GUID classes)
K_KERNEL_OTHER: Final[int] = 7
K_WPP: Final[int] = 8
K_OTHER: Final[int] = 9       # timed / error / wnode headers

# kernel groups (high byte of the hook id)
GROUP_HEADER: Final[int] = 0x00
GROUP_PROCESS: Final[int] = 0x03
GROUP_THREAD: Final[int] = 0x05
GROUP_IMAGE: Final[int] = 0x14

PROCESS_GUID: Final[UUID] = UUID("3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c")
THREAD_GUID: Final[UUID] = UUID("3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c")
IMAGE_GUID: Final[UUID] = UUID("2cb15d1d-5fc1-11d2-abe1-00a0c911f518")
#: KernelTraceControl's image identification events, which xperf and wpr add when they
#: merge a kernel trace: opcode 36 is DbgID_RSDS (an image's PDB GUID, age and name).
IMAGE_ID_GUID: Final[UUID] = UUID("b3e675d7-2554-4f18-830b-2762732560de")
DBGID_RSDS_OPCODE: Final[int] = 36

#: kernel group numbers -> the NT Kernel Logger class name (for unknown-event counts)
GROUP_NAMES: Final[dict[int, str]] = {
    0x00: "EventTrace", 0x01: "DiskIo", 0x02: "DiskIo", 0x03: "Process", 0x04: "FileIo",
    0x05: "Thread", 0x06: "TcpIp", 0x07: "Job", 0x08: "UdpIp", 0x09: "Registry",
    0x0A: "DbgPrint", 0x0B: "Config", 0x0C: "Spare", 0x0D: "WnfEvent", 0x0E: "Pool",
    0x0F: "PerfInfo", 0x10: "Heap", 0x11: "Object", 0x12: "Power", 0x13: "Modbound",
    0x14: "Image", 0x15: "DpcQueue", 0x16: "Callstack", 0x17: "Ob", 0x18: "Hypervisor",
    0x19: "HypervisorX", 0x1A: "Alpc", 0x1B: "SplitIo", 0x1C: "ThreadPool", 0x1D: "UmsTrace",
    0x1E: "Cc", 0x1F: "Kernel", 0x20: "Memory",
}

#: Logfile clock types (TRACE_LOGFILE_HEADER.ReservedFlags).
CLOCK_QPC: Final[int] = 1
CLOCK_SYSTEM_TIME: Final[int] = 2
CLOCK_CPU_CYCLES: Final[int] = 3
