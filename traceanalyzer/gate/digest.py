"""What the gate keeps of one trace: findings grouped into problems, and leak figures.

A ``summary()`` dict (the ``hazards --json`` shape of ``docs/cli.md``) lists every
finding with its addresses, pids and times. The gate compares only what is stable
between runs of the same scenario: the problem (rule + call site, the key
:func:`traceanalyzer.rules.problems.problem_id`, whichever processes it hit), how often
it occurred, and the leak totals. :class:`TraceDigest` is that stable part, plus
the evidence of each group's first occurrence so a report can say *where* it happened.

Problems are kept by problem id; the comparison matches them by :func:`site_key`, which
leaves out the offset of a symbolized caller (``mydriver!ReleaseBuffer+0x3b`` ->
``mydriver!ReleaseBuffer``) so that a rebuilt driver's known problems stay known.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from traceanalyzer.rules.problems import problem_id
from traceanalyzer.vocabulary import int_or_none, severity_rank

#: Leak figures compared by the gate (keys of ``summary["leaks"]``).
LEAK_METRICS: tuple[str, ...] = ("bytes_at_end", "bytes_leaked_at_exit")

#: Evidence keys copied from a finding's first occurrence.
EVIDENCE_KEYS: tuple[str, ...] = ("time_ns", "pid", "process", "tid", "mdl", "bytes", "message")


def fingerprint_of(finding: Mapping[str, Any]) -> str:
    """The finding's ``fingerprint``, or one built from rule + caller + process image.

    The fallback uses only the fields that the spec allows in a fingerprint, so two runs
    of one scenario agree even when the analyzer did not provide one.
    """
    given = finding.get("fingerprint")
    if given:
        return str(given)
    key = "|".join(str(finding.get(k) or "") for k in ("rule", "caller", "process")).lower()
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def problem_key(finding: Mapping[str, Any]) -> str:
    """The problem a finding belongs to: :func:`problem_id` of its rule and caller."""
    return problem_id(str(finding.get("rule") or ""), finding.get("caller") or None)


_OFFSET = re.compile(r"\+0x[0-9a-f]+$", re.IGNORECASE)


def call_site(caller: str | None) -> str:
    """What of a call site a rebuild of the driver keeps, lower case (as :func:`problem_id`):
    ``module!function`` of a symbolized caller (``module!function+0xoffset``, ``--symbols``),
    else the caller as it is (a ``module+0xoffset`` moves with every recompile)."""
    text = str(caller or "")
    return (_OFFSET.sub("", text) if "!" in text else text).lower()


def site_key(group: "FindingGroup") -> str:
    """What the gate matches a problem with the baseline by: rule + :func:`call_site`.
    One to one with the problem id for an unsymbolized caller; for a symbolized one, every
    call site of the rule in one function (of any build) shares it."""
    return f"{group.rule.lower()}|{call_site(group.caller)}"


def occurrences(finding: Mapping[str, Any]) -> int:
    """How many occurrences a finding row stands for.

    A hazard row may fold several occurrences into ``count``. Trace-quality rows
    (``TRACE_*``, severity info) use ``count`` for a magnitude that varies with the
    length of the recording (events lost, unknown events), so each such row counts once:
    the gate notices a new kind of quality problem, not a few more events of a known one.
    """
    if str(finding.get("rule") or "").startswith("TRACE_"):
        return 1
    return int_or_none(finding.get("count")) or 1


@dataclass
class FindingGroup:
    """All occurrences of one problem (rule + caller) in one trace.

    ``fingerprint`` is the problem's key (:func:`problem_key`); ``process`` lists the
    process images it hit (sorted, ``, ``-joined).
    ``severity`` is the most severe occurrence's; ``bytes`` sums the occurrences' known
    bytes (None when no occurrence's MDL size is known);
    ``first`` holds the evidence (``EVIDENCE_KEYS``) of the earliest occurrence, empty
    when the group comes from a baseline file.
    """

    fingerprint: str
    rule: str
    severity: str
    caller: str
    process: str
    count: int
    bytes: int | None = 0
    first: dict[str, Any] = field(default_factory=dict)

    def to_entry(self) -> dict[str, Any]:
        """The baseline form: only fields that are stable between runs."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "caller": self.caller,
            "process": self.process,
            "count": self.count,
        }

    @classmethod
    def from_entry(cls, fingerprint: str, entry: Mapping[str, Any]) -> "FindingGroup":
        """Inverse of :meth:`to_entry`."""
        return cls(
            fingerprint=fingerprint,
            rule=str(entry.get("rule", "")),
            severity=str(entry.get("severity", "info")),
            caller=str(entry.get("caller", "")),
            process=str(entry.get("process", "")),
            count=whole_number(entry.get("count", 1), "count"),
            bytes=whole_number(entry.get("bytes", 0) or 0, "bytes"),
        )


def add_bytes(a: int | None, b: int | None) -> int | None:
    """Sum of two byte counts where None is unknown: None only when both are."""
    return None if a is None and b is None else (a or 0) + (b or 0)


def whole_number(value: Any, what: str) -> int:
    """``value`` as an int when it is a whole number of 0 or more (``2.0`` too); else
    ValueError naming ``what`` (a baseline written by hand may hold ``1e400``, ``-1``, ``"x"``)."""
    ok = isinstance(value, int) and not isinstance(value, bool) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if not ok or value < 0:
        raise ValueError(f"{what} {value!r} is not a whole number of 0 or more")
    return int(value)


@dataclass
class TraceDigest:
    """The comparable part of one trace's analysis.

    ``findings`` maps problem key -> :class:`FindingGroup`; ``leaks`` maps each of
    ``LEAK_METRICS`` to bytes (None when the summary did not report it); ``loss`` and
    ``loss_details`` are the summary's count of buffers/records/rows lost to damage and
    where (tonight's only: a baseline entry does not keep them).
    """

    findings: dict[str, FindingGroup] = field(default_factory=dict)
    leaks: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(LEAK_METRICS))
    loss: int = 0                                          # stats.loss: lost to damage
    loss_details: list[str] = field(default_factory=list)  # where (not kept in a baseline)

    def to_entry(self) -> dict[str, Any]:
        """The baseline-file form (JSON-serialisable, no addresses, pids or times)."""
        return {
            "findings": {fp: g.to_entry() for fp, g in sorted(self.findings.items())},
            "leaks": {k: self.leaks.get(k) for k in LEAK_METRICS},
        }

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "TraceDigest":
        """Inverse of :meth:`to_entry` (a baseline file's per-trace entry)."""
        findings = {
            str(fp): FindingGroup.from_entry(str(fp), g)
            for fp, g in (entry.get("findings") or {}).items()
        }
        leaks_in = entry.get("leaks") or {}
        return cls(findings, {k: None if leaks_in.get(k) is None else whole_number(leaks_in[k], k)
                              for k in LEAK_METRICS})

    def ordered(self) -> list[FindingGroup]:
        """Groups most severe first, then by rule, caller and process."""
        return ordered(self.findings.values())


def ordered(groups: Iterable[FindingGroup]) -> list[FindingGroup]:
    """Groups most severe first, then by rule, caller and process."""
    return sorted(groups, key=lambda g: (severity_rank(g.severity), g.rule, g.caller, g.process, g.fingerprint))


def _merge(have: FindingGroup, g: FindingGroup) -> None:
    """Add ``g`` into ``have``: counts and bytes add, processes join, the worst severity
    wins, the earlier first occurrence stays."""
    have.count += g.count
    have.bytes = add_bytes(have.bytes, g.bytes)
    have.process = ", ".join(sorted({p for p in have.process.split(", ") + g.process.split(", ") if p}))
    if severity_rank(g.severity) < severity_rank(have.severity):
        have.severity = g.severity
    t_new, t_old = int_or_none(g.first.get("time_ns")), int_or_none(have.first.get("time_ns"))
    if t_new is not None and (t_old is None or t_new < t_old):
        have.first = dict(g.first)


def regroup(groups: Mapping[str, FindingGroup]) -> dict[str, FindingGroup]:
    """Groups keyed by an older key (version 1 baselines: rule + caller + process
    image) merged into problems: counts and bytes add, the worst severity wins."""
    out: dict[str, FindingGroup] = {}
    for g in groups.values():
        key = problem_key({"rule": g.rule, "caller": g.caller})
        if key in out:
            _merge(out[key], g)
        else:
            out[key] = replace(g, fingerprint=key, first=dict(g.first))
    return out


def by_site(groups: Mapping[str, FindingGroup]) -> dict[str, FindingGroup]:
    """Problems merged by :func:`site_key`, as the gate compares them. A site of one
    problem is that problem as it is; the problems of several call sites in one function
    merge into the one that occurred first (its problem id and caller), counts adding."""
    def earliest(g: FindingGroup) -> tuple[bool, int, str]:
        t = int_or_none(g.first.get("time_ns"))
        return t is None, t or 0, g.fingerprint

    out: dict[str, FindingGroup] = {}
    for g in sorted(groups.values(), key=earliest):
        key = site_key(g)
        if key in out:
            _merge(out[key], g)
        else:
            out[key] = replace(g, first=dict(g.first))
    return out


def digest_summary(summary: Mapping[str, Any]) -> TraceDigest:
    """Group a summary's findings into problems (:func:`problem_key`) and take its leak
    figures.

    Occurrences are counted with :func:`occurrences`. Raises ``ValueError`` if ``summary`` is not a summary dict.
    """
    if not isinstance(summary, Mapping) or not isinstance(summary.get("findings", []), list):
        raise ValueError("not an analysis summary (expected a dict with a 'findings' list)")
    groups: dict[str, FindingGroup] = {}
    processes: dict[str, set[str]] = {}
    for f in summary.get("findings", []):
        fp = problem_key(f)
        processes.setdefault(fp, set()).add(str(f.get("process") or ""))
        n = occurrences(f)
        sev = str(f.get("severity") or "info").lower()
        evidence = {k: f.get(k) for k in EVIDENCE_KEYS if f.get(k) is not None}
        g = groups.get(fp)
        if g is None:
            groups[fp] = FindingGroup(
                fingerprint=fp,
                rule=str(f.get("rule") or ""),
                severity=sev,
                caller=str(f.get("caller") or ""),
                process=str(f.get("process") or ""),
                count=n,
                bytes=int_or_none(f.get("bytes")),
                first=evidence,
            )
            continue
        g.count += n
        g.bytes = add_bytes(g.bytes, int_or_none(f.get("bytes")))
        if severity_rank(sev) < severity_rank(g.severity):
            g.severity = sev
        t_new, t_old = int_or_none(f.get("time_ns")), int_or_none(g.first.get("time_ns"))
        if t_new is not None and (t_old is None or t_new < t_old):
            g.first = evidence
    for fp, g in groups.items():
        g.process = ", ".join(sorted(p for p in processes[fp] if p))
    leaks_in = summary.get("leaks") or {}
    leaks = {k: int_or_none(leaks_in.get(k)) for k in LEAK_METRICS}
    stats = summary.get("stats") or {}
    details = [str(d) for d in stats.get("loss_details") or []]
    return TraceDigest(groups, leaks, int_or_none(stats.get("loss")) or 0, details)


__all__ = [
    "EVIDENCE_KEYS",
    "FindingGroup",
    "LEAK_METRICS",
    "TraceDigest",
    "by_site",
    "call_site",
    "digest_summary",
    "fingerprint_of",
    "ordered",
    "problem_key",
    "regroup",
    "site_key",
]
