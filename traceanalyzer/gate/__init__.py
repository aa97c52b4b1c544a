"""The regression gate behind ``traceanalyzer check``.

Core (pure, works on ``summary()`` dicts): :mod:`digest` (group findings by
fingerprint), :mod:`compare` (verdicts under a :class:`Policy`), :mod:`baseline` (the
JSON file). Around it: :mod:`discover` (trace IDs), :mod:`runner` (cache, process pool,
Dask), :mod:`check` (all of it in one call), :mod:`junit`, :mod:`sarif`, :mod:`history`,
:mod:`command` (``traceanalyzer check`` as a call that hands its text to a sink).
"""

from traceanalyzer.gate.baseline import Baseline, load_baseline, save_baseline
from traceanalyzer.gate.check import CheckOutcome, run_check
from traceanalyzer.gate.compare import GateResult, Policy, TraceVerdict, compare_all, compare_summary
from traceanalyzer.gate.digest import TraceDigest, digest_summary

__all__ = [
    "Baseline",
    "CheckOutcome",
    "GateResult",
    "Policy",
    "TraceDigest",
    "TraceVerdict",
    "compare_all",
    "compare_summary",
    "digest_summary",
    "load_baseline",
    "run_check",
    "save_baseline",
]
