"""Test doubles for the gate: summary dicts built by hand and a fake per-trace worker.

The fake worker reads a JSON summary from the "trace" file itself, so runner, cache,
pool, Dask and CLI behaviour can be tested without the analysis core.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from traceanalyzer.errors import TraceError


def fp(rule: str, caller: str, process: str) -> str:
    """A fingerprint the way the spec defines it: rule + caller + process image only."""
    return hashlib.sha256(f"{rule}|{caller}|{process}".encode()).hexdigest()[:16]


def finding(
    rule: str,
    caller: str = "drv.sys+0x10",
    process: str = "app.exe",
    severity: str = "high",
    time_ns: int = 1_000_000,
    pid: int = 100,
    tid: int = 200,
    mdl: str = "0xffff800000001000",
    nbytes: int = 4096,
    message: str | None = None,
) -> dict[str, Any]:
    """One finding row in the ``hazards --json`` shape."""
    return {
        "rule": rule,
        "severity": severity,
        "time_ns": time_ns,
        "pid": pid,
        "process": process,
        "tid": tid,
        "mdl": mdl,
        "caller": caller,
        "bytes": nbytes,
        "impact_byte_seconds": nbytes * 0.5,
        "message": message or f"{rule} by {caller} in {process}",
        "fingerprint": fp(rule, caller, process),
    }


def summary(findings: list[dict[str, Any]] = (), at_end: int = 0, at_exit: int | None = 0) -> dict[str, Any]:
    """A summary dict with these findings and leak figures."""
    leaks: dict[str, Any] = {"bytes_at_end": at_end, "by_process": []}
    if at_exit is not None:
        leaks["bytes_leaked_at_exit"] = at_exit
    return {
        "traces": ["t"],
        "time_span_ns": [0, 10_000_000],
        "findings": list(findings),
        "leaks": leaks,
        "stats": {"events": 10},
    }


def write_summary(path: Path, s: dict[str, Any]) -> Path:
    """Store a summary as a fake trace file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(s))
    return path


CALLS_LOG_ENV = "TA_FAKE_CALLS_LOG"


def fake_summarize(path: str) -> dict[str, Any]:
    """Read the summary stored in ``path``; 'BAD' content is an unreadable trace, 'CRASH'
    an analyzer bug, 'DIE' a worker killed by SIGKILL, 'HANG' a trace that never ends.

    Appends the path to the file named by $TA_FAKE_CALLS_LOG (if set), so tests can see
    which traces were really analysed (and in which process).
    """
    log = os.environ.get(CALLS_LOG_ENV)
    if log:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {path}\n")
    text = Path(path).read_text()
    if text.startswith("BAD"):
        raise TraceError("not a trace format traceanalyzer knows", path)
    if text.startswith("CRASH"):
        raise ZeroDivisionError("simulated analyzer bug")
    if text.startswith("DIE"):  # a worker killed from outside (the OOM killer's SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    if text.startswith("HANG"):
        time.sleep(3600)
    return json.loads(text)
