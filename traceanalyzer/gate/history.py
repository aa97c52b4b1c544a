"""Trends over nightly runs: one JSON summary per run in a history folder, and plots.

``record_run`` writes ``run-<UTC time>.json`` with every trace's verdict, finding groups
(count and bytes per fingerprint) and leak figures. ``load_history`` reads them back as
long tables; ``finding_trend`` follows one finding (fingerprint, fingerprint prefix or
rule ID) over the runs; ``traceanalyzer.plot.trend.plot_finding_trend`` draws it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.gate.compare import GateResult
from traceanalyzer.gate.digest import LEAK_METRICS

HISTORY_FORMAT = "traceanalyzer-history"
FINDING_COLUMNS = ["run", "time_utc", "trace", "fingerprint", "rule", "severity", "caller", "process", "count", "bytes"]
LEAK_COLUMNS = ["run", "time_utc", "trace", "status", *LEAK_METRICS]
TREND_COLUMNS = ["run", "time_utc", "count", "bytes", "leaked_bytes"]


def record_run(
    history_dir: str | Path, result: GateResult, when: datetime | None = None, label: str | None = None
) -> Path:
    """Write this run's summary into ``history_dir``; returns the file written."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    traces: dict[str, Any] = {}
    for v in result.verdicts:
        entry: dict[str, Any] = {"status": v.status}
        if v.current is not None:
            entry["findings"] = {
                fp: {**g.to_entry(), "bytes": g.bytes} for fp, g in sorted(v.current.findings.items())
            }
            entry["leaks"] = dict(v.current.leaks)
        traces[v.trace] = entry
    doc = {
        "format": HISTORY_FORMAT,
        "version": 1,
        "time_utc": when.isoformat(),
        "label": label,
        "failed": result.failed,
        "fail_on": result.policy.fail_on,
        "traces": traces,
    }
    d = Path(history_dir)
    name = f"run-{when.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    path = d / name
    n = 1
    while path.exists():  # two runs in one microsecond: keep both
        path, n = d / f"{name[:-5]}-{n}.json", n + 1
    write_text_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def _runs(history_dir: str | Path) -> list[tuple[str, dict[str, Any]]]:
    d = Path(history_dir)
    if not d.is_dir():
        raise TraceError("history folder not found", d)
    out = []
    for f in sorted(d.glob("run-*.json")):
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TraceError(f"unreadable history file: {exc}", f) from None
        if not isinstance(doc, dict) or doc.get("format") != HISTORY_FORMAT:
            raise TraceError("not a traceanalyzer history file", f)
        traces = doc.get("traces") or {}
        if not isinstance(traces, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("leaks") or {}, dict)
                and isinstance(e.get("findings") or {}, dict)
                and all(isinstance(g, dict) for g in (e.get("findings") or {}).values())
                for e in traces.values()):
            raise TraceError("malformed history file: \"traces\" is not an object of trace entries", f)
        out.append((f.stem, doc))
    out.sort(key=lambda item: (item[1].get("time_utc", ""), item[0]))
    return out


def load_history(history_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All recorded runs as two long tables ``(findings, leaks)``, oldest run first.

    findings columns: run (file stem), time_utc (UTC timestamp), trace, fingerprint,
    rule, severity, caller, process, count (occurrences in that trace), bytes (their
    summed bytes). leaks columns: run, time_utc, trace, status (the gate verdict),
    bytes_at_end, bytes_leaked_at_exit (null when not reported).
    """
    frows: list[dict[str, Any]] = []
    lrows: list[dict[str, Any]] = []
    for run, doc in _runs(history_dir):
        t = doc.get("time_utc")
        for trace, entry in sorted((doc.get("traces") or {}).items()):
            leaks = entry.get("leaks") or {}
            lrows.append({"run": run, "time_utc": t, "trace": trace, "status": entry.get("status"),
                          **{k: leaks.get(k) for k in LEAK_METRICS}})
            for fp, g in (entry.get("findings") or {}).items():
                frows.append({"run": run, "time_utc": t, "trace": trace, "fingerprint": fp,
                              **{k: g.get(k) for k in FINDING_COLUMNS[4:]}})
    findings = pd.DataFrame(frows, columns=FINDING_COLUMNS)
    leaks = pd.DataFrame(lrows, columns=LEAK_COLUMNS)
    for df in (findings, leaks):
        df["time_utc"] = pd.to_datetime(df["time_utc"], utc=True, format="ISO8601")
    return findings, leaks


def finding_trend(history_dir: str | Path, finding: str, trace: str | None = None) -> pd.DataFrame:
    """One finding over all runs (runs where it is absent count 0).

    finding: a fingerprint, a unique fingerprint prefix, or a rule ID in any case (all
        its fingerprints together). trace: restrict to one trace ID (a name's bytes that
        are not UTF-8 as the shell gives them or as ``\\xNN``, as IDs hold them).

    Columns: run, time_utc, count (occurrences), bytes (the finding's summed bytes),
    leaked_bytes (bytes_at_end + bytes_leaked_at_exit of the traces the finding was ever
    seen in, or of ``trace``). Raises :class:`TraceError` if nothing matches.
    """
    findings, leaks = load_history(history_dir)
    finding = path_text(finding)  # argv: what is not UTF-8 is held as IDs hold it
    if trace is not None:
        trace = path_text(trace)
        findings = findings[findings["trace"] == trace]
        leaks = leaks[leaks["trace"] == trace]
    if findings["rule"].eq(finding.upper()).any():  # a rule ID, in any case
        sel = findings[findings["rule"] == finding.upper()]
    else:
        fps = sorted({fp for fp in findings["fingerprint"] if str(fp).startswith(finding)})
        if len(fps) > 1:
            raise TraceError(f"{finding!r} matches {len(fps)} fingerprints; give more characters", history_dir)
        sel = findings[findings["fingerprint"].isin(fps)]
    if sel.empty:
        raise TraceError(f"no finding {finding!r} (fingerprint or rule ID) in any recorded run", history_dir)
    traces = set(sel["trace"])
    runs = leaks[["run", "time_utc"]].drop_duplicates("run")
    per_run = sel.groupby("run")[["count", "bytes"]].sum()
    lk = leaks[leaks["trace"].isin(traces)].copy()
    lk["leaked_bytes"] = lk[list(LEAK_METRICS)].fillna(0).sum(axis=1)
    leaked = lk.groupby("run")["leaked_bytes"].sum()
    out = runs.set_index("run").join(per_run).join(leaked).fillna({"count": 0, "bytes": 0, "leaked_bytes": 0})
    out = out.reset_index().sort_values(["time_utc", "run"])
    for c in ("count", "bytes", "leaked_bytes"):
        out[c] = out[c].astype("int64")
    return out[TREND_COLUMNS].reset_index(drop=True)
