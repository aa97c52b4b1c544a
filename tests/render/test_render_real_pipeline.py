"""Renderers and Jupyter reprs on the real pipeline: sample_traces/ seed scenario.

Expected values are read off the sample CSV by hand: app.exe (1234) maps an 8 KiB MDL at
1.02 ms, System's worker thread 88 unlocks it at 5 ms, app.exe exits at 9 ms with the
mapping live (exposure 5 ms -> 9 ms = 4 ms).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.rules.assemble import FINDING_COLUMNS
from traceanalyzer.render import render
from traceanalyzer.render.html_report import html_report
from traceanalyzer.model.html_repr import trace_repr_html

SEED = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"


@pytest.fixture(scope="module")
def analysis() -> ta.Analysis:
    return ta.analyze(ta.load(SEED))


def test_text_puts_the_worker_unlock_first(analysis) -> None:
    out = render(analysis, "text", per_finding=True)
    rows = [ln for ln in out.splitlines() if ln.startswith(("critical", "high", "medium"))]
    assert rows[0].split()[:3] == ["critical", "UNLOCK_WHILE_USER_MAPPED", "0.005000"]
    assert "app.exe (1234)" in rows[0]
    assert "memory still held at trace end: 8 KiB" in out


def test_json_and_csv_agree_with_the_findings(analysis) -> None:
    doc = json.loads(render(analysis, "summary.json"))
    rows = list(csv.DictReader(io.StringIO(render(analysis, "csv"))))
    assert [f["rule"] for f in doc["findings"]] == [r["rule"] for r in rows] == list(
        analysis.findings["rule"])
    assert doc["findings"][0]["mdl"] == rows[0]["mdl"] == "0xffffc30a4b2f1000"


def test_csv_has_the_columns_of_the_findings_table(analysis) -> None:
    header = next(csv.reader(io.StringIO(render(analysis, "csv"))))
    assert header == list(analysis.findings.columns) == list(FINDING_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(render(analysis, "csv"))))
    worker = next(r for r in rows if r["rule"] == "UNLOCK_WHILE_USER_MAPPED")
    assert (worker["call_pid"], worker["call_process"], worker["permanent"]) == ("4", "System", "False")


def test_html_explains_the_exposure_window(analysis) -> None:
    page = html_report(analysis, figures={})
    first = page.split('<tbody class="finding"')[1]
    assert "UNLOCK_WHILE_USER_MAPPED" in first
    assert "from 0.005000 s to 0.009000 s (0.004000 s)" in first
    assert "<code>MmUnlockPages</code>" in first  # evidence event
    assert "<td>88</td>" in first  # ... run by the worker thread


def test_trace_and_analysis_reprs(analysis) -> None:
    t = trace_repr_html(analysis.trace)
    assert "seed_unlock_from_worker.csv" in t and "<strong>Trace</strong>" in t
    assert "0.009000 s" in t
    a = analysis._repr_html_()
    assert "1 critical" in a and "UNLOCK_WHILE_USER_MAPPED" in a
    assert analysis.trace._repr_html_() == t
