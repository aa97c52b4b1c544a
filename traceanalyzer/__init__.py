"""traceanalyzer: find MDL misuse by Windows kernel drivers in ETW traces.

>>> import traceanalyzer as ta
>>> trace = ta.load("sample_traces/seed_unlock_from_worker.csv")   # doctest: +SKIP
>>> analysis = ta.analyze(trace)                                    # doctest: +SKIP
>>> analysis.findings[["rule", "severity", "process", "bytes"]]     # doctest: +SKIP
"""

import importlib
from typing import Any, Callable

from traceanalyzer.analysis import Analysis, analyze, register_view
from traceanalyzer.errors import (
    MissingEventError, TraceEmptyError, TraceError, TraceFileChangedError, TraceFormatError,
    UnknownFormatError,
)
from traceanalyzer.model.trace import Trace
from traceanalyzer.query import QueryError, sql
from traceanalyzer.session import load

__version__ = "0.1.0"


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """A view that imports its (later-stage) module on first use."""
    def view(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    return view


# The package facade sits above every stage: it wires the views of the later stages
# into Analysis, which itself imports nothing after the rules.
for _view, _module, _func in (
    ("summary", "traceanalyzer.render.summary", "summary_dict"),
    ("plot_leak_timeline", "traceanalyzer.plot.leak_timeline", "plot_leak_timeline_for"),
    ("plot_hazard_timeline", "traceanalyzer.plot.hazard_timeline", "plot_hazard_timeline_for"),
    ("plot_impact", "traceanalyzer.plot.impact", "plot_impact_for"),
    ("for_process", "traceanalyzer.views", "view_for_process"),
    ("window", "traceanalyzer.views", "view_window"),
):
    register_view(_view, _lazy(_module, _func))

__all__ = [
    "Analysis", "MissingEventError", "QueryError", "Trace", "TraceEmptyError", "TraceError",
    "TraceFileChangedError", "TraceFormatError", "UnknownFormatError", "analyze", "load", "sql",
]
