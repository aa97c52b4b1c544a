"""Every output of a trace whose findings miss what a driver trace often misses: no
caller column values, a process without an image name, a call without pid or thread
(unattributed), MDLs of unknown size. Each command and figure must come out whole, with
``-``/``?`` in text and null in JSON, never ``TypeError: boolean value of NA is
ambiguous`` (pd.NA in a truth test) or a ``nan`` shown as a name."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.plot.problem_timeline import plot_problem_timeline_for, problem_lanes
from traceanalyzer.render import render

matplotlib.use("Agg")

HEADER = ("time_ns,event,pid,tid,mdl,va,size,access_mode,operation,cache_type,mapped_va,"
          "priority,bugcheck_on_failure,caller,image")
A, B, C = "0xFFFFC30A4B2F1000", "0xFFFFC30A4B2F3000", "0xFFFFC30A4B2F5000"
# no caller anywhere, no image for the process, no IoAllocateMdl (sizes unknown)
BARE = [
    "1000,ProcessStart,1234,,,,,,,,,,,,",
    "2000,ThreadStart,1234,2000,,,,,,,,,,,",
    f"3000,MmProbeAndLockPages,1234,2000,{A},,,UserMode,IoWriteAccess,,,,,,",
    f"4000,MmProbeAndLockPages,1234,2000,{A},,,UserMode,IoWriteAccess,,,,,,",
    f"5000,MmMapLockedPagesSpecifyCache,1234,2000,{A},,,UserMode,,MmCached,0x7FF600010000,,,,",
    f"6000,IoFreeMdl,,,{B},,,,,,,,,,",  # no pid, no thread: unattributed
    "7000,ProcessEnd,1234,,,,,,,,,,,,",
    f"8000,MmProbeAndLockPages,1234,2000,{C},,,KernelMode,IoReadAccess,,,,,,",
]
RULES = {"LOCKED_PAGES_AT_PROCESS_EXIT", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "DOUBLE_LOCK",
         "LOCKED_MDL_NEVER_UNLOCKED", "TRACE_CONTEXT_UNRESOLVED", "TRACE_OPEN_AT_END"}


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("bare") / "bare.csv", BARE)


@pytest.fixture(scope="module")
def analysis(bare: Path) -> ta.Analysis:
    a = ta.analyze(ta.load(bare))
    f = a.findings
    assert set(f["rule"]) == RULES  # the shape the tests below rely on
    assert f["caller"].isna().all() and f["process"].isna().all()
    assert f["pid"].isna().any() and f.loc[f["rule"] == "DOUBLE_LOCK", "bytes"].isna().all()
    return a


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("flags", [[], ["--all"], ["--json"], ["--csv"]])
def test_hazards_every_output(bare: Path, flags: list[str], capsys) -> None:
    code, out, err = _run(["hazards", str(bare), *flags], capsys)
    assert (code, err) == (0, "")
    if flags == ["--json"]:
        doc = json.loads(out)
        assert {x["rule"] for x in doc["findings"]} == RULES
        assert {x["caller"] for x in doc["findings"]} == {None}
        assert {x["process"] for x in doc["findings"]} == {None}
        assert {x["caller"] for x in doc["problems"]} == {None}
    elif flags == ["--csv"]:
        assert len(out.strip().splitlines()) == 1 + len(RULES)
    else:
        assert "DOUBLE_LOCK" in out and "nan" not in out.lower().replace("unknown", "")
        assert "<NA>" not in out


@pytest.mark.parametrize("static", [False, True])
def test_report_writes_every_file(bare: Path, tmp_path: Path, static: bool, capsys) -> None:
    out_dir = tmp_path / "out"
    code, out, err = _run(["report", str(bare), "-o", str(out_dir), "-q"]
                          + (["--static"] if static else []), capsys)
    assert (code, err) == (0, "")
    for name in ("report.html", "summary.json", "leak_timeline.png", "hazard_timeline.png"):
        assert (out_dir / name).stat().st_size > 0, name
    html = (out_dir / "report.html").read_text()
    assert "DOUBLE_LOCK" in html and "&lt;NA&gt;" not in html and ">nan<" not in html


def test_check_new_findings_without_caller_in_every_report(bare: Path, tmp_path: Path,
                                                          capsys) -> None:
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    trace = _write(nightly / "bare.csv", BARE[:3])  # the baseline: just a lock
    base = tmp_path / "baseline.json"
    common = ["--baseline", str(base), "--jobs", "1", "--no-cache"]
    assert _run(["check", str(nightly), *common, "--update-baseline"], capsys)[0] == 0
    trace.write_text(bare.read_text())
    sarif, junit, verdicts = tmp_path / "s.sarif", tmp_path / "j.xml", tmp_path / "v.json"
    code, out, err = _run(["check", str(nightly), *common, "-v", "--sarif", str(sarif),
                           "--junit", str(junit), "--json", str(verdicts),
                           "--history", str(tmp_path / "hist")], capsys)
    assert code == 1 and err == ""  # new critical/high findings fail the gate
    assert "new finding DOUBLE_LOCK [high] ? in ?" in out
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"DOUBLE_LOCK", "LOCKED_PAGES_AT_PROCESS_EXIT"}
    assert junit.stat().st_size and json.loads(verdicts.read_text())
    png = tmp_path / "trend.png"
    code, out, err = _run(["check", "--history", str(tmp_path / "hist"), "--trend", "DOUBLE_LOCK",
                           "--trend-png", str(png)], capsys)
    assert (code, err) == (0, "") and png.stat().st_size > 0


def test_every_figure_and_renderer(analysis: ta.Analysis) -> None:
    figures = [
        analysis.plot_leak_timeline(),
        analysis.plot_hazard_timeline(lanes="process", include_info=True),
        analysis.plot_hazard_timeline(lanes="problem", include_info=True),
        analysis.plot_impact(),
        plot_problem_timeline_for(analysis, include_info=True),
    ]
    assert all(fig.axes for fig in figures)
    lanes = problem_lanes(analysis.findings)
    assert all(label.split("\n")[1] == "?" for label in lanes["label"])
    for fmt in ("text", "json", "csv", "html"):
        assert render(analysis, fmt)
    assert analysis._repr_html_() and repr(analysis) and analysis.summary()


def test_process_span_lookup_takes_a_missing_name(analysis: ta.Analysis) -> None:
    import pandas as pd

    from traceanalyzer.plot import frames

    spans = frames.process_spans(analysis.trace.processes)
    for name in (None, pd.NA, float("nan")):
        assert frames.span_for(spans, 1234, name, 3000.0) == (1000.0, 7000.0)
