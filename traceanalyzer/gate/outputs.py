"""What ``check`` writes besides its report lines: the verdicts as JSON, JUnit, SARIF,
the history record and the trend PNG. Every file is written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from traceanalyzer.escape import path_text
from traceanalyzer.fileio import write_bytes_atomic, write_text_atomic
from traceanalyzer.gate.check import CheckOutcome
from traceanalyzer.gate.compare import describe_evidence
from traceanalyzer.rules.catalogue import RULES


def verdicts_json(outcome: CheckOutcome) -> dict[str, Any]:
    """The ``check --json`` document: exit code, policy, counts and per-trace verdicts
    with their new findings (evidence included) and leak regressions."""
    res = outcome.result
    traces = {}
    for v in res.verdicts:
        traces[v.trace] = {
            "status": v.status,
            "path": v.path,
            "cached": v.cached,
            "error": v.error,
            "new_findings": [
                {**nf.group.to_entry(), "fingerprint": nf.group.fingerprint, "baseline_count": nf.baseline_count,
                 "blocking": nf.blocking, "evidence": nf.group.first, "evidence_text": describe_evidence(nf.group)}
                for nf in v.new_findings
            ],
            "leak_regressions": [vars(r) for r in v.leak_regressions],
        }
    return {"exit_code": outcome.exit_code, "fail_on": res.policy.fail_on, "counts": res.counts(), "traces": traces}


def verdicts_json_text(outcome: CheckOutcome) -> str:
    """:func:`verdicts_json` as indented JSON text."""
    return json.dumps(verdicts_json(outcome), indent=2, default=str)


def write_outputs(outcome: CheckOutcome, *, json_path: Path | None = None,
                  junit: Path | None = None, sarif: Path | None = None,
                  history: Path | None = None) -> None:
    """Write the files asked for: verdicts JSON, JUnit XML, SARIF log, history record."""
    result = outcome.result
    if json_path is not None:
        write_text_atomic(json_path, verdicts_json_text(outcome) + "\n")
    if junit is not None:
        from traceanalyzer.gate.junit import write_junit

        write_junit(result, junit)
    if sarif is not None:
        from traceanalyzer.gate.sarif import write_sarif

        write_sarif(result, sarif, roots={t.trace_id: t.root for t in outcome.traces},
                    files={t.trace_id: t.path for t in outcome.traces}, exit_code=outcome.exit_code)
    if history is not None:
        from traceanalyzer.gate.history import record_run

        record_run(history, result)


def write_trend_png(history: Path, finding: str, trace: str | None = None,
                    out: Path | None = None) -> Path:
    """Plot ``finding`` (a problem id, a unique prefix of one, or a rule ID:
    :func:`~traceanalyzer.gate.history.finding_trend`) over the runs recorded in
    ``history`` (only ``trace`` when given) into ``out`` (default
    ``history/trend-ID.png``); returns the file written."""
    from traceanalyzer.gate.history import finding_trend
    from traceanalyzer.plot.style import figure_png
    from traceanalyzer.plot.trend import plot_finding_trend

    finding, trace = path_text(finding), None if trace is None else path_text(trace)  # as IDs hold them
    trend = finding_trend(history, finding, trace=trace)
    if finding.upper() in RULES:  # a rule ID in any case: named as the catalogue spells it
        finding = finding.upper()
    title = finding + (f" in {trace}" if trace else "")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in finding)
    target = out or (history / f"trend-{safe}.png")
    write_bytes_atomic(target, figure_png(plot_finding_trend(trend, title=title), dpi=100))
    return target
