"""Analyse many traces: cache first, then a local process pool or a Dask cluster.

``run_traces`` hashes every trace file, takes what the cache already has, and sends only
the rest to workers:

* ``jobs == 1`` and no ``timeout``: in this process, one after the other;
* otherwise (default ``jobs``: the CPUs this process may use): local worker processes
  supervised here (:mod:`.pool`): a trace that runs past ``timeout`` seconds has its
  worker killed, and a worker that dies (out of memory, killed) fails only the trace it
  was running; a fresh worker takes the next trace;
* ``scheduler="tcp://host:port"``: an existing ``dask.distributed`` cluster (the workers
  must see the trace paths, e.g. on a shared file system, and have traceanalyzer
  installed).

Each job returns a summary or an error line (``worker.run_job``); fresh summaries are
written to the cache as they arrive.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.gate.cache import ResultCache, entry_key, file_digest, options_key
from traceanalyzer.gate.discover import TraceFile
from traceanalyzer.gate.pool import run_supervised
from traceanalyzer.gate.worker import run_job

Progress = Callable[[int, int], None]


def default_jobs() -> int:
    """The number of CPUs this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class RunOptions:
    """How to run the per-trace jobs.

    jobs: local worker processes (None = :func:`default_jobs`; 1 = in this process).
    scheduler: ``tcp://host:port`` of a Dask scheduler; overrides ``jobs``.
    cache: where summaries are kept between runs (None = no cache).
    progress: called as ``progress(done, total)`` after each trace.
    fn: the per-trace function (default ``worker.summarize``); must be picklable by
        reference (a module-level function) for pools and clusters.
    connect_timeout: seconds to wait for the Dask scheduler.
    timeout: seconds one trace may take (None: no limit); local workers only (on a Dask
        cluster, its own worker limits apply).
    load: ``ta.load`` keywords every trace is read with (``format``, ``strict``,
        ``field_map``, ``symbols``, ``gz_max_bytes``, ``gz_max_ratio``), passed to ``fn``;
        they are part of the cache key (:func:`~.cache.options_key`).
    """

    jobs: int | None = None
    scheduler: str | None = None
    cache: ResultCache | None = None
    progress: Progress | None = None
    fn: Callable[[str], dict[str, Any]] | None = None
    connect_timeout: float = 20.0
    timeout: float | None = None
    load: dict[str, Any] = field(default_factory=dict)

    def job_fn(self) -> Callable[[str], dict[str, Any]] | None:
        """The per-trace function with :attr:`load` bound (None: ``worker.summarize`` as
        it is). A ``partial`` of a module-level function pickles by reference."""
        if not self.load:
            return self.fn
        from traceanalyzer.gate import worker

        return functools.partial(self.fn or worker.summarize, **self.load)


@dataclass
class TraceResult:
    """One trace's outcome: a summary or an error line. ``file_hash`` is the SHA-256 of
    the file; ``cache_key`` its cache entry (the file hash, or a hash of it and the
    reading options)."""

    trace: TraceFile
    file_hash: str
    summary: dict[str, Any] | None = None
    cache_key: str = ""
    error: str | None = None
    cached: bool = False
    seconds: float = 0.0


def run_traces(traces: list[TraceFile], options: RunOptions | None = None) -> list[TraceResult]:
    """Summaries of all ``traces`` in input order (see the module docstring)."""
    opts = options or RunOptions()
    results: list[TraceResult] = []
    todo: list[TraceResult] = []
    variant = options_key(opts.load) if opts.cache is not None else ""
    for tf in traces:
        try:
            digest = file_digest(tf.path)
        except OSError as exc:
            raise TraceError(f"cannot read: {exc.strerror}", tf.path) from None
        r = TraceResult(tf, digest, cache_key=entry_key(digest, variant))
        if opts.cache is not None:
            hit = opts.cache.get(r.cache_key)
            if hit is not None:
                r.summary, r.cached = hit, True
        results.append(r)
        if not r.cached:
            todo.append(r)

    total, done = len(results), len(results) - len(todo)
    if opts.progress:
        opts.progress(done, total)
    if opts.cache is not None and todo:
        opts.cache.prune_stale()
    for r, out in _execute(todo, opts):
        r.seconds = float(out.get("seconds", 0.0))
        if out.get("ok"):
            r.summary = out["summary"]
            if opts.cache is not None:
                opts.cache.put(r.cache_key, r.summary)
        else:
            # one line that names the file: every output must hold it (a name's bytes
            # that are not UTF-8 as \xNN, whichever worker, pool or Dask wrote it)
            r.error = path_text(str(out.get("error") or "unknown error"))
        done += 1
        if opts.progress:
            opts.progress(done, total)
    return results


def _execute(todo: list[TraceResult], opts: RunOptions) -> Iterator[tuple[TraceResult, dict[str, Any]]]:
    """Yield ``(result, job output)`` as jobs finish, on the chosen engine."""
    if not todo:
        return
    if opts.scheduler:
        yield from _execute_dask(todo, opts)
        return
    jobs = opts.jobs or default_jobs()
    fn = opts.job_fn()
    if (jobs <= 1 or len(todo) == 1) and opts.timeout is None:
        for r in todo:
            yield r, run_job(str(r.trace.path), fn)
        return
    paths = [str(r.trace.path) for r in todo]
    for index, out in run_supervised(paths, fn, min(jobs, len(todo)), opts.timeout, _mp_context()):
        yield todo[index], out


def _outcome(fut: Any, r: TraceResult) -> dict[str, Any]:
    """A finished future's job output; a crashed worker becomes an error line."""
    try:
        return fut.result()
    except Exception as exc:  # worker process died (BrokenProcessPool, KilledWorker, ...)
        return {"ok": False, "kind": "internal",
                "error": f"{r.trace.path}: worker failed: {type(exc).__name__}: {exc}"}


def _mp_context() -> multiprocessing.context.BaseContext:
    """``fork`` on Linux (workers inherit the imported analyzer), else the platform default."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _execute_dask(todo: list[TraceResult], opts: RunOptions) -> Iterator[tuple[TraceResult, dict[str, Any]]]:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise TraceError(
            "--scheduler needs dask.distributed: pip install 'traceanalyzer[dask]'"
        ) from None
    address = str(opts.scheduler)
    try:
        client = Client(address, timeout=opts.connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise TraceError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        fn = opts.job_fn()
        stamp = f"{os.getpid()}-{time.time_ns()}"
        futures = {}
        for i, r in enumerate(todo):
            path = str(Path(r.trace.path).resolve())
            fut = client.submit(run_job, path, fn, key=f"traceanalyzer-{stamp}-{i}", pure=False)
            futures[fut] = r
        for fut in dask_completed(list(futures), loop=client.loop):
            yield futures[fut], _outcome(fut, futures[fut])
    finally:
        client.close()
