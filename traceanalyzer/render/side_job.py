"""One piece of output work run in a forked child while the caller goes on.

``report`` writes files that do not depend on each other (summary.json, PNG figures, the
HTML page); on a machine with more than one CPU the slow ones can be made side by side. A
:class:`SideJob` forks (Linux only: the child inherits the finished analysis, nothing is
pickled on the way in), runs its function there and sends the picklable result back
through a pipe. The outcome never depends on the fork: where forking is unavailable or
unwise, or when the child fails in any way (an exception, a signal, a result that does not
pickle), the function runs in the caller when :meth:`SideJob.result` is called, so an error
is raised there exactly as it would be without the child.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import threading
import time
import warnings
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

_NOT_SET: Any = object()


def can_fork() -> bool:
    """True on Linux with more than one usable CPU and no other Python thread running
    (a thread holding a lock at fork time could leave the child waiting on it)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = os.cpu_count() or 1
    return cpus > 1 and threading.active_count() == 1


#: Seconds :meth:`SideJob.result` waits for the child before it stops it and does the
#: work itself (a child stuck on a lock some native thread held at the fork).
DEADLINE_S = 300.0


class _Raised:
    """``fn`` raised in the caller: kept, so a second ``result()`` raises it again."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class SideJob(Generic[T]):
    """``fn()`` started in a forked child (when ``fork`` and :func:`can_fork`); its result
    read back by :meth:`result`, which runs ``fn`` in the caller instead when there is no
    child or the child did not deliver (failed, died, did not answer within
    :data:`DEADLINE_S`). Use as a context manager, or call :meth:`close`, so a child
    whose result is never asked for is stopped and reaped."""

    def __init__(self, fn: Callable[[], T], *, fork: bool = True) -> None:
        self._fn = fn
        self._pid: int | None = None
        self._fd: int | None = None
        self._value: Any = _NOT_SET
        if fork and can_fork():
            self._start()

    @property
    def forked(self) -> bool:
        """Whether a child process was started for this job."""
        return self._pid is not None

    def _start(self) -> None:
        try:
            r, w = os.pipe()
        except OSError:  # out of descriptors: the caller does the work
            return
        try:
            with warnings.catch_warnings():  # Python 3.12+ warns on fork in threaded processes
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:  # out of memory or processes: the caller does the work
            os.close(r)
            os.close(w)
            return
        if pid == 0:  # the child: run, send, leave without running the parent's cleanup
            code = 1
            try:
                os.close(r)
                payload = pickle.dumps(self._fn(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(w, "wb") as out:
                    out.write(payload)
                code = 0
            except BaseException:  # the caller runs fn itself and sees the error there
                pass
            finally:
                os._exit(code)
        os.close(w)
        self._pid, self._fd = pid, r

    def _collect(self, deadline_s: float) -> Any:
        """The child's result, or :data:`_NOT_SET` when it did not deliver one in time."""
        fd, self._fd = self._fd, None
        chunks: list[bytes] = []
        complete = False
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLHUP)
            end = time.monotonic() + deadline_s
            while True:
                left = end - time.monotonic()
                if left <= 0 or not poller.poll(left * 1000):
                    break  # no answer in time: stopped below
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
            status = self._reap(kill=not complete)
        if status != 0:
            return _NOT_SET
        try:
            return pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 (a torn payload: run fn here instead)
            return _NOT_SET

    def _reap(self, kill: bool = False) -> int | None:
        """Wait for the child (stopped first when ``kill``); its exit code, None when
        there is none to wait for (never started, or reaped by someone else)."""
        pid = self._pid
        if pid is None:
            return None
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # SIGCHLD ignored, or the host reaped it
            self._pid = None
            return None
        self._pid = None  # only once reaped: an interrupted wait leaves it to close()
        return os.waitstatus_to_exitcode(status)

    def result(self, deadline_s: float | None = None) -> T:
        """``fn()``'s value: from the child when it delivered within ``deadline_s``
        (default :data:`DEADLINE_S`), else computed here (an error raised here is raised
        again by every later call)."""
        if self._value is _NOT_SET and self._pid is not None:
            self._value = self._collect(DEADLINE_S if deadline_s is None else deadline_s)
        if self._value is _NOT_SET:
            try:
                self._value = self._fn()
            except BaseException as exc:
                self._value = _Raised(exc)
        if isinstance(self._value, _Raised):
            raise self._value.error
        return self._value

    def close(self) -> None:
        """Stop and reap a child whose result was not collected (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        self._reap(kill=True)

    def __enter__(self) -> SideJob[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
