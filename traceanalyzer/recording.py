"""Was everything the analysis needs recorded? (``traceanalyzer info``, docs/capture.md)

One check per need, each a registry entry: its name, what to record when it is missing,
and a test on the trace. A check that does not apply (e.g. CSwitch when every call
carries its thread) passes with the reason; a trace without calls says so (:data:`NO_CALLS`)
wherever a check is about calls, rather than a claim about calls it does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow.compute as pc

from traceanalyzer.model.schema import IMAGE_LOAD_EVENTS, PROCESS_EVENTS, THREAD_EVENTS
from traceanalyzer.model.stats import LOSS_COUNTERS
from traceanalyzer.model.trace import Trace


@dataclass(frozen=True)
class Need:
    """One thing a trace should hold; ``check`` returns (ok, detail)."""

    name: str
    remedy: str
    check: Callable[[Trace], tuple[bool, str]]


#: What the checks about calls say of a trace that has none.
NO_CALLS = "no driver calls in the trace"


def _count(trace: Trace, names: tuple[str, ...]) -> int:
    return sum(trace.events_by_name.get(n, 0) for n in names)


def _present(trace: Trace, column: str) -> np.ndarray:
    calls = trace.table("calls", all_columns=False)
    if column not in calls.column_names:
        return np.zeros(calls.num_rows, bool)
    return ~np.asarray(pc.is_null(calls.column(column)).to_numpy(zero_copy_only=False), bool)


def _calls(trace: Trace) -> tuple[bool, str]:
    n = trace.table("calls", all_columns=False).num_rows
    return n > 0, f"{n} calls" if n else NO_CALLS


def _processes(trace: Trace) -> tuple[bool, str]:
    n = _count(trace, PROCESS_EVENTS)
    return n > 0, f"{n} process events"


def _threads(trace: Trace) -> tuple[bool, str]:
    n = _count(trace, THREAD_EVENTS)
    return n > 0, f"{n} thread events"


def _cswitch(trace: Trace) -> tuple[bool, str]:
    n = _count(trace, ("CSwitch",))
    if n:
        return True, f"{n} context switches"
    if not trace.table("calls", all_columns=False).num_rows:
        return True, f"not needed: {NO_CALLS}"
    without = int(np.count_nonzero(~(_present(trace, "tid") | _present(trace, "effective_pid"))))
    if not without:
        return True, "not needed: every call carries its thread or effective_pid"
    return False, f"{without} calls carry neither tid nor effective_pid and there is no CSwitch"


def _images(trace: Trace) -> tuple[bool, str]:
    raw = int(np.count_nonzero(_present(trace, "return_address")))
    unresolved = trace.stats.total("unresolved_return_addresses")
    n = _count(trace, IMAGE_LOAD_EVENTS)  # an ImageDebugId row names a build, not an image
    if not raw:
        calls = trace.table("calls", all_columns=False).num_rows
        return True, f"{n} image events ({'calls carry caller names' if calls else NO_CALLS})"
    if unresolved:
        return False, f"{unresolved} of {raw} return addresses are in no loaded module ({n} image events)"
    return True, f"{n} image events; {raw} return addresses resolved"


def _complete(trace: Trace) -> tuple[bool, str]:
    lost = sum(trace.stats.total(k) for k in ("lost_events", "lost_buffers"))
    damaged = sum(trace.stats.total(k) for k in LOSS_COUNTERS)
    parts = ([f"{lost} events or buffers lost while recording"] if lost else []) + \
        ([f"{damaged} buffers/records/rows lost to a damaged file"] if damaged else [])
    return not parts, "; ".join(parts) or "no loss reported"


NEEDS: tuple[Need, ...] = (
    Need("MDL calls", "enable the MdlTrace provider (capture/mdltrace.wprp) and build the driver "
         "with MDLTRACE_ENABLED", _calls),
    Need("process events", "record the kernel ProcessThread keyword (process start/end and rundown)", _processes),
    Need("thread events", "record the kernel ProcessThread keyword (thread start/end and rundown)", _threads),
    Need("context switches", "record the kernel CSwitch keyword", _cswitch),
    Need("image loads", "record the kernel Loader keyword (the driver's base and size)", _images),
    Need("no loss", "larger or more buffers (BufferSize/Buffers in the profile), or file mode", _complete),
)


def recording_check(trace: Trace) -> dict[str, Any]:
    """``{"complete": bool, "checks": [{name, ok, detail, remedy}], "missing": [name]}``."""
    checks = []
    for need in NEEDS:
        ok, detail = need.check(trace)
        checks.append({"name": need.name, "ok": bool(ok), "detail": detail, "remedy": need.remedy})
    missing = [c["name"] for c in checks if not c["ok"]]
    return {"complete": not missing, "checks": checks, "missing": missing}
