"""traceanalyzer: find MDL misuse by Windows kernel drivers in ETW traces.

>>> import traceanalyzer as ta
>>> trace = ta.load("sample_traces/seed_unlock_from_worker.csv")   # doctest: +SKIP
>>> analysis = ta.analyze(trace)                                    # doctest: +SKIP
>>> analysis.findings[["rule", "severity", "process", "bytes"]]     # doctest: +SKIP
"""

from traceanalyzer.analysis import Analysis, analyze
from traceanalyzer.errors import (
    MissingEventError, TraceEmptyError, TraceError, TraceFormatError, UnknownFormatError,
)
from traceanalyzer.model.trace import Trace
from traceanalyzer.query import QueryError, sql
from traceanalyzer.session import load

__version__ = "0.1.0"

__all__ = [
    "Analysis", "MissingEventError", "QueryError", "Trace", "TraceEmptyError", "TraceError",
    "TraceFormatError", "UnknownFormatError", "analyze", "load", "sql",
]
