"""The report's side job: work done in a forked child gives what the same work gives in
the caller, whatever happens to the child; the report files do not depend on it."""

from __future__ import annotations

import base64
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.render import side_job
from traceanalyzer.render.report_files import write_report
from traceanalyzer.render.side_job import SideJob

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the side job forks on Linux only")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fork_allowed(monkeypatch):
    """Test runners keep threads of their own; the jobs here are safe to fork."""
    monkeypatch.setattr(side_job, "can_fork", lambda: True)


def test_the_result_comes_from_the_child() -> None:
    parent = os.getpid()
    with SideJob(lambda: (os.getpid(), [1, 2, 3])) as job:
        assert job.forked
        pid, value = job.result()
    assert pid != parent and value == [1, 2, 3]


def test_an_error_in_the_child_is_raised_in_the_caller() -> None:
    calls = []

    def fail() -> None:
        calls.append(os.getpid())  # the parent's list only sees the parent's call
        raise ValueError("disk full")

    with SideJob(fail) as job:
        assert job.forked
        with pytest.raises(ValueError, match="disk full"):
            job.result()
        with pytest.raises(ValueError, match="disk full"):
            job.result()  # remembered: not run a third time
    assert calls == [os.getpid()]


def test_a_child_that_dies_is_replaced_by_the_caller() -> None:
    parent = os.getpid()

    def die_in_child() -> int:
        if os.getpid() != parent:
            os._exit(3)  # as if killed: no result, no exception
        return 42

    with SideJob(die_in_child) as job:
        assert job.forked and job.result() == 42


def test_a_child_killed_by_a_signal_is_replaced_by_the_caller() -> None:
    parent = os.getpid()

    def killed_in_child() -> str:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return "here"

    with SideJob(killed_in_child) as job:
        assert job.forked and job.result() == "here"


def test_a_child_past_its_deadline_is_stopped_and_replaced() -> None:
    parent = os.getpid()

    def stuck_in_child() -> str:
        if os.getpid() != parent:
            time.sleep(60)  # as if waiting on a lock no thread will release
        return "here"

    started = time.monotonic()
    with SideJob(stuck_in_child) as job:
        pid = job._pid
        assert job.result(deadline_s=0.5) == "here"
    assert time.monotonic() - started < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # stopped and reaped


def test_a_result_larger_than_the_pipe_comes_whole() -> None:
    payload = os.urandom(3 << 20)  # far beyond a pipe's 64 KiB buffer
    parent = os.getpid()
    with SideJob(lambda: (os.getpid(), payload)) as job:
        pid, data = job.result()
    assert pid != parent and data == payload


def test_a_failed_fork_leaves_the_work_to_the_caller(monkeypatch) -> None:
    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    before = len(os.listdir("/proc/self/fd"))
    job = SideJob(lambda: 5)
    assert not job.forked and job.result() == 5
    assert len(os.listdir("/proc/self/fd")) == before  # the pipe was closed


def test_a_result_that_does_not_pickle_is_computed_in_the_caller() -> None:
    with SideJob(lambda: (lambda: 7)) as job:
        assert job.forked
        assert job.result()() == 7


def test_close_stops_and_reaps_an_uncollected_child() -> None:
    job = SideJob(lambda: __import__("time").sleep(60))
    pid = job._pid
    job.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind
    job.close()  # twice is harmless


def test_no_fork_runs_in_the_caller(monkeypatch) -> None:
    monkeypatch.setattr(side_job, "can_fork", lambda: False)
    with SideJob(os.getpid) as job:
        assert not job.forked and job.result() == os.getpid()


def test_can_fork_refuses_while_another_thread_runs(monkeypatch) -> None:
    import threading

    monkeypatch.undo()
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not side_job.can_fork()
    finally:
        stop.set()
        t.join()


def test_report_files_are_the_same_with_and_without_the_child(tmp_path: Path,
                                                            monkeypatch) -> None:
    delivered = []
    collect = SideJob._collect

    def watched(self, deadline_s):
        value = collect(self, deadline_s)
        delivered.append(value is not side_job._NOT_SET)
        return value

    monkeypatch.setattr(SideJob, "_collect", watched)
    a = ta.analyze(ta.load(REPO / "sample_traces" / "seed_unlock_from_worker.csv"))
    forked = write_report(a, tmp_path / "forked", parallel=True)
    assert delivered == [True]  # the figures came from the child
    serial = write_report(a, tmp_path / "serial", parallel=False)
    assert delivered == [True]  # no child this time
    for role in ("json", "leak_timeline", "hazard_timeline"):
        assert forked[role].read_bytes() == serial[role].read_bytes(), role
    page = forked["html"].read_text(encoding="utf-8")
    for role in ("leak_timeline", "hazard_timeline"):
        assert base64.b64encode(forked[role].read_bytes()).decode() in page
    impact = re.findall(r'id="fig-impact".*?base64,([A-Za-z0-9+/=]+)', page)
    serial_page = serial["html"].read_text(encoding="utf-8")
    assert impact and impact == re.findall(r'id="fig-impact".*?base64,([A-Za-z0-9+/=]+)',
                                           serial_page)
    assert sorted(p.name for p in (tmp_path / "forked").iterdir()) == sorted(
        p.name for p in (tmp_path / "serial").iterdir())  # no temporary file left


def test_a_figure_that_fails_leaves_no_new_summary(tmp_path: Path, monkeypatch) -> None:
    """summary.json is put in place after the other files: a run that fails on the
    figures leaves the previous report as it was."""
    from traceanalyzer.render import report_files

    a = ta.analyze(ta.load(REPO / "sample_traces" / "seed_unlock_from_worker.csv"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("old")

    def broken(*_args, **_kw):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report_files, "figure_pngs", broken)
    with pytest.raises(RuntimeError, match="no fonts"):
        write_report(a, out)
    assert (out / "summary.json").read_text() == "old"
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # no temporary file
