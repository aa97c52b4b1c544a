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
import sys
import threading
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


class SideJob(Generic[T]):
    """``fn()`` started in a forked child (when ``fork`` and :func:`can_fork`); its result
    read back by :meth:`result`, which runs ``fn`` in the caller instead when there is no
    child or the child did not deliver. Use as a context manager, or call :meth:`close`,
    so a child whose result is never asked for is stopped and reaped."""

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
        r, w = os.pipe()
        with warnings.catch_warnings():  # Python 3.12+ warns on fork in threaded processes
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
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

    def _collect(self) -> Any:
        """The child's result, or :data:`_NOT_SET` when it did not deliver one."""
        chunks = []
        try:
            with os.fdopen(self._fd, "rb") as src:  # type: ignore[arg-type]
                self._fd = None
                while chunk := src.read(1 << 20):
                    chunks.append(chunk)
        finally:
            status = self._reap()
        if status != 0:
            return _NOT_SET
        try:
            return pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 (a torn payload: run fn here instead)
            return _NOT_SET

    def _reap(self, kill: bool = False) -> int | None:
        pid, self._pid = self._pid, None
        if pid is None:
            return None
        if kill:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def result(self) -> T:
        """``fn()``'s value: from the child when it delivered, else computed here."""
        if self._value is _NOT_SET and self._pid is not None:
            self._value = self._collect()
        if self._value is _NOT_SET:
            self._value = self._fn()
        return self._value

    def close(self) -> None:
        """Stop and reap a child whose result was not collected (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._reap(kill=True)

    def __enter__(self) -> SideJob[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
