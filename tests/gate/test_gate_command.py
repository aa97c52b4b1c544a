"""``gate.command.run_gate``: the whole ``check`` command as a library call that never
prints; its text goes to a sink (report vs status lines), in the order the CLI shows it."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest
from helpers.gate_fakes import fake_summarize, finding, summary, write_summary

from traceanalyzer.errors import TraceError
from traceanalyzer.gate.command import CheckRequest, run_gate

GOOD = [finding("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b", "app.exe", "high")]
BAD = finding("UNLOCK_WHILE_USER_MAPPED", "drv.sys+0x4343", "app.exe", "critical")


@pytest.fixture(autouse=True)
def fake_analyzer(monkeypatch):
    monkeypatch.setattr("traceanalyzer.gate.worker.summarize", fake_summarize)


class Sink:
    """Records what the gate says, tagged by kind, and how progress was used."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.progress_calls: list[tuple[int, int | None]] = []

    def progress(self):
        return nullcontext(lambda done, total=None: self.progress_calls.append((done, total)))

    def report(self, line: str) -> None:
        self.lines.append(("report", line))

    def note(self, line: str) -> None:
        self.lines.append(("note", line))

    def kinds(self, kind: str) -> list[str]:
        return [text for k, text in self.lines if k == kind]


def request(nightly, base, **options) -> CheckRequest:
    return CheckRequest(traces=[nightly], baseline=base, pattern="*.summary.json", jobs=1, **options)


def test_report_and_notes_go_to_the_sink_nothing_is_printed(tmp_path, capsys):
    nightly, base = tmp_path / "nightly", tmp_path / "b.json"
    for i in range(2):
        write_summary(nightly / f"case{i}.summary.json", summary(GOOD, at_end=8192, at_exit=8192))
    sink = Sink()
    assert run_gate(request(nightly, base, update_baseline=True), sink) == 0
    assert sink.kinds("note")[-1] == f"baseline written: {base} (2 trace(s))"
    assert sink.progress_calls[-1] == (2, 2)

    write_summary(nightly / "case1.summary.json", summary(GOOD + [BAD], at_end=8192, at_exit=8192))
    sink = Sink()
    assert run_gate(request(nightly, base), sink) == 1
    report, notes = sink.kinds("report"), sink.kinds("note")
    assert report[0] == "passed        case0.summary.json" and report[1] == "FAILED        case1.summary.json"
    assert report[-1].startswith("2 trace(s): 1 passed, 1 failed")
    assert notes[0].startswith("analysed 1, from cache 1, in ")
    assert notes[-1] == "REGRESSION: 1 trace(s) failed the gate"
    assert capsys.readouterr() == ("", "")


def test_json_to_stdout_is_the_one_report_item(tmp_path):
    nightly, base = tmp_path / "nightly", tmp_path / "b.json"
    write_summary(nightly / "case0.summary.json", summary([BAD]))
    run_gate(request(nightly, base, update_baseline=True), Sink())
    sink = Sink()
    assert run_gate(request(nightly, base, json="-"), sink) == 0
    [doc] = sink.kinds("report")
    assert json.loads(doc)["counts"]["passed"] == 1
    assert not any(line.startswith("analysed") for line in sink.kinds("note"))


def test_bad_options_raise_before_any_work(tmp_path):
    nightly = tmp_path / "nightly"
    write_summary(nightly / "case0.summary.json", summary(GOOD))
    for options, message in [({"ignore": ("NOT_A_RULE",)}, "--ignore: unknown rule 'NOT_A_RULE'"),
                             ({"timeout": 0.0}, "--timeout must be a positive number of seconds"),
                             ({"leak_rel_tol": -1.0}, "tolerances must not be negative")]:
        sink = Sink()
        with pytest.raises(TraceError, match=message):
            run_gate(request(nightly, tmp_path / "b.json", update_baseline=True, **options), sink)
        assert sink.lines == [] and not (tmp_path / "b.json").exists()
