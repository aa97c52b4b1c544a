"""Timeline data shared by the figures (``plot/``) and the report's interactive timeline
(``render/interactive.py``): processes ranked by memory held, step curves thinned to
pixel columns, findings laid out in problem lanes. Tables in, tables or arrays out; no
drawing library is imported here.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from traceanalyzer import vocabulary as vocab
from traceanalyzer.analysis.leaks import HELD_KIND
from traceanalyzer.rules.problems import problem_id, problems_of

__all__ = ["HELD", "KINDS", "PROBLEM_LANES_ABOVE", "decimate_steps", "finding_lanes", "float_series",
           "normalise_leak_timeline", "problem_lanes", "rank_processes"]

#: The leak timeline's kinds of the per-kind panels, in drawing order.
KINDS: tuple[str, ...] = ("locked", "user_mapped")

#: The leak timeline's kind of the memory a process holds: each MDL lifetime locked in
#: it or user-mapped into it counted once (``Analysis.leak_timeline()``).
HELD = HELD_KIND


def float_series(series: Any) -> pd.Series:
    """A float64 Series (missing -> NaN) from any column, Arrow-backed or not."""
    s = series if isinstance(series, pd.Series) else pd.Series(series)
    return pd.to_numeric(s, errors="coerce").astype("float64")


#: ``DataFrame.attrs`` key of a table :func:`normalise_leak_timeline` made (or a subset of
#: one): it is not converted again (the figure and the ranking both ask for it).
_NORMALISED = "traceanalyzer.normalised_leak_timeline"


def normalise_leak_timeline(leak_timeline: pd.DataFrame | None) -> pd.DataFrame:
    """The leak timeline's columns ``time_ns, pid, process, kind, bytes`` as plain
    float/str columns (missing pid -1, missing bytes 0), known kinds only, in time order.
    A table without ``held`` rows (one made by hand, from locks and mappings only) gets
    them as the sum of its ``locked`` and ``user_mapped`` levels: without lifetime ids
    each row is taken for pages of its own. A table this made comes back as it is."""
    if leak_timeline is not None and leak_timeline.attrs.get(_NORMALISED):
        return leak_timeline
    cols = ["time_ns", "pid", "process", "kind", "bytes"]
    if leak_timeline is None or len(leak_timeline) == 0:
        return pd.DataFrame({"time_ns": pd.Series(dtype="float64"),
                             "pid": pd.Series(dtype="float64"),
                             "process": pd.Series(dtype=object),
                             "kind": pd.Series(dtype=object),
                             "bytes": pd.Series(dtype="float64")})
    lt = pd.DataFrame({
        "time_ns": float_series(leak_timeline["time_ns"]).to_numpy(),
        "pid": float_series(leak_timeline["pid"]).fillna(-1).to_numpy(),
        "process": leak_timeline["process"].astype(object).where(
            leak_timeline["process"].notna(), "").astype(str).to_numpy(),
        "kind": leak_timeline["kind"].astype(str).to_numpy(),
        "bytes": float_series(leak_timeline["bytes"]).fillna(0).to_numpy(),
    })
    lt = lt[lt["kind"].isin((*KINDS, HELD)) & lt["time_ns"].notna()]
    if not (lt["kind"] == HELD).any():
        lt = pd.concat([lt, _summed_kinds(lt)], ignore_index=True)
    out = lt.sort_values("time_ns", kind="stable", ignore_index=True)[cols]
    out.attrs[_NORMALISED] = True
    return out


def _process_codes(lt: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(code per row, pids, names, keys): one integer per (pid, process), in sorted
    order (numpy over integer keys: pandas group-bys on the (pid, process) strings cost
    ~1 s at 100k changes, and the report ranks twice)."""
    pid_codes, pids = pd.factorize(lt["pid"].to_numpy(), sort=True)
    name_codes, names = pd.factorize(lt["process"].to_numpy(), sort=True)
    procs, proc = np.unique(pid_codes.astype(np.int64) * len(names) + name_codes,
                            return_inverse=True)
    return proc.ravel(), pids[procs // len(names)], names[procs % len(names)], procs


def _summed_kinds(lt: pd.DataFrame) -> pd.DataFrame:
    """``held`` rows of a normalised table without them: per (pid, process), the sum
    of its ``locked`` and ``user_mapped`` levels after each instant of change."""
    if lt.empty:
        return lt
    proc, _, _, _ = _process_codes(lt)
    kind = (lt["kind"].to_numpy() != KINDS[0]).astype(np.int64)
    t, b = lt["time_ns"].to_numpy(dtype="float64"), lt["bytes"].to_numpy(dtype="float64")
    order = np.lexsort((t, kind, proc))  # stable: equal (process, kind, time) keep row order
    proc, kind, t, b, rows = proc[order], kind[order], t[order], b[order], order
    last_at_time = np.r_[(proc[1:] != proc[:-1]) | (kind[1:] != kind[:-1]) | (t[1:] != t[:-1]),
                         True]  # equal times: the last row's level holds
    proc, kind, t, b, rows = (x[last_at_time] for x in (proc, kind, t, b, rows))
    first = np.r_[True, (proc[1:] != proc[:-1]) | (kind[1:] != kind[:-1])]  # of a series
    delta = b - np.where(first, 0.0, np.r_[0.0, b[:-1]])
    o2 = np.lexsort((t, proc))
    p2, t2, rows, level = proc[o2], t[o2], rows[o2], np.cumsum(delta[o2])
    starts = np.flatnonzero(np.r_[True, p2[1:] != p2[:-1]])
    before = np.r_[0.0, level[:-1]][starts]  # cumulated level of the processes before
    level -= np.repeat(before, np.diff(np.r_[starts, len(p2)]))
    inst = np.r_[(p2[1:] != p2[:-1]) | (t2[1:] != t2[:-1]), True]  # an instant's last
    src = lt.iloc[rows[inst]]
    return pd.DataFrame({"time_ns": t2[inst], "pid": src["pid"].to_numpy(),
                         "process": src["process"].to_numpy(), "kind": HELD,
                         "bytes": level[inst]})


def held_series(lt: pd.DataFrame) -> pd.DataFrame:
    """The ``held`` rows of a normalised leak timeline, one per (process, instant) (the
    last row of an instant holds), in (pid, process, time) order, with ``proc``: the
    process's code (0.. in (pid, process) order)."""
    h = lt[lt["kind"].to_numpy() == HELD]
    proc, _, _, _ = _process_codes(h)
    t = h["time_ns"].to_numpy(dtype="float64")
    order = np.lexsort((t, proc))
    proc, t = proc[order], t[order]
    last = np.r_[(proc[1:] != proc[:-1]) | (t[1:] != t[:-1]), True]
    out = h.iloc[order[last]].reset_index(drop=True)
    out["proc"] = proc[last]
    return out


def rank_processes(leak_timeline: pd.DataFrame, t_end_ns: float | None = None) -> pd.DataFrame:
    """Processes of a leak timeline ranked by impact, largest first, from the memory
    each holds (its ``held`` rows: an MDL locked and mapped into it counts once).

    Columns: ``pid``, ``process``, ``impact_byte_seconds`` (integral of the bytes held
    over time, until ``t_end_ns`` or the last change), ``peak_bytes`` (the most held at
    once), ``bytes_at_end`` (still held at the end).
    """
    cols = ["pid", "process", "impact_byte_seconds", "peak_bytes", "bytes_at_end"]
    lt = normalise_leak_timeline(leak_timeline)
    if lt.empty:
        return pd.DataFrame(columns=cols)
    t_end = float(lt["time_ns"].max()) if t_end_ns is None else float(t_end_ns)
    h = held_series(lt)
    _, pids, names, procs = _process_codes(h)
    proc = h["proc"].to_numpy()
    t, b = h["time_ns"].to_numpy(dtype="float64"), h["bytes"].to_numpy(dtype="float64")
    last = np.r_[proc[1:] != proc[:-1], True]
    nxt = np.where(last, max(t_end, float(t.max())), np.r_[t[1:], 0.0])
    impact = np.bincount(proc, weights=b * (nxt - t), minlength=len(procs)) / 1e9
    at_end = np.bincount(proc[last], weights=b[last], minlength=len(procs))
    peak = np.full(len(procs), -np.inf)
    np.maximum.at(peak, proc, b)
    out = pd.DataFrame({"pid": pids, "process": names, "impact_byte_seconds": impact,
                        "peak_bytes": peak, "bytes_at_end": at_end})
    return out.sort_values(["impact_byte_seconds", "bytes_at_end"], ascending=False,
                           ignore_index=True)


def decimate_steps(t: np.ndarray, v: np.ndarray, lo: float, hi: float, bins: int = 4000
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A step function (sorted times ``t``, levels ``v``) thinned to what ``bins`` pixel
    columns can show: per column its first and last step and its lowest and highest
    level, in time order (min/max decimation). Series of at most ``2 * bins`` steps
    come back unchanged."""
    if t.size <= 2 * bins or hi <= lo:
        return t, v
    col = np.clip(((t - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], t.size] - 1
    by_level = np.lexsort((v, col))  # within each column (t is sorted): lowest .. highest
    keep = np.unique(np.concatenate([starts, ends, by_level[starts], by_level[ends]]))
    return t[keep], v[keep]


# --- problem lanes -----------------------------------------------------------------

#: Above this many findings (severity above info) ``lanes="auto"`` draws problem lanes.
PROBLEM_LANES_ABOVE = 200


def problem_lanes(findings: pd.DataFrame, max_lanes: int = 12,
                  problems: pd.DataFrame | None = None,
                  text: Callable[[Any], str] = str) -> pd.DataFrame:
    """The lanes, top to bottom: columns ``lane``, ``problem_id`` (None for the others
    lane), ``label``, ``count``, ``severity`` (worst), ``problems`` (1, or how many
    are folded into the others lane). ``problems``: ``problems_of(findings)`` when the
    caller has it (``Analysis.problems``), so 100k findings are not grouped again.
    ``text``: how trace text (rule, caller, process) goes into a label (the figures
    escape matplotlib's mathtext; the interactive timeline takes it as it is)."""
    p = problems_of(findings) if problems is None else problems
    max_lanes = max(int(max_lanes), 1)
    shown, folded = (p, p.iloc[:0]) if len(p) <= max_lanes else (
        p.iloc[: max_lanes - 1], p.iloc[max_lanes - 1:])
    rows = []
    for r in shown.itertuples(index=False):
        procs = list(r.processes)
        where = ", ".join(procs[:2]) + (f" +{len(procs) - 2}" if len(procs) > 2 else "")
        label = (f"{text(r.rule)}\n{text(vocab.str_or_none(r.caller) or '?')}\n"
                 f"{int(r.count)}x" + (f" in {text(where)}" if where else ""))
        rows.append((r.problem_id, label, int(r.count), str(r.severity), 1))
    if len(folded):
        n = int(folded["count"].sum())
        rows.append((None, f"others\n{len(folded)} problems, {n}x", n,
                     str(folded["severity"].max()), len(folded)))
    return pd.DataFrame([(i, *r) for i, r in enumerate(rows)],
                        columns=["lane", "problem_id", "label", "count", "severity", "problems"])


def finding_lanes(findings: pd.DataFrame, lanes: pd.DataFrame) -> np.ndarray:
    """The lane (row of :func:`problem_lanes`) of each finding: its problem's, the
    folded lane's when its problem is not drawn, -1 when there is no folded lane. The
    problem id is hashed once per distinct rule + call site, not once per finding."""
    if not len(findings):
        return np.array([], dtype=np.int64)
    lane_of = {k: i for k, i in zip(lanes["problem_id"], lanes["lane"]) if isinstance(k, str)}
    others = int(lanes["lane"].iloc[-1]) if len(lanes) and not isinstance(
        lanes["problem_id"].iloc[-1], str) else -1  # the folded lane has no id
    rule_codes, rules = pd.factorize(findings["rule"].astype(str))
    caller_codes, callers = pd.factorize(findings["caller"])  # a missing caller: -1
    pair = rule_codes.astype(np.int64) * (len(callers) + 1) + caller_codes + 1
    keys, codes = np.unique(pair, return_inverse=True)
    per_key = np.array([lane_of.get(problem_id(
        str(rules[k // (len(callers) + 1)]),
        None if k % (len(callers) + 1) == 0 else str(callers[k % (len(callers) + 1) - 1])),
        others) for k in keys], dtype=np.int64)
    return per_key[codes.ravel()]
