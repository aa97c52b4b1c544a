"""The gate's core on hand-built summary dicts: digests, verdicts, tolerances, baseline file."""

from __future__ import annotations

import json

import pytest
from helpers.gate_fakes import finding, fp, summary

from traceanalyzer.errors import TraceError
from traceanalyzer.gate.baseline import Baseline, dumps_baseline, load_baseline, save_baseline
from traceanalyzer.gate.compare import Policy, compare_all, compare_summary
from traceanalyzer.gate.digest import digest_summary, fingerprint_of
from traceanalyzer.rules.problems import problem_id


def entry(s):
    return digest_summary(s).to_entry()


BASE = summary(
    [
        finding("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b", "app.exe", "high", time_ns=5_000_000),
        finding("MDL_STRUCT_LEAK", "drv.sys+0x40", "app.exe", "low", time_ns=6_000_000),
    ],
    at_end=8192,
    at_exit=8192,
)


def shifted(s, dt=123_456_789, dpid=1000, addr=0x10000):
    """The same scenario recorded again: other times, pids, tids and addresses."""
    out = json.loads(json.dumps(s))
    for f in out["findings"]:
        f["time_ns"] += dt
        f["pid"] += dpid
        f["tid"] += dpid
        f["mdl"] = hex(int(f["mdl"], 16) + addr)
        f["message"] = f["message"] + f" (pid {f['pid']})"
    return out


def test_same_scenario_shifted_in_time_addresses_and_pids_passes():
    v = compare_summary("case.csv", shifted(BASE), entry(BASE))
    assert v.status == "passed"
    assert v.new_findings == [] and v.leak_regressions == [] and v.fixed == []


def test_added_high_finding_fails_and_names_rule_caller_process_and_evidence():
    worse = shifted(BASE)
    worse["findings"].append(
        finding("UNLOCK_WHILE_USER_MAPPED", "drv.sys+0x99", "game.exe", "critical", time_ns=4_200_000_000,
                pid=4242, message="MmUnlockPages while mapped at 0x7ff0000 in game.exe")
    )
    v = compare_summary("case.csv", worse, entry(BASE))
    assert v.status == "failed"
    [nf] = v.blocking_findings
    assert nf.is_new and nf.group.fingerprint == problem_id("UNLOCK_WHILE_USER_MAPPED", "drv.sys+0x99")
    [reason] = v.reasons()
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical] drv.sys+0x99 in game.exe" == reason
    from traceanalyzer.gate.compare import describe_evidence

    ev = describe_evidence(nf.group)
    assert "at 4.200000 s" in ev and "pid 4242 (game.exe)" in ev
    assert "MmUnlockPages while mapped at 0x7ff0000 in game.exe" in ev


@pytest.mark.parametrize(("fail_on", "status"), [("high", "passed"), ("medium", "failed"), ("critical", "passed")])
def test_fail_on_threshold(fail_on, status):
    worse = summary(BASE["findings"] + [finding("KMAP_LEAK", "drv.sys+0x77", "System", "medium")], 8192, 8192)
    v = compare_summary("c", worse, entry(BASE), Policy(fail_on=fail_on))
    assert v.status == status
    [nf] = v.new_findings  # reported either way
    assert nf.group.rule == "KMAP_LEAK" and nf.blocking == (status == "failed")


def test_more_occurrences_of_a_known_fingerprint_fail():
    again = finding("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b", "app.exe", "high", time_ns=9_000_000)
    v = compare_summary("c", summary(BASE["findings"] + [again], 8192, 8192), entry(BASE))
    assert v.status == "failed"
    [nf] = v.new_findings
    assert (nf.baseline_count, nf.group.count, nf.added, nf.is_new) == (1, 2, 1, False)
    assert v.reasons() == [
        "1 more occurrence(s) (1 -> 2) of USER_MAPPING_NOT_UNMAPPED_AT_EXIT [high] drv.sys+0x1a2b in app.exe"
    ]
    # the evidence is the first occurrence (earliest time), not the added one
    assert nf.group.first["time_ns"] == 5_000_000


def test_fewer_findings_pass_and_are_listed_as_fixed():
    better = summary(BASE["findings"][1:], 0, 0)
    v = compare_summary("c", better, entry(BASE))
    assert v.status == "passed"
    assert [g.rule for g in v.fixed] == ["USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]


@pytest.mark.parametrize(
    ("base", "now", "ok"),
    [
        (0, 16384, True),  # abs tolerance 16384 on an empty baseline
        (0, 16385, False),
        (1_000_000, 1_100_000, True),  # rel 10 % = 100000 > 16384
        (1_000_000, 1_100_001, False),
        (100_000, 116_384, True),  # here the abs tolerance is the larger one
        (100_000, 116_385, False),
        (500_000, 0, True),  # shrinking is fine
    ],
)
def test_leak_tolerance_relative_and_absolute(base, now, ok):
    for metric_kw in ("at_end", "at_exit"):
        b = summary([], **{metric_kw: base})
        c = summary([], **{metric_kw: now})
        v = compare_summary("c", c, entry(b), Policy(leak_rel_tol=0.10, leak_abs_tol=16384))
        assert (v.status == "passed") is ok, (metric_kw, base, now)
        if not ok:
            [r] = v.leak_regressions
            assert r.metric == {"at_end": "bytes_at_end", "at_exit": "bytes_leaked_at_exit"}[metric_kw]
            assert (r.baseline, r.current) == (base, now)
            assert r.allowed == base + max(16384, int(0.10 * base))


def test_leak_figure_absent_on_one_side_is_not_compared():
    v = compare_summary("c", summary([], at_exit=None), entry(summary([], at_exit=10**9)))
    assert v.status == "passed"
    v = compare_summary("c", summary([], at_exit=10**9), entry(summary([], at_exit=None)))
    assert v.status == "passed"


def test_new_and_missing_traces_do_not_fail_and_errors_are_kept_apart():
    baseline = Baseline({"a.csv": digest_summary(BASE), "gone.csv": digest_summary(BASE)})
    current = {"a.csv": digest_summary(shifted(BASE)), "fresh.csv": digest_summary(BASE)}
    res = compare_all(current, baseline, Policy(), errors={"broken.csv": "broken.csv: corrupt"})
    status = {v.trace: v.status for v in res.verdicts}
    assert status == {"a.csv": "passed", "broken.csv": "error", "fresh.csv": "new trace", "gone.csv": "missing trace"}
    assert [v.trace for v in res.verdicts] == sorted(status)
    assert res.exit_code == 2 and not res.failed  # an unreadable trace is exit 2, not a regression
    assert res.counts() == {"failed": 0, "error": 1, "new trace": 1, "missing trace": 1, "passed": 1}
    fresh = res.by_trace()["fresh.csv"]
    assert {nf.group.rule for nf in fresh.new_findings} == {"USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "MDL_STRUCT_LEAK"}
    assert not any(nf.blocking for nf in fresh.new_findings)


def test_exit_code_is_one_when_any_trace_failed():
    baseline = Baseline({"a": digest_summary(BASE), "b": digest_summary(BASE)})
    worse = summary(BASE["findings"], 8192, 8192 + 10**6)
    res = compare_all({"a": digest_summary(BASE), "b": digest_summary(worse)}, baseline, Policy())
    assert res.exit_code == 1 and [v.trace for v in res.verdicts if v.failed] == ["b"]


def test_group_takes_most_severe_occurrence_and_counts_rows_with_count():
    rows = [
        finding("FREE_MDL_WHILE_LOCKED", "d.sys+0x1", "a.exe", "high", time_ns=20),
        {**finding("FREE_MDL_WHILE_LOCKED", "d.sys+0x1", "a.exe", "critical", time_ns=10), "count": 3},
    ]
    [g] = digest_summary(summary(rows)).findings.values()
    assert (g.severity, g.count, g.first["time_ns"]) == ("critical", 4, 10)


def test_unknown_severity_blocks():
    v = compare_summary("c", summary([finding("X_RULE", severity="weird")]), entry(summary([])))
    assert v.status == "failed"


def test_fingerprint_fallback_uses_rule_caller_process_only():
    a = finding("DOUBLE_LOCK", "d.sys+0x5", "a.exe")
    b = {**a, "pid": 9, "tid": 9, "time_ns": 99, "mdl": "0x1", "message": "other"}
    c = {**a, "caller": "d.sys+0x6"}
    for f in (a, b, c):
        del f["fingerprint"]
    assert fingerprint_of(a) == fingerprint_of(b) != fingerprint_of(c)


def test_not_a_summary_is_rejected():
    with pytest.raises(ValueError, match="not an analysis summary"):
        digest_summary({"findings": "nope"})


# --- the baseline file -------------------------------------------------------------


def test_baseline_file_is_sorted_stable_and_free_of_run_specific_values(tmp_path):
    p1, p2 = tmp_path / "b1.json", tmp_path / "b2.json"
    save_baseline(Baseline({"z.csv": digest_summary(BASE), "a/b.csv": digest_summary(BASE)}), p1)
    save_baseline(Baseline({"a/b.csv": digest_summary(shifted(BASE)), "z.csv": digest_summary(shifted(BASE))}), p2)
    text = p1.read_text()
    assert text == p2.read_text()  # re-recording the same scenario changes nothing
    assert text.endswith("\n") and text.index('"a/b.csv"') < text.index('"z.csv"')
    doc = json.loads(text)
    assert json.dumps(doc, indent=2, sort_keys=True) + "\n" == text
    for run_specific in ("time_ns", "pid", "tid", "mdl", "0xffff8", "message"):
        assert run_specific not in text
    back = load_baseline(p1)
    assert dumps_baseline(back) == text
    g = back.traces["z.csv"].findings[problem_id("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b")]
    assert (g.rule, g.severity, g.caller, g.process, g.count) == (
        "USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "high", "drv.sys+0x1a2b", "app.exe", 1)
    assert back.traces["z.csv"].leaks == {"bytes_at_end": 8192, "bytes_leaked_at_exit": 8192}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "baseline not found; create it with --update-baseline"),
        ("{not json", "not valid JSON"),
        ('{"format": "other"}', "not a traceanalyzer baseline"),
        ('{"format": "traceanalyzer-baseline", "version": 99, "traces": {}}', "version 99"),
        ('{"format": "traceanalyzer-baseline", "version": 1, "traces": {"a": {"findings": {"x": 5}}}}', "malformed"),
        (b"\xff\xfe{", "not UTF-8"),
        ('{"format": "traceanalyzer-baseline", "version": 2, "traces": {"a": null}}', "'a': expected an object"),
        ('{"format": "traceanalyzer-baseline", "version": 2, "traces": {"a": {"findings": []}}}',
         "'a': \"findings\" is not an object"),
        ('{"format": "traceanalyzer-baseline", "version": 2, "traces": {"a": {"leaks": null}}}',
         "'a': \"leaks\" is not an object"),
    ],
)
def test_bad_baseline_files_raise_trace_error_naming_the_file(tmp_path, content, match):
    p = tmp_path / "baseline.json"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(TraceError, match=match) as info:
        load_baseline(p)
    assert str(info.value).startswith(str(p))


def test_trace_quality_rows_count_once_whatever_their_event_count():
    def unknown(n):
        return {**finding("TRACE_UNKNOWN_EVENT", "", "", "info"), "count": n}

    v = compare_summary("c", summary([unknown(5000)]), entry(summary([unknown(1000)])), Policy(fail_on="info"))
    assert v.status == "passed"
    v = compare_summary("c", summary([unknown(5), unknown(7)]), entry(summary([unknown(1000)])), Policy(fail_on="info"))
    assert v.status == "failed"  # a second kind of unknown event is new


def test_ignored_rules_are_reported_but_do_not_fail():
    worse = summary(BASE["findings"] + [finding("LOCKED_MDL_NEVER_UNLOCKED", "d.sys+0x8", "System", "high")], 8192, 8192)
    v = compare_summary("c", worse, entry(BASE), Policy(ignore=frozenset({"LOCKED_MDL_NEVER_UNLOCKED"})))
    assert v.status == "passed"
    [nf] = v.new_findings
    assert nf.ignored and not nf.blocking
    assert compare_summary("c", worse, entry(BASE)).status == "failed"
    lower = Policy(ignore=frozenset({"locked_mdl_never_unlocked"}))  # rule IDs in any case
    assert compare_summary("c", worse, entry(BASE), lower).status == "passed"


def test_one_problem_over_processes_and_a_count_tolerance():
    """Keyed by problem (rule + caller): the same bug in a second process is more
    occurrences of one problem; 3 -> 5 passes and 3 -> 300 fails with count_rel_tol=1."""
    def bugs(n: int, processes: tuple[str, ...] = ("app.exe",)):
        return summary([finding("UNLOCK_NOT_LOCKED", "drv.sys+0x10", processes[i % len(processes)],
                                "critical", time_ns=1_000 + i) for i in range(n)])

    base = entry(bugs(3))
    assert list(base["findings"]) == [problem_id("UNLOCK_NOT_LOCKED", "drv.sys+0x10")]
    spread = compare_summary("c", bugs(3, ("app.exe", "db.exe", "svc.exe")), base)
    assert spread.status == "passed" and spread.new_findings == []
    assert digest_summary(bugs(3, ("app.exe", "db.exe"))).ordered()[0].process == "app.exe, db.exe"
    tolerant = Policy(count_rel_tol=1.0)
    assert compare_summary("c", bugs(5), base, tolerant).status == "passed"
    worse = compare_summary("c", bugs(300), base, tolerant)
    assert worse.status == "failed" and worse.blocking_findings[0].added == 297
    assert compare_summary("c", bugs(4), base).status == "failed"  # default: any growth


def test_version_1_baselines_are_merged_into_problems(tmp_path):
    doc = {"format": "traceanalyzer-baseline", "version": 1, "traces": {"t.csv": {
        "findings": {
            fp("UNLOCK_NOT_LOCKED", "drv.sys+0x10", "app.exe"): {
                "rule": "UNLOCK_NOT_LOCKED", "severity": "high", "caller": "drv.sys+0x10",
                "process": "app.exe", "count": 2},
            fp("UNLOCK_NOT_LOCKED", "drv.sys+0x10", "db.exe"): {
                "rule": "UNLOCK_NOT_LOCKED", "severity": "critical", "caller": "drv.sys+0x10",
                "process": "db.exe", "count": 1}},
        "leaks": {"bytes_at_end": 0, "bytes_leaked_at_exit": 0}}}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    [g] = load_baseline(path).traces["t.csv"].findings.values()
    assert g.fingerprint == problem_id("UNLOCK_NOT_LOCKED", "drv.sys+0x10")
    assert (g.count, g.severity, g.process) == (3, "critical", "app.exe, db.exe")


def _rebuilt(caller_before: str, caller_after: str, n_after: int = 1, other: str | None = None):
    """A verdict for a trace whose driver was rebuilt: the baseline saw one UNLOCK at
    ``caller_before``, tonight ``n_after`` at ``caller_after`` (and one at ``other``)."""
    rule = "UNLOCK_WHILE_USER_MAPPED"
    before = summary([finding(rule, caller_before, severity="critical")], at_end=8192)
    rows = [finding(rule, caller_after, severity="critical", time_ns=1000 + i) for i in range(n_after)]
    rows += [finding(rule, other, severity="critical", time_ns=9000)] if other else []
    return compare_summary("case.csv", summary(rows, at_end=8192), entry(before))


def test_a_rebuild_moves_symbolized_offsets_within_functions_and_the_problem_stays_known():
    """Problems are keyed by rule + call site; a recompile moves every offset, so a rebuilt
    driver with the same bugs failed as all-new. With symbols the offset is left out of
    the match: rule + module!function."""
    v = _rebuilt("mydriver!ReleaseBuffer+0x3b", "mydriver!ReleaseBuffer+0x41")
    assert v.status == "passed" and v.new_findings == [] and v.fixed == []
    assert list(v.current.findings) == [problem_id("UNLOCK_WHILE_USER_MAPPED", "mydriver!ReleaseBuffer+0x41")]
    more = _rebuilt("mydriver!ReleaseBuffer+0x3b", "MyDriver!ReleaseBuffer+0x41", n_after=3)
    [nf] = more.new_findings  # still counted: 1 -> 3 fails with the default count tolerance
    assert (nf.baseline_count, nf.group.count, more.status) == (1, 3, "failed")


def test_a_rebuild_is_new_in_another_function_or_without_symbols():
    moved = _rebuilt("mydriver!ReleaseBuffer+0x3b", "mydriver!CompleteRequest+0x3b")
    assert moved.status == "failed" and [n.is_new for n in moved.new_findings] == [True]
    assert [g.caller for g in moved.fixed] == ["mydriver!ReleaseBuffer+0x3b"]
    unsymbolized = _rebuilt("mydriver.sys+0x1b6b", "mydriver.sys+0x1b7f")  # docs/check.md: looks new
    assert unsymbolized.status == "failed" and unsymbolized.new_findings[0].is_new


def test_two_call_sites_of_a_rule_in_one_function_are_compared_as_one():
    v = _rebuilt("mydriver!ReleaseBuffer+0x3b", "mydriver!ReleaseBuffer+0x41", other="mydriver!ReleaseBuffer+0x77")
    [nf] = v.new_findings
    assert (nf.baseline_count, nf.group.count, nf.is_new) == (1, 2, False)
    assert nf.group.fingerprint == problem_id("UNLOCK_WHILE_USER_MAPPED", "mydriver!ReleaseBuffer+0x41")  # first
    assert len(v.current.findings) == 2  # kept apart in the digest: problem ids as hazards shows them
