"""Trends over nightly runs: one JSON summary per run in a history folder, and plots.

``record_run`` writes ``run-<UTC time>.json`` with every trace's verdict, problems
(count and bytes per problem id, the ``problem_id`` of ``hazards --json``) and leak
figures. ``load_history`` reads them back as long tables; ``finding_trend`` follows one
problem (problem id, a unique prefix of one, or a rule ID for all its problems) over the
runs; ``traceanalyzer.plot.trend.plot_finding_trend`` draws it. A finding's
``fingerprint`` (rule + caller + process image) is not recorded: given one,
``finding_trend`` says which problem id to use instead.
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
FINDING_COLUMNS = ["run", "time_utc", "trace", "problem_id", "rule", "severity", "caller", "process", "count", "bytes"]
LEAK_COLUMNS = ["run", "time_utc", "trace", "status", *LEAK_METRICS]
TREND_COLUMNS = ["run", "time_utc", "count", "bytes", *LEAK_METRICS]


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

    findings columns: run (file stem), time_utc (UTC timestamp), trace, problem_id
    (rule + call site: the ``problem_id`` of ``hazards --json``), rule, severity,
    caller, process (the images it hit, ``, ``-joined), count (occurrences in that
    trace), bytes (their summed bytes). leaks columns: run, time_utc, trace, status (the gate verdict),
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
            for pid, g in (entry.get("findings") or {}).items():
                frows.append({"run": run, "time_utc": t, "trace": trace, "problem_id": pid,
                              **{k: g.get(k) for k in FINDING_COLUMNS[4:]}})
    findings = pd.DataFrame(frows, columns=FINDING_COLUMNS)
    leaks = pd.DataFrame(lrows, columns=LEAK_COLUMNS)
    for df in (findings, leaks):
        df["time_utc"] = pd.to_datetime(df["time_utc"], utc=True, format="ISO8601")
    return findings, leaks


def finding_trend(history_dir: str | Path, finding: str, trace: str | None = None) -> pd.DataFrame:
    """One problem over all runs (runs where it is absent count 0).

    finding: a problem id (``problems[].problem_id`` of ``hazards --json``, ``problem``
        in the check report), a unique prefix of one, or a rule ID in any case (all its
        problems together). A finding's ``fingerprint`` is not a problem id: the error
        names the problem id it belongs to. trace: restrict to one trace ID (a name's
        bytes that are not UTF-8 as the shell gives them or as ``\\xNN``, as IDs hold them).

    Columns: run, time_utc, count (occurrences), bytes (the finding's summed bytes),
    bytes_at_end and bytes_leaked_at_exit (each summed over the traces the finding was
    ever seen in, or of ``trace``; 0 where a trace did not report it). The two leak
    figures stay apart: a user mapping left behind by an exited process is in both (it is
    still held when the trace ends), so their sum would count its bytes twice. Raises
    :class:`TraceError` if nothing matches.
    """
    findings, leaks = load_history(history_dir)
    finding = path_text(finding)  # argv: what is not UTF-8 is held as IDs hold it
    if trace is not None:
        trace = path_text(trace)
        findings = findings[findings["trace"] == trace]
        leaks = leaks[leaks["trace"] == trace]
    key = finding.strip()
    if findings["rule"].eq(key.upper()).any():  # a rule ID, in any case
        sel = findings[findings["rule"] == key.upper()]
    else:
        ids = sorted({p for p in findings["problem_id"] if key and str(p).startswith(key.lower())})
        if len(ids) > 1:
            raise TraceError(f"{finding!r} starts {len(ids)} problem ids; give more characters", history_dir)
        sel = findings[findings["problem_id"].isin(ids)]
    if sel.empty:
        raise TraceError(_no_such_problem(key, findings), history_dir)
    traces = set(sel["trace"])
    runs = leaks[["run", "time_utc"]].drop_duplicates("run")
    per_run = sel.groupby("run")[["count", "bytes"]].sum()
    lk = leaks[leaks["trace"].isin(traces)]
    leaked = lk[list(LEAK_METRICS)].fillna(0).groupby(lk["run"]).sum()  # per figure, never added up
    out = runs.set_index("run").join(per_run).join(leaked).fillna(dict.fromkeys(TREND_COLUMNS[2:], 0))
    out = out.reset_index().sort_values(["time_utc", "run"])
    for c in TREND_COLUMNS[2:]:
        out[c] = out[c].astype("int64")
    return out[TREND_COLUMNS].reset_index(drop=True)


#: Where a problem id is found, for the error of an ID that is none.
_WHERE_IDS = ("problem ids are problems[].problem_id in hazards --json, 'problem' in the check report "
              "(JUnit, SARIF), 'problem id' in the HTML report's what-to-fix-first rows")


def _no_such_problem(key: str, findings: pd.DataFrame) -> str:
    """The error line for ``key`` matching nothing; names the problem when ``key`` is the
    ``fingerprint`` of one of its findings (rule + caller + process image)."""
    from traceanalyzer.rules.assemble import fingerprint

    for rule, caller, process, pid in findings[["rule", "caller", "process", "problem_id"]].drop_duplicates(
            ).itertuples(index=False):
        for image in str(process or "").split(", "):
            if fingerprint(str(rule), caller or None, image or None) == key.lower():
                return (f"{key!r} is the fingerprint of a finding ({rule} at {caller or '?'} in {image or '?'}), "
                        f"not a problem id: --trend takes a problem id, here {pid}, or a rule ID ({_WHERE_IDS})")
    return (f"no problem id or rule ID {key!r} in any recorded run (--trend takes a rule ID, or a problem id "
            f"or a unique prefix of one; {_WHERE_IDS})")
