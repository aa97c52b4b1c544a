"""The whole gate in one call: find traces, analyse (cached, parallel), compare, update.

>>> outcome = run_check(["nightly/"], "ci/baseline.json")       # doctest: +SKIP
>>> outcome.exit_code                                           # doctest: +SKIP
0
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.gate.baseline import Baseline, load_baseline, save_baseline
from traceanalyzer.gate.cache import ResultCache, default_cache_dir
from traceanalyzer.gate.compare import EXIT_PASS, GateResult, Policy, compare_all
from traceanalyzer.gate.digest import TraceDigest, digest_summary
from traceanalyzer.gate.discover import TraceFile, discover
from traceanalyzer.gate.runner import RunOptions, TraceResult, run_traces


@dataclass
class CheckOutcome:
    """What :func:`run_check` did.

    result: the verdicts. traces / results: what was analysed and how.
    baseline_written: True if ``update_baseline`` wrote the file.
    dropped: baseline traces not seen tonight, left out of the updated baseline.
    seconds: wall time of the whole check.
    cache_unwritable: why the result cache could not be written (None: it could, or none).
    cache_not_pruned: why a stale folder of the cache was left (None: none was).
    """

    result: GateResult
    baseline_path: Path
    traces: list[TraceFile] = field(default_factory=list)
    results: list[TraceResult] = field(default_factory=list)
    baseline_written: bool = False
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cache_unwritable: str | None = None
    cache_not_pruned: str | None = None

    @property
    def exit_code(self) -> int:
        """The exit code of this check, the one the CLI exits with and the ``--json`` and
        SARIF documents carry: 2 if a trace could not be analysed, else 0 if the baseline
        was written, else 1 if a trace failed, else 0."""
        if self.baseline_written and not self.result.errors:
            return EXIT_PASS
        return self.result.exit_code

    @property
    def cached(self) -> int:
        """How many traces came from the cache."""
        return sum(1 for r in self.results if r.cached)


def run_check(
    inputs: Sequence[str | Path],
    baseline_path: str | Path,
    policy: Policy | None = None,
    *,
    update_baseline: bool = False,
    run_options: RunOptions | None = None,
    use_cache: bool = True,
    cache_dir: str | Path | None = None,
    pattern: str | None = None,
    skip: Sequence[str] = (),
) -> CheckOutcome:
    """Check the traces in ``inputs`` against the baseline file.

    Without ``update_baseline`` a missing baseline is a :class:`TraceError`. With it, the
    comparison is still made against the old file (if any) for the report, then the file
    is replaced by tonight's digests (traces that could not be read keep their old
    entries). The cache lives in ``cache_dir`` (default: ``<baseline stem>.cache/`` next
    to the baseline) unless ``use_cache`` is False. ``pattern`` / ``skip`` choose files
    inside folders (see :func:`discover`).
    """
    start = time.perf_counter()
    policy = policy or Policy()
    bpath = Path(baseline_path)
    if bpath.is_dir():  # before the traces are analysed and a cache folder made beside it
        raise TraceError("is a folder, not a baseline file (name the JSON file, e.g. baseline.json)", bpath)
    traces = discover(inputs, pattern=pattern, exclude=[bpath], skip=skip)
    if update_baseline:
        try:
            baseline = load_baseline(bpath)
        except TraceError:
            baseline = Baseline()  # absent or unreadable: it is being replaced anyway
    else:
        baseline = load_baseline(bpath)

    opts = run_options or RunOptions()
    if use_cache and opts.cache is None:
        opts.cache = ResultCache(cache_dir or default_cache_dir(bpath))
    results = run_traces(traces, opts)

    digests: dict[str, TraceDigest] = {}
    errors: dict[str, str] = {}
    for r in results:
        tid = r.trace.trace_id
        if r.error is not None:
            errors[tid] = r.error
            continue
        try:
            digests[tid] = digest_summary(r.summary or {})
        except ValueError as exc:
            errors[tid] = f"{path_text(r.trace.path)}: {exc}"
    result = compare_all(digests, baseline, policy, errors)
    by_id = {r.trace.trace_id: r for r in results}
    for v in result.verdicts:
        r = by_id.get(v.trace)
        if r is not None:
            v.path, v.file_hash, v.seconds, v.cached = path_text(r.trace.path), r.file_hash, r.seconds, r.cached

    outcome = CheckOutcome(result, bpath, traces, results)
    if opts.cache is not None:
        outcome.cache_unwritable = opts.cache.unwritable
        outcome.cache_not_pruned = opts.cache.not_pruned
    if update_baseline:  # unreadable or damaged traces keep their old entries
        errors = {v.trace: v.error or "" for v in result.errors}
        kept = {tid: baseline.traces[tid] for tid in errors if tid in baseline.traces}
        save_baseline(Baseline({**kept, **{t: d for t, d in digests.items() if t not in errors}}), bpath)
        outcome.baseline_written = True
        outcome.dropped = sorted(set(baseline.traces) - set(digests) - set(kept))
    outcome.seconds = time.perf_counter() - start
    return outcome
