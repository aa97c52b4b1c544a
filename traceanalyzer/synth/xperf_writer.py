"""Write ``xperf -a dumper`` text from a canonical event table (test and benchmark input).

The layout follows what xperf prints (header lines per event type, the info line,
right-aligned comma-separated rows, ``name ( PID)`` cells, quoted file names); the
column sets of two xperf generations are available (``variant="win10"`` / ``"win7"``)
so tests can check that the reader maps columns by name, not by position.

What xperf text carries of the canonical table: time at microsecond resolution
(``time_ns // 1000``), event, pid, tid, cpu (calls), every call column, CSwitch
new/old tid/pid and cpu, process pid/parent_pid/image (base name) and, with the
win10 column set, wow64 (process Flags 0x2), thread pid/tid, image
pid/base/image_size/image. Rows of other events are written with a header of their
own (TimeStamp, Process Name ( PID), ThreadID, CPU). ``ImageDebugId`` rows are not
written: xperf prints a build record as a ``DbgID_RSDS`` line whose columns no real dump
shows us and the reader does not map (docs/text_formats.md), and a line under our own
name would read back as a build record of no build.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.model.schema import CALL_EVENTS, COLUMNS, IO_EVENTS

_FILETIME_EPOCH = _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)

_PROCESS_COLS = {
    "win10": ["TimeStamp", "Process Name ( PID)", "ParentPID", "SessionID", "UniqueKey",
              "DirectoryTableBase", "Flags", "UserSid", "Command Line", "Package Full Name",
              "Package Relative Application Id"],
    "win7": ["TimeStamp", "Process Name ( PID)", "ParentPID", "SessionID", "UniqueKey",
             "UserSid", "Command Line"],
}
_THREAD_COLS = {
    "win10": ["TimeStamp", "Process Name ( PID)", "ThreadID", "StackBase", "StackLimit",
              "UsrStkBase", "UsrStkLmt", "TebBase", "SubProcessTag", "BasePri", "PagePri",
              "IoPri", "Flags", "Image!Function"],
    "win7": ["TimeStamp", "Process Name ( PID)", "ThreadID", "StackBase", "StackLimit",
             "UsrStkBase", "UsrStkLmt", "TebBase", "SubProcessTag", "Image!Function"],
}
_IMAGE_COLS = {
    "win10": ["TimeStamp", "Process Name ( PID)", "BaseAddr", "EndAddr", "Checksum",
              "TimeDateStamp", "DefaultBase", "FileName", "Relocated", "NT FileName"],
    "win7": ["TimeStamp", "Process Name ( PID)", "BaseAddr", "EndAddr", "Checksum",
             "TimeDateStamp", "DefaultBase", "FileName"],
}
_CSWITCH_COLS = {
    "win10": ["TimeStamp", "New Process Name ( PID)", "New TID", "NPri", "NQnt", "TmSinceLast",
              "WaitTime", "Old Process Name ( PID)", "Old TID", "OPri", "OQnt", "OldState",
              "Wait Reason", "Swapable", "InSwitchTime", "CPU", "IdealProc", "OldRemQnt",
              "NewPriDecr", "PrevCState", "OldThrdBamQosLevel", "NewThrdBamQosLevel"],
    "win7": ["TimeStamp", "New Process Name ( PID)", "New TID", "NPri", "NQnt", "TmSinceLast",
             "WaitTime", "Old Process Name ( PID)", "Old TID", "OPri", "OQnt", "OldState",
             "Wait Reason", "Swapable", "InSwitchTime", "CPU", "IdealProc", "OldRemQnt",
             "NewPriDecr", "PrevCState"],
}
_GENERIC_COLS = ["TimeStamp", "Process Name ( PID)", "ThreadID", "CPU", "etw:ActivityId",
                 "etw:Related ActivityId", "etw:UserSid", "etw:SessionId"]

_KERNEL_NAMES = {
    "ProcessStart": "P-Start", "ProcessEnd": "P-End", "ProcessRundown": "P-DCStart",
    "ProcessRundownEnd": "P-DCEnd",
    "ThreadStart": "T-Start", "ThreadEnd": "T-End", "ThreadRundown": "T-DCStart",
    "ThreadRundownEnd": "T-DCEnd",
    "ImageLoad": "I-Start", "ImageUnload": "I-End", "ImageRundownEnd": "I-DCEnd", "CSwitch": "CSwitch",
}
#: Call payload columns written in hex (pointers), as TraceLogging HexInt64 prints them.
_HEX_COLUMNS = frozenset(("mdl", "source_mdl", "va", "mapped_va", "irp", "return_address", "base"))
_PAYLOAD_EXCLUDED = frozenset(("time_ns", "event", "cpu", "pid", "tid", "new_tid", "old_tid",
                               "new_pid", "old_pid", "parent_pid", "image", "wow64", "base",
                               "image_size"))
_CALL_PAYLOAD = [c for c in COLUMNS if c not in _PAYLOAD_EXCLUDED]


def _basename(image: str | None) -> str:
    if not image:
        return "Unknown"
    return image.replace("/", "\\").rsplit("\\", 1)[-1]


def _name_pid(name: str, pid: Any, quote: bool) -> str:
    if pid is None:
        pid = -1
    shown = f'"{name}"' if quote else name
    return f"{shown} ({int(pid):>4})"


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if "," in text or '"' in text:
        return '"' + text.replace('"', "'") + '"'
    return text


def _payload(col: str, value: Any, enum_numbers: bool) -> str:
    if value is None:
        return ""
    if col in _HEX_COLUMNS:
        return f"0x{int(value):016x}"
    if col == "tag":
        return f"0x{int(value):08x}"
    if enum_numbers and col in ("access_mode", "operation", "cache_type"):
        from traceanalyzer.model.schema import ACCESS_MODES, CACHE_TYPES, OPERATIONS

        table = {"access_mode": ACCESS_MODES, "operation": OPERATIONS, "cache_type": CACHE_TYPES}[col]
        return str(table.index(value)) if value in table else _text(value)
    return _text(value)


class _Writer:
    def __init__(self, columns: dict[str, list[Any]], n: int, variant: str, quote_names: bool,
                 enum_numbers: bool, trailing_column: bool) -> None:
        self.c = columns
        self.n = n
        self.variant = variant
        self.quote = quote_names
        self.enum_numbers = enum_numbers
        self.trailing = trailing_column
        self.names = self._process_names()
        self.thread_pid = self._thread_pids()
        self.headers: dict[str, list[str]] = {}

    def get(self, col: str, i: int) -> Any:
        values = self.c.get(col)
        return None if values is None else values[i]

    def _process_names(self) -> dict[int, str]:
        names = {0: "Idle", 4: "System"}
        for i in range(self.n):
            event, pid = self.get("event", i), self.get("pid", i)
            if event in ("ProcessStart", "ProcessRundown") and pid is not None:
                names[int(pid)] = _basename(self.get("image", i))
            elif event == "ProcessRundownEnd" and pid is not None:  # xperf names it too
                names.setdefault(int(pid), _basename(self.get("image", i)))
        return names

    def _thread_pids(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for i in range(self.n):
            if self.get("event", i) in ("ThreadStart", "ThreadRundown", "ThreadRundownEnd") and self.get("tid", i) is not None:
                if self.get("pid", i) is not None:
                    out[int(self.get("tid", i))] = int(self.get("pid", i))
        return out

    def proc(self, pid: Any) -> str:
        name = self.names.get(int(pid), "Unknown") if pid is not None else "Unknown"
        return _name_pid(name, pid, self.quote)

    def call_fields(self, event: str) -> list[str]:
        present = set()
        for i in range(self.n):
            if self.c["event"][i] == event:
                present.update(col for col in _CALL_PAYLOAD if self.get(col, i) is not None)
        return [col for col in _CALL_PAYLOAD if col in present]

    def row(self, i: int) -> tuple[str, list[str]] | None:
        """(xperf event name, cells) of row ``i``, or None for a row not written."""
        event = self.c["event"][i]
        if event == "ImageDebugId":
            return None
        us = str(int(self.c["time_ns"][i]) // 1000)
        pid, tid, cpu = self.get("pid", i), self.get("tid", i), self.get("cpu", i)
        v = self.variant
        if event in ("ProcessStart", "ProcessEnd", "ProcessRundown", "ProcessRundownEnd"):
            name = _KERNEL_NAMES[event]
            cols = list(_PROCESS_COLS[v])
            if event == "ProcessEnd":
                cols.insert(cols.index("UniqueKey") + 1, "Status")
            self.headers.setdefault(name, cols)
            shown = _name_pid(_basename(self.get("image", i)) if self.get("image", i) else self.names.get(int(pid), "Unknown"), pid, self.quote)
            parent = self.get("parent_pid", i)
            values = [us, shown, "" if parent is None else str(parent), "1", "0x0000938192a10300"]
            if event == "ProcessEnd":
                values.append("0x00000000")
            if v == "win10":
                values += ["0x000000049f5be000", "0x00000002" if self.get("wow64", i) else "0x00000000"]
            values += ["S-1-5-18", '"C:\\Windows\\app.exe" --opt a,b', ]
            if v == "win10":
                values += ["<none>", "<none>"]
            return name, values
        if event in ("ThreadStart", "ThreadEnd", "ThreadRundown", "ThreadRundownEnd"):
            name = _KERNEL_NAMES[event]
            self.headers.setdefault(name, _THREAD_COLS[v])
            values = [us, self.proc(pid), "" if tid is None else str(tid)] + ["0xfffffe8891310000"] * 5
            values += ["0x00000000"] + (["8", "5", "2", "0x00"] if v == "win10" else [])
            values += ["ntdll.dll!RtlUserThreadStart"]
            if self.trailing:
                values.append('"Unknown"')
            return name, values
        if event in ("ImageLoad", "ImageUnload", "ImageRundownEnd"):
            name = _KERNEL_NAMES[event]
            self.headers.setdefault(name, _IMAGE_COLS[v])
            base = self.get("base", i)
            size = self.get("image_size", i)
            end = None if base is None or size is None else int(base) + int(size)
            image = self.get("image", i)
            values = [us, self.proc(pid), "" if base is None else f"0x{int(base):016x}",
                      "" if end is None else f"0x{end:016x}", "0x00000000", "0x00000000",
                      "0x0000000000000000", "" if image is None else f'"{image}"']
            if v == "win10":
                values += ["", "" if image is None else f'"{image}"']
            return name, values
        if event == "CSwitch":
            self.headers.setdefault("CSwitch", _CSWITCH_COLS[v])
            new_tid, old_tid = self.get("new_tid", i), self.get("old_tid", i)
            new_pid = self.get("new_pid", i)
            old_pid = self.get("old_pid", i)
            if new_pid is None and new_tid is not None:
                new_pid = self.thread_pid.get(int(new_tid))
            if old_pid is None and old_tid is not None:
                old_pid = self.thread_pid.get(int(old_tid))
            c = "" if cpu is None else str(cpu)
            values = [us, self.proc(new_pid), "" if new_tid is None else str(new_tid), "8", "-1", "0", "0",
                      self.proc(old_pid), "" if old_tid is None else str(old_tid), "8", "-1", "Waiting",
                      "Executive", "NonSwap", "0", c, c, "0", "0", "0"]
            if v == "win10":
                values += ["Important", "Important"]
            return "CSwitch", values
        if event in CALL_EVENTS or event in IO_EVENTS:
            name = f"MdlTrace/{event}/win:Info"
            if name not in self.headers:
                self.headers[name] = _GENERIC_COLS + self.call_fields(event)
            fields = self.headers[name][len(_GENERIC_COLS):]
            values = [us, self.proc(pid), "" if tid is None else str(tid), "" if cpu is None else str(cpu),
                      "", "", "", ""]
            values += [_payload(col, self.get(col, i), self.enum_numbers) for col in fields]
            return name, values
        self.headers.setdefault(event, ["TimeStamp", "Process Name ( PID)", "ThreadID", "CPU"])
        return event, [us, self.proc(pid), "" if tid is None else str(tid), "" if cpu is None else str(cpu)]


def write_xperf_text(
    events: pa.Table | Any,
    path: str | Path,
    *,
    variant: str = "win10",
    os_version: str = "10.0.19045",
    lost_events: int = 0,
    lost_buffers: int = 0,
    start_time_utc: str = "2026-01-01T00:00:00+00:00",
    pointer_size: int = 8,
    trace_name: str = "trace.etl",
    quote_names: bool = False,
    enum_numbers: bool = False,
    trailing_column: bool = False,
    extra_lines: Iterable[tuple[int, str]] = (),
) -> Path:
    """Write ``events`` (canonical table: Arrow table or pandas DataFrame) as xperf text.

    variant: ``"win10"`` or ``"win7"`` column sets. quote_names: write ``"app.exe" (12)``
    (as newer xperf does for generic events). enum_numbers: write access_mode /
    operation / cache_type as numbers. trailing_column: add an extra unnamed column to
    thread rows (as real xperf does for ThreadName). extra_lines: (row index, text) pairs
    inserted verbatim before that event row (for bad-input tests). Rows are written in
    table order (ImageDebugId rows left out, see above). Returns the path.
    """
    if variant not in _PROCESS_COLS:
        raise ValueError(f"unknown xperf variant {variant!r}; use 'win10' or 'win7'")
    table = events if isinstance(events, pa.Table) else pa.Table.from_pandas(events, preserve_index=False)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    writer = _Writer(columns, table.num_rows, variant, quote_names, enum_numbers, trailing_column)
    rows = [writer.row(i) for i in range(table.num_rows)]
    inserts: dict[int, list[str]] = {}
    for index, text in extra_lines:
        inserts.setdefault(index, []).append(text)
    start = _dt.datetime.fromisoformat(start_time_utc)
    filetime = int((start - _FILETIME_EPOCH).total_seconds()) * 10_000_000 + start.microsecond * 10
    last_us = max((int(t) // 1000 for t in columns.get("time_ns", [])), default=0)
    out: list[str] = ["BeginHeader"]
    for name, cols in writer.headers.items():
        out.append(f"{name:>23}, " + ", ".join(cols))
    out.append("EndHeader")
    out.append(
        f"OS Version: {os_version}, Trace Size: 1024KB, Events Lost: {lost_events}, "
        f"Buffers lost: {lost_buffers}, Trace Start: {filetime}, "
        f"Trace Length: {last_us // 1_000_000 + 1} sec, PointerSize: {pointer_size}, Trace Name: {trace_name}"
    )
    out.append(f"{'FirstReliableEventTimeStamp':>23}, {0:>10}")
    for i, row in enumerate(rows):
        out.extend(inserts.get(i, ()))
        if row is not None:
            out.append(f"{row[0]:>23}, " + ", ".join(f"{v:>10}" for v in row[1]))
    out.extend(inserts.get(len(rows), ()))
    path = Path(path)
    write_text_atomic(path, ("\n".join(out) + "\n").replace("\n", "\r\n"))
    return path
