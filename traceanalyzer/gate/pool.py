"""Local worker processes, supervised: a per-job time limit, and a dead worker fails
only its own job.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (every
pending job becomes ``BrokenProcessPool``) and cannot stop a job that runs too long.
Here each worker is a process with a pipe; this process hands it one path at a time and
waits on the pipes and the process sentinels together. A job past its deadline has its
worker killed; a worker that exits (out of memory, killed) turns only the job it was
running into an error line; a fresh worker replaces it either way.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from traceanalyzer.gate.worker import run_job

JobFn = Callable[[str], dict[str, Any]] | None


def _serve(conn: Connection, fn: JobFn) -> None:
    """Worker main loop: a path in, ``run_job``'s dict out, until None or a closed pipe."""
    try:
        while True:
            path = conn.recv()
            if path is None:
                return
            conn.send(run_job(path, fn))
    except (EOFError, OSError, KeyboardInterrupt):
        return


class _Worker:
    def __init__(self, ctx: multiprocessing.context.BaseContext, fn: JobFn) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, fn), daemon=True)
        self.proc.start()
        child.close()
        self.job: int | None = None
        self.path = ""
        self.started = 0.0

    def give(self, job: int, path: str) -> None:
        self.job, self.path, self.started = job, path, time.monotonic()
        self.conn.send(path)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _death(proc: multiprocessing.process.BaseProcess) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {code}"


def run_supervised(paths: list[str], fn: JobFn, jobs: int, timeout: float | None,
                   ctx: multiprocessing.context.BaseContext) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index into paths, run_job output)`` for every path, as jobs finish.

    At most ``jobs`` workers; ``timeout`` seconds per job (None: no limit). A job whose
    worker times out or dies yields ``{"ok": False, "kind": "internal", "error": ...}``.
    """
    todo = deque(enumerate(paths))
    workers = [_Worker(ctx, fn) for _ in range(max(1, min(jobs, len(paths))))]
    try:
        while True:
            for w in workers:
                if w.job is None and todo:
                    w.give(*todo.popleft())
            busy = [w for w in workers if w.job is not None]
            if not busy:
                return
            wait_for = None
            if timeout is not None:
                wait_for = max(0.0, min(w.started + timeout for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], wait_for))
            for i, w in enumerate(workers):
                if w.job is None:
                    continue
                job = w.job
                failure = None
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        if w.conn.poll():
                            out = w.conn.recv()
                            w.job = None
                            yield job, out
                            continue
                    except (EOFError, OSError):
                        pass
                    if w.proc.sentinel in ready or not w.proc.is_alive():
                        w.proc.join(1)
                        failure = f"{w.path}: worker died: {_death(w.proc)}"
                if failure is None and timeout is not None and time.monotonic() - w.started >= timeout:
                    failure = f"{w.path}: timed out after {timeout:g} s (--timeout)"
                if failure is not None:
                    w.stop(kill=True)
                    workers[i] = _Worker(ctx, fn)
                    yield job, {"ok": False, "kind": "internal", "error": failure,
                                "seconds": time.monotonic() - w.started}
    finally:
        for w in workers:
            w.stop(kill=w.job is not None)
