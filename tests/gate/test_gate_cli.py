"""``traceanalyzer check`` through the real CLI front end (cli/main.py).

The per-trace analysis is replaced by ``gate_fakes.fake_summarize`` (traces hold their
summary as JSON) so these tests pin the command's behaviour, exit codes and files;
test_gate_end_to_end.py runs the same command on real traces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.gate_fakes import fake_summarize, finding, summary, write_summary
from junitparser import JUnitXml

from traceanalyzer.cli.main import build_parser, main

GOOD = [finding("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b", "app.exe", "high", time_ns=5_000_000)]
BAD = finding("UNLOCK_WHILE_USER_MAPPED", "drv.sys+0x4343", "app.exe", "critical", time_ns=3_500_000_000,
              pid=1234, message="MmUnlockPages on MDL 0xffff while mapped into app.exe")


@pytest.fixture(autouse=True)
def fake_analyzer(monkeypatch):
    monkeypatch.setattr("traceanalyzer.gate.worker.summarize", fake_summarize)


@pytest.fixture
def nightly(tmp_path):
    d = tmp_path / "nightly"
    for i in range(3):
        write_summary(d / f"case{i}.summary.json", summary(GOOD, at_end=8192, at_exit=8192))
    return d


def check(*argv):
    return main(["check", *map(str, argv), "--pattern", "*.summary.json", "--jobs", "1"])


def test_update_then_pass_then_regression_named_with_evidence(nightly, tmp_path, capsys):
    base = tmp_path / "ci" / "baseline.json"
    assert check(nightly, "--baseline", base, "--update-baseline") == 0
    out = capsys.readouterr().out
    assert f"baseline written: {base} (3 trace(s))" in out
    assert sorted(json.loads(base.read_text())["traces"]) == [f"case{i}.summary.json" for i in range(3)]
    assert (tmp_path / "ci" / "baseline.cache").is_dir()

    assert check(nightly, "--baseline", base) == 0
    out = capsys.readouterr().out
    assert out.count("passed        case") == 3 and "REGRESSION" not in out
    assert "analysed 0, from cache 3" in out

    write_summary(nightly / "case1.summary.json", summary(GOOD + [BAD], at_end=8192, at_exit=8192))
    junit, sarif = tmp_path / "j.xml", tmp_path / "s.sarif"
    assert check(nightly, "--baseline", base, "--junit", junit, "--sarif", sarif) == 1
    out = capsys.readouterr().out
    assert "FAILED        case1.summary.json" in out
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical] drv.sys+0x4343 in app.exe" in out
    assert "at 3.500000 s, pid 1234 (app.exe)" in out and "MmUnlockPages on MDL 0xffff while mapped" in out
    assert "REGRESSION: 1 trace(s) failed the gate" in out
    assert "analysed 1, from cache 2" in out
    [suite] = list(JUnitXml.fromfile(str(junit)))
    assert (suite.tests, suite.failures) == (3, 1)
    assert json.loads(sarif.read_text())["runs"][0]["properties"]["verdicts"]["case1.summary.json"] == "failed"


def test_fail_on_and_leak_tolerance_options(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    write_summary(nightly / "case0.summary.json",
                  summary(GOOD + [finding("KMAP_LEAK", "drv.sys+0x9", "System", "medium")], 8192, 8192 + 20000))
    assert check(nightly, "--baseline", base) == 1  # leak grew by 20000 > 16384
    assert "leak regression: bytes_leaked_at_exit 8192 -> 28192 bytes (allowed up to 24576)" in capsys.readouterr().out
    assert check(nightly, "--baseline", base, "--leak-abs-tol", "30000") == 0
    assert "new finding KMAP_LEAK" not in capsys.readouterr().out  # medium, below --fail-on high
    assert check(nightly, "--baseline", base, "--leak-abs-tol", "30000", "--fail-on", "medium") == 1
    assert "new finding KMAP_LEAK [medium]" in capsys.readouterr().out


def test_missing_baseline_is_exit_2_with_one_line(nightly, tmp_path, capsys):
    assert check(nightly, "--baseline", tmp_path / "none.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"traceanalyzer: {tmp_path / 'none.json'}: baseline not found; create it with --update-baseline"]


@pytest.mark.parametrize("update", [True, False])
def test_a_folder_as_baseline_is_exit_2_before_any_analysis(nightly, tmp_path, capsys, monkeypatch, update):
    """Named at once: no trace analysed, no '<name>.cache' folder made beside it."""
    calls = []
    monkeypatch.setattr("traceanalyzer.gate.worker.summarize", lambda *a, **k: calls.append(a))
    folder = tmp_path / "n"
    folder.mkdir()
    assert check(nightly, "--baseline", folder, *(["--update-baseline"] if update else [])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"traceanalyzer: {folder}: is a folder, not a baseline file (name the JSON file, e.g. baseline.json)"]
    assert calls == [] and not (tmp_path / "n.cache").exists() and list(folder.iterdir()) == []


def test_unreadable_trace_is_exit_2_but_reports_are_written(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    (nightly / "case2.summary.json").write_text("BAD")
    junit = tmp_path / "j.xml"
    assert check(nightly, "--baseline", base, "--junit", junit) == 2
    captured = capsys.readouterr()
    assert "ERROR         case2.summary.json" in captured.out
    assert captured.err.strip() == f"traceanalyzer: {nightly / 'case2.summary.json'}: not a trace format traceanalyzer knows"
    [suite] = list(JUnitXml.fromfile(str(junit)))
    assert suite.errors == 1


def _written_exit_codes(json_file, sarif_file) -> tuple[int, int]:
    sarif = json.loads(sarif_file.read_text())
    return json.loads(json_file.read_text())["exit_code"], sarif["runs"][0]["invocations"][0]["exitCode"]


def test_json_and_sarif_carry_the_exit_code_the_process_exits_with(nightly, tmp_path, capsys):
    base, out, sarif = tmp_path / "b.json", tmp_path / "v.json", tmp_path / "s.sarif"
    files = ("--json", out, "--sarif", sarif)
    check(nightly, "--baseline", base, "--update-baseline")
    assert check(nightly, "--baseline", base, *files) == 0
    assert _written_exit_codes(out, sarif) == (0, 0)
    write_summary(nightly / "case1.summary.json", summary(GOOD + [BAD], 8192, 8192))
    assert check(nightly, "--baseline", base, *files) == 1
    assert _written_exit_codes(out, sarif) == (1, 1)
    (nightly / "case2.summary.json").write_text("BAD")  # a regression and an unreadable trace: exit 2
    assert check(nightly, "--baseline", base, *files) == 2
    assert _written_exit_codes(out, sarif) == (2, 2)
    (nightly / "case2.summary.json").unlink()
    assert check(nightly, "--baseline", base, "--update-baseline", *files) == 0  # the regression is accepted
    assert _written_exit_codes(out, sarif) == (0, 0)
    (nightly / "case2.summary.json").write_text("BAD")
    capsys.readouterr()
    assert check(nightly, "--baseline", base, "--json", "-") == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2


def test_new_and_missing_traces_pass_and_update_drops_missing(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    (nightly / "case0.summary.json").unlink()
    write_summary(nightly / "extra" / "case9.summary.json", summary([BAD]))
    assert check(nightly, "--baseline", base) == 0
    out = capsys.readouterr().out
    assert "missing trace case0.summary.json" in out and "new trace     extra/case9.summary.json" in out
    assert check(nightly, "--baseline", base, "--update-baseline") == 0
    assert "dropped 1 missing trace(s)" in capsys.readouterr().out
    assert sorted(json.loads(base.read_text())["traces"]) == [
        "case1.summary.json", "case2.summary.json", "extra/case9.summary.json"]


def test_json_to_stdout_is_only_json(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    capsys.readouterr()
    write_summary(nightly / "case1.summary.json", summary(GOOD + [BAD], 8192, 8192))
    assert check(nightly, "--baseline", base, "--json", "-") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 1 and doc["counts"]["failed"] == 1
    [nf] = doc["traces"]["case1.summary.json"]["new_findings"]
    assert nf["rule"] == "UNLOCK_WHILE_USER_MAPPED" and nf["blocking"] and nf["evidence"]["pid"] == 1234


def test_history_and_trend_png(nightly, tmp_path, capsys):
    base, hist = tmp_path / "b.json", tmp_path / "hist"
    check(nightly, "--baseline", base, "--update-baseline", "--history", hist)
    write_summary(nightly / "case1.summary.json", summary(GOOD * 3, 8192, 8192 * 3))
    png = tmp_path / "trend.png"
    assert check(nightly, "--baseline", base, "--history", hist,
                 "--trend", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "--trend-png", png) == 1
    assert f"trend plot written: {png}" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG" and len(list(hist.glob("run-*.json"))) == 2
    # plotting alone, from the history only
    assert main(["check", "--history", str(hist), "--trend", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]) == 0
    assert (hist / "trend-USER_MAPPING_NOT_UNMAPPED_AT_EXIT.png").exists()
    (hist / "trend-USER_MAPPING_NOT_UNMAPPED_AT_EXIT.png").unlink()
    assert main(["check", "--history", str(hist), "--trend", "user_mapping_not_unmapped_at_exit"]) == 0
    assert [p.name for p in hist.glob("trend-*.png")] == ["trend-USER_MAPPING_NOT_UNMAPPED_AT_EXIT.png"]
    assert main(["check", "--trend", "X"]) == 2
    assert "--trend needs --history DIR" in capsys.readouterr().err


def test_bad_usage_is_exit_2(nightly, tmp_path, capsys):
    assert main(["check", str(nightly)]) == 2
    assert "--baseline FILE is required" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "nope"), "--baseline", str(tmp_path / "b.json")]) == 2
    assert "no such trace file or folder" in capsys.readouterr().err
    check(nightly, "--baseline", tmp_path / "b.json", "--update-baseline")
    capsys.readouterr()
    assert main(["check", str(nightly), "--baseline", str(tmp_path / "b.json"), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_help_describes_the_gate_and_ends_with_an_example():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    text = sub.choices["check"].format_help().rstrip().splitlines()
    assert any("--update-baseline" in line for line in text) and any("--scheduler" in line for line in text)
    assert text[-1].strip().startswith("--trend USER_MAPPING_NOT_UNMAPPED_AT_EXIT")
    assert text[-2].strip().startswith("traceanalyzer check nightly/")


def test_skip_leaves_files_out_of_folders(nightly, tmp_path, capsys):
    (nightly / "case0.expected.summary.json").write_text("BAD: not a trace")
    base = tmp_path / "b.json"
    assert check(nightly, "--baseline", base, "--update-baseline", "--skip", "*.expected.*") == 0
    assert sorted(json.loads(base.read_text())["traces"]) == [f"case{i}.summary.json" for i in range(3)]
    assert check(nightly, "--baseline", base) == 2  # without --skip the non-trace is read, and fails
    assert "case0.expected.summary.json: not a trace format" in capsys.readouterr().err


def test_ignore_option_checks_rule_ids(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    write_summary(nightly / "case1.summary.json", summary(GOOD + [BAD], 8192, 8192))
    assert check(nightly, "--baseline", base, "--ignore", "UNLOCK_WHILE_USER_MAPPED", "-v") == 0
    assert "(--ignore'd rule, not failing)" in capsys.readouterr().out
    assert check(nightly, "--baseline", base, "--ignore", "unlock_While_user_mapped", "-v") == 0  # any case
    assert "(--ignore'd rule, not failing)" in capsys.readouterr().out
    assert check(nightly, "--baseline", base, "--ignore", "UNLOCK_WHILE_USER_MAPPD") == 2
    err = capsys.readouterr().err
    assert err.startswith("traceanalyzer: --ignore: unknown rule 'UNLOCK_WHILE_USER_MAPPD'; "
                          "closest: UNLOCK_WHILE_USER_MAPPED") and err.count("\n") == 1
    assert check(nightly, "--baseline", base, "--ignore", "unlock_while_mapped") == 2
    assert "closest: UNLOCK_WHILE_USER_MAPPED" in capsys.readouterr().err
    assert check(nightly, "--baseline", base, "--ignore", "zz") == 2  # nothing close: still the closest one
    assert re.fullmatch(r"traceanalyzer: --ignore: unknown rule 'zz'; closest: [A-Z_]+\n", capsys.readouterr().err)


def _damaged(loss: int = 3) -> dict:
    s = summary(GOOD, at_end=8192, at_exit=8192)
    s["stats"].update(loss=loss, loss_details=["truncated_file: the logfile header announces 4 buffers, the file "
                                               "holds 1 (it ends at offset 0x1000) (3)"])
    return s


def test_trace_with_counted_loss_is_an_error_unless_allow_loss(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    before = base.read_text()
    write_summary(nightly / "case1.summary.json", _damaged())
    capsys.readouterr()
    assert check(nightly, "--baseline", base) == 2
    captured = capsys.readouterr()
    assert "ERROR         case1.summary.json" in captured.out
    assert captured.err.strip() == (
        "traceanalyzer: case1.summary.json: 3 buffer(s)/record(s)/row(s) lost to damage: truncated_file: the "
        "logfile header announces 4 buffers, the file holds 1 (it ends at offset 0x1000) (3); findings may be "
        "missing (--allow-loss accepts such traces)")
    assert check(nightly, "--baseline", base, "--allow-loss") == 0
    assert check(nightly, "--baseline", base, "--update-baseline") == 2  # the damaged trace keeps its old entry
    assert base.read_text() == before


def test_update_baseline_with_an_error_trace_exits_2_as_the_docs_say(nightly, tmp_path):
    """check.md once said --update-baseline "exits 0"; with an ERROR trace it writes the
    file (the trace keeps its old entry) and exits 2, and both docs must say so."""
    base = tmp_path / "b.json"
    assert check(nightly, "--baseline", base, "--update-baseline") == 0
    write_summary(nightly / "case1.summary.json", _damaged())
    assert check(nightly, "--baseline", base, "--update-baseline") == 2
    docs = Path(__file__).resolve().parents[2] / "docs"
    check_md = (docs / "check.md").read_text(encoding="utf-8")
    para = check_md[check_md.index("`--update-baseline` compares"):].split("\n\n")[0]
    assert "(it exits 0)" not in para and "but 2 when a trace is `ERROR`" in para
    row = next(line for line in (docs / "cli.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `--update-baseline` |"))
    assert "2 when a trace is `ERROR`" in row


def test_fail_on_missing_and_fail_on_new(nightly, tmp_path, capsys):
    base = tmp_path / "b.json"
    check(nightly, "--baseline", base, "--update-baseline")
    (nightly / "case0.summary.json").unlink()
    assert check(nightly, "--baseline", base) == 0
    assert check(nightly, "--baseline", base, "--fail-on-missing") == 1
    out = capsys.readouterr().out
    assert "FAILED        case0.summary.json" in out
    assert "in the baseline, not found in this run (--fail-on-missing)" in out
    write_summary(nightly / "case0.summary.json", summary(GOOD, at_end=8192, at_exit=8192))
    write_summary(nightly / "new.summary.json", summary([BAD]))
    assert check(nightly, "--baseline", base, "--fail-on-new", "critical") == 1
    out = capsys.readouterr().out
    assert "FAILED        new.summary.json" in out
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical]" in out
    assert "new trace (not in the baseline) with findings at or above critical (--fail-on-new)" in out
    write_summary(nightly / "new.summary.json", summary(GOOD))  # only a high finding
    assert check(nightly, "--baseline", base, "--fail-on-new", "critical") == 0
    assert check(nightly, "--baseline", base, "--fail-on-new", "high") == 1


@pytest.mark.parametrize("value", ["0", "nan", "inf"])
def test_timeout_must_be_positive(nightly, tmp_path, capsys, value):
    assert check(nightly, "--baseline", tmp_path / "b.json", "--update-baseline", "--timeout", value) == 2
    assert capsys.readouterr().err.strip() == "traceanalyzer: --timeout must be a positive number of seconds"


@pytest.mark.parametrize("option", ["--leak-rel-tol", "--count-rel-tol"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_tolerances_must_be_finite(nightly, tmp_path, capsys, option, value):
    """nan or inf was an internal error on the first trace (int() of the allowed growth)."""
    base = tmp_path / "b.json"
    assert check(nightly, "--baseline", base, "--update-baseline") == 0
    capsys.readouterr()
    assert check(nightly, "--baseline", base, option, value) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" not in err[0] and "finite" in err[0], err


def test_a_line_break_in_a_process_or_caller_cannot_forge_report_lines(nightly, tmp_path, capsys):
    base = tmp_path / "baseline.json"
    assert check(nightly, "--baseline", base, "--update-baseline") == 0
    forged = finding("UNLOCK_WHILE_USER_MAPPED", "drv.sys+0x1\npassed        case1.summary.json",
                     "app.exe\n3 trace(s): 3 passed", "critical", time_ns=1, pid=7,
                     message="x\x1b[2Jy")
    write_summary(nightly / "case1.summary.json", summary(GOOD + [forged], at_end=8192, at_exit=8192))
    capsys.readouterr()
    assert check(nightly, "--baseline", base) == 1
    out = capsys.readouterr().out
    assert "\npassed        case1" not in out and "\n3 trace(s): 3 passed" not in out
    assert "drv.sys+0x1\\x0apassed        case1.summary.json in app.exe\\x0a3 trace(s)" in out
    assert "\x1b" not in out and "x\\x1b[2Jy" in out
