"""text / json / csv renderers on hand-built Analysis tables."""

from __future__ import annotations

import csv
import io
import json

from helpers.fake_analysis import fake_analysis

from traceanalyzer.render import render


def test_json_is_the_summary_dict() -> None:
    a = fake_analysis()
    doc = json.loads(render(a, "json"))
    assert doc == json.loads(json.dumps(a.summary()))
    assert {"traces", "time_span_ns", "findings", "leaks", "stats"} <= set(doc)


def test_json_min_severity_filters_findings_and_problems() -> None:
    a = fake_analysis()
    doc = json.loads(render(a, "json", min_severity="critical"))
    assert [f["rule"] for f in doc["findings"]] == ["UNLOCK_WHILE_USER_MAPPED"]
    assert doc["leaks"]["bytes_at_end"] == 8192

    class Summary:  # anything with summary(): its problems are filtered as its findings
        def summary(self) -> dict:
            rows = [{"rule": "A", "severity": "critical"}, {"rule": "B", "severity": "low"}]
            return {"findings": rows, "problems": rows}

    doc = json.loads(render(Summary(), "json", min_severity="high"))
    assert [f["rule"] for f in doc["findings"]] == [p["rule"] for p in doc["problems"]] == ["A"]


def test_csv_round_trips_the_findings() -> None:
    a = fake_analysis(extra_processes=3)
    rows = list(csv.DictReader(io.StringIO(render(a, "findings.csv"))))
    assert len(rows) == len(a.findings)
    first = rows[0]
    assert first["rule"] == "UNLOCK_WHILE_USER_MAPPED"
    assert first["mdl"] == "0xffffc30a4b2f1000"
    assert first["evidence"] == "3 4 6"
    assert float(first["impact_byte_seconds"]) == 8192 * 3.0


def test_csv_min_severity() -> None:
    a = fake_analysis()
    rows = list(csv.DictReader(io.StringIO(render(a, "csv", min_severity="critical"))))
    assert [r["severity"] for r in rows] == ["critical"]


def test_text_table_lists_findings_and_escapes_terminal_controls() -> None:
    a = fake_analysis(hostile_name="evil\x1b[2J.exe")
    out = render(a, "text", per_finding=True)
    assert "\x1b" not in out
    assert "evil\\x1b[2J.exe" in out
    lines = out.splitlines()
    assert lines[0] == "2 findings: 1 critical, 1 high"
    header = next(i for i, s in enumerate(lines) if s.startswith("SEVERITY"))
    assert lines[header + 2].startswith("critical  UNLOCK_WHILE_USER_MAPPED")
    assert "what to do: Unmap in the owning process" in out


def test_text_table_counts_rows_beyond_max_rows() -> None:
    a = fake_analysis(extra_processes=60)
    out = render(a, "text", max_rows=10, per_finding=True)
    assert f"... {len(a.findings) - 10} more" in out
