"""Views of an analysis: one process, or a time range, with every table cut the same way.

>>> app = analysis.for_process("app.exe")              # doctest: +SKIP
>>> app.findings, app.problems, app.mappings, app.locks  # doctest: +SKIP
>>> analysis.window(1_000_000, 5_000_000).problems     # doctest: +SKIP

A view does not replay anything: it filters the tables of the whole trace's analysis, so
a finding keeps the context of the whole trace (an MDL locked before the window is still
known to be locked in it). ``Trace.window`` instead cuts the trace itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import pandas as pd

from traceanalyzer.rules.problems import problems_of

__all__ = ["AnalysisView"]


@dataclass(frozen=True)
class _Filter:
    #: each entry (pids, lower-case image names): a row must match every entry
    processes: tuple[tuple[frozenset[int], frozenset[str]], ...] = ()
    window: tuple[int, int] | None = None
    labels: tuple[str, ...] = field(default_factory=tuple)


class AnalysisView:
    """The tables of an :class:`~traceanalyzer.Analysis` restricted to processes and/or a
    time range: findings, problems, lifecycles, mappings, locks, leak_timeline(), calls.

    Process filter: rows whose ``pid`` (or, for ``lifecycles``, ``alloc_pid``; for
    ``calls``, the attributed process) is one of the pids, or whose image name is one
    of the names (case-insensitive). Time filter: findings whose ``time_ns`` is in the
    window, locks and mappings held during it, lifetimes alive during it, calls in it,
    and the leak timeline from the window's start (with the level held at that time).
    Lifecycles also keep every lifetime a kept finding, lock or mapping refers to.
    """

    def __init__(self, analysis: Any, flt: _Filter) -> None:
        self.analysis = analysis
        self.trace = analysis.trace
        self._f = flt

    # --- narrowing -------------------------------------------------------------------

    def for_process(self, process: int | str | Sequence[int | str]) -> "AnalysisView":
        """This view narrowed to a process: a pid (int) or an image name (str), or a
        list of them."""
        items = [process] if isinstance(process, (int, str, np.integer)) else list(process)
        pids = frozenset(int(p) for p in items if not isinstance(p, str))
        names = frozenset(str(p).lower() for p in items if isinstance(p, str))
        if not items:
            raise ValueError("for_process needs a pid or an image name")
        old = self._f
        return AnalysisView(self.analysis, replace(
            old, processes=old.processes + ((pids, names),),
            labels=old.labels + (", ".join(map(str, items)),)))

    def window(self, start_ns: int, end_ns: int) -> "AnalysisView":
        """This view narrowed to ``start_ns`` .. ``end_ns`` (inclusive, trace ns)."""
        lo, hi = int(start_ns), int(end_ns)
        if hi < lo:
            raise ValueError(f"window end {hi} is before its start {lo}")
        if self._f.window is not None:
            lo, hi = max(lo, self._f.window[0]), min(hi, self._f.window[1])
        return AnalysisView(self.analysis, replace(
            self._f, window=(lo, hi), labels=self._f.labels + (f"{lo}..{hi} ns",)))

    # --- masks -----------------------------------------------------------------------

    def _process_mask(self, pid: pd.Series, image: pd.Series) -> np.ndarray:
        keep = np.ones(len(pid), dtype=bool)
        names = image.astype("string").str.lower()
        for pids, images in self._f.processes:
            by_pid = pid.isin(list(pids)).fillna(False).to_numpy(dtype=bool)
            by_name = names.isin(list(images)).fillna(False).to_numpy(dtype=bool)
            keep &= by_pid | by_name
        return keep

    def _overlap_mask(self, start: pd.Series, end: pd.Series) -> np.ndarray:
        if self._f.window is None:
            return np.ones(len(start), dtype=bool)
        lo, hi = self._f.window
        s = pd.to_numeric(start, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        e = pd.to_numeric(end, errors="coerce").to_numpy(dtype=float, na_value=np.inf)
        return (s <= hi) & (e >= lo)

    # --- tables ----------------------------------------------------------------------

    @cached_property
    def findings(self) -> pd.DataFrame:
        """``Analysis.findings`` of the view (same columns and order)."""
        f = self.analysis.findings
        keep = self._process_mask(f["pid"], f["process"])
        if self._f.window is not None:
            t = f["time_ns"]
            keep &= self._overlap_mask(t, t)
        return f[keep].reset_index(drop=True)

    @cached_property
    def problems(self) -> pd.DataFrame:
        """``Analysis.problems`` of the view's findings."""
        return problems_of(self.findings)

    @cached_property
    def mappings(self) -> pd.DataFrame:
        """``Analysis.mappings`` of the view's processes, held during its window."""
        m = self.analysis.mappings
        keep = self._process_mask(m["pid"], m["process"]) & self._overlap_mask(
            m["start_ns"], m["end_ns"])
        return m[keep].reset_index(drop=True)

    @cached_property
    def locks(self) -> pd.DataFrame:
        """``Analysis.locks`` of the view's processes, held during its window."""
        lk = self.analysis.locks
        keep = self._process_mask(lk["pid"], lk["process"]) & self._overlap_mask(
            lk["start_ns"], lk["end_ns"])
        return lk[keep].reset_index(drop=True)

    @cached_property
    def lifecycles(self) -> pd.DataFrame:
        """``Analysis.lifecycles`` allocated by the view's processes, or referred to by
        its findings, locks or mappings; alive during its window."""
        lc = self.analysis.lifecycles
        used = set(self.findings["lifetime_id"].dropna().astype(int))
        used |= set(self.mappings["lifetime_id"].astype(int))
        used |= set(self.locks["lifetime_id"].astype(int))
        keep = self._process_mask(lc["alloc_pid"], lc["alloc_process"])
        keep |= lc["lifetime_id"].isin(used).to_numpy(dtype=bool)
        keep &= self._overlap_mask(lc["first_ns"], lc["free_ns"])
        return lc[keep].reset_index(drop=True)

    def leak_timeline(self) -> pd.DataFrame:
        """``Analysis.leak_timeline()`` of the view's processes; with a window, from its
        start (a first row at the start gives the level held then) to its end."""
        lt = self.analysis.leak_timeline()
        lt = lt[self._process_mask(lt["pid"], lt["process"])]
        if self._f.window is None or lt.empty:
            return lt.reset_index(drop=True)
        lo, hi = self._f.window
        t = lt["time_ns"].astype("int64")
        before = lt[t < lo].groupby(["pid", "kind"], dropna=False).tail(1)
        before = before.assign(time_ns=lo)
        inside = lt[(t >= lo) & (t <= hi)]
        return pd.concat([before, inside]).sort_values(
            ["pid", "kind", "time_ns"], kind="stable").reset_index(drop=True)

    @property
    def calls(self) -> pd.DataFrame:
        """``trace.calls`` of the view: calls attributed to its processes (the process
        context the call ran in), in its window."""
        calls = self.trace.calls
        ctx = self.analysis.context
        procs = self.trace.processes
        image = procs["image"].astype("string").to_numpy()[np.maximum(ctx.proc_id, 0)] \
            if len(procs) else np.full(len(calls), None)
        image = pd.Series(np.where(ctx.proc_id >= 0, image, None), dtype="string")
        keep = self._process_mask(pd.Series(ctx.pid).where(ctx.pid >= 0), image)
        keep &= self._overlap_mask(calls["time_ns"], calls["time_ns"])
        return calls[keep].reset_index(drop=True)

    # --- plots -----------------------------------------------------------------------

    def plot_hazard_timeline(self, *, lanes: str = "auto", include_info: bool = False,
                             max_lanes: int = 12, title: str | None = None,
                             width: float = 12.0):
        """The hazard timeline of the view (see ``Analysis.plot_hazard_timeline``),
        framed to its window. lanes: 'auto', 'process' or 'problem'; include_info: draw
        info findings; max_lanes: lanes drawn; title, width: figure title and width."""
        # matplotlib loads on the first plot, not with every command that makes a view
        from traceanalyzer.plot import hazard_timeline as ht
        from traceanalyzer.plot import problem_timeline as pt

        span = self.trace.time_span_ns
        window = self._f.window
        opts: dict[str, Any] = dict(time_span_ns=span, time_window_ns=window,
                                    include_info=include_info, max_lanes=max_lanes,
                                    title=title or f"Hazard timeline ({self._label()})",
                                    width=width)
        many = int((self.findings["severity"].astype(str) != "info").sum()) > \
            pt.PROBLEM_LANES_ABOVE
        if lanes == "problem" or (lanes == "auto" and many):
            return pt.plot_problem_timeline(self.findings, **opts)
        if lanes not in ("auto", "process"):
            raise ValueError(f"lanes must be 'auto', 'process' or 'problem', not {lanes!r}")
        return ht.plot_hazard_timeline(ht.with_call_context(self.findings),
                                       self.mappings, self.locks, **opts)

    def plot_leak_timeline(self, *, top_n: int = 8, title: str | None = None,
                           width: float = 12.0):
        """Bytes locked and user-mapped over time for the view's processes and window.
        top_n: processes drawn; title, width: figure title and width in inches."""
        from traceanalyzer.analysis.leaks import exit_leaks_by_pid
        from traceanalyzer.plot import leak_timeline

        span = self._f.window or self.trace.time_span_ns
        return leak_timeline.plot_leak_timeline(
            self.leak_timeline(), self.trace.processes, time_span_ns=span, top_n=top_n,
            title=title or f"Leak timeline ({self._label()})", width=width,
            exit_leaks=exit_leaks_by_pid(self.analysis.findings))

    def _label(self) -> str:
        return "; ".join(self._f.labels) or "all"

    def __repr__(self) -> str:
        return (f"<AnalysisView {self._label()}: {len(self.findings)} findings, "
                f"{len(self.problems)} problems>")


def view_for_process(analysis: Any, process: int | str | Sequence[int | str]) -> AnalysisView:
    """``analysis.for_process(process)``: a view cut to those processes."""
    return AnalysisView(analysis, _Filter()).for_process(process)


def view_window(analysis: Any, start_ns: int, end_ns: int) -> AnalysisView:
    """``analysis.window(start_ns, end_ns)``: a view cut to that time window."""
    return AnalysisView(analysis, _Filter()).window(start_ns, end_ns)
