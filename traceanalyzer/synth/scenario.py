"""Scenario builder: canonical event tables written in Python, readable like a story.

A :class:`Scenario` collects rows of the canonical event table (``docs/trace-format.md``)
in the order they are written::

    s = Scenario(driver="mydriver.sys")
    app = s.process(pid=1234, image="app.exe", tid=5678)     # ProcessStart + ThreadStart
    worker = s.system_thread(tid=88)                          # ThreadRundown in System (pid 4)
    s.at(1_000_000).allocate_mdl(app, mdl=0xFFFFC30A4B2F1000, va=0xFFFFB00012340000, size=8192)
    s.at(1_100_000).probe_and_lock(app, mdl=0xFFFFC30A4B2F1000, mode="KernelMode")
    s.at(9_000_000).process_end(app)
    s.to_frame()        # pandas DataFrame, only the columns used
    s.to_csv(path)      # canonical CSV, addresses as 0x hex

Times are nanoseconds. :meth:`Scenario.at` sets the time of the next row; a row written
without ``at`` gets the previous row's time plus :attr:`Scenario.step_ns`. ``thread=``
fills ``pid``/``tid`` (and ``cpu`` when the thread has one); a call may instead carry
only ``cpu`` (attribution from CSwitch). Every call helper fills ``caller`` with
``<driver>+0x<offset>`` (a fixed offset per routine) unless ``caller=`` is given.

The builder only writes rows; it does not check that the story is legal (the point of
many scenarios is that it is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.model.schema import (
    CALL_EVENTS,
    COLUMNS,
    IDLE_PID,
    IO_EVENTS,
    MDL_MAPPING_NO_EXECUTE,
    SYSTEM_PID,
)

#: MM_PAGE_PRIORITY NormalPagePriority.
NORMAL_PAGE_PRIORITY = 16
#: NormalPagePriority | MdlMappingNoExecute: what a well-behaved kernel map passes.
NX_NORMAL_PRIORITY = NORMAL_PAGE_PRIORITY | MDL_MAPPING_NO_EXECUTE

#: Columns written as ``0x`` hex in CSV (addresses and pool tags); other integers decimal.
HEX_COLUMNS: frozenset[str] = frozenset(
    {"mdl", "source_mdl", "va", "mapped_va", "irp", "base", "return_address", "tag"}
)

#: Default call-site offsets per routine, so that each call site has a stable caller.
_CALLER_OFFSETS: dict[str, int] = {
    name: 0x1A2B + 0x40 * i for i, name in enumerate(CALL_EVENTS + IO_EVENTS)
}


@dataclass(frozen=True)
class Process:
    """A process instance of the scenario (pid numbers may be reused by later ones)."""

    pid: int
    image: str
    start_ns: int
    wow64: bool = False


@dataclass(frozen=True)
class Thread:
    """A thread of a process; ``cpu`` is copied into the rows of its calls when set."""

    tid: int
    process: Process
    cpu: int | None = None

    @property
    def pid(self) -> int:
        """The owning process's pid."""
        return self.process.pid

    def on(self, cpu: int) -> Thread:
        """The same thread, running on ``cpu`` (its calls carry that cpu)."""
        return Thread(self.tid, self.process, cpu)


def pool_tag(tag: str | int) -> int:
    """A pool tag as the ULONG the kernel sees: 4 ASCII characters, first one lowest."""
    if isinstance(tag, int):
        return tag
    raw = tag.encode("ascii")
    if len(raw) != 4:
        raise ValueError(f"pool tag must be 4 ASCII characters, got {tag!r}")
    return int.from_bytes(raw, "little")


class Scenario:
    """An ordered list of canonical event rows, written with story-like helpers."""

    def __init__(self, driver: str = "mydriver.sys", step_ns: int = 1_000) -> None:
        self.driver = driver
        self.step_ns = step_ns
        self.rows: list[dict[str, Any]] = []
        self._next_ns: int | None = None
        self._last_ns = 0
        self._live_threads: dict[Process, list[Thread]] = {}
        self._system: Process | None = None
        self._idle: Process | None = None

    # --- time ---------------------------------------------------------------------

    def at(self, time_ns: int) -> Scenario:
        """Set the time of the next row (ns since trace start); returns ``self``."""
        if time_ns < 0:
            raise ValueError(f"time_ns must be >= 0, got {time_ns}")
        self._next_ns = int(time_ns)
        return self

    def after(self, delta_ns: int) -> Scenario:
        """Set the next row's time to the last row's time plus ``delta_ns``."""
        return self.at(self._last_ns + delta_ns)

    def _take_time(self) -> int:
        if self._next_ns is not None:
            t, self._next_ns = self._next_ns, None
        elif self.rows:
            t = self._last_ns + self.step_ns
        else:
            t = 0
        self._last_ns = t
        return t

    # --- raw rows -----------------------------------------------------------------

    def event(self, name: str, **fields: Any) -> dict[str, Any]:
        """Append one row with event ``name`` and the given canonical columns.

        ``None`` values are left out. Unknown column names raise ``ValueError`` (a
        typo would silently change the scenario); unknown event names are allowed, so
        that scenarios can carry events the analyzer must count as unknown.
        """
        bad = [k for k in fields if k not in COLUMNS]
        if bad:
            raise ValueError(f"unknown canonical column(s): {', '.join(bad)}")
        row: dict[str, Any] = {"time_ns": self._take_time(), "event": name}
        row.update({k: v for k, v in fields.items() if v is not None})
        self.rows.append(row)
        return row

    def call(
        self,
        name: str,
        thread: Thread | None = None,
        cpu: int | None = None,
        caller: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Append a driver call row (a name from ``CALL_EVENTS`` or IoCompleteRequest).

        ``thread`` fills pid/tid (and cpu when the thread has one); ``cpu`` alone makes a
        row whose thread must come from the last CSwitch on that processor.
        """
        if name not in CALL_EVENTS and name not in IO_EVENTS:
            raise ValueError(f"{name!r} is not a call event")
        if thread is not None:
            fields.setdefault("pid", thread.pid)
            fields.setdefault("tid", thread.tid)
            cpu = thread.cpu if cpu is None else cpu
        if caller is None:
            caller = f"{self.driver}+0x{_CALLER_OFFSETS[name]:x}"
        return self.event(name, cpu=cpu, caller=caller, **fields)

    # --- processes and threads ----------------------------------------------------

    def _new_process(self, event: str, pid: int, image: str, parent_pid: int | None,
                     wow64: bool) -> Process:
        row = self.event(event, pid=pid, image=image, parent_pid=parent_pid,
                         wow64=1 if wow64 else None)
        proc = Process(pid, image, row["time_ns"], wow64)
        self._live_threads[proc] = []
        return proc

    def _new_thread(self, event: str, proc: Process, tid: int, cpu: int | None) -> Thread:
        self.event(event, pid=proc.pid, tid=tid)
        th = Thread(tid, proc, cpu)
        self._live_threads.setdefault(proc, []).append(th)
        return th

    def process(self, pid: int, image: str, tid: int, parent_pid: int | None = None,
                wow64: bool = False, cpu: int | None = None) -> Thread:
        """Start a process and its first thread (ProcessStart + ThreadStart).

        Returns the first thread; ``thread.process`` is the process.
        """
        proc = self._new_process("ProcessStart", pid, image, parent_pid, wow64)
        return self._new_thread("ThreadStart", proc, tid, cpu)

    def running_process(self, pid: int, image: str, tid: int, wow64: bool = False,
                        cpu: int | None = None) -> Thread:
        """A process alive when the trace began (ProcessRundown + ThreadRundown)."""
        proc = self._new_process("ProcessRundown", pid, image, None, wow64)
        return self._new_thread("ThreadRundown", proc, tid, cpu)

    def thread(self, owner: Thread | Process, tid: int, cpu: int | None = None) -> Thread:
        """Start another thread in the process of ``owner`` (ThreadStart)."""
        proc = owner.process if isinstance(owner, Thread) else owner
        return self._new_thread("ThreadStart", proc, tid, cpu)

    def system(self) -> Process:
        """The Idle (pid 0) and System (pid 4) processes, rundown rows written once."""
        if self._system is None:
            self._idle = self._new_process("ProcessRundown", IDLE_PID, "Idle", None, False)
            self._system = self._new_process("ProcessRundown", SYSTEM_PID, "System", None,
                                             False)
        return self._system

    def system_thread(self, tid: int, cpu: int | None = None) -> Thread:
        """A System (pid 4) worker thread alive at trace start (ThreadRundown)."""
        return self._new_thread("ThreadRundown", self.system(), tid, cpu)

    def idle_thread(self, cpu: int | None = None) -> Thread:
        """An idle thread (tid 0 of the Idle process, pid 0), as the kernel rundown logs it."""
        self.system()
        assert self._idle is not None
        return self._new_thread("ThreadRundown", self._idle, 0, cpu)

    def thread_end(self, thread: Thread) -> None:
        """End a thread (ThreadEnd)."""
        self.event("ThreadEnd", pid=thread.pid, tid=thread.tid)
        live = self._live_threads.get(thread.process, [])
        self._live_threads[thread.process] = [t for t in live if t.tid != thread.tid]

    def process_end(self, owner: Thread | Process) -> None:
        """End a process: ThreadEnd for each of its live threads, then ProcessEnd
        (all at the same time)."""
        proc = owner.process if isinstance(owner, Thread) else owner
        t = self._take_time()
        for th in list(self._live_threads.get(proc, [])):
            self.at(t).thread_end(th)
        self.at(t).event("ProcessEnd", pid=proc.pid, image=proc.image)
        self._live_threads.pop(proc, None)

    def cswitch(self, cpu: int, new: Thread, old: Thread | None = None,
                with_pids: bool = False) -> None:
        """A context switch on ``cpu`` from ``old`` (default: the idle thread) to ``new``.

        ``with_pids`` also writes new_pid/old_pid (some sources have them, ETL does not).
        """
        old_tid, old_pid = (old.tid, old.pid) if old is not None else (0, IDLE_PID)
        self.event("CSwitch", cpu=cpu, new_tid=new.tid, old_tid=old_tid,
                   new_pid=new.pid if with_pids else None,
                   old_pid=old_pid if with_pids else None)

    # --- attach / detach ------------------------------------------------------------

    def attach(self, thread: Thread, target: Thread | Process, **fields: Any) -> None:
        """KeStackAttachProcess(target) on ``thread``."""
        proc = target.process if isinstance(target, Thread) else target
        self.call("KeStackAttachProcess", thread, target_pid=proc.pid, **fields)

    def detach(self, thread: Thread, **fields: Any) -> None:
        """KeUnstackDetachProcess on ``thread``."""
        self.call("KeUnstackDetachProcess", thread, **fields)

    # --- MDL calls ------------------------------------------------------------------

    def allocate_mdl(self, thread: Thread | None, mdl: int, va: int, size: int,
                     irp: int | None = None, **fields: Any) -> None:
        """IoAllocateMdl(va, size, ..., irp) returning ``mdl``."""
        self.call("IoAllocateMdl", thread, mdl=mdl, va=va, size=size, irp=irp, **fields)

    def free_mdl(self, thread: Thread | None, mdl: int, **fields: Any) -> None:
        """IoFreeMdl(mdl)."""
        self.call("IoFreeMdl", thread, mdl=mdl, **fields)

    def probe_and_lock(self, thread: Thread | None, mdl: int, mode: str = "UserMode",
                       operation: str = "IoWriteAccess", **fields: Any) -> None:
        """MmProbeAndLockPages(mdl, mode, operation)."""
        self.call("MmProbeAndLockPages", thread, mdl=mdl, access_mode=mode,
                  operation=operation, **fields)

    def unlock(self, thread: Thread | None, mdl: int, **fields: Any) -> None:
        """MmUnlockPages(mdl)."""
        self.call("MmUnlockPages", thread, mdl=mdl, **fields)

    def map_user(self, thread: Thread | None, mdl: int, mapped_va: int,
                 cache: str = "MmCached", **fields: Any) -> None:
        """MmMapLockedPagesSpecifyCache(mdl, UserMode, cache) returning ``mapped_va``."""
        fields.setdefault("priority", NORMAL_PAGE_PRIORITY)
        fields.setdefault("bugcheck_on_failure", 0)
        self.call("MmMapLockedPagesSpecifyCache", thread, mdl=mdl, access_mode="UserMode",
                  cache_type=cache, mapped_va=mapped_va, **fields)

    def map_kernel(self, thread: Thread | None, mdl: int, mapped_va: int,
                   cache: str = "MmCached", **fields: Any) -> None:
        """MmMapLockedPagesSpecifyCache(mdl, KernelMode, cache) returning ``mapped_va``.

        Defaults are the well-behaved ones: priority NormalPagePriority |
        MdlMappingNoExecute, bugcheck_on_failure 0 (what MmGetSystemAddressForMdlSafe
        with MdlMappingNoExecute passes).
        """
        fields.setdefault("priority", NX_NORMAL_PRIORITY)
        fields.setdefault("bugcheck_on_failure", 0)
        self.call("MmMapLockedPagesSpecifyCache", thread, mdl=mdl, access_mode="KernelMode",
                  cache_type=cache, mapped_va=mapped_va, **fields)

    def unmap(self, thread: Thread | None, mdl: int, mapped_va: int, **fields: Any) -> None:
        """MmUnmapLockedPages(mapped_va, mdl)."""
        self.call("MmUnmapLockedPages", thread, mdl=mdl, mapped_va=mapped_va, **fields)

    def complete_request(self, thread: Thread | None, irp: int, **fields: Any) -> None:
        """IoCompleteRequest(irp) (the I/O manager then unlocks and frees its MDLs)."""
        self.call("IoCompleteRequest", thread, irp=irp, **fields)

    # --- output ---------------------------------------------------------------------

    def columns(self) -> list[str]:
        """The canonical columns used by at least one row, in schema order (unknown
        columns last, in first-use order)."""
        used: dict[str, None] = {}
        for row in self.rows:
            used.update(dict.fromkeys(row))
        known = [c for c in COLUMNS if c in used]
        return known + [c for c in used if c not in COLUMNS]

    def to_frame(self) -> pd.DataFrame:
        """The scenario as a canonical event DataFrame.

        Columns: the canonical columns used (see :meth:`columns`); integer columns as
        nullable ``Int64`` (``UInt64`` for unsigned ones), text columns as ``string``;
        absent values are null. Rows in the order written.
        """
        cols = self.columns()
        frame = pd.DataFrame.from_records(self.rows, columns=cols)
        for c in cols:
            typ = COLUMNS.get(c)
            if typ is not None and pa.types.is_unsigned_integer(typ):
                frame[c] = frame[c].astype("UInt64")
            elif typ is not None and pa.types.is_integer(typ):
                frame[c] = frame[c].astype("Int64")
            else:
                frame[c] = frame[c].astype("string")
        return frame

    def csv_text(self) -> str:
        """The scenario as canonical CSV text (header + one line per row)."""
        cols = self.columns()
        lines = [",".join(cols)]
        for row in self.rows:
            lines.append(",".join(_cell(c, row.get(c)) for c in cols))
        return "\n".join(lines) + "\n"

    def to_csv(self, path: str | Path) -> Path:
        """Write the canonical CSV to ``path`` (addresses and tags as ``0x`` hex)."""
        path = Path(path)
        write_text_atomic(path, self.csv_text())
        return path


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        if column in HEX_COLUMNS:
            return f"0x{value:x}" if value >= 0 else str(value)
        return str(value)
    text = str(value)
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


__all__ = [
    "HEX_COLUMNS",
    "NORMAL_PAGE_PRIORITY",
    "NX_NORMAL_PRIORITY",
    "Process",
    "Scenario",
    "Thread",
    "pool_tag",
]
