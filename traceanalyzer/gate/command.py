"""``traceanalyzer check`` as one library call: check the options, run the gate, write
the files asked for, hand every line of text to a sink and return the exit code.

The library never prints: the caller passes a :class:`GateOutput` whose ``report`` gets
the main output (the report lines, or the verdicts JSON with ``json="-"``) and whose
``note`` gets the status lines (what was analysed, files written, the regression
count). Bad options and unreadable traces raise :class:`TraceError` (after the report
and the files are out, so a CI log still shows every verdict).

>>> request = CheckRequest(traces=["nightly/"], baseline=Path("ci/baseline.json"))
>>> exit_code = run_gate(request, output)                      # doctest: +SKIP
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Protocol, Sequence

from traceanalyzer.errors import TraceError
from traceanalyzer.gate.check import CheckOutcome, run_check
from traceanalyzer.gate.compare import EXIT_ERROR, EXIT_REGRESSION, Policy
from traceanalyzer.gate.outputs import verdicts_json_text, write_outputs, write_trend_png
from traceanalyzer.gate.runner import Progress, RunOptions
from traceanalyzer.gate.text import report_lines
from traceanalyzer.rules.catalogue import rule as catalogue_rule

#: Default time limit per trace: generous, a trace that needs longer is stuck or pathological.
DEFAULT_TIMEOUT = 1800.0


class GateOutput(Protocol):
    """Where :func:`run_gate` sends its text and its progress."""

    def progress(self) -> ContextManager[Progress]:
        """A progress callback (traces done, total) for the analysis; closed before the report."""

    def report(self, line: str) -> None:
        """The main output: a report line, or the whole verdicts JSON document."""

    def note(self, line: str) -> None:
        """A status line (kept off stdout by a caller that writes JSON there)."""


@dataclass(frozen=True)
class CheckRequest:
    """Everything ``check`` was asked to do; the field names are the CLI's option names.

    ``json`` is a file for the verdicts JSON, or ``"-"`` to make it the main output
    instead of the report lines. ``format`` ... ``symbols`` are the ``ta.load`` keywords
    every trace is read with (``hazards``' trace input options; :meth:`load_options`).
    """

    traces: Sequence[str | Path] = ()
    baseline: Path | None = None
    update_baseline: bool = False
    fail_on: str = "high"
    ignore: Sequence[str] = ()
    allow_loss: bool = False
    fail_on_missing: bool = False
    fail_on_new: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    leak_rel_tol: float = 0.10
    leak_abs_tol: int = 16384
    count_rel_tol: float = 0.0
    count_abs_tol: int = 0
    junit: Path | None = None
    sarif: Path | None = None
    json: Path | str | None = None
    jobs: int | None = None
    scheduler: str | None = None
    pattern: str | None = None
    skip: Sequence[str] = field(default_factory=tuple)
    format: str | None = None
    strict: bool = False
    field_map: str | Path | None = None
    gz_max_bytes: int | None = None
    gz_max_ratio: float | None = None
    symbols: str | Path | None = None
    no_cache: bool = False
    cache_dir: Path | None = None
    history: Path | None = None
    trend: str | None = None
    trend_trace: str | None = None
    trend_png: Path | None = None
    quiet: bool = False
    verbose: bool = False

    @property
    def json_to_stdout(self) -> bool:
        """True when the verdicts JSON is the main output (``json="-"``)."""
        return self.json is not None and str(self.json) == "-"

    def policy(self) -> Policy:
        """The comparison policy; a bad tolerance or an unknown rule (any case is known;
        the error names the closest IDs) is a TraceError."""
        for rid in self.ignore:
            try:
                catalogue_rule(rid)
            except KeyError as exc:
                raise TraceError(f"--ignore: {exc.args[0]}") from None
        if not self.timeout > 0 or not math.isfinite(self.timeout):  # nan passes <= 0
            raise TraceError("--timeout must be a positive number of seconds")
        try:
            return Policy(self.fail_on, self.leak_rel_tol, self.leak_abs_tol, frozenset(self.ignore),
                          allow_loss=self.allow_loss, fail_on_missing=self.fail_on_missing,
                          fail_on_new=self.fail_on_new, count_rel_tol=self.count_rel_tol,
                          count_abs_tol=self.count_abs_tol)
        except ValueError as exc:
            raise TraceError(str(exc)) from None

    def load_options(self) -> dict[str, Any]:
        """The ``ta.load`` keywords every trace is read with (unset ones left out), checked
        once here rather than failing every trace: an unknown ``format``, a ``symbols``
        that is not a folder and an unreadable or malformed ``field_map`` are a
        TraceError, as is ``strict`` with ``allow_loss`` (a strict read refuses the
        loss that --allow-loss would accept). Paths are made absolute (Dask workers)."""
        out: dict[str, Any] = {}
        if self.format is not None:
            from traceanalyzer.readers import readers

            known = readers()
            if self.format not in known:
                raise TraceError(f"--format: unknown format {self.format!r}; known: {', '.join(sorted(known))}")
            out["format"] = self.format
        if self.strict:
            if self.allow_loss:
                raise TraceError("--strict refuses the loss that --allow-loss accepts: give one of them")
            out["strict"] = True
        if self.field_map is not None:
            from traceanalyzer.readers.field_map import load_field_map

            load_field_map(Path(self.field_map))  # a bad map is one error, not one per trace
            out["field_map"] = str(Path(self.field_map).resolve())
        if self.symbols is not None:
            from traceanalyzer.model.symbols import SymbolDir

            out["symbols"] = str(SymbolDir(Path(self.symbols)).root.resolve())  # or not a folder
        out.update({k: v for k in ("gz_max_bytes", "gz_max_ratio") if (v := getattr(self, k)) is not None})
        return out


def _trend_png(request: CheckRequest) -> Path:
    assert request.history is not None and request.trend is not None
    return write_trend_png(request.history, request.trend, request.trend_trace, request.trend_png)


def run_gate(request: CheckRequest, output: GateOutput) -> int:
    """Run ``check`` for ``request``; returns ``CheckOutcome.exit_code`` (0 pass, 1 regression).

    Without traces, ``trend`` alone plots the history. Raises :class:`TraceError` for bad
    options, a missing baseline and, after the report and files, an unreadable trace.
    """
    if request.trend and not request.history:
        raise TraceError("--trend needs --history DIR")
    if not request.traces:
        if request.trend:
            output.note(f"trend plot written: {_trend_png(request)}")
            return 0
        raise TraceError("no TRACE_OR_DIR given (see traceanalyzer check --help)")
    if request.baseline is None:
        raise TraceError("--baseline FILE is required")
    if request.jobs is not None and request.jobs < 1:
        raise TraceError("--jobs must be at least 1")
    policy = request.policy()
    load = request.load_options()
    with output.progress() as progress:
        opts = RunOptions(jobs=request.jobs, scheduler=request.scheduler, progress=progress,
                          timeout=request.timeout, load=load)
        outcome = run_check(request.traces, request.baseline, policy, update_baseline=request.update_baseline,
                            run_options=opts, use_cache=not request.no_cache, cache_dir=request.cache_dir,
                            pattern=request.pattern, skip=request.skip)
    _say_outcome(request, outcome, output)
    result = outcome.result
    if outcome.exit_code == EXIT_ERROR:  # the CLI exits 2 with this line
        first = result.errors[0]
        more = f" (and {len(result.errors) - 1} more unreadable trace(s))" if len(result.errors) > 1 else ""
        raise TraceError(f"{first.error}{more}")
    if outcome.exit_code == EXIT_REGRESSION:
        output.note(f"REGRESSION: {result.counts()['failed']} trace(s) failed the gate")
    return outcome.exit_code


def _say_outcome(request: CheckRequest, outcome: CheckOutcome, output: GateOutput) -> None:
    """The report (or JSON), the files asked for and the status lines, in that order."""
    result = outcome.result
    if request.json_to_stdout:
        output.report(verdicts_json_text(outcome))
    else:
        for line in report_lines(result, verbose=request.verbose, quiet=request.quiet):
            output.report(line)
        output.note(f"analysed {len(outcome.results) - outcome.cached}, from cache {outcome.cached}, "
                    f"in {outcome.seconds:.1f} s")
        if outcome.cache_unwritable:
            output.note(f"result cache not written: {outcome.cache_unwritable}")
        if outcome.cache_not_pruned:
            output.note(f"stale result cache left: {outcome.cache_not_pruned}")
    json_path = None if request.json_to_stdout or request.json is None else Path(request.json)
    write_outputs(outcome, json_path=json_path, junit=request.junit, sarif=request.sarif, history=request.history)
    if request.history and request.trend:
        output.note(f"trend plot written: {_trend_png(request)}")
    if outcome.baseline_written:
        note = f"; dropped {len(outcome.dropped)} missing trace(s)" if outcome.dropped else ""
        output.note(f"baseline written: {request.baseline} "
                    f"({len(outcome.traces) - len(result.errors)} trace(s){note})")
