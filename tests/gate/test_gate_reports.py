"""JUnit (parsed with junitparser) and SARIF (validated against the official 2.1.0 schema)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from helpers.gate_fakes import finding, fp, summary

from traceanalyzer.rules.problems import problem_id
from junitparser import Error, Failure, JUnitXml, Skipped

from traceanalyzer.gate.baseline import Baseline
from traceanalyzer.gate.compare import Policy, compare_all
from traceanalyzer.gate.digest import digest_summary
from traceanalyzer.gate.junit import write_junit
from traceanalyzer.gate.sarif import sarif_log, write_sarif
from traceanalyzer.rules.catalogue import RULES

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

OK = finding("USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "drv.sys+0x1a2b", "app.exe", "high")
NEW = finding("UNLOCK_WHILE_USER_MAPPED", "drv.sys+0x99", "game.exe", "critical", time_ns=4_200_000_000,
              pid=4242, message="MmUnlockPages <while> mapped & more")
LOW = finding("KMAP_EXECUTABLE", "drv.sys+0x5", "System", "low")


@pytest.fixture
def result():
    baseline = Baseline({
        "fail & <x>.csv": digest_summary(summary([OK])),
        "same.csv": digest_summary(summary([OK])),
        "gone.csv": digest_summary(summary([])),
        "more.csv": digest_summary(summary([OK])),
        "broken.csv": digest_summary(summary([])),
    })
    current = {
        "fail & <x>.csv": digest_summary(summary([OK, NEW, LOW])),
        "same.csv": digest_summary(summary([OK])),
        "more.csv": digest_summary(summary([OK, OK], at_exit=10**7)),
        "fresh.csv": digest_summary(summary([LOW])),
    }
    res = compare_all(current, baseline, Policy(), errors={"broken.csv": "broken.csv: truncated buffer"})
    for v in res.verdicts:
        v.file_hash = ("%064x" % abs(hash(v.trace)))[:64]
        v.seconds = 0.25
        v.path = f"/data/nightly/{v.trace}"
    return res


def test_junit_parses_with_one_testcase_per_trace(result, tmp_path):
    out = tmp_path / "junit.xml"
    write_junit(result, out)
    xml = JUnitXml.fromfile(str(out))
    [suite] = list(xml)
    cases = {c.name: c for c in suite}
    assert set(cases) == {"fail & <x>.csv", "same.csv", "gone.csv", "more.csv", "broken.csv", "fresh.csv"}
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 2, 1, 1)

    [fail] = cases["fail & <x>.csv"].result
    assert isinstance(fail, Failure) and fail.type == "regression"
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical] drv.sys+0x99 in game.exe" in fail.message
    assert "KMAP_EXECUTABLE" not in fail.message  # below --fail-on high
    assert "MmUnlockPages <while> mapped & more" in fail.text and "pid 4242 (game.exe)" in fail.text
    assert "at 4.200000 s" in fail.text and problem_id(NEW["rule"], NEW["caller"]) in fail.text

    [more] = cases["more.csv"].result
    assert "1 more occurrence(s) (1 -> 2)" in more.message and "bytes_leaked_at_exit 0 -> 10000000" in more.message
    [err] = cases["broken.csv"].result
    assert isinstance(err, Error) and "truncated buffer" in err.message
    [skip] = cases["gone.csv"].result
    assert isinstance(skip, Skipped)
    assert cases["same.csv"].result == [] and cases["fresh.csv"].result == []
    assert "not in the baseline" in cases["fresh.csv"].system_out
    assert cases["same.csv"].classname == "traceanalyzer.check" and float(cases["same.csv"].time) == 0.25


def validate(doc):
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_sarif_validates_against_the_2_1_0_schema(result, tmp_path):
    out = tmp_path / "gate.sarif"
    write_sarif(result, out, roots={v.trace: "/data/nightly" for v in result.verdicts})
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["version"] == "2.1.0"


def test_the_schema_really_rejects_bad_logs(result):
    doc = sarif_log(result)
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
    doc = sarif_log(result)
    del doc["runs"][0]["tool"]["driver"]["name"]
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_sarif_rules_results_locations_and_baseline_state(result):
    doc = sarif_log(result, roots={v.trace: "/data/nightly" for v in result.verdicts})
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert sorted(ids) == ids and set(ids) == set(RULES)  # one entry per rule ID
    expect_level = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
    for r in rules:
        cat = RULES[r["id"]]
        assert r["shortDescription"]["text"] == cat.fires_when
        assert cat.consequence in r["fullDescription"]["text"] and cat.advice in r["help"]["text"]
        assert r["properties"]["severity"] == cat.severity
        assert r["defaultConfiguration"]["level"] == expect_level[cat.severity]

    arts = run["artifacts"]
    assert [a["location"]["uri"] for a in arts] == [
        "fail%20%26%20%3Cx%3E.csv", "fresh.csv", "more.csv", "same.csv"]
    assert run["originalUriBaseIds"] == {"TRACEROOT0": {"uri": "file:///data/nightly/"}}

    by = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"]): r for r in run["results"]}
    new = by[("fail%20%26%20%3Cx%3E.csv", "UNLOCK_WHILE_USER_MAPPED")]
    assert new["level"] == "error" and new["baselineState"] == "new"
    assert rules[new["ruleIndex"]]["id"] == "UNLOCK_WHILE_USER_MAPPED"
    assert new["locations"][0]["logicalLocations"] == [
        {"name": "drv.sys+0x99", "kind": "function", "fullyQualifiedName": "game.exe!drv.sys+0x99"}]
    loc = new["locations"][0]["physicalLocation"]["artifactLocation"]
    assert arts[loc["index"]]["hashes"]["sha-256"] == result.by_trace()["fail & <x>.csv"].file_hash
    assert arts[loc["index"]]["location"]["uri"] == loc["uri"] and loc["uriBaseId"] == "TRACEROOT0"
    assert new["partialFingerprints"] == {"traceanalyzerProblem/v1": problem_id(NEW["rule"], NEW["caller"])}
    assert "MmUnlockPages <while> mapped & more" in new["message"]["text"]
    assert by[("same.csv", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT")]["baselineState"] == "unchanged"
    more = by[("more.csv", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT")]
    assert more["baselineState"] == "updated" and more["occurrenceCount"] == 2
    assert by[("fresh.csv", "KMAP_EXECUTABLE")]["baselineState"] == "new"
    assert by[("fresh.csv", "KMAP_EXECUTABLE")]["level"] == "note"
    assert len(run["results"]) == 6  # one per (trace, fingerprint); missing/broken traces have none
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False and inv["exitCode"] == 2  # an unreadable trace: exit 2
    assert "truncated buffer" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_sarif_lists_rule_ids_missing_from_the_catalogue(result):
    doc = sarif_log(result, rules={})
    validate(doc)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == {"USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "UNLOCK_WHILE_USER_MAPPED", "KMAP_EXECUTABLE"}


def test_junit_survives_control_characters_from_a_corrupt_trace(tmp_path):
    weird = finding("DOUBLE_LOCK", "drv\x00.sys+0x1", "a\x07pp.exe", "high", message="bad \x1b[31m bytes\x0c")
    res = compare_all({"c\x01.csv": digest_summary(summary([weird]))},
                      Baseline({"c\x01.csv": digest_summary(summary([]))}), Policy())
    out = tmp_path / "j.xml"
    write_junit(res, out)
    [case] = list(next(iter(JUnitXml.fromfile(str(out)))))
    assert case.name == "c\ufffd.csv"
    assert "drv\ufffd.sys+0x1 in a\ufffdpp.exe" in case.result[0].message
