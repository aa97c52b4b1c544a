"""The rule reference for users: ``traceanalyzer rules [ID]`` and ``docs/rules.md``.

Everything here is derived from the catalogue (:mod:`traceanalyzer.rules.catalogue`);
this module adds only the links to Microsoft's documentation: the DDI page of every
routine and the page of every bug check a rule's texts name. ``docs/rules.md`` is
:func:`rules_markdown`, written by ``traceanalyzer rules --markdown > docs/rules.md``; a
test fails when the file in the repository differs from what this module generates.
"""

from __future__ import annotations

import re
import textwrap
from typing import Final

from traceanalyzer.rules.catalogue import CALL_EFFECTS, PERMANENT_LEAKS, RULES, Rule

_DDI: Final = "https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/"
_BUGCHECK: Final = "https://learn.microsoft.com/en-us/windows-hardware/drivers/debugger/"

#: Routine (or type) name -> its page in Microsoft's DDI reference.
ROUTINE_PAGES: Final[dict[str, str]] = {
    name: _DDI + page for name, page in {
        "IoAllocateMdl": "wdm/nf-wdm-ioallocatemdl",
        "IoFreeMdl": "wdm/nf-wdm-iofreemdl",
        "IoBuildPartialMdl": "wdm/nf-wdm-iobuildpartialmdl",
        "IoCompleteRequest": "wdm/nf-wdm-iocompleterequest",
        "MmProbeAndLockPages": "wdm/nf-wdm-mmprobeandlockpages",
        "MmUnlockPages": "wdm/nf-wdm-mmunlockpages",
        "MmMapLockedPagesSpecifyCache": "wdm/nf-wdm-mmmaplockedpagesspecifycache",
        "MmMapLockedPages": "wdm/nf-wdm-mmmaplockedpages",
        "MmUnmapLockedPages": "wdm/nf-wdm-mmunmaplockedpages",
        "MmGetSystemAddressForMdlSafe": "wdm/nf-wdm-mmgetsystemaddressformdlsafe",
        "MmBuildMdlForNonPagedPool": "wdm/nf-wdm-mmbuildmdlfornonpagedpool",
        "MmAllocatePagesForMdl": "wdm/nf-wdm-mmallocatepagesformdl",
        "MmAllocatePagesForMdlEx": "wdm/nf-wdm-mmallocatepagesformdlex",
        "MmFreePagesFromMdl": "wdm/nf-wdm-mmfreepagesfrommdl",
        "MmPrepareMdlForReuse": "wdm/nf-wdm-mmpreparemdlforreuse",
        "MmAllocateMappingAddress": "wdm/nf-wdm-mmallocatemappingaddress",
        "MmFreeMappingAddress": "wdm/nf-wdm-mmfreemappingaddress",
        "MmMapLockedPagesWithReservedMapping": "wdm/nf-wdm-mmmaplockedpageswithreservedmapping",
        "MmUnmapReservedMapping": "wdm/nf-wdm-mmunmapreservedmapping",
        "KeStackAttachProcess": "ntifs/nf-ntifs-kestackattachprocess",
        "KeUnstackDetachProcess": "ntifs/nf-ntifs-keunstackdetachprocess",
        "MEMORY_CACHING_TYPE": "wdm/ne-wdm-_memory_caching_type",
    }.items()
}

#: The MDL structure's page, for a reference that cites the "MDL docs".
MDL_PAGE: Final = _DDI + "wdm/ns-wdm-_mdl"

#: Bug check code -> (name, page). Driver Verifier's findings are bug check 0xC4.
BUGCHECK_PAGES: Final[dict[int, tuple[str, str]]] = {
    code: (name, _BUGCHECK + f"bug-check-0x{code:x}--{name.lower().replace('_', '-')}")
    for code, name in {
        0x5: "INVALID_PROCESS_ATTACH_ATTEMPT",
        0x6: "INVALID_PROCESS_DETACH_ATTEMPT",
        0x1A: "MEMORY_MANAGEMENT",
        0x3F: "NO_MORE_SYSTEM_PTES",
        0x4E: "PFN_LIST_CORRUPT",
        0x76: "PROCESS_HAS_LOCKED_PAGES",
        0xC4: "DRIVER_VERIFIER_DETECTED_VIOLATION",
        0xCB: "DRIVER_LEFT_LOCKED_PAGES_IN_PROCESS",
        0xD8: "DRIVER_USED_EXCESSIVE_PTES",
        0xDA: "SYSTEM_PTE_MISUSE",
        0x12E: "INVALID_MDL_RANGE",
    }.items()
}

_ROUTINE_RE: Final = re.compile(r"\b(" + "|".join(sorted(ROUTINE_PAGES, key=len, reverse=True)) + r")\b")
_CODE_RE: Final = re.compile(r"(?<![0-9A-Za-z/])0x([0-9A-Fa-f]+)\b")
_MDL_DOCS_RE: Final = re.compile(r"\bMDL docs\b")

TIERS: Final[dict[int, str]] = {
    1: "Tier 1: the lock/map lifecycle",
    2: "Tier 2: the other MDL families",
    0: "Trace quality findings",
}


def documentation_links(rule: Rule) -> list[tuple[str, str]]:
    """(label, URL) of the Microsoft pages a rule's texts name: routines first (in order
    of appearance), the MDL structure when the reference cites it, then bug checks
    (Driver Verifier violations are bug check 0xC4, written "Verifier 0xC4/0x..")."""
    text = " ".join((rule.fires_when, rule.consequence, rule.reference))
    links: list[tuple[str, str]] = []
    for name in dict.fromkeys(_ROUTINE_RE.findall(text)):
        links.append((name, ROUTINE_PAGES[name]))
    if _MDL_DOCS_RE.search(rule.reference):
        links.append(("MDL structure", MDL_PAGE))
    codes = [int(c, 16) for c in _CODE_RE.findall(text)]
    for code in dict.fromkeys(c for c in codes if c in BUGCHECK_PAGES):
        name, url = BUGCHECK_PAGES[code]
        links.append((f"Bug check 0x{code:X} {name}", url))
    return links


def _severity_text(rule: Rule) -> str:
    if rule.severity_user_va:
        return f"{rule.severity} ({rule.severity_user_va} when the locked buffer is a user address)"
    return rule.severity


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", '"')) else text + "."


def rule_text(rule_id: str, width: int = 88) -> str:
    """The full text of one rule, as ``traceanalyzer rules ID`` prints it (KeyError with
    the closest IDs when unknown; IDs are matched case-insensitively)."""
    from traceanalyzer.rules.catalogue import rule as lookup

    r = lookup(rule_id)
    fields = [
        ("Severity", _severity_text(r)),
        ("Tier", f"{r.tier} ({TIERS[r.tier].split(': ', 1)[-1]})" if r.tier else "trace quality"),
        ("Fires when", _sentence(r.fires_when)),
        ("On a real machine", _sentence(r.consequence)),
        ("What to do", _sentence(r.advice)),
        ("Reference", r.reference),
    ]
    lines = [r.id, "=" * len(r.id)]
    for label, value in fields:
        lines.extend(textwrap.wrap(value, width=width, initial_indent=f"{label + ':':<19}",
                                   subsequent_indent=" " * 19))
    links = documentation_links(r)
    if links:
        lines.append("Microsoft docs:")
        lines.extend(f"  {label}: {url}" for label, url in links)
    return "\n".join(lines) + "\n"


def catalogue_text() -> str:
    """Every rule, one line each (ID, severity, tier, when it fires), grouped by tier, as
    ``traceanalyzer rules`` prints it."""
    width = max(len(i) for i in RULES)
    out: list[str] = []
    for tier, title in TIERS.items():
        out.append(f"{title}:")
        for r in (r for r in RULES.values() if r.tier == tier):
            when = r.fires_when if len(r.fires_when) <= 70 else r.fires_when[:67].rstrip() + "..."
            out.append(f"  {r.id:<{width}}  {r.severity:<8}  {when}")
        out.append("")
    out.append("traceanalyzer rules ID prints one rule in full (what it does to a real "
               "machine, what to do, Microsoft docs).")
    return "\n".join(out) + "\n"


# --- docs/rules.md ------------------------------------------------------------------------

_INTRO = """\
# Rule reference

<!-- Generated from traceanalyzer/rules/catalogue.py by
     `traceanalyzer rules --markdown > docs/rules.md`; do not edit by hand
     (tests/core/test_rules_reference.py fails when this file is stale). -->

Every finding traceanalyzer reports carries one rule ID from this page. IDs are stable:
tests, baselines, JSON, JUnit and SARIF outputs all key on them. Severity is one of
`critical`, `high`, `medium`, `low`, `info`. `traceanalyzer rules` lists the rules and
`traceanalyzer rules ID` prints one of them in full.

The *effective process* of a call is the process whose address space the calling thread
uses at that moment: the top of the thread's KeStackAttachProcess stack if it is
attached, otherwise the thread's owning process ([trace-format.md](trace-format.md#process-context)).
A `trace.window` keeps the attaches still open at its start: a thread attached then is
attached in the window. A thread alive when the trace began may have been attached then:
its KeUnstackDetachProcess with no attach before it in the trace is no DETACH_MISMATCH
(only a thread the trace shows start is known not to be attached), and its calls up to
that detach ran in a process the trace does not name: no rule assumes their process.

Pages spanned by an MDL = ceil(((va mod 4096) + size) / 4096). The bytes of a finding are
pages x 4096 unless the rule says otherwise.

An illegal call changes no modelled state unless its rule says otherwise: a wrong-process
unmap leaves the original mapping live in its process (the real unmap hit another address
space), a double unlock changes nothing, a call on a freed MDL does not revive it. A call
that the routine does carry out although it is illegal takes effect: MmUnlockPages under
a live user mapping does unlock (that is where the exposure window comes from), IoFreeMdl
or MmFreePagesFromMdl under a live mapping does free. Later findings that follow from the
first (the still-live mapping then leaking at exit) are reported too, each under its own
rule.

A process's exit is not the instant of its ProcessEnd event: Windows logs that event
as the process starts to exit, then runs down its handles on its exiting thread (the
driver's IRP_MJ_CLEANUP, in the process's context) and only then deletes its address
space. Calls that run in the process's context after its ProcessEnd event (its own
threads, or a thread attached to it) are its teardown: an unmap, unlock or free there is
cleanup before the exit, and the exit rules (LOCKED_PAGES_AT_PROCESS_EXIT,
USER_MAPPING_NOT_UNMAPPED_AT_EXIT, USER_UNMAP_AFTER_OWNER_EXIT) look at what is left
after the last of them. Their findings keep the ProcessEnd event's time. A release from any
context before the last of those calls ran while the address space still existed, so it is
before the exit; one after it, or after the event when no call in the process's context
follows it, is after the exit (a trace shows only that the address space still existed at
the process's last call, not when it went).

An MDL first seen part-way through its life (the trace, or a `trace.window`, starts after
its IoAllocateMdl) has an unknown lock state and unknown mappings, and no rule takes
either for granted: its first MmUnlockPages, map or lock is not UNLOCK_NOT_LOCKED,
KMAP_UNLOCKED_MDL or DOUBLE_LOCK; its system mapping still live at IoFreeMdl or at the
end is not KMAP_LEAK while the trace has shown neither its lock state nor its kind (it
may be probe-locked, and MmUnlockPages releases the mapping); an unmap of a mapping the
trace never showed made ends one made before the trace instead of being
KUNMAP_NOT_MAPPED, USER_MAP_UNBALANCED or PARTIAL_UNMAP_ILLEGAL. What the trace does show
counts as for any MDL: a second unmap of the same address, a system address unmapped
after the trace showed the MDL's system mapping made, unmapped or released (MmUnlockPages,
MmPrepareMdlForReuse, MmFreePagesFromMdl), an unlock after an unlock; and an unmap of a
user mapping made before the trace after the trace showed the MDL unlocked, which shows
that the mapping was live at that unlock: UNLOCK_WHILE_USER_MAPPED at the first such
unlock, its exposure window up to that unmap (or a re-lock before it); after
MmFreePagesFromMdl, FREE_PAGES_WHILE_USER_MAPPED at that call.
"""

_IMPACT = """\
## Impact and ordering

Findings are ranked by severity first; within one severity, leaks that last until reboot
(marked `permanent`: {permanent}) come first, largest bytes first, since their bytes x
seconds never ends; then the other findings by impact, largest first; ties by time. The
report's "what to fix first" ranks call sites and rules the same way and shows a
permanent leak's bytes instead of a share. The impact of a finding is the
bytes it holds and for how long: bytes x seconds from the moment the hazard starts (the
unlock for UNLOCK_WHILE_USER_MAPPED, the process end for exit leaks) to the moment it is
resolved or the trace ends. For UNLOCK_WHILE_USER_MAPPED the report also gives the
exposure window: the time during which user PTEs pointed at unlocked pages. Leaked user
mappings and leaked locks are physical memory that the machine does not get back until
reboot.
"""


def _anchor(rule_id: str) -> str:
    return rule_id.lower()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rules_markdown() -> str:
    """The text of ``docs/rules.md``: an index table per tier, then every rule in full."""
    parts = [_INTRO]
    for tier, title in TIERS.items():
        rules = [r for r in RULES.values() if r.tier == tier]
        parts.append(f"## {title}\n")
        if tier == 0:
            parts.append("Not hazards, but reported in the same table with severity `info`, "
                         "so nothing the analyzer could not use is silently lost. "
                         "TRACE_EVENTS_LOST, TRACE_UNKNOWN_EVENT and TRACE_TIME_DISORDER are "
                         "counts over the whole trace, not events with a time (an ETL reader "
                         "counts the events it does not decode without their times; lost "
                         "events have none), so each stands at the trace's first event: its "
                         "time, and its problem's FIRST and LAST, are that event's time. "
                         "TRACE_OPEN_AT_END stands at the last event, TRACE_CONTEXT_UNRESOLVED "
                         "at the first unresolved call.\n")
        parts.append("| ID | Severity | Fires when |\n|---|---|---|")
        parts.extend(f"| {r.id} | {_cell(_severity_text(r))} | {_cell(_sentence(r.fires_when))} |"
                     for r in rules)
        parts.append("")
        for r in rules:
            links = ", ".join(f"[{label}]({url})" for label, url in documentation_links(r))
            body = [f"### {r.id}\n",
                    f"- **Severity:** {_severity_text(r)}",
                    f"- **Fires when:** {_sentence(r.fires_when)}",
                    f"- **On a real machine:** {_sentence(r.consequence)}",
                    f"- **What to do:** {_sentence(r.advice)}",
                    f"- **Reference:** {r.reference}"]
            if links:
                body.append(f"- **Microsoft documentation:** {links}")
            parts.append("\n".join(body) + "\n")
    parts.append("## What an offending call does\n\n" + textwrap.fill(CALL_EFFECTS, 88) + "\n")
    parts.append(_IMPACT.format(permanent=", ".join(sorted(PERMANENT_LEAKS))))
    return "\n".join(parts)
