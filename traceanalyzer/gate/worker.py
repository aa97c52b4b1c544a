"""The per-trace job run in worker processes (local pool or Dask workers).

Kept tiny and importable without the analysis stack: the analyzer is imported lazily
inside the job, so a pool or Dask worker pays that import once, on its first trace.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable

from traceanalyzer.errors import TraceError


def summarize(path: str, **options: Any) -> dict[str, Any]:
    """``analyze(load(path, **options)).summary()``: the ``hazards --json`` dict of one
    trace; ``options`` are ``ta.load``'s (``RunOptions.load``: symbols, field_map, ...)."""
    from traceanalyzer import analyze, load

    return analyze(load(path, **options)).summary()


def run_job(path: str, fn: Callable[[str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run ``fn`` (default :func:`summarize`) on one trace without ever raising.

    Returns ``{"ok": True, "summary": ..., "seconds": ...}`` or ``{"ok": False,
    "error": one line, "kind": "trace" | "internal", "seconds": ...}``. Exceptions are
    turned into strings here because not every exception class survives pickling back
    from a worker process, and one bad trace must not stop the others.
    """
    start = time.perf_counter()
    try:
        summary = (fn or summarize)(path)
        return {"ok": True, "summary": summary, "seconds": time.perf_counter() - start}
    except TraceError as exc:
        return {"ok": False, "error": str(exc), "kind": "trace", "seconds": time.perf_counter() - start}
    except Exception as exc:  # a bug in the analyzer: report it with its place
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" (at {where.filename}:{where.lineno})" if where else ""
        return {
            "ok": False,
            "error": f"{path}: internal error {type(exc).__name__}: {exc}{at}",
            "kind": "internal",
            "seconds": time.perf_counter() - start,
        }
