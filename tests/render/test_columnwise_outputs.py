"""Findings, their messages and the JSON document are built column-wise (issue 15 target
4); these tests hold the column-wise paths to what the per-row definitions produce."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.lifecycle.tables import distinct_sorted_rows
from traceanalyzer.render import json_summary
from traceanalyzer.render.base import filter_findings
from traceanalyzer.render.json_summary import summary_json, write_summary_json
from traceanalyzer.rules.problems import problem_records, problems_of
from traceanalyzer.rules.messages import TEMPLATES, message_for, messages_for
from traceanalyzer.vocabulary import at_least

from helpers.rows import PRELUDE, analyze_rows

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (REPO / "sample_traces").glob("*.csv")
                 if not p.name.endswith(".expected.csv"))


def _hostile() -> ta.Analysis:
    """Findings whose strings need escaping (quotes, backslash, control and non-ASCII
    characters, a percent sign) and whose MDL size is unknown (null bytes and impact)."""
    mdl = 0xFFFFC30A4B2F1000
    name = 'ä"\\%s\x1b\u2028.exe'
    return analyze_rows(PRELUDE + [
        {"time_ns": 10, "event": "ProcessStart", "pid": 500, "image": name},
        {"time_ns": 10, "event": "ThreadStart", "pid": 500, "tid": 5000},
        {"time_ns": 100, "event": "MmProbeAndLockPages", "pid": 500, "tid": 5000, "mdl": mdl,
         "access_mode": "KernelMode", "caller": 'drv"%d.sys+0x10'},
        {"time_ns": 200, "event": "MmProbeAndLockPages", "pid": 500, "tid": 5000, "mdl": mdl,
         "access_mode": "KernelMode", "caller": "drv.sys+0x20"},
        {"time_ns": 300, "event": "MmUnlockPages", "pid": 500, "tid": 5000, "mdl": mdl + 8},
    ])


@pytest.fixture(scope="module")
def analyses() -> list[ta.Analysis]:
    return [ta.analyze(ta.load(p)) for p in SAMPLES] + [_hostile()]


@pytest.mark.parametrize("indent", [2, None, 0])
def test_streamed_json_is_json_dumps_of_the_summary(analyses, indent, monkeypatch) -> None:
    monkeypatch.setattr(json_summary, "CHUNK_ROWS", 2)  # several chunks on small traces
    assert any(len(a.findings) > 4 for a in analyses)
    for a in analyses:
        out = io.StringIO()
        write_summary_json(a, out, indent=indent)
        assert out.getvalue() == summary_json(a.summary(), indent=indent)


def test_streamed_json_filters_by_severity(analyses) -> None:
    a = max(analyses, key=lambda x: x.findings["severity"].nunique())
    summary = a.summary()
    for least in ("critical", "high", "medium", "low"):
        want = dict(summary, findings=[f for f in summary["findings"]
                                       if at_least(f["severity"], least)],
                    problems=problem_records(problems_of(filter_findings(a.findings, least))))
        out = io.StringIO()
        write_summary_json(a, out, min_severity=least)
        assert out.getvalue() == summary_json(want)


def test_hostile_strings_survive_the_stream() -> None:
    a = _hostile()
    out = io.StringIO()
    write_summary_json(a, out)
    doc = json.loads(out.getvalue())
    assert doc["findings"] and any('ä"\\%s\x1b\u2028.exe' == f["process"] for f in doc["findings"])
    assert doc["findings"] == a.summary()["findings"]


def test_hazards_json_cli_streams_the_document(capsys) -> None:
    seed = REPO / "sample_traces" / "seed_unlock_from_worker.csv"
    assert main(["hazards", "--json", str(seed)]) == 0
    printed = capsys.readouterr().out
    assert printed == summary_json(ta.analyze(ta.load(seed)).summary())


def test_hazards_min_severity_leaves_the_same_out_of_every_output(capsys) -> None:
    seed = REPO / "sample_traces" / "seed_unlock_from_worker.csv"
    assert main(["hazards", "--json", str(seed)]) == 0
    assert "medium" in {p["severity"] for p in json.loads(capsys.readouterr().out)["problems"]}
    assert main(["hazards", "--json", "--min-severity", "high", str(seed)]) == 0
    doc = json.loads(capsys.readouterr().out)
    sites = {(p["rule"], p["caller"]) for p in doc["problems"]}
    assert sites == {(f["rule"], f["caller"]) for f in doc["findings"]} and len(sites) == 2
    assert sum(p["count"] for p in doc["problems"]) == sum(f["count"] for f in doc["findings"])
    assert main(["hazards", "--csv", "--min-severity", "high", str(seed)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(r["rule"], r["caller"]) for r in rows} == sites
    assert main(["hazards", "--min-severity", "high", str(seed)]) == 0
    assert capsys.readouterr().out.startswith("2 problems: 1 critical, 1 high")


def test_messages_for_equals_message_for_on_every_template() -> None:
    rng = random.Random(15)
    names = sorted({n for t in TEMPLATES.values() for n in _fields(t)} | {"owner"})
    rules = [r for r in TEMPLATES for _ in range(3)] + ["NOT_A_RULE"] * 2
    rows = []
    for _ in rules:
        rows.append({n: rng.choice(["x", "ä b", 7, None, "?", "{brace}"]) for n in names
                     if rng.random() < 0.9})
    columns = {n: np.array([r.get(n, "?") for r in rows], dtype=object) for n in names}
    got = messages_for(np.array(rules, dtype=object), lambda n: columns.get(n))
    want = [message_for(rule, **{n: r.get(n, "?") for n in names}) for rule, r in zip(rules, rows)]
    assert got.tolist() == want


def _fields(template: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def test_distinct_sorted_rows() -> None:
    rng = np.random.default_rng(4)
    rows = rng.integers(-1, 6, size=(200, 5))
    assert distinct_sorted_rows(rows) == [sorted({int(x) for x in r if x >= 0}) for r in rows]
    assert distinct_sorted_rows(np.zeros((0, 5), dtype=np.int64)) == []
