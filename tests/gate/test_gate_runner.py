"""Finding traces, the result cache, the local process pool and a real Dask LocalCluster.

The per-trace function is ``gate_fakes.fake_summarize`` (the trace file holds its
summary as JSON) so these tests are about the plumbing, not the analyzer; it logs every
call with its process id, which shows what really ran and where.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
from helpers.gate_fakes import CALLS_LOG_ENV, fake_summarize, finding, summary, write_summary

from traceanalyzer.errors import TraceError
from traceanalyzer.gate.cache import ResultCache, analyzer_key, default_cache_dir, file_digest
from traceanalyzer.gate.discover import discover
from traceanalyzer.gate.runner import RunOptions, run_traces


@pytest.fixture
def calls(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    log.write_text("")
    monkeypatch.setenv(CALLS_LOG_ENV, str(log))

    def read():
        return [line.split(" ", 1) for line in log.read_text().splitlines()]

    return read


def make_folder(root, n=6):
    for i in range(n):
        s = summary([finding("DOUBLE_LOCK", f"d.sys+0x{i:x}", "a.exe")], at_end=4096 * i)
        write_summary(root / f"sub{i % 2}" / f"case{i}.summary.json", s)
    return root


# --- discover -------------------------------------------------------------------------


def test_trace_ids_are_paths_relative_to_the_folder_given(tmp_path):
    for name in ("nightly/case42.etl", "nightly/sub/b.csv", "nightly/.hidden.etl", "nightly/notes.md",
                 "nightly/base.cache/x.etl", "nightly/.git/y.etl", "nightly/baseline.json", "other/one.parquet"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = discover([tmp_path / "nightly", tmp_path / "other/one.parquet"],
                     exclude=[tmp_path / "nightly/baseline.json"])
    assert [t.trace_id for t in found] == ["case42.etl", "one.parquet", "sub/b.csv"]
    assert found[0].path == tmp_path / "nightly/case42.etl" and found[0].root == tmp_path / "nightly"
    # the same folder elsewhere gives the same IDs
    assert [t.trace_id for t in discover([tmp_path / "nightly"], pattern="*.etl")] == ["case42.etl"]
    assert [t.trace_id for t in discover([tmp_path / "nightly"], skip=["*.etl", "x*"])] == ["sub/b.csv"]


def test_discover_errors_name_the_problem(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a/x.etl").write_text("1")
    (tmp_path / "b/x.etl").write_text("2")
    with pytest.raises(TraceError, match="two traces have the ID 'x.etl'"):
        discover([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(TraceError, match="no such trace file or folder"):
        discover([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="no trace files"):
        discover([tmp_path / "empty"])


# --- cache ----------------------------------------------------------------------------


def test_second_run_comes_from_the_cache_and_a_changed_trace_is_redone(tmp_path, calls):
    folder = make_folder(tmp_path / "traces")
    traces = discover([folder], pattern="*.summary.json")
    cache = ResultCache(tmp_path / "c")
    first = run_traces(traces, RunOptions(jobs=1, cache=cache, fn=fake_summarize))
    assert len(calls()) == 6 and not any(r.cached for r in first)
    assert len(list((tmp_path / "c" / analyzer_key()).glob("*.json"))) == 6

    again = run_traces(traces, RunOptions(jobs=1, cache=ResultCache(tmp_path / "c"), fn=fake_summarize))
    assert len(calls()) == 6 and all(r.cached for r in again)
    assert [r.summary for r in again] == [r.summary for r in first]

    changed = traces[3].path
    write_summary(changed, summary([finding("KMAP_LEAK", "d.sys+0x99", "a.exe", "medium")]))
    third = run_traces(traces, RunOptions(jobs=1, cache=ResultCache(tmp_path / "c"), fn=fake_summarize))
    assert [p for _pid, p in calls()[6:]] == [str(changed)]
    assert [r.cached for r in third] == [i != 3 for i in range(6)]
    assert third[3].summary["findings"][0]["rule"] == "KMAP_LEAK"


def test_cache_ignores_corrupt_entries_and_drops_other_analyzer_versions(tmp_path):
    cache = ResultCache(tmp_path, key="current")
    ResultCache(tmp_path, key="old-version").put("ab12", summary())
    cache.put("abc", summary())
    assert cache.get("abc") == summary()
    (tmp_path / "current" / "abc.json").write_text("{trunc")
    assert cache.get("abc") is None and cache.misses == 1
    assert cache.prune_stale() == 1 and not (tmp_path / "old-version").exists()
    assert default_cache_dir(tmp_path / "ci" / "mdl-baseline.json") == tmp_path / "ci" / "mdl-baseline.cache"


def test_file_digest_is_sha256_of_the_bytes(tmp_path):
    import hashlib

    p = tmp_path / "t.etl"
    p.write_bytes(b"\x00abc" * 1000)
    assert file_digest(p) == hashlib.sha256(b"\x00abc" * 1000).hexdigest()


# --- engines --------------------------------------------------------------------------


def test_process_pool_runs_in_worker_processes_and_keeps_input_order(tmp_path, calls):
    traces = discover([make_folder(tmp_path / "t")], pattern="*.summary.json")
    serial = run_traces(traces, RunOptions(jobs=1, fn=fake_summarize))
    pooled = run_traces(traces, RunOptions(jobs=2, fn=fake_summarize))
    assert [r.trace for r in pooled] == traces
    assert [r.summary for r in pooled] == [r.summary for r in serial]
    pool_pids = {pid for pid, _p in calls()[6:]}
    assert str(os.getpid()) not in pool_pids and 1 <= len(pool_pids) <= 2


def test_unreadable_and_crashing_traces_become_error_lines_not_exceptions(tmp_path):
    folder = make_folder(tmp_path / "t", n=2)
    (folder / "bad.summary.json").write_text("BAD bytes")
    (folder / "crash.summary.json").write_text("CRASH")
    for jobs in (1, 2):
        res = {r.trace.trace_id: r for r in run_traces(discover([folder], pattern="*.summary.json"),
                                                      RunOptions(jobs=jobs, fn=fake_summarize))}
        assert res["bad.summary.json"].error.endswith("bad.summary.json: not a trace format traceanalyzer knows")
        assert "internal error ZeroDivisionError: simulated analyzer bug" in res["crash.summary.json"].error
        assert res["sub0/case0.summary.json"].summary is not None


def test_progress_is_reported_per_trace(tmp_path):
    traces = discover([make_folder(tmp_path / "t", n=3)], pattern="*.summary.json")
    seen = []
    run_traces(traces, RunOptions(jobs=1, fn=fake_summarize, progress=lambda d, t: seen.append((d, t))))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp://",
        dashboard_address=None, silence_logs=50,
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.mark.timeout(120)
def test_dask_scheduler_runs_the_same_jobs(tmp_path, calls, dask_cluster):
    traces = discover([make_folder(tmp_path / "t")], pattern="*.summary.json")
    cache = ResultCache(tmp_path / "c")
    res = run_traces(traces, RunOptions(scheduler=dask_cluster.scheduler_address, fn=fake_summarize, cache=cache))
    assert dask_cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert [r.trace for r in res] == traces and all(r.summary for r in res)
    assert [r.summary for r in res] == [json.loads(t.path.read_text()) for t in traces]
    assert len(calls()) == 6
    # results from the cluster fill the same cache
    again = run_traces(traces, RunOptions(scheduler=dask_cluster.scheduler_address, fn=fake_summarize,
                                          cache=ResultCache(tmp_path / "c")))
    assert all(r.cached for r in again) and len(calls()) == 6


@pytest.mark.timeout(60)
def test_unreachable_scheduler_is_a_trace_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    traces = discover([make_folder(tmp_path / "t", n=1)], pattern="*.summary.json")
    with pytest.raises(TraceError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        run_traces(traces, RunOptions(scheduler=f"tcp://127.0.0.1:{port}", fn=fake_summarize, connect_timeout=2))


def test_a_killed_worker_fails_only_its_own_trace(tmp_path, calls):
    """SIGKILL (what the OOM killer sends) in one worker: that trace is an error naming
    the signal, every other trace - before and after it - still gets its summary."""
    folder = make_folder(tmp_path / "t", n=6)
    (folder / "die.summary.json").write_text("DIE")
    res = {r.trace.trace_id: r for r in run_traces(discover([folder], pattern="*.summary.json"),
                                                  RunOptions(jobs=2, fn=fake_summarize))}
    assert res["die.summary.json"].error.endswith("die.summary.json: worker died: killed by SIGKILL "
                                                  "(out of memory, or killed)")
    ok = [tid for tid, r in res.items() if r.summary is not None]
    assert len(ok) == 6 and all(r.error is None for tid, r in res.items() if tid != "die.summary.json")


def test_a_trace_past_the_timeout_is_an_error_and_the_rest_go_on(tmp_path, calls):
    folder = make_folder(tmp_path / "t", n=4)
    (folder / "hang.summary.json").write_text("HANG")
    for jobs in (1, 2):
        res = {r.trace.trace_id: r for r in run_traces(discover([folder], pattern="*.summary.json"),
                                                      RunOptions(jobs=jobs, fn=fake_summarize, timeout=1.0))}
        assert res["hang.summary.json"].error.endswith("hang.summary.json: timed out after 1 s (--timeout)")
        assert sum(r.summary is not None for r in res.values()) == 4
    assert str(os.getpid()) not in {pid for pid, _p in calls()}  # with a timeout, jobs=1 runs in a worker too
