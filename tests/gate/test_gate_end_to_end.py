"""The gate on real traces: canonical CSVs written by the Scenario builder, analysed by
the real analyzer (``analyze(load(path)).summary()``), through the CLI.

The same scenario re-recorded with other times, pids, tids and (page-aligned) addresses
must pass; an added hazard must fail and be named with its evidence.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from helpers.gate_scenarios import write_case
from junitparser import Failure, JUnitXml

from traceanalyzer.cli.main import main
from traceanalyzer.gate.check import run_check
from traceanalyzer.gate.runner import RunOptions

CASES = {  # trace ID -> scenario arguments (distinct test cases)
    "io/case1.csv": dict(requests=2),
    "io/case2.csv": dict(requests=4, image="game.exe"),
    "case3.csv": dict(requests=1, image="svc.exe"),
}


def record(folder: Path, night: int, worse: set[str] = frozenset()) -> Path:
    """Record every case as on ``night``: times, pids and addresses differ per night."""
    for i, (tid, kw) in enumerate(sorted(CASES.items())):
        write_case(folder / tid, shift_ns=night * 7_654_321 + i * 1000, pid_base=1000 + 3000 * night + 40 * i,
                   addr_shift=(night * 0x35 + i) * 0x10000, worse=tid in worse, **kw)
    return folder


@pytest.fixture
def baseline(tmp_path):
    b = tmp_path / "ci" / "baseline.json"
    assert main(["check", str(record(tmp_path / "night0", 0)), "--baseline", str(b), "--update-baseline",
                 "--jobs", "1", "--no-cache"]) == 0
    return b


def test_rerecorded_scenario_passes_and_added_hazard_fails_with_evidence(tmp_path, baseline, capsys):
    doc = json.loads(baseline.read_text())
    assert sorted(doc["traces"]) == sorted(CASES)
    rules = {g["rule"] for g in doc["traces"]["io/case2.csv"]["findings"].values()}
    assert "USER_MAPPING_NOT_UNMAPPED_AT_EXIT" in rules and "UNLOCK_WHILE_USER_MAPPED" not in rules
    assert doc["traces"]["io/case2.csv"]["leaks"]["bytes_leaked_at_exit"] > 0
    capsys.readouterr()

    # same scenarios, another night: other times, pids, tids, addresses -> passes
    night1 = record(tmp_path / "night1", 1)
    assert main(["check", str(night1), "--baseline", str(baseline), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("passed ") == 3 and "FAILED" not in out

    # the baseline re-recorded from night 1 is byte-identical to night 0's
    again = tmp_path / "again.json"
    main(["check", str(night1), "--baseline", str(again), "--update-baseline", "--jobs", "1"])
    assert again.read_text() == baseline.read_text()

    # night 2: case2 got worse -> exit 1, the new finding is named with its evidence
    night2 = record(tmp_path / "night2", 2, worse={"io/case2.csv"})
    junit, sarif = tmp_path / "junit.xml", tmp_path / "gate.sarif"
    code = main(["check", str(night2), "--baseline", str(baseline), "--jobs", "2",
                 "--junit", str(junit), "--sarif", str(sarif)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED        io/case2.csv" in out and out.count("passed ") == 2
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical] mydriver.sys+0x4343 in game.exe" in out
    i = sorted(CASES).index("io/case2.csv")
    app_pid, worker_tid = 1000 + 3000 * 2 + 40 * i + 234, 1000 + 3000 * 2 + 40 * i + 88  # night 2's
    evidence = out[out.index("UNLOCK_WHILE_USER_MAPPED"):].splitlines()[1]
    assert f"pid {app_pid} (game.exe), tid {worker_tid}" in evidence and "MmUnlockPages" in evidence
    assert "REGRESSION: 1 trace(s) failed the gate" in out

    cases = {c.name: c for c in next(iter(JUnitXml.fromfile(str(junit))))}
    [fail] = cases["io/case2.csv"].result
    assert isinstance(fail, Failure) and "UNLOCK_WHILE_USER_MAPPED" in fail.message
    schema = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(sarif.read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    new = [r for r in log["runs"][0]["results"] if r["baselineState"] == "new"]
    assert {r["ruleId"] for r in new} >= {"UNLOCK_WHILE_USER_MAPPED"}
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "io/case2.csv" for r in new)


def test_cache_reuses_unchanged_traces_of_a_real_run(tmp_path, baseline):
    night1 = record(tmp_path / "night1", 1)
    first = run_check([night1], baseline, run_options=RunOptions(jobs=1))
    assert first.cached == 0 and first.result.exit_code == 0
    write_case(night1 / "case3.csv", requests=1, image="svc.exe", worse=True, pid_base=777)
    second = run_check([night1], baseline, run_options=RunOptions(jobs=1))
    assert second.cached == 2
    assert {v.trace: v.status for v in second.result.verdicts} == {
        "case3.csv": "failed", "io/case1.csv": "passed", "io/case2.csv": "passed"}


@pytest.mark.timeout(180)
def test_dask_local_cluster_gives_the_same_verdicts(tmp_path, baseline):
    distributed = pytest.importorskip("distributed")
    night2 = record(tmp_path / "night2", 2, worse={"case3.csv"})
    local = run_check([night2], baseline, run_options=RunOptions(jobs=1), use_cache=False)
    out = tmp_path / "verdicts.json"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1",
                                  protocol="tcp://", dashboard_address=None, silence_logs=50) as cluster:
        code = main(["check", str(night2), "--baseline", str(baseline), "--no-cache",
                     "--scheduler", cluster.scheduler_address, "--json", str(out)])
    remote = json.loads(out.read_text())
    assert code == remote["exit_code"] == local.result.exit_code == 1
    assert {t: v["status"] for t, v in remote["traces"].items()} == {v.trace: v.status for v in local.result.verdicts}
    assert [t for t, v in remote["traces"].items() if v["status"] == "failed"] == ["case3.csv"]


def test_trend_takes_the_problem_id_hazards_and_the_report_show_not_a_fingerprint(tmp_path, capsys):
    """The tester gave --trend the `fingerprint` of hazards --json and report.html and got
    "no finding ... (fingerprint or rule ID)": the history holds problem ids. A problem id
    from hazards --json (and the report, which now shows it) works; a fingerprint is exit 2
    naming the problem id to use."""
    sample = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    (nightly / sample.name).write_bytes(sample.read_bytes())
    hist = tmp_path / "hist"
    assert main(["check", str(nightly), "--baseline", str(tmp_path / "b.json"), "--update-baseline",
                 "--history", str(hist), "--jobs", "1", "--no-cache"]) == 0
    capsys.readouterr()
    assert main(["hazards", str(sample), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    problem = next(p for p in doc["problems"] if p["rule"] == "UNLOCK_WHILE_USER_MAPPED")
    [fingerprint] = problem["fingerprints"]
    assert main(["report", str(sample), "-o", str(tmp_path / "rep"), "-q", "--static"]) == 0
    page = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert f"problem id <code>{problem['problem_id']}</code>" in page and fingerprint in page
    capsys.readouterr()

    assert main(["check", "--history", str(hist), "--trend", fingerprint]) == 2
    err = capsys.readouterr().err
    assert f"'{fingerprint}' is the fingerprint of a finding" in err
    assert f"--trend takes a problem id, here {problem['problem_id']}, or a rule ID" in err
    for key in (problem["problem_id"], problem["problem_id"][:6]):
        assert main(["check", "--history", str(hist), "--trend", key]) == 0
    assert (hist / f"trend-{problem['problem_id']}.png").exists()


def test_check_reads_every_trace_with_the_trace_input_options_of_hazards(tmp_path, capsys):
    """check had no --field-map, --format, --symbols ...: a driver logging its own event
    names could not be gated. They are passed to loading each trace (as hazards does) and
    are part of the cache key: a summary read without the field map is not reused."""
    data = Path(__file__).resolve().parents[1] / "data" / "wpa"
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    (nightly / "seed.csv").write_bytes((data / "generic_events_seed.csv").read_bytes())
    base = tmp_path / "b.json"

    def rules() -> set[str]:
        return {g["rule"] for g in json.loads(base.read_text())["traces"]["seed.csv"]["findings"].values()}

    assert main(["check", str(nightly), "--baseline", str(base), "--update-baseline", "--jobs", "1"]) == 0
    assert "UNLOCK_WHILE_USER_MAPPED" not in rules()  # the driver's own event names: no MDL calls
    capsys.readouterr()
    mapped = ["--field-map", str(data / "seed_field_map.json"), "--format", "wpa_csv"]
    assert main(["check", str(nightly), "--baseline", str(base), "--jobs", "1", *mapped]) == 1
    out = capsys.readouterr().out
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical]" in out and "from cache 0" in out
    assert main(["check", str(nightly), "--baseline", str(base), "--update-baseline", "--jobs", "2", *mapped]) == 0
    assert "UNLOCK_WHILE_USER_MAPPED" in rules() and "from cache 1" in capsys.readouterr().out
    assert main(["check", str(nightly), "--baseline", str(base), "--jobs", "1", *mapped]) == 0
    assert main(["check", str(nightly), "--baseline", str(base), "--jobs", "1", "--format", "xperf"]) == 2
    assert "ERROR         seed.csv" in capsys.readouterr().out  # --format reached the reader


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "bogus"], "--format: unknown format 'bogus'; known: csv, etl"),
    (["--symbols", "nowhere"], "nowhere: --symbols: not a folder"),
    (["--field-map", "nowhere.json"], "nowhere.json: field map file not found"),
    (["--strict", "--allow-loss"], "--strict refuses the loss that --allow-loss accepts"),
])
def test_bad_reading_options_are_one_error_before_any_trace_is_read(tmp_path, capsys, args, message):
    nightly = record(tmp_path / "night0", 0)
    assert main(["check", str(nightly), "--baseline", str(tmp_path / "b.json"), "--update-baseline", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "trace(s)" not in captured.out
    assert not (tmp_path / "b.json").exists()


def test_the_cache_key_changes_with_the_reading_options_and_the_symbols(tmp_path):
    from traceanalyzer.gate.cache import entry_key, options_key

    syms = tmp_path / "syms"
    syms.mkdir()
    (syms / "mydriver.pdb").write_bytes(b"one build")
    (syms / "notes.txt").write_text("not a symbol file")
    keys = {options_key({}), options_key({"symbols": str(syms)}), options_key({"strict": True})}
    assert options_key({}) == "" and len(keys) == 3 and entry_key("ab" * 32, "") == "ab" * 32
    before = options_key({"symbols": str(syms)})
    (syms / "notes.txt").write_text("still not a symbol file, longer")
    assert options_key({"symbols": str(syms)}) == before
    (syms / "mydriver.pdb").write_bytes(b"another build")
    assert options_key({"symbols": str(syms)}) != before
