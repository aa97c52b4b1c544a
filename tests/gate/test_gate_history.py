"""History of runs: one file per run, trends of a finding, the matplotlib figure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from helpers.gate_fakes import finding, fp, summary

from traceanalyzer.rules import assemble
from traceanalyzer.rules.problems import problem_id

from traceanalyzer.errors import TraceError
from traceanalyzer.gate.baseline import Baseline
from traceanalyzer.gate.compare import Policy, compare_all
from traceanalyzer.gate.digest import digest_summary
from traceanalyzer.gate.history import finding_trend, load_history, record_run
from traceanalyzer.plot.trend import plot_finding_trend

LEAK = ("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b", "app.exe")
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def night(n_leaks: int, at_exit: int, other_at_end: int = 0):
    rows = [finding(*LEAK[:1], caller=LEAK[1], process=LEAK[2], nbytes=8192, time_ns=i) for i in range(n_leaks)]
    current = {
        "a.csv": digest_summary(summary(rows, at_end=0, at_exit=at_exit)),
        "b.csv": digest_summary(summary([finding("KMAP_LEAK", "d.sys+0x2", "System", "medium")], at_end=other_at_end)),
    }
    return compare_all(current, Baseline(), Policy())


@pytest.fixture
def history(tmp_path):
    d = tmp_path / "hist"
    for i, (n, leak) in enumerate([(1, 8192), (3, 24576), (0, 0)]):
        record_run(d, night(n, leak, other_at_end=4096 * i), when=T0 + timedelta(days=i))
    return d


def test_one_file_per_run_and_long_tables(history):
    files = sorted(p.name for p in history.iterdir())
    assert files == ["run-20261120T020000000000Z.json", "run-20261121T020000000000Z.json",
                     "run-20261122T020000000000Z.json"]
    findings, leaks = load_history(history)
    assert list(leaks["trace"]) == ["a.csv", "b.csv"] * 3
    assert list(leaks.loc[leaks["trace"] == "a.csv", "bytes_leaked_at_exit"]) == [8192, 24576, 0]
    sel = findings[findings["rule"] == LEAK[0]]
    assert list(sel["count"]) == [1, 3] and list(sel["bytes"]) == [8192, 3 * 8192]
    assert "fingerprint" not in findings.columns  # what it holds are problem ids, named so
    assert set(sel["problem_id"]) == {problem_id(*LEAK[:2])}
    assert str(findings["time_utc"].dt.tz) == "UTC"


def test_two_runs_in_the_same_instant_are_both_kept(tmp_path):
    a = record_run(tmp_path, night(1, 0), when=T0)
    b = record_run(tmp_path, night(2, 0), when=T0)
    assert a != b and a.exists() and b.exists()


@pytest.mark.parametrize("key", [LEAK[0], LEAK[0].lower(), problem_id(*LEAK[:2]), problem_id(*LEAK[:2])[:6]])
def test_trend_by_rule_or_problem_id_fills_absent_runs_with_zero(history, key):
    t = finding_trend(history, key)
    assert list(t.columns) == ["run", "time_utc", "count", "bytes", "bytes_at_end", "bytes_leaked_at_exit"]
    assert list(t["count"]) == [1, 3, 0]
    assert list(t["bytes"]) == [8192, 24576, 0]
    assert list(t["bytes_leaked_at_exit"]) == [8192, 24576, 0]  # only a.csv, where the finding lives
    assert list(t["bytes_at_end"]) == [0, 0, 0]


def test_trend_counts_a_mapping_left_at_exit_once(tmp_path):
    """One 8 KiB user mapping left behind by an exited process is both held at the end
    and leaked at exit: the trend showed 16384 leaked bytes for it (the two figures were
    added up). Each figure is now its own column and line, neither counts it twice."""
    rows = [finding(*LEAK[:1], caller=LEAK[1], process=LEAK[2], nbytes=8192)]
    for night, n in enumerate((1, 2)):
        digest = digest_summary(summary(rows * n, at_end=8192 * n, at_exit=8192 * n))
        record_run(tmp_path, compare_all({"a.csv": digest}, Baseline(), Policy()), when=T0 + timedelta(days=night))
    t = finding_trend(tmp_path, LEAK[0], trace="a.csv")
    assert list(t["bytes_at_end"]) == [8192, 16384] and list(t["bytes_leaked_at_exit"]) == [8192, 16384]
    assert "leaked_bytes" not in t.columns
    fig = plot_finding_trend(t)
    assert [list(line.get_ydata()) for line in fig.axes[1].lines] == [[8192, 16384]] * 3
    assert [line.get_label() for line in fig.axes[1].lines] == [
        "finding bytes", "held at trace end", "left behind at process exit"]


def test_trend_restricted_to_a_trace_and_unknown_findings(history):
    t = finding_trend(history, "KMAP_LEAK", trace="b.csv")
    assert list(t["count"]) == [1, 1, 1] and list(t["bytes_at_end"]) == [0, 4096, 8192]
    assert list(t["bytes_leaked_at_exit"]) == [0, 0, 0]
    with pytest.raises(TraceError, match="no problem id or rule ID 'NOPE' .*problems\\[\\]\\.problem_id"):
        finding_trend(history, "NOPE")
    with pytest.raises(TraceError, match="history folder not found"):
        finding_trend(history / "missing", LEAK[0])


def test_trend_of_a_finding_fingerprint_names_its_problem_id(history):
    """hazards --json and report.html show each finding's fingerprint (rule + caller +
    process image); --trend said "no finding ... (fingerprint or rule ID)" for one. The
    history holds problem ids: the error says so and names the problem of that finding."""
    fingerprint = assemble.fingerprint(LEAK[0], LEAK[1], LEAK[2])
    with pytest.raises(TraceError) as info:
        finding_trend(history, fingerprint)
    text = str(info.value)
    assert f"{fingerprint!r} is the fingerprint of a finding ({LEAK[0]} at {LEAK[1]} in {LEAK[2]})" in text
    assert f"--trend takes a problem id, here {problem_id(*LEAK[:2])}, or a rule ID" in text
    assert "problems[].problem_id in hazards --json" in text and "HTML report" in text


def test_an_ambiguous_prefix_asks_for_more_characters(tmp_path):
    first = problem_id(*LEAK[:2])[0]
    other = next(c for c in (f"d.sys+0x{n:x}" for n in range(1, 999)) if problem_id("KMAP_LEAK", c)[0] == first)
    rows = [finding(LEAK[0], caller=LEAK[1]), finding("KMAP_LEAK", caller=other)]
    record_run(tmp_path, compare_all({"a.csv": digest_summary(summary(rows))}, Baseline(), Policy()), when=T0)
    with pytest.raises(TraceError, match="starts 2 problem ids; give more characters"):
        finding_trend(tmp_path, first)


@pytest.mark.parametrize(("content", "match"), [
    ("[]", "not a traceanalyzer history file"),
    ('{"format": "traceanalyzer-history", "traces": [1]}', "malformed history file"),
    ('{"format": "traceanalyzer-history", "traces": {"a.csv": {"findings": {"x": 1}}}}', "malformed history file"),
])
def test_a_history_file_of_another_shape_is_an_error_naming_it(history, content, match):
    bad = history / "run-20990101T000000000000Z.json"
    bad.write_text(content)
    with pytest.raises(TraceError, match=match) as info:
        load_history(history)
    assert str(info.value).startswith(str(bad))


def test_plot_has_count_and_bytes_panels_and_saves_png(history, tmp_path):
    t = finding_trend(history, LEAK[0])
    fig = plot_finding_trend(t, title=LEAK[0])
    ax_count, ax_bytes = fig.axes
    assert list(ax_count.lines[0].get_ydata()) == [1, 3, 0]
    assert [list(line.get_ydata()) for line in ax_bytes.lines] == [[8192, 24576, 0], [0, 0, 0], [8192, 24576, 0]]
    assert ax_count.get_ylabel() == "occurrences" and ax_bytes.get_ylabel() == "bytes"
    out = tmp_path / "trend.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
