"""Problems: findings grouped by rule + call site, in Python, text, JSON, report and SQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import traceanalyzer as ta
from traceanalyzer.render import render
from traceanalyzer.render.json_summary import summary_schema
from traceanalyzer.rules.problems import PROBLEM_COLUMNS, problem_id, problems_of
from traceanalyzer.synth.scenario import Scenario

SCRIPT = Path(sys.executable).with_name("traceanalyzer")
N_BAD = 12  # unlocks of never-locked MDLs from one call site, over 3 processes


def _scenario() -> Scenario:
    s = Scenario()
    procs = [s.process(pid=1000 + i, image=f"app{i}.exe", tid=2000 + i) for i in range(3)]
    t = 1_000_000
    for k in range(N_BAD):
        th = procs[k % 3]
        mdl = 0xFFFFC30A4B000000 + 0x1000 * k
        s.at(t).allocate_mdl(th, mdl=mdl, va=0x10000 + 0x10000 * k, size=4096)
        s.unlock(th, mdl=mdl, caller="mydriver.sys+0x2c00")  # never locked
        s.free_mdl(th, mdl=mdl)
        t += 1_000_000
    # one double lock from another call site
    s.at(t).allocate_mdl(procs[0], mdl=0xFFFFC30A4C000000, va=0x900000, size=8192)
    s.probe_and_lock(procs[0], mdl=0xFFFFC30A4C000000, caller="mydriver.sys+0x1000")
    s.probe_and_lock(procs[0], mdl=0xFFFFC30A4C000000, caller="mydriver.sys+0x1000")
    s.unlock(procs[0], mdl=0xFFFFC30A4C000000)
    s.free_mdl(procs[0], mdl=0xFFFFC30A4C000000)
    return s


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory) -> Path:
    return _scenario().to_csv(tmp_path_factory.mktemp("problems") / "repeat.csv")


@pytest.fixture(scope="module")
def analysis(trace_path: Path) -> ta.Analysis:
    return ta.analyze(ta.load(trace_path))


def _unlock_problem(analysis: ta.Analysis):
    p = analysis.problems
    rows = p[(p["rule"] == "UNLOCK_NOT_LOCKED") & (p["caller"] == "mydriver.sys+0x2c00")]
    assert len(rows) == 1
    return rows.iloc[0]


def test_one_row_per_rule_and_call_site(analysis: ta.Analysis):
    f, p = analysis.findings, analysis.problems
    assert list(p.columns) == list(PROBLEM_COLUMNS)
    assert len(p) == len(f[["rule", "caller"]].drop_duplicates())
    assert len(f[f["rule"] == "UNLOCK_NOT_LOCKED"]) == N_BAD
    row = _unlock_problem(analysis)
    assert row["count"] == N_BAD and row["findings"] == N_BAD
    assert row["processes"] == ["app0.exe", "app1.exe", "app2.exe"]
    assert row["process_count"] == 3 and row["pids"] == [1000, 1001, 1002]
    assert row["mdls"] == N_BAD
    bad = f[(f["rule"] == "UNLOCK_NOT_LOCKED")]
    assert row["first_ns"] == bad["time_ns"].min() and row["last_ns"] == bad["time_ns"].max()
    assert row["bytes"] == bad["bytes"].sum()
    assert row["module"] == "mydriver.sys"
    assert row["problem_id"] == problem_id("UNLOCK_NOT_LOCKED", "mydriver.sys+0x2c00")
    earliest = bad.sort_values("time_ns").iloc[0]
    assert list(row["example_evidence"]) == list(earliest["evidence"])
    assert row["message"] == earliest["message"]
    assert sorted(row["fingerprints"]) == sorted(set(bad["fingerprint"]))


def test_severity_is_the_worst_and_order_is_severity_then_impact(analysis: ta.Analysis):
    p = analysis.problems
    ranks = p["severity"].cat.codes.tolist()
    assert ranks == sorted(ranks, reverse=True)
    f = analysis.findings
    for r in p.itertuples():
        sev = f[(f["rule"] == r.rule) & (f["caller"].fillna("") == (r.caller or ""))]["severity"]
        assert r.severity == sev.max()


def test_problem_ids_are_stable_across_runs(trace_path: Path, analysis: ta.Analysis):
    again = ta.analyze(ta.load(trace_path), engine="python")
    assert again.problems["problem_id"].tolist() == analysis.problems["problem_id"].tolist()


def test_empty_findings_give_an_empty_typed_table(analysis: ta.Analysis):
    empty = problems_of(analysis.findings.iloc[:0])
    assert list(empty.columns) == list(PROBLEM_COLUMNS) and len(empty) == 0
    assert str(empty["severity"].dtype) == "category"


def test_text_output_is_one_line_per_problem_and_all_lists_findings(analysis: ta.Analysis):
    text = render(analysis, "text")
    lines = [ln for ln in text.splitlines() if "UNLOCK_NOT_LOCKED" in ln]
    assert len(lines) == 1 and f" {N_BAD} " in lines[0]
    assert text.splitlines()[0].startswith(f"{len(analysis.problems)} problems")
    per_finding = render(analysis, "text", per_finding=True, max_rows=1000)
    assert sum("UNLOCK_NOT_LOCKED" in ln for ln in per_finding.splitlines()) == N_BAD


def test_json_has_problems_next_to_findings_and_validates(analysis: ta.Analysis):
    doc = json.loads(render(analysis, "json"))
    jsonschema.validate(doc, summary_schema())
    assert len(doc["problems"]) == len(analysis.problems)
    top = next(p for p in doc["problems"] if p["rule"] == "UNLOCK_NOT_LOCKED")
    assert top["count"] == N_BAD and top["processes"] == ["app0.exe", "app1.exe", "app2.exe"]
    assert sum(p["count"] for p in doc["problems"]) == sum(f["count"] for f in doc["findings"])


def test_report_has_what_to_fix_first(analysis: ta.Analysis):
    html = render(analysis, "html", figures={})
    section = html[html.index('id="problems"'):html.index('id="figures"')]
    assert section.count('class="problem"') == len(analysis.problems)
    assert "mydriver.sys+0x2c00" in section and f'<td class="num">{N_BAD}</td>' in section


def test_sql_problems_table(analysis: ta.Analysis):
    got = ta.sql(analysis, "select rule, count, process_count from problems "
                           "where caller = 'mydriver.sys+0x2c00'")
    assert got.to_dict("records") == [
        {"rule": "UNLOCK_NOT_LOCKED", "count": N_BAD, "process_count": 3}]


def test_cli_hazards_default_and_all(trace_path: Path):
    out = subprocess.run([str(SCRIPT), "hazards", str(trace_path)], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert "COUNT" in out and sum("UNLOCK_NOT_LOCKED" in ln for ln in out.splitlines()) == 1
    out_all = subprocess.run([str(SCRIPT), "hazards", str(trace_path), "--all"],
                             capture_output=True, text=True, timeout=300, check=True).stdout
    assert sum("UNLOCK_NOT_LOCKED" in ln for ln in out_all.splitlines()) == N_BAD
