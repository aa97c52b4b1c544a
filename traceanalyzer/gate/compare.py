"""Compare tonight's digests with the baseline: one verdict per trace.

Rules of the gate:

* A problem (rule + call site) absent from the trace's baseline entry is a *new
  finding*; a problem whose count went up has *new occurrences*. Problems are matched
  by rule + call site without the offset of a symbolized caller (``digest.site_key``:
  ``mydriver!ReleaseBuffer``, of any build), else by rule + caller
  (``mydriver.sys+0x1b6b``, which a rebuild moves); the problems of one rule in one
  function are compared as one. A new finding fails the
  trace when its severity is at or above ``Policy.fail_on``; new occurrences fail it
  when, as well, the count exceeds ``baseline + max(count_abs_tol, count_rel_tol x
  baseline)`` (defaults 0: any growth; with ``count_rel_tol=1`` a count going 3 -> 5
  passes and 3 -> 300 fails). Below ``fail_on`` they are reported, not failing.
* A leak figure (``bytes_at_end``, ``bytes_leaked_at_exit``) fails the trace when it
  exceeds ``baseline + max(leak_abs_tol, leak_rel_tol * baseline)``. Shrinking is fine.
* A trace missing from the baseline is a ``new trace`` and a baseline trace not seen
  tonight is a ``missing trace``; neither fails the gate unless asked:
  ``Policy.fail_on_missing`` fails a missing trace, ``Policy.fail_on_new`` a new trace
  with a finding at or above that severity. A trace that could not be read is an
  ``error`` (the CLI exits 2 for it), and so is a trace whose reader counted events lost
  to damage (``stats.loss``: truncated file, corrupt buffers, truncated records, bad
  rows) unless ``Policy.allow_loss``: its findings cannot be trusted to be complete.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from traceanalyzer.gate.baseline import Baseline
from traceanalyzer.gate.digest import (
    LEAK_METRICS,
    FindingGroup,
    TraceDigest,
    by_site,
    digest_summary,
    ordered,
    site_key,
)
from traceanalyzer.vocabulary import SEVERITIES, severity_rank

Status = Literal["passed", "failed", "new trace", "missing trace", "error"]
STATUSES: tuple[str, ...] = ("failed", "error", "new trace", "missing trace", "passed")


@dataclass(frozen=True)
class Policy:
    """What fails the gate.

    fail_on: the least severe severity that fails (``critical`` ... ``info``).
    leak_rel_tol: allowed relative growth of a leak figure (0.10 = 10 %).
    leak_abs_tol: allowed absolute growth in bytes (covers page-offset jitter).
    ignore: rule IDs (any case) whose new findings are reported but never fail (e.g. a
        rule that depends on where the recording was stopped).
    allow_loss: accept a trace whose reader counted events lost to damage (else: error).
    fail_on_missing: a baseline trace not found in this run fails.
    fail_on_new: a trace not in the baseline fails when it has a finding at or above
        this severity (None: new traces never fail).
    count_rel_tol: allowed relative growth of a known problem's count (1.0 = may double).
    count_abs_tol: allowed absolute growth of a known problem's count.
    """

    fail_on: str = "high"
    leak_rel_tol: float = 0.10
    leak_abs_tol: int = 16384
    ignore: frozenset[str] = frozenset()
    allow_loss: bool = False
    fail_on_missing: bool = False
    fail_on_new: str | None = None
    count_rel_tol: float = 0.0
    count_abs_tol: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignore", frozenset(r.strip().upper() for r in self.ignore))  # as rules.rule
        for name in ("fail_on", "fail_on_new"):
            value = getattr(self, name)
            if value is not None and value not in SEVERITIES:
                raise ValueError(f"{name} must be one of {', '.join(SEVERITIES)}, not {value!r}")
        tolerances = (self.leak_rel_tol, self.leak_abs_tol, self.count_rel_tol, self.count_abs_tol)
        if not all(math.isfinite(t) for t in tolerances):  # nan, inf: no allowed growth to compute
            raise ValueError("tolerances must be finite numbers")
        if min(tolerances) < 0:
            raise ValueError("tolerances must not be negative")

    def blocks(self, severity: str, rule: str = "") -> bool:
        """True if a new finding of this severity (and rule) fails the gate."""
        return rule not in self.ignore and severity_rank(severity) <= severity_rank(self.fail_on)

    def count_allowance(self, baseline_count: int) -> int:
        """The largest count of a known problem that still passes (a problem the
        baseline lacks has an allowance of 0: any occurrence is new)."""
        if baseline_count <= 0:
            return 0
        return baseline_count + max(self.count_abs_tol, int(self.count_rel_tol * baseline_count))

    def leak_allowance(self, baseline_bytes: int) -> int:
        """The largest leak figure that still passes, given the baseline's."""
        return baseline_bytes + max(self.leak_abs_tol, int(self.leak_rel_tol * baseline_bytes))


@dataclass
class NewFinding:
    """A fingerprint absent from the baseline (``baseline_count`` 0) or seen more often."""

    group: FindingGroup
    baseline_count: int
    blocking: bool
    ignored: bool = False

    @property
    def added(self) -> int:
        """Occurrences beyond the baseline's count."""
        return self.group.count - self.baseline_count

    @property
    def is_new(self) -> bool:
        """True for a fingerprint the baseline does not have at all."""
        return self.baseline_count == 0


@dataclass
class LeakRegression:
    """A leak figure above its tolerance."""

    metric: str
    baseline: int
    current: int
    allowed: int


@dataclass
class TraceVerdict:
    """The gate's verdict on one trace (see the module docstring for the rules)."""

    trace: str
    status: Status
    new_findings: list[NewFinding] = field(default_factory=list)
    fixed: list[FindingGroup] = field(default_factory=list)
    leak_regressions: list[LeakRegression] = field(default_factory=list)
    current: TraceDigest | None = None
    baseline: TraceDigest | None = None
    error: str | None = None
    path: str | None = None
    file_hash: str | None = None
    seconds: float = 0.0
    cached: bool = False
    notes: list[str] = field(default_factory=list)  # other reasons it failed

    @property
    def failed(self) -> bool:
        """True if this trace fails the gate."""
        return self.status == "failed"

    @property
    def blocking_findings(self) -> list[NewFinding]:
        """New findings at or above the policy's ``fail_on``."""
        return [n for n in self.new_findings if n.blocking]

    def reasons(self) -> list[str]:
        """One line per reason the trace failed (empty if it did not)."""
        out = [describe_new_finding(n) for n in self.blocking_findings]
        out += [
            f"leak regression: {r.metric} {r.baseline} -> {r.current} bytes (allowed up to {r.allowed})"
            for r in self.leak_regressions
        ]
        return out + self.notes


def loss_error(trace: str, digest: TraceDigest) -> str:
    """The error line of a trace with events lost to damage (first place named)."""
    where = f": {digest.loss_details[0]}" if digest.loss_details else ""
    more = f" and {len(digest.loss_details) - 1} more" if len(digest.loss_details) > 1 else ""
    return (f"{trace}: {digest.loss} buffer(s)/record(s)/row(s) lost to damage{where}{more}; findings may be "
            "missing (--allow-loss accepts such traces)")


def describe_new_finding(n: NewFinding) -> str:
    """``new finding RULE [sev] caller in process`` (or ``N more occurrences of ...``)."""
    g = n.group
    what = "new finding" if n.is_new else f"{n.added} more occurrence(s) ({n.baseline_count} -> {g.count}) of"
    return f"{what} {g.rule} [{g.severity}] {g.caller or '?'} in {g.process or '?'}"


def describe_evidence(group: FindingGroup) -> str:
    """The first occurrence: time, process/pid, thread, MDL and message."""
    e = group.first
    parts = []
    if e.get("time_ns") is not None:
        parts.append(f"at {int(e['time_ns']) / 1e9:.6f} s")
    proc = e.get("process") or group.process
    if e.get("pid") is not None:
        parts.append(f"pid {e['pid']} ({proc})" if proc else f"pid {e['pid']}")
    elif proc:
        parts.append(f"process {proc}")
    if e.get("tid") is not None:
        parts.append(f"tid {e['tid']}")
    if e.get("mdl") is not None:
        parts.append(f"mdl {e['mdl']}")
    text = ", ".join(parts)
    if e.get("message"):
        text = f"{text}: {e['message']}" if text else str(e["message"])
    return text


def compare_digests(
    trace: str, current: TraceDigest | None, baseline: TraceDigest | None, policy: Policy
) -> TraceVerdict:
    """The verdict for one trace from its digest and its baseline entry (either may be None)."""
    if current is None and baseline is None:
        raise ValueError(f"{trace}: neither a current result nor a baseline entry")
    if current is None:
        if policy.fail_on_missing:
            return TraceVerdict(trace, "failed", baseline=baseline,
                                notes=["in the baseline, not found in this run (--fail-on-missing)"])
        return TraceVerdict(trace, "missing trace", baseline=baseline)
    if baseline is None:
        least = policy.fail_on_new
        news = [NewFinding(g, 0, least is not None and g.rule not in policy.ignore
                           and severity_rank(g.severity) <= severity_rank(least), g.rule in policy.ignore)
                for g in current.ordered()]
        if any(n.blocking for n in news):
            return TraceVerdict(trace, "failed", new_findings=news, current=current,
                                notes=[f"new trace (not in the baseline) with findings at or above {least} "
                                       "(--fail-on-new)"])
        return TraceVerdict(trace, "new trace", new_findings=news, current=current)

    news: list[NewFinding] = []
    now_sites, base_sites = by_site(current.findings), by_site(baseline.findings)
    for g in ordered(now_sites.values()):
        base = base_sites.get(site_key(g))
        base_count = base.count if base is not None else 0
        if g.count > base_count:
            beyond = g.count > policy.count_allowance(base_count)
            news.append(NewFinding(g, base_count, beyond and policy.blocks(g.severity, g.rule),
                                   g.rule in policy.ignore))
    fixed = [b for b in ordered(base_sites.values())
             if b.count > (now_sites[site_key(b)].count if site_key(b) in now_sites else 0)]
    leaks: list[LeakRegression] = []
    for metric in LEAK_METRICS:
        now, before = current.leaks.get(metric), baseline.leaks.get(metric)
        if now is None or before is None:
            continue
        allowed = policy.leak_allowance(before)
        if now > allowed:
            leaks.append(LeakRegression(metric, before, now, allowed))
    failed = bool(leaks) or any(n.blocking for n in news)
    return TraceVerdict(
        trace,
        "failed" if failed else "passed",
        new_findings=news,
        fixed=fixed,
        leak_regressions=leaks,
        current=current,
        baseline=baseline,
    )


def compare_summary(
    trace: str,
    summary: Mapping[str, Any] | None,
    baseline_entry: Mapping[str, Any] | None,
    policy: Policy | None = None,
) -> TraceVerdict:
    """Compare one ``summary()`` dict with one baseline entry (``TraceDigest.to_entry`` form)."""
    current = digest_summary(summary) if summary is not None else None
    base = TraceDigest.from_entry(baseline_entry) if baseline_entry is not None else None
    return compare_digests(trace, current, base, policy or Policy())


#: The gate's exit codes: nothing failed, a trace failed, bad usage or an unreadable input.
EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2


@dataclass
class GateResult:
    """All verdicts of one run, sorted by trace ID."""

    verdicts: list[TraceVerdict]
    policy: Policy

    @property
    def failed(self) -> bool:
        """True if any trace failed."""
        return any(v.failed for v in self.verdicts)

    @property
    def errors(self) -> list[TraceVerdict]:
        """Traces that could not be analysed."""
        return [v for v in self.verdicts if v.status == "error"]

    @property
    def exit_code(self) -> int:
        """What the verdicts alone call for: :data:`EXIT_ERROR` if a trace could not be
        analysed, else :data:`EXIT_REGRESSION` if one failed, else :data:`EXIT_PASS`.
        ``CheckOutcome.exit_code`` is the gate's (an updated baseline passes)."""
        if self.errors:
            return EXIT_ERROR
        return EXIT_REGRESSION if self.failed else EXIT_PASS

    def counts(self) -> dict[str, int]:
        """Number of traces per status (every status present, possibly 0)."""
        out = dict.fromkeys(STATUSES, 0)
        for v in self.verdicts:
            out[v.status] += 1
        return out

    def by_trace(self) -> dict[str, TraceVerdict]:
        """Verdicts keyed by trace ID."""
        return {v.trace: v for v in self.verdicts}


def compare_all(
    current: Mapping[str, TraceDigest],
    baseline: Baseline,
    policy: Policy,
    errors: Mapping[str, str] | None = None,
) -> GateResult:
    """Verdicts for every trace seen tonight or listed in the baseline.

    ``errors`` maps trace IDs that could not be analysed to their error line; those get
    status ``error`` (not ``missing trace``) even when the baseline lists them. So does a
    trace whose digest counts a loss to damage, unless ``policy.allow_loss``.
    """
    errors = dict(errors or {})
    if not policy.allow_loss:
        for trace, digest in current.items():
            if digest.loss and trace not in errors:
                errors[trace] = loss_error(trace, digest)
    verdicts = []
    for trace in sorted(set(current) | set(baseline.traces) | set(errors)):
        if trace in errors:
            verdicts.append(
                TraceVerdict(trace, "error", baseline=baseline.traces.get(trace), error=errors[trace])
            )
            continue
        verdicts.append(compare_digests(trace, current.get(trace), baseline.traces.get(trace), policy))
    return GateResult(verdicts, policy)
