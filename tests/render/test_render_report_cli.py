"""``traceanalyzer report``: files written, where they are printed, errors and help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main

SEED = Path(__file__).resolve().parent / "data" / "seed_unlock_min.csv"


def test_report_writes_files_and_prints_where(tmp_path: Path, capsys) -> None:
    out = tmp_path / "deep" / "out"
    assert main(["report", str(SEED), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    for name in ("report.html", "summary.json", "leak_timeline.png", "hazard_timeline.png"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    summary = json.loads((out / "summary.json").read_text())
    rules = [f["rule"] for f in summary["findings"]]
    assert rules[0] == "UNLOCK_WHILE_USER_MAPPED"
    assert "USER_MAPPING_NOT_UNMAPPED_AT_EXIT" in rules
    assert summary["leaks"]["bytes_at_end"] == 8192
    html = (out / "report.html").read_text()
    # the process name of this trace is "app<script>.exe": escaped everywhere
    assert "app<script>" not in html and "app&lt;script&gt;.exe" in html


@pytest.mark.parametrize("trace", ["seed", "unknown_events"])
def test_report_counts_what_hazards_counts(tmp_path: Path, capsys, trace: str) -> None:
    """report printed "(3 findings)" where hazards said "1 problem: 1 info (62
    occurrences)" (a trace whose 62 unknown events are 3 findings, one per event name)."""
    path = SEED
    if trace == "unknown_events":
        path = tmp_path / "unknown.csv"
        path.write_text("time_ns,event,pid\n" + "".join(f"{t},Prov/{t % 3},4\n" for t in range(5, 67)))
    assert main(["hazards", str(path)]) == 0
    count_line = capsys.readouterr().out.splitlines()[0]
    assert main(["report", str(path), "-o", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == count_line
    if trace == "unknown_events":
        assert count_line == "1 problem: 1 info (62 occurrences)"
        # counted over the whole trace: at its first event (docs/rules.md, trace quality findings)
        (problem,) = json.loads((tmp_path / "r" / "summary.json").read_text())["problems"]
        assert problem["rule"] == "TRACE_UNKNOWN_EVENT" and problem["first_ns"] == problem["last_ns"] == 5


def test_missing_trace_is_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    code = main(["report", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.csv" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "report.html").exists()


def test_help_ends_with_an_example(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    help_text = capsys.readouterr().out.strip()
    assert help_text.splitlines()[-1].strip().endswith("-o out/")
    assert "Example: traceanalyzer report" in help_text
