"""What the gate keeps of one trace: findings grouped into problems, and leak figures.

A ``summary()`` dict (the ``hazards --json`` shape of ``docs/cli.md``) lists every
finding with its addresses, pids and times. The gate compares only what is stable
between runs of the same scenario: the problem (rule + call site, the key
:func:`traceanalyzer.rules.problems.problem_id`, whichever processes it hit), how often
it occurred, and the leak totals. :class:`TraceDigest` is that stable part, plus
the evidence of each group's first occurrence so a report can say *where* it happened.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

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
        return sorted(
            self.findings.values(),
            key=lambda g: (severity_rank(g.severity), g.rule, g.caller, g.process, g.fingerprint),
        )


def regroup(groups: Mapping[str, FindingGroup]) -> dict[str, FindingGroup]:
    """Groups keyed by an older key (version 1 baselines: rule + caller + process
    image) merged into problems: counts and bytes add, the worst severity wins."""
    out: dict[str, FindingGroup] = {}
    for g in groups.values():
        key = problem_key({"rule": g.rule, "caller": g.caller})
        have = out.get(key)
        if have is None:
            out[key] = FindingGroup(key, g.rule, g.severity, g.caller, g.process, g.count,
                                    g.bytes, dict(g.first))
            continue
        have.count += g.count
        have.bytes = add_bytes(have.bytes, g.bytes)
        have.process = ", ".join(sorted({p for p in (have.process.split(", ") + [g.process]) if p}))
        if severity_rank(g.severity) < severity_rank(have.severity):
            have.severity = g.severity
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
    "digest_summary",
    "fingerprint_of",
    "problem_key",
    "regroup",
]
