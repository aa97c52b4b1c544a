"""Analysis: the facade over one trace's replay. Context -> replay -> named tables.

Tables (columns documented on each and in docs/architecture.md): ``findings``,
``lifecycles``, ``mappings``, ``locks``, ``leak_timeline()``, ``leaks``. Views built by
the later stages (``summary()``, ``plot_*()``, the Jupyter HTML) are looked up in a
registry those stages fill (:func:`register_view`), so this module imports nothing
after the rules.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from traceanalyzer.analysis import leaks as _leaks
from traceanalyzer.analysis.findings import FindingSources
from traceanalyzer.context.attribution import Context, attribute
from traceanalyzer.lifecycle.replay import Engine, ReplayResult, prepare_replay
from traceanalyzer.lifecycle.tables import LifecycleTables
from traceanalyzer.model.dtypes import with_addresses
from traceanalyzer.model.trace import Trace
from traceanalyzer.rules.problems import problems_of
from traceanalyzer.vocabulary import SEVERITIES, severity_counts

__all__ = ["Analysis", "analyze", "register_view"]

#: name -> callable(analysis, **kwargs): the views the later stages provide.
_VIEWS: dict[str, Callable[..., Any]] = {}


def register_view(name: str, view: Callable[..., Any]) -> None:
    """Provide ``Analysis`` view ``name`` ('summary', 'plot_leak_timeline', ...)."""
    _VIEWS[name] = view


def _view(name: str) -> Callable[..., Any]:
    try:
        return _VIEWS[name]
    except KeyError:
        raise LookupError(f"no {name!r} view registered (import traceanalyzer)") from None


class Analysis:
    """The result of replaying a trace. Build with :func:`traceanalyzer.analyze`."""

    def __init__(self, trace: Trace, engine: Engine = "auto",
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.trace = trace
        n_calls = trace.table("calls").num_rows
        report = progress or (lambda done, total: None)
        report(0, n_calls)
        self.context: Context = attribute(trace)
        report(n_calls // 3, n_calls)
        prepared = prepare_replay(trace, self.context, engine)
        report(2 * n_calls // 3, n_calls)
        self.replay: ReplayResult = prepared.run()
        report(n_calls, n_calls)
        self.trace_start_ns, self.trace_end_ns = trace.time_span_ns
        self._tables = LifecycleTables(self.replay, trace.table("calls"), trace.processes,
                                       self.context)

    @cached_property
    def _sources(self) -> FindingSources:
        return FindingSources(self.trace, self._tables, self.mappings, self.locks)

    # --- tables ------------------------------------------------------------------------

    @cached_property
    def findings(self) -> pd.DataFrame:
        """One row per finding, most severe first, then by impact.

        Columns: rule, severity (ordered Categorical, info < low < medium < high <
        critical: ``f[f.severity >= "high"]``), time_ns, pid, process (image name), tid,
        mdl (``address`` dtype: UInt64 shown in hex, as are the address columns of every
        table),
        caller (module+offset of the call that caused it), event (the triggering event),
        bytes (pages spanned x 4096; for a RESERVED_* finding without an MDL, the
        reservation's size; null when the MDL's size is unknown: the trace never saw it
        built), impact_byte_seconds (bytes x seconds held, from start_ns to end_ns; null
        when bytes is), start_ns, end_ns (when the hazard ended; trace end if it did
        not), exposure_start_ns / exposure_end_ns (UNLOCK_WHILE_USER_MAPPED and
        FREE_PAGES_WHILE_USER_MAPPED: while user PTEs pointed at released pages),
        message, advice, fingerprint (rule + caller + process image), evidence (list of
        seq of the events that led to it), lifetime_id, mapping_id, count (aggregated
        trace-quality rows: how many; else 1), call_pid / call_process (the effective
        process the triggering call ran in, from context attribution: e.g. System for an
        unlock from a worker thread, while ``pid`` is the process whose memory it hurts),
        permanent (True for a leak nothing can release before reboot: a user mapping left
        by an exited process, MmAllocatePagesForMdl pages freed with IoFreeMdl; these rank
        first within a severity).
        """
        return self._sources.findings()

    @cached_property
    def problems(self) -> pd.DataFrame:
        """The findings grouped by rule + call site (caller): one row per problem to fix,
        most severe first, then by permanent bytes, then by impact, then by count. Columns are documented on
        :func:`traceanalyzer.rules.problems.problems_of` (problem_id, rule, severity,
        caller, module, count, findings, first_ns, last_ns, processes, process_count,
        pids, mdls, bytes, permanent_bytes, impact_byte_seconds, message, advice, example_evidence,
        example_time_ns, fingerprints).
        """
        return problems_of(self.findings)

    @cached_property
    def lifecycles(self) -> pd.DataFrame:
        """One row per MDL lifetime; columns: ``LifecycleTables.lifetimes``."""
        return with_addresses(self._tables.lifetimes())

    @cached_property
    def mappings(self) -> pd.DataFrame:
        """One row per mapping (system or user) of an MDL; columns:
        ``LifecycleTables.mappings``."""
        return with_addresses(self._tables.mappings())

    @cached_property
    def locks(self) -> pd.DataFrame:
        """One row per MmProbeAndLockPages that took effect; columns:
        ``LifecycleTables.locks``."""
        return with_addresses(self._tables.locks())

    @cached_property
    def _held(self) -> pd.DataFrame:
        return _leaks.held_intervals(self.locks, self.mappings, self.trace_end_ns)

    def leak_timeline(self) -> pd.DataFrame:
        """Bytes locked, bytes user-mapped and memory held per process over time (step
        functions).

        Columns: time_ns, pid, process, kind ('locked' | 'user_mapped' | 'held'), bytes
        (held from this time until the next row of the same pid and kind), in (pid, kind,
        time) order. 'held' is the memory the process holds: each MDL lifetime locked in
        it or user-mapped into it counted once (its locked and mapped pages are the same
        pages), so it is not the sum of the other two kinds; an MDL locked in one process
        and mapped into another is held by both. User mappings torn down at process exit
        count as held to the end: that memory is leaked until reboot.
        """
        return self._leak_timeline.copy()  # a copy: the caller may change it

    @cached_property
    def _leak_timeline(self) -> pd.DataFrame:
        # built once: the report's PNG and its interactive timeline both draw it
        return _leaks.leak_timeline(self._held, self.trace_end_ns)

    @cached_property
    def leaks(self) -> dict[str, Any]:
        """Leak figures: bytes_at_end (memory still locked or user-mapped when the trace
        ends, each MDL lifetime counted once), by_process, bytes_leaked_at_exit (user
        mappings and user-buffer locks still held when their process ended)."""
        return _leaks.leak_figures(self._held, self.findings, self.trace_end_ns)

    @cached_property
    def _slot_of_call(self) -> np.ndarray:
        return self._sources.slot_of_call()

    def events_of_lifetime(self, lifetime_id: int) -> pd.DataFrame:
        """All calls of one MDL lifetime (canonical columns plus context: ctx_pid, ctx_tid)."""
        mask = self._slot_of_call == lifetime_id
        calls = self.trace.calls[mask].copy()
        calls["ctx_pid"] = self.context.pid[mask]
        calls["ctx_tid"] = self.context.tid[mask]
        return calls.reset_index(drop=True)

    # --- views of the later stages ----------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The ``hazards --json`` / ``summary.json`` dict of docs/cli.md."""
        return _view("summary")(self)

    def plot_leak_timeline(self, *, time_span_ns: Sequence[float] | None = None,
                           top_n: int = 8, title: str | None = None,
                           width: float = 12.0):
        """Bytes locked and user-mapped per process over time (matplotlib Figure).

        time_span_ns: (start, end) of the x axis in trace ns (default: the trace's).
        top_n: processes drawn by impact; the others are summed into one grey series.
        title, width: figure title and width in inches.
        """
        return _view("plot_leak_timeline")(
            self, time_span_ns=time_span_ns or self.trace.time_span_ns, top_n=top_n,
            title=title, width=width)

    def plot_hazard_timeline(self, *, lanes: str = "auto",
                             time_window_ns: Sequence[float] | None = None,
                             mdl: int | str | None = None, include_info: bool = False,
                             max_lanes: int = 12, title: str | None = None,
                             width: float = 12.0):
        """Findings over time (matplotlib Figure).

        lanes: 'process' (one lane per process, exposure windows shaded, locks and
        mappings as bars), 'problem' (one lane per problem, rule + call site, with its
        count: readable at 10,000 findings) or 'auto' (problem lanes above 200 findings
        above info). time_window_ns: (start, end) in trace ns to zoom to. mdl: an MDL
        address (int or '0x...') to zoom the process lanes to. include_info: draw
        trace-quality (info) findings too. max_lanes: lanes drawn; the rest fold into
        one "others" lane. title, width: figure title and width in inches.
        """
        options: dict[str, Any] = dict(time_window_ns=time_window_ns,
                                       include_info=include_info, max_lanes=max_lanes,
                                       title=title, width=width)
        if mdl is not None:
            options["mdl"] = mdl
        return _view("plot_hazard_timeline")(self, lanes=lanes, **options)

    def plot_impact(self, *, top_n: int = 10, title: str | None = None, width: float = 12.0):
        """Impact (byte-seconds) per caller and per rule, side by side (Figure).

        top_n: the largest groups drawn per panel. title, width: figure title and width.
        """
        return _view("plot_impact")(self, top_n=top_n, title=title, width=width)

    def for_process(self, process: int | str | Sequence[int | str]):
        """A view of this analysis for one process: a pid (int), an image name (str,
        case-insensitive) or a list of them. Its findings, problems, lifecycles,
        mappings, locks, leak_timeline() and calls are cut the same way
        (:class:`traceanalyzer.views.AnalysisView`); nothing is replayed again."""
        return _view("for_process")(self, process)

    def window(self, start_ns: int, end_ns: int):
        """A view of this analysis from ``start_ns`` to ``end_ns`` (trace ns): findings
        in it, locks, mappings and lifetimes held during it, the leak timeline over it
        (:class:`traceanalyzer.views.AnalysisView`). ``trace.window`` cuts the trace
        itself instead (an analysis of the cut sees only what happened in it)."""
        return _view("window")(self, start_ns, end_ns)

    def _repr_html_(self) -> str:
        from traceanalyzer.analysis.repr_html import analysis_repr_html

        return analysis_repr_html(self)

    def __repr__(self) -> str:
        f = self.findings
        by = severity_counts(f["severity"]) if len(f) else {}
        parts = ", ".join(f"{by[s]} {s}" for s in SEVERITIES if s in by)
        names = ", ".join(Path(p).name for p in self.trace.paths)
        return f"<Analysis {names}: {len(f)} findings ({parts or 'none'})>"


def analyze(trace: Trace, *, engine: Engine = "auto",
            progress: Callable[[int, int], None] | None = None) -> Analysis:
    """Replay ``trace`` and return its :class:`Analysis`.

    engine: 'auto' (compiled replay for large traces), 'jit' or 'python'.
    progress: callable(done, total_calls), told at the start and after each stage
    (context attribution, replay input, replay) with the share of the calls done.
    """
    return Analysis(trace, engine, progress)
