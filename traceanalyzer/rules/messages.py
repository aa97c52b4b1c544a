"""Finding messages: what happened, why it matters on a real machine, what to do.

One template per rule (``{process}``, ``{pid}``, ``{tid}``, ``{mdl}``, ``{bytes}``,
``{t_ms}``, ``{owner}``, ``{other}`` ... are filled from the finding); the consequence
and advice come from the catalogue.
"""

from __future__ import annotations

import string
from functools import cache
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from traceanalyzer.rules.catalogue import RULES

TEMPLATES: dict[str, str] = {
    "UNLOCK_WHILE_USER_MAPPED": "MmUnlockPages on MDL {mdl} at {t_ms} (thread {tid}, {caller_ctx}) while {bytes} are still mapped into {process} ({pid}) at {va}.",
    "USER_UNMAP_WRONG_PROCESS": "MmUnmapLockedPages of {va} (MDL {mdl}, mapped into {process} ({pid})) ran in {caller_ctx} at {t_ms}; the real mapping stays live.",
    "USER_UNMAP_AFTER_OWNER_EXIT": "MmUnmapLockedPages of {va} (MDL {mdl}) at {t_ms} in {caller_ctx} after {process} ({pid}), the process it was mapped into, had exited.",
    "LOCKED_PAGES_AT_PROCESS_EXIT": "{process} ({pid}) exited at {t_ms} while MDL {mdl} still held {bytes} of its pages locked.",
    "USER_MAPPING_NOT_UNMAPPED_AT_EXIT": "{process} ({pid}) exited at {t_ms} with MDL {mdl} still mapped at {va}: {bytes} of physical memory leaked until reboot.",
    "FREE_PAGES_WHILE_USER_MAPPED": "{event} on MDL {mdl} at {t_ms} while {bytes} are still mapped into {process} ({pid}) at {va}.",
    "USER_MAP_IN_ARBITRARY_CONTEXT": "{event}(UserMode) of MDL {mdl} to {call_va} at {t_ms} in {caller_ctx}, not in a requesting application's context.",
    "USER_MAP_KERNEL_MEMORY": "{event}(UserMode) of MDL {mdl}, which describes kernel memory ({bytes}), into {process} ({pid}) at {va} at {t_ms}.",
    "USER_MAP_OUTSIDE_USER_RANGE": "{event}(UserMode) of MDL {mdl} into {process} ({pid}) at {t_ms} returned {va}, outside that process's user range.",
    "CACHE_TYPE_CONFLICT": "{event} of MDL {mdl} (buffer {mdl_va}, {bytes}) at {call_va} at {t_ms} in {caller_ctx} with a cache type other than a live mapping of the same pages.",
    "UNLOCK_NOT_LOCKED": "MmUnlockPages on MDL {mdl} (buffer {mdl_va}) at {t_ms} in {caller_ctx}, which is not locked; the call changes nothing.",
    "DOUBLE_LOCK": "MmProbeAndLockPages on MDL {mdl} (buffer {mdl_va}, {bytes}) at {t_ms} in {caller_ctx}, which is already locked.",
    "FREE_MDL_WHILE_LOCKED": "IoFreeMdl of MDL {mdl} (buffer {mdl_va}) at {t_ms} in {caller_ctx} while its {bytes} are still locked; the MDL is freed, the pages stay locked.",
    "LOCKED_MDL_NEVER_UNLOCKED": "MDL {mdl} (buffer {mdl_va}, {bytes}) locked by MmProbeAndLockPages at {t_ms} in {caller_ctx} is still locked (no MmUnlockPages) when the trace ends.",
    "LOCK_IN_WRONG_PROCESS": "MmProbeAndLockPages of user buffer {mdl_va} (MDL {mdl}) at {t_ms} in {caller_ctx}, {other}.",
    "KMAP_UNLOCKED_MDL": "{event} of MDL {mdl} (buffer {mdl_va}) at {t_ms} in {caller_ctx}, which is neither locked, nonpaged-built nor page-allocated; no mapping is made.",
    "KMAP_SECOND_SYSTEM_MAPPING": "{event} of MDL {mdl} to {call_va} at {t_ms} in {caller_ctx}; the MDL already has a system address.",
    "KUNMAP_NOT_MAPPED": "MmUnmapLockedPages of system address {call_va} at {t_ms} in {caller_ctx}, but MDL {mdl} has no live system mapping.",
    "KUNMAP_WRONG_VA_OR_MDL": "MmUnmapLockedPages({call_va}, MDL {mdl}) at {t_ms} in {caller_ctx} matches no live mapping of that MDL.",
    "USER_MAP_UNBALANCED": "MmUnmapLockedPages of user address {call_va} at {t_ms} in {caller_ctx}, never returned by a live mapping of MDL {mdl}.",
    "KMAP_LEAK": "The system mapping of MDL {mdl} at {va} ({bytes}), made at {t_ms} in {caller_ctx}, is never released with MmUnmapLockedPages.",
    "MDL_USE_AFTER_FREE": "{event} on MDL {mdl} at {t_ms} in {caller_ctx}, after it was freed; the call changes nothing.",
    "MDL_STRUCT_LEAK": "MDL {mdl} (buffer {mdl_va}) allocated by IoAllocateMdl at {t_ms} in {caller_ctx} is never freed with IoFreeMdl.",
    "KMAP_BUGCHECK_ON_FAILURE": "{event} of MDL {mdl} to {call_va} at {t_ms} in {caller_ctx} asks to bug check on failure.",
    "KMAP_EXECUTABLE": "{event} of MDL {mdl} to {call_va} at {t_ms} in {caller_ctx} without MdlMappingNoExecute.",
    "MAP_FAILED_UNCHECKED": "A mapping of MDL {mdl} failed (returned NULL) and {event} used the NULL address at {t_ms} in {caller_ctx}.",
    "ATTACH_UNBALANCED": "Thread {tid} of {process} ({pid}) attached with KeStackAttachProcess at {t_ms} and never detached.",
    "DETACH_MISMATCH": "KeUnstackDetachProcess at {t_ms} on thread {tid} of {caller_ctx}, which is not attached.",
    "UNLOCK_BUILT_OR_PARTIAL_MDL": "MmUnlockPages on MDL {mdl} (buffer {mdl_va}, {bytes}) at {t_ms} in {caller_ctx}, but the MDL was built for nonpaged pool or as a partial MDL.",
    "LOCK_BUILT_OR_PARTIAL_MDL": "MmProbeAndLockPages on MDL {mdl} (buffer {mdl_va}, {bytes}) at {t_ms} in {caller_ctx}, but the MDL was built for nonpaged pool or as a partial MDL.",
    "KUNMAP_NONPAGED_MDL": "MmUnmapLockedPages of {call_va}, the pool address of nonpaged-built MDL {mdl}, at {t_ms} in {caller_ctx}.",
    "UNLOCK_ALLOCATED_PAGES_MDL": "MmUnlockPages on MDL {mdl} ({bytes} from MmAllocatePagesForMdl) at {t_ms} in {caller_ctx}.",
    "ALLOC_PAGES_LEAK": "MDL {mdl} ({bytes} from {event}) allocated at {t_ms} by {process} ({pid}) is never passed to MmFreePagesFromMdl.",
    "ALLOC_PAGES_WRONG_FREE": "IoFreeMdl of MDL {mdl} ({bytes} from MmAllocatePagesForMdl) at {t_ms} in {caller_ctx}, without MmFreePagesFromMdl first.",
    "FREE_PAGES_WRONG_MDL": "MmFreePagesFromMdl on MDL {mdl} (buffer {mdl_va}, {bytes}) at {t_ms} in {caller_ctx}, but the MDL was not made by MmAllocatePagesForMdl(Ex).",
    "ALLOC_PAGES_SHORT": "{event} on MDL {mdl} at {t_ms} in {caller_ctx} uses more bytes than the {bytes} the short MmAllocatePagesForMdl(Ex) allocation returned.",
    "PARTIAL_SOURCE_NOT_LOCKED": "IoBuildPartialMdl into MDL {mdl} (va {mdl_va}) at {t_ms} in {caller_ctx} from a source MDL that is not locked, nonpaged-built or page-allocated.",
    "PARTIAL_RANGE_INVALID": "IoBuildPartialMdl into MDL {mdl} at {t_ms} in {caller_ctx} asks for {call_va} ({bytes}), outside the source MDL's range.",
    "PARTIAL_OUTLIVES_SOURCE": "{event} on partial MDL {mdl} (va {mdl_va}) at {t_ms} in {caller_ctx}, after its source MDL was unlocked or freed.",
    "PARTIAL_REUSE_WITHOUT_PREPARE": "IoBuildPartialMdl rebuilds MDL {mdl} at {t_ms} in {caller_ctx} while its own system mapping at {va} is live (no MmPrepareMdlForReuse).",
    "PARTIAL_UNMAP_ILLEGAL": "MmUnmapLockedPages of {call_va} through partial MDL {mdl} at {t_ms} in {caller_ctx}; the partial MDL has no mapping of its own.",
    "RESERVED_MAP_WHILE_MAPPED": "MmMapLockedPagesWithReservedMapping of MDL {mdl} into reserved range {call_va} at {t_ms} in {caller_ctx}, which is already mapped.",
    "RESERVED_UNMAP_NOT_MAPPED": "MmUnmapReservedMapping of reserved range {call_va} (MDL {mdl}) at {t_ms} in {caller_ctx}, which has nothing mapped.",
    "RESERVED_FREE_WHILE_MAPPED": "MmFreeMappingAddress of reserved range {call_va} ({bytes}) at {t_ms} in {caller_ctx} while an MDL is still mapped in it; the range is freed anyway.",
    "RESERVED_TAG_MISMATCH": "{event} on reserved range {call_va} (MDL {mdl}) at {t_ms} in {caller_ctx} with a pool tag other than the reservation's; the call changes nothing.",
    "RESERVED_LEAK": "Reserved range {call_va} ({bytes}) allocated with MmAllocateMappingAddress at {t_ms} by {process} ({pid}) is never freed with MmFreeMappingAddress.",
    "IRQL_VIOLATION": "{event} on MDL {mdl} at {t_ms} in {caller_ctx} at IRQL {irql}, above the routine's documented maximum.",
    "DRIVER_FREES_IO_MANAGER_MDL": "{event} on MDL {mdl} ({bytes}) at {t_ms} in {caller_ctx}, but the MDL was allocated with an IRP whose completion will unlock and free it.",
    "USER_MAP_OUTLIVES_IRP": "IoCompleteRequest at {t_ms} in {caller_ctx} frees MDL {mdl} while {bytes} of it are still mapped into {process} ({pid}) at {va}.",
    "TRACE_CONTEXT_UNRESOLVED": "{count} call(s) ({event}) could not be attributed to a process; context-dependent rules could not be checked on them.",
    "TRACE_UNKNOWN_EVENT": "{count} event(s) named {event!r} were not recognised.",
    "TRACE_EVENTS_LOST": "The trace reports {count} lost event(s) or buffer(s); findings may be incomplete.",
    "TRACE_OPEN_AT_END": "{count} lock(s)/mapping(s) still open at the end of the trace ({bytes}).",
    "TRACE_TIME_DISORDER": "{count} event(s) out of time order in the source.",
}


DEFAULT_TEMPLATE = "{rule} at {t_ms}."


def message_for(rule: str, **fields: object) -> str:
    """Message for a finding: the event-specific sentence, then the consequence."""
    template = TEMPLATES.get(rule, DEFAULT_TEMPLATE)
    safe = _Defaulting(fields)
    safe.setdefault("rule", rule)
    return template.format_map(safe) + _consequence(rule)


def _consequence(rule: str) -> str:
    r = RULES.get(rule)
    if r is not None and r.consequence and not r.consequence.startswith("See "):
        return " " + r.consequence.rstrip(".") + "."
    return ""


@cache
def _pieces(rule: str) -> tuple[tuple[str, str | None, str | None, str], ...]:
    """(literal, field, format spec, conversion) of the rule's template."""
    return tuple(string.Formatter().parse(TEMPLATES.get(rule, DEFAULT_TEMPLATE)))


def messages_for(rules: np.ndarray, field: Callable[[str], np.ndarray | None]) -> np.ndarray:
    """The messages of many findings at once, column-wise: what :func:`message_for`
    writes for each row, built per rule by concatenating whole columns.

    ``rules``: the rule of each row. ``field(name)``: the values of template field
    ``name`` for every row (object array, what ``message_for`` gets as ``name=``), or
    None for a field nobody fills (written ``?``). Returns an object array of str.
    """
    out = np.empty(len(rules), dtype=object)
    codes, uniques = pd.factorize(np.asarray(rules, dtype=object))
    for k, rule in enumerate(uniques):
        rows = np.flatnonzero(codes == k)
        text = np.full(rows.size, "", dtype=object)
        for literal, name, spec, conversion in _pieces(rule):
            if literal:
                text = text + literal
            if name is None:
                continue
            values = (np.full(rows.size, rule, dtype=object) if name == "rule"
                      else field(name))
            if values is None:
                text = text + "?"
                continue
            values = values[rows] if name != "rule" else values
            text = text + _formatted(values, conversion, spec or "")
        out[rows] = text + _consequence(rule)
    return out


def _formatted(values: np.ndarray, conversion: str | None, spec: str) -> np.ndarray:
    """``format(value, spec)`` after ``!r``/``!s`` of each value, as an object array."""
    if conversion is None and not spec:
        return object_array(map(str, values))  # (numpy's str dtype drops trailing NULs)
    convert = {"r": repr, "s": str, "a": ascii}.get(conversion or "", lambda v: v)
    return object_array(format(convert(v), spec) for v in values)


def object_array(items: Iterable[object]) -> np.ndarray:
    """A 1-D object array of the items (strings stay str, lists are not unpacked)."""
    values = list(items)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return "?"
