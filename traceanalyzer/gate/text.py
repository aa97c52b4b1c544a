"""The gate's human report as lines of text (the CLI prints them).

Each trace gets a verdict line; a failed trace lists every reason, and each new finding
comes with the evidence of its first occurrence (time, process, thread, MDL, message).
"""

from __future__ import annotations

from traceanalyzer.escape import terminal_safe
from traceanalyzer.gate.compare import (
    GateResult,
    TraceVerdict,
    describe_evidence,
    describe_new_finding,
)

_LABEL = {
    "passed": "passed",
    "failed": "FAILED",
    "new trace": "new trace",
    "missing trace": "missing trace",
    "error": "ERROR",
}


def verdict_lines(v: TraceVerdict, verbose: bool = False) -> list[str]:
    """Lines for one trace: the verdict, then indented details."""
    head = f"{_LABEL[v.status]:<13} {v.trace}"
    out = []
    if v.status == "error":
        return [head, f"    {v.error}"]
    if v.status == "missing trace":
        return [f"{head}  (in the baseline, not found in this run)"]
    if v.status == "new trace":
        n = sum(g.count for g in v.current.findings.values()) if v.current else 0
        out.append(f"{head}  (not in the baseline; {n} finding(s), accepted with --update-baseline)")
        if verbose:
            out += [f"    {describe_new_finding(nf)}" for nf in v.new_findings]
        return out
    out.append(head)
    for nf in v.new_findings:
        tag = "" if nf.blocking else (
            "  (--ignore'd rule, not failing)" if nf.ignored else "  (below --fail-on, not failing)")
        if nf.blocking or verbose or v.failed:
            out.append(f"    {describe_new_finding(nf)}{tag}")
            out.append(f"        {describe_evidence(nf.group)}")
            out.append(f"        problem {nf.group.fingerprint}")
    for r in v.leak_regressions:
        out.append(
            f"    leak regression: {r.metric} {r.baseline} -> {r.current} bytes (allowed up to {r.allowed})"
        )
    out += [f"    {note}" for note in v.notes]
    if verbose and v.fixed:
        for g in v.fixed:
            out.append(f"    gone or fewer: {g.rule} [{g.severity}] {g.caller} in {g.process}")
    return out


def report_lines(result: GateResult, verbose: bool = False, quiet: bool = False) -> list[str]:
    """The whole report; ``quiet`` leaves out passed traces, ``verbose`` adds details.
    Each line is one line: a line break or other control character in a trace ID, a
    process name or a caller (from the traced machine) is written as ``\\xNN``, so it
    cannot start a forged verdict line."""
    lines: list[str] = []
    for v in result.verdicts:
        if quiet and v.status == "passed":
            continue
        lines += [terminal_safe(line) for line in verdict_lines(v, verbose)]
    c = result.counts()
    lines.append(
        f"{len(result.verdicts)} trace(s): {c['passed']} passed, {c['failed']} failed, "
        f"{c['new trace']} new, {c['missing trace']} missing, {c['error']} unreadable "
        f"(fail on {result.policy.fail_on} and above)"
    )
    return lines
