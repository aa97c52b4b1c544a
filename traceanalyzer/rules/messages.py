"""Finding messages: what happened, why it matters on a real machine, what to do.

One template per rule (``{process}``, ``{pid}``, ``{tid}``, ``{mdl}``, ``{bytes}``,
``{t_ms}``, ``{owner}``, ``{other}`` ... are filled from the finding); the consequence
and advice come from the catalogue.
"""

from __future__ import annotations

from traceanalyzer.rules.catalogue import RULES

TEMPLATES: dict[str, str] = {
    "UNLOCK_WHILE_USER_MAPPED": "MmUnlockPages on MDL {mdl} at {t_ms} (thread {tid}, {caller_ctx}) while {bytes} are still mapped into {process} ({pid}) at {va}.",
    "USER_UNMAP_WRONG_PROCESS": "MmUnmapLockedPages of {va} (mapped into {process} ({pid})) ran in {caller_ctx} at {t_ms}; the real mapping stays live.",
    "USER_UNMAP_AFTER_OWNER_EXIT": "MmUnmapLockedPages of {va} at {t_ms} after {process} ({pid}), the process it was mapped into, had exited.",
    "LOCKED_PAGES_AT_PROCESS_EXIT": "{process} ({pid}) exited at {t_ms} while MDL {mdl} still held {bytes} of its pages locked.",
    "USER_MAPPING_NOT_UNMAPPED_AT_EXIT": "{process} ({pid}) exited at {t_ms} with MDL {mdl} still mapped at {va}: {bytes} of physical memory leaked until reboot.",
    "FREE_PAGES_WHILE_USER_MAPPED": "{event} on MDL {mdl} at {t_ms} while {bytes} are still mapped into {process} ({pid}) at {va}.",
    "USER_MAP_IN_ARBITRARY_CONTEXT": "UserMode mapping of MDL {mdl} made at {t_ms} in {caller_ctx}, not in a requesting application's context.",
    "USER_MAP_KERNEL_MEMORY": "MDL {mdl} describing kernel memory ({bytes}) mapped into user space of {process} ({pid}) at {t_ms}.",
    "USER_MAP_OUTSIDE_USER_RANGE": "User mapping of MDL {mdl} into {process} ({pid}) returned {va}, outside that process's user range.",
    "CACHE_TYPE_CONFLICT": "MDL {mdl} mapped at {t_ms} with a cache type different from a live mapping of the same pages.",
    "UNLOCK_NOT_LOCKED": "MmUnlockPages on MDL {mdl} at {t_ms}, which is not locked.",
    "DOUBLE_LOCK": "MmProbeAndLockPages on MDL {mdl} at {t_ms}, which is already locked.",
    "FREE_MDL_WHILE_LOCKED": "IoFreeMdl of MDL {mdl} at {t_ms} while its {bytes} are still locked.",
    "LOCKED_MDL_NEVER_UNLOCKED": "MDL {mdl} locked at {t_ms} ({bytes}) is still locked when the trace ends.",
    "LOCK_IN_WRONG_PROCESS": "MmProbeAndLockPages of user buffer {mdl_va} at {t_ms} in {caller_ctx}, but the MDL was allocated for {other}.",
    "KMAP_UNLOCKED_MDL": "{event} of MDL {mdl} at {t_ms}, which is neither locked, nonpaged-built nor page-allocated.",
    "KMAP_SECOND_SYSTEM_MAPPING": "Second kernel-mode mapping of MDL {mdl} at {t_ms}; it already has a system address.",
    "KUNMAP_NOT_MAPPED": "MmUnmapLockedPages of system address {va} at {t_ms}, but MDL {mdl} has no live system mapping.",
    "KUNMAP_WRONG_VA_OR_MDL": "MmUnmapLockedPages({va}, MDL {mdl}) at {t_ms} matches no live mapping of that MDL.",
    "USER_MAP_UNBALANCED": "MmUnmapLockedPages of user address {va} at {t_ms}, never returned by a live mapping of MDL {mdl}.",
    "KMAP_LEAK": "The system mapping of MDL {mdl} ({bytes}) is never unmapped.",
    "MDL_USE_AFTER_FREE": "{event} on MDL {mdl} at {t_ms}, after it was freed.",
    "MDL_STRUCT_LEAK": "MDL {mdl} allocated at {t_ms} is never freed.",
    "KMAP_BUGCHECK_ON_FAILURE": "Kernel-mode mapping of MDL {mdl} at {t_ms} asks to bug check on failure.",
    "KMAP_EXECUTABLE": "Kernel-mode mapping of MDL {mdl} at {t_ms} without MdlMappingNoExecute.",
    "MAP_FAILED_UNCHECKED": "A mapping of MDL {mdl} failed (returned NULL) and the NULL address was used at {t_ms}.",
    "ATTACH_UNBALANCED": "Thread {tid} of {process} ({pid}) attached with KeStackAttachProcess at {t_ms} and never detached.",
    "DETACH_MISMATCH": "KeUnstackDetachProcess at {t_ms} on thread {tid}, which is not attached.",
    "TRACE_CONTEXT_UNRESOLVED": "{count} call(s) ({event}) could not be attributed to a process; context-dependent rules could not be checked on them.",
    "TRACE_UNKNOWN_EVENT": "{count} event(s) named {event!r} were not recognised.",
    "TRACE_EVENTS_LOST": "The trace reports {count} lost event(s) or buffer(s); findings may be incomplete.",
    "TRACE_OPEN_AT_END": "{count} lock(s)/mapping(s) still open at the end of the trace ({bytes}).",
    "TRACE_TIME_DISORDER": "{count} event(s) out of time order in the source.",
}


def message_for(rule: str, **fields: object) -> str:
    """Message for a finding: the event-specific sentence, then the consequence."""
    template = TEMPLATES.get(rule, "{rule} at {t_ms}.")
    safe = _Defaulting(fields)
    safe.setdefault("rule", rule)
    text = template.format_map(safe)
    r = RULES.get(rule)
    if r is not None and r.consequence and not r.consequence.startswith("See "):
        text += " " + r.consequence.rstrip(".") + "."
    return text


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return "?"
