"""An MDL whose size the trace never gave (no IoAllocateMdl / build call seen) has
unknown bytes: null in every table and in JSON, "?" in text and HTML, and no 0-byte
impact; MDLs of known size keep adding up."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.analysis.impact import impact_table
from traceanalyzer.render import render
from traceanalyzer.render.json_summary import summary_schema
from traceanalyzer.rules.problems import problems_of

SEED = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"


@pytest.fixture(scope="module")
def unknown(tmp_path_factory) -> ta.Analysis:
    """The seed trace without its IoAllocateMdl: the MDL is locked, user-mapped, unlocked
    from a worker and leaked at exit, and nothing says how large it is."""
    lines = [l for l in SEED.read_text().splitlines() if ",IoAllocateMdl," not in l]
    path = tmp_path_factory.mktemp("unknown") / "no_size.csv"
    path.write_text("\n".join(lines) + "\n")
    return ta.analyze(ta.load(path))


def test_tables_say_unknown_not_zero(unknown) -> None:
    lt = unknown.lifecycles
    assert lt["size"].isna().all() and lt["bytes"].isna().all() and lt["pages"].isna().all()
    assert unknown.mappings["bytes"].isna().all() and unknown.locks["bytes"].isna().all()
    f = unknown.findings
    assert set(f["rule"]) == {"UNLOCK_WHILE_USER_MAPPED", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"}
    assert f["bytes"].isna().all() and f["impact_byte_seconds"].isna().all()
    assert all("an unknown number of bytes" in m for m in f["message"])
    p = unknown.problems
    assert p["bytes"].isna().all() and p["impact_byte_seconds"].isna().all()
    # the exit leak is permanent of unknown size: still ranked as a permanent leak
    leak = p[p["rule"] == "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"].iloc[0]
    assert pd.isna(leak["permanent_bytes"])
    by_caller = impact_table(f, "caller")
    assert by_caller["bytes"].isna().all() and by_caller["impact_byte_seconds"].isna().all()
    assert unknown.leaks == {"bytes_at_end": None, "bytes_leaked_at_exit": None,
                             "by_process": [{"pid": 1234, "process": "app.exe", "bytes": None}]}


def test_json_has_null_and_validates(unknown) -> None:
    doc = json.loads(render(unknown, "json"))
    schema = summary_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(doc)
    assert {(x["bytes"], x["impact_byte_seconds"]) for x in doc["findings"]} == {(None, None)}
    assert {x["bytes"] for x in doc["problems"]} == {None}
    assert doc["leaks"]["by_process"][0]["bytes"] is None
    assert doc["leaks"]["bytes_at_end"] is None and doc["leaks"]["bytes_leaked_at_exit"] is None


def test_text_and_html_show_a_question_mark(unknown) -> None:
    text = render(unknown, "text", per_finding=True)
    row = next(l for l in text.splitlines() if l.startswith("critical"))
    assert row.split()[-2:] == ["?", "?"], row
    assert "0 B" not in row
    assert "memory still held at trace end: ?\n" in text
    assert "app.exe (1234): ?" in text
    html = render(unknown, "html", figures={})
    assert '<td class="num" data-v="">?</td>' in html
    for card in ("held at trace end", "left behind at process exit", "total impact"):
        assert f'<div class="v">?</div><div class="k">{card}</div>' in html, card


def test_known_sizes_still_add_up_next_to_an_unknown_one() -> None:
    f = pd.DataFrame({
        "rule": ["R", "R", "R"], "severity": ["high"] * 3, "caller": ["d.sys+0x10"] * 3,
        "time_ns": [1, 2, 3], "pid": [1, 1, 1], "process": ["a.exe"] * 3,
        "bytes": pd.array([4096, None, 8192], dtype="Int64"),
        "impact_byte_seconds": [1.0, float("nan"), 2.0], "count": [1, 1, 1],
        "lifetime_id": [0, 1, 2], "message": ["m"] * 3, "advice": ["a"] * 3,
        "evidence": [[1], [2], [3]], "fingerprint": ["x"] * 3, "permanent": [False] * 3,
    })
    p = problems_of(f)
    assert p.loc[0, "bytes"] == 12288 and p.loc[0, "impact_byte_seconds"] == 3.0
    t = impact_table(f, "rule")
    assert t.loc[0, "bytes"] == 12288 and t.loc[0, "impact_byte_seconds"] == 3.0


def test_gate_digest_keeps_unknown_bytes_unknown(unknown) -> None:
    from traceanalyzer.gate.digest import add_bytes, digest_summary

    groups = digest_summary(json.loads(render(unknown, "json"))).findings
    assert {g.bytes for g in groups.values()} == {None}  # SARIF bytes_total: null, not 0
    assert add_bytes(None, 4096) == 4096 and add_bytes(None, None) is None


HEADER = ("time_ns,event,pid,tid,mdl,va,size,access_mode,operation,cache_type,mapped_va,"
          "priority,bugcheck_on_failure,caller,image")


def _open_at_end(tmp_path: Path, known: bool) -> ta.Analysis:
    """b.exe locks an MDL of unknown size and keeps it locked to the end; with ``known``,
    app.exe also keeps an 8 KiB MDL (IoAllocateMdl seen) locked."""
    rows = [
        "1000,ProcessStart,1234,,,,,,,,,,,,app.exe",
        "1500,ProcessStart,2345,,,,,,,,,,,,b.exe",
        "2000,ThreadStart,1234,10,,,,,,,,,,,",
        "2500,ThreadStart,2345,20,,,,,,,,,,,",
        "5000,MmProbeAndLockPages,2345,20,0xffffc30a4b2f3000,,,UserMode,IoReadAccess,,,,,d.sys+0x20,",
        "9000,ThreadEnd,2345,20,,,,,,,,,,,",
    ]
    if known:
        rows[4:4] = [
            "3000,IoAllocateMdl,1234,10,0xffffc30a4b2f1000,0x7ff600010000,8192,,,,,,,d.sys+0x10,",
            "4000,MmProbeAndLockPages,1234,10,0xffffc30a4b2f1000,,,UserMode,IoReadAccess,,,,,d.sys+0x14,",
        ]
    path = tmp_path / f"open_{known}.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return ta.analyze(ta.load(path))


def test_open_at_end_of_unknown_size_is_unknown_not_zero(tmp_path: Path) -> None:
    a = _open_at_end(tmp_path, known=False)
    f = a.findings.set_index("rule")
    assert pd.isna(f.loc["TRACE_OPEN_AT_END", "bytes"])
    assert pd.isna(f.loc["TRACE_OPEN_AT_END", "impact_byte_seconds"])
    assert "(an unknown number of bytes)" in f.loc["TRACE_OPEN_AT_END", "message"]
    assert a.leaks["bytes_at_end"] is None
    p = a.problems.set_index("rule")
    assert pd.isna(p.loc["TRACE_OPEN_AT_END", "bytes"])
    doc = json.loads(render(a, "json"))
    schema = summary_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(doc)
    assert [x["bytes"] for x in doc["findings"] if x["rule"] == "TRACE_OPEN_AT_END"] == [None]
    text = render(a, "text", per_finding=True)
    row = next(l for l in text.splitlines() if "TRACE_OPEN_AT_END" in l)
    assert row.split()[-2:] == ["?", "?"], row


def test_open_at_end_adds_the_known_sizes(tmp_path: Path) -> None:
    a = _open_at_end(tmp_path, known=True)
    f = a.findings.set_index("rule")
    assert f.loc["TRACE_OPEN_AT_END", "count"] == 2 and f.loc["TRACE_OPEN_AT_END", "bytes"] == 8192
    assert a.leaks["bytes_at_end"] == 8192
    assert a.leaks["by_process"] == [{"pid": 1234, "process": "app.exe", "bytes": 8192},
                                     {"pid": 2345, "process": "b.exe", "bytes": None}]
    assert "memory still held at trace end: 8 KiB + ?" in render(a, "text")


def test_leak_totals_are_zero_only_when_nothing_is_held() -> None:
    from traceanalyzer.analysis.leaks import known_total

    assert known_total(pd.Series([], dtype="Int64")) == 0
    assert known_total(pd.Series([None, None], dtype="Int64")) is None
    assert known_total(pd.Series([4096, None], dtype="Int64")) == 4096
