"""What to tell the user when a trace holds no MDL calls.

A trace without MdlTrace calls is normal input (a kernel-only capture, a trace of some
other provider): there is nothing to replay, and the useful answer is which provider to
enable and what the trace does contain. :func:`no_calls_notice` builds that answer once;
``hazards`` (text), ``summary()`` (``hazards --json``, summary.json) and the HTML report
all show it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from traceanalyzer.model.schema import FAMILIES, KNOWN_EVENTS
from traceanalyzer.model.trace import Trace
from traceanalyzer.readers.etl.tracelogging import provider_guid

#: The TraceLogging provider whose events are the calls (docs/trace-format.md).
MDL_PROVIDER = "MdlTrace"
MDL_PROVIDER_GUID = str(provider_guid(MDL_PROVIDER))
#: Provider shown for the kernel events the readers name (Process/Thread/Image/CSwitch).
KERNEL_PROVIDER = "NT Kernel Logger"
#: Entries of ``top_events`` / ``top_providers``; the one-line message names the first 3.
TOP = 10


def trace_contents(trace: Trace) -> Counter[str]:
    """Event counts by name: the events read (``events_by_name``) plus the ones counted
    but not read (``unknown_events`` by ``provider/event``, WPP records)."""
    counts: Counter[str] = Counter({k: int(v) for k, v in trace.events_by_name.items() if v})
    for name, n in trace.stats.by_detail("unknown_events").items():
        if name and name not in counts:  # the model counts unknown named rows here too
            counts[name] += int(n)
    wpp = trace.stats.total("wpp_events")
    if wpp:
        counts["WPP (TRACE_MESSAGE) records"] += int(wpp)
    return counts


def provider_of(event: str) -> str:
    """The provider an event name comes from: ``provider/event`` names carry it; the
    kernel events the readers name come from the kernel logger; else ``?``."""
    if "/" in event:
        return event.rsplit("/", 1)[0]
    if event in KNOWN_EVENTS and event not in FAMILIES["calls"][0]:
        return KERNEL_PROVIDER
    if event.startswith("WPP"):
        return "WPP"
    return "?"


def no_calls_notice(trace: Trace, n_calls: int) -> dict[str, Any] | None:
    """None when the trace has calls; else the notice (``message``, ``provider``,
    ``provider_guid``, ``top_events``, ``top_providers``: lists of ``{name, count}``)."""
    if n_calls:
        return None
    counts = trace_contents(trace)
    providers: Counter[str] = Counter()
    for name, n in counts.items():
        providers[provider_of(name)] += n
    top_events = [{"name": k, "count": v} for k, v in _top(counts)]
    top_providers = [{"name": k, "count": v} for k, v in _top(providers)]
    total = sum(counts.values())
    if total:
        named = [e for e in top_providers if e["name"] != "?"][:3]
        holds = (f"the trace holds {total} other event(s)"
                 + (", most from " + _listed(named) if named else "")
                 + "; top events: " + _listed(top_events[:3]))
    else:
        holds = "the trace holds no events at all"
    message = (f"no MdlTrace calls in this trace, nothing to replay: enable the TraceLogging "
               f"provider {MDL_PROVIDER} ({MDL_PROVIDER_GUID}) in the driver under test; {holds}")
    return {"message": message, "provider": MDL_PROVIDER, "provider_guid": MDL_PROVIDER_GUID,
            "top_events": top_events, "top_providers": top_providers}


def _listed(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['name']} ({e['count']})" for e in entries)


def _top(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
