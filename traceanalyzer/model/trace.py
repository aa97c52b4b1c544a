"""Trace: the canonical event table, time-sorted, split into family tables.

CSwitch rows are most of a real trace, so they live in a table with only their own
columns; the same for processes, threads, images and calls. Every row keeps ``seq``,
its position in the time-sorted whole, so tables can be merged back in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.errors import MissingEventError, TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.model import instances
from traceanalyzer.model.asof import asof_index
from traceanalyzer.model.callers import resolve_callers
from traceanalyzer.model.dtypes import with_addresses
from traceanalyzer.model.encoding import (
    as_dictionary, dictionary_codes, event_masks, int_column, null_column,
)
from traceanalyzer.model.left_out import LeftOut
from traceanalyzer.model.order import kept_ranks, ranks_around_left_out
from traceanalyzer.readers.base import order_by_key
from traceanalyzer.model.schema import (
    COLUMNS, FAMILIES, KNOWN_EVENTS, NULL_POINTER_COLUMNS, OTHER_FAMILY, ZERO_IS_ADDRESS,
    family_of,
)
from traceanalyzer.model.stats import Stats


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed columns; address columns as ``address`` (UInt64 shown in hex)."""
    return with_addresses(table.to_pandas(types_mapper=pd.ArrowDtype))


def _merged_by_seq(parts: list[pa.Table]) -> pa.Table:
    """Family tables as one table in seq order, canonical columns first (none: an empty
    canonical table, as a trace of only counters (unknown events, WPP records) has)."""
    if not parts:
        return pa.table({"seq": pa.array([], pa.int64()),
                         "time_ns": pa.array([], COLUMNS["time_ns"]),
                         "event": pa.array([], COLUMNS["event"])})
    merged = pa.concat_tables(parts, promote_options="permissive")
    merged = merged.take(pc.sort_indices(merged, sort_keys=[("seq", "ascending")]))
    ordered = ["seq"] + [c for c in COLUMNS if c in merged.column_names]
    ordered += [c for c in merged.column_names if c not in ordered]
    return merged.select(ordered)


def _event_strings(table: pa.Table) -> pa.Array:
    col = table.column("event")
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return col.dictionary_decode() if pa.types.is_dictionary(col.type) else col


class Trace:
    """One trace (one or several files merged by time).

    Attributes:
        paths: the files it was read from.
        metadata: dict (``traces``, ``formats``, ``start_time_utc`` when known, ...).
        stats: :class:`Stats` counters (rows read, unknown events, lost events...).
    """

    def __init__(
        self,
        table: pa.Table,
        metadata: dict[str, Any] | None = None,
        stats: Stats | None = None,
        paths: Iterable[str | Path] = (),
        order: np.ndarray | None = None,
        *,
        cswitch_loader: Callable[[], pa.Table] | None = None,
        order_key: pa.ChunkedArray | None = None,
        left_out: LeftOut | None = None,
    ) -> None:
        """``order``: the row permutation that puts ``table`` in time order when the reader
        knows how equal times are ordered (``ReadResult.order``), or ``order_key`` the
        same as a key per row (``ReadResult.order_key``: by time, then key); default:
        stable by time. ``left_out``: CSwitch rows the reader left out of ``table``
        (``ReadResult.left_out``, with a ``cswitch_loader``): counted, numbered around."""
        self.paths = [path_text(p) for p in paths]  # names to show, not to open
        self.metadata = dict(metadata or {})
        self.metadata.setdefault("traces", self.paths)
        self.stats = stats or Stats()
        # CSwitch rows are numbered (seq) but not kept when a loader can bring them back
        # (the same rows, the same seq): the context of the calls does not need them
        # when every call carries its thread (docs/architecture.md, "Model").
        self._cswitch_loader = cswitch_loader
        self._deferred_cpus: set[int] = set()
        box = [table]  # _split takes the table out: no frame of ours keeps it alive
        del table
        if left_out is not None and cswitch_loader is None:
            raise TraceError("left-out rows need a cswitch_loader (the rows come back from it)")
        self._tables = self._split(box, order, order_key, left_out)
        self._full_tables: dict[str, pa.Table] = {}

    # --- construction -------------------------------------------------------------

    @classmethod
    def from_tables(
        cls,
        tables: list[pa.Table],
        metadata: dict[str, Any] | None = None,
        stats: Stats | None = None,
        paths: Iterable[str | Path] = (),
        orders: list[np.ndarray | None] | None = None,
        *,
        cswitch_loader: Callable[[], pa.Table] | None = None,
        order_keys: list[pa.ChunkedArray | None] | None = None,
        consume: bool = False,
        left_out: LeftOut | None = None,
    ) -> "Trace":
        """Merge several canonical tables (one per file) into one trace, by time; equal
        times in file order, within a file as its ``orders`` entry (``ReadResult.order``)
        puts them (or its ``order_keys`` entry, ``ReadResult.order_key``).

        cswitch_loader: when given, the CSwitch rows are numbered but not kept (their
        other columns may be absent); ``table('cswitch')`` calls it once, and it must
        return the cswitch family table of the same files, ``seq`` included.
        left_out: one file's CSwitch rows its reader left out of ``tables[0]``
        (``ReadResult.left_out``), with ``cswitch_loader``.
        consume: empty ``tables`` and free each wide column as soon as the family
        tables have their part of it (the caller must hold no other reference to a
        table: then a single file's trace never holds its wide table and its family
        tables whole at once).
        """
        if not tables:
            raise TraceError("no trace files given")
        orders = orders or [None] * len(tables)
        order_keys = order_keys or [None] * len(tables)
        if len(tables) == 1:  # keep a dictionary-encoded `event` as it is: _split wants codes
            return cls(tables.pop() if consume else tables[0], metadata, stats, paths, orders[0],
                       cswitch_loader=cswitch_loader, order_key=order_keys[0], left_out=left_out)
        if left_out is not None:
            raise TraceError("left-out rows are for one file: merging files needs the rows")
        prepared = []
        for t, order, key in zip(tables, orders, order_keys):
            if order is None and key is not None:
                order = order_by_key(t.column("time_ns"), key)
            if order is not None:  # in time order: the stable sort of the whole keeps it
                t = t.take(pa.array(order))
            # dictionaries differ between files: concatenate plain strings
            if "event" in t.column_names and pa.types.is_dictionary(t.schema.field("event").type):
                t = t.set_column(t.column_names.index("event"), "event", _event_strings(t))
            prepared.append(t)
        return cls(pa.concat_tables(prepared, promote_options="permissive"), metadata, stats, paths,
                   cswitch_loader=cswitch_loader)

    def _split(self, box: list[pa.Table], order: np.ndarray | None = None,
               order_key: pa.ChunkedArray | None = None,
               left_out: LeftOut | None = None) -> dict[str, pa.Table]:
        # seq = rank in time order (ties keep file order, or the reader's `order`). The wide
        # table is never permuted: each family filters its own (narrow) columns, then sorts
        # those rows. Column by column: once every family has its part of a wide column,
        # the column is dropped (freed when nobody else holds the table).
        table = box.pop()
        self._n_events = table.num_rows + (left_out.count if left_out else 0)
        span = pc.min_max(table.column("time_ns")).as_py() if table.num_rows else None
        self._span = (int(span["min"]), int(span["max"])) if span else (0, 0)
        if left_out is not None and left_out.count:
            lo, hi = left_out.t_min, left_out.t_max
            self._span = (lo, hi) if span is None else (min(self._span[0], lo), max(self._span[1], hi))
        # deferred CSwitch rows in file-order ties: counted, never sorted (model/order.py)
        deferring = self._cswitch_loader is not None and order is None
        if order is None and order_key is not None and not deferring:
            order = order_by_key(table.column("time_ns"), order_key)
        if order is not None:
            rank = _ranks(order)
        else:
            rank = None if deferring else _time_ranks(table.column("time_ns").to_numpy())
        # work on the dictionary codes of `event`, never on 10M strings
        events = as_dictionary(table.column("event"))
        codes, names = dictionary_codes(events)
        counts = np.bincount(codes, minlength=len(names))
        names = [str(n) for n in names]
        if left_out is not None and left_out.count:  # in the dictionary's order, as if they were rows
            if left_out.event not in names:
                names, counts = names + [left_out.event], np.append(counts, 0)
            counts[names.index(left_out.event)] += left_out.count
        self.events_by_name = {n: int(c) for n, c in zip(names, counts) if c}
        table = table.set_column(table.column_names.index("event"), "event", events)
        family_names = list(FAMILIES) + [OTHER_FAMILY]
        fam_of_name = np.array(
            [family_names.index(family_of(n)) for n in names] or [0], dtype=np.int8
        )
        fam = fam_of_name[codes] if codes.size else np.zeros(0, dtype=np.int8)
        del codes
        kept = None  # with the seq of every row: kept_seq
        if deferring and left_out is not None:  # every row kept; the reader's left-out rows counted
            kept_seq = ranks_around_left_out(table.column("time_ns"), order_key, left_out)
        elif deferring:  # the kept rows' seq, the deferred rows counted, not sorted
            kept, kept_seq = kept_ranks(table.column("time_ns"), fam == family_names.index("cswitch"), order_key)
        tables: dict[str, pa.Table] = {}
        present = set(table.column_names)
        plans: list[_FamilyPlan] = []
        for k, family in enumerate(family_names):
            mask = fam == k
            if family == "cswitch" and self._cswitch_loader is not None:
                tables[family] = self._defer(table, mask, left_out)
                continue
            if family == OTHER_FAMILY:
                keep = ["time_ns", "event"] + [c for c in table.column_names if c not in ("seq", "time_ns", "event")]
            else:
                cols = FAMILIES[family][1]
                keep = ["time_ns", "event"] + [c for c in cols if c in present]
                # extra (non-canonical) columns stay with the calls, where instrumentation puts them
                if family == "calls":
                    keep += [c for c in table.column_names if c not in COLUMNS and c != "seq"]
            rows = np.flatnonzero(mask)
            if deferring:
                seq = kept_seq[rows] if kept is None else kept_seq[np.searchsorted(kept, rows)]
            else:
                seq = rows if rank is None else rank[rows].astype(np.int64)
            perm = None
            if seq.size > 1 and not bool(np.all(seq[1:] > seq[:-1])):
                perm = np.argsort(seq)
                seq = seq[perm]
            plans.append(_FamilyPlan(
                family, rows.size, None if rows.size in (0, table.num_rows) else pa.array(mask),
                seq, None if perm is None else pa.array(perm),
                pa.schema([table.schema.field(c) for c in keep])))
        del fam, rank
        for name in table.column_names:
            column = table.column(name)
            for plan in plans:
                if plan.wants(name):
                    plan.columns[name] = plan.part_of(column)
            del column
            table = table.drop_columns([name])  # the wide column: freed unless shared
        for plan in plans:
            sub = _null_zero_pointers(plan.table())
            tables[plan.family] = sub.add_column(0, "seq", pa.array(plan.seq.astype(np.int64, copy=False)))
        tables["calls"] = resolve_callers(tables["calls"], tables["images"], self.stats)
        for name, count in self.events_by_name.items():
            if name not in KNOWN_EVENTS:
                self.stats.add("unknown_events", count, "warning", detail=name)
        return tables

    # --- tables ---------------------------------------------------------------------

    def table(self, family: str, *, all_columns: bool = True) -> pa.Table:
        """The Arrow table of one family: calls, cswitch, processes, threads, images, other.

        With ``all_columns`` (default) every column of the family is present, as nulls
        when the source lacked it; without, only the columns the source had (cheaper
        for 10M-row families: no null buffers are made).
        """
        try:
            t = self._tables[family]
        except KeyError:
            raise KeyError(f"no family {family!r}; families: {', '.join(self._tables)}") from None
        if family == "cswitch" and self._cswitch_loader is not None:
            t = self._load_cswitch()
        if all_columns and family in FAMILIES:
            full = self._full_tables.get(family)
            if full is None:
                full = _with_missing_columns(t, ["seq", "time_ns", "event", *FAMILIES[family][1]])
                self._full_tables[family] = full
            t = full
        return t

    def _defer(self, table: pa.Table, rows: np.ndarray, left_out: LeftOut | None = None) -> pa.Table:
        """Stand-in for the deferred CSwitch family: no rows; their CPUs remembered (the
        table's CSwitch rows, e.g. a field-mapped event, and the reader's left-out rows)."""
        self._deferred_cpus = left_out.cpus() if left_out is not None else set()
        if rows.any() and "cpu" in table.column_names:
            cpu = table.column("cpu").filter(pa.array(rows))
            self._deferred_cpus |= {v for v in pc.unique(cpu).to_pylist() if v is not None}
        empty = pa.table({"seq": pa.array([], pa.int64()), "time_ns": pa.array([], pa.int64())})
        return empty.append_column("event", pa.array([], pa.string()).dictionary_encode())

    def _load_cswitch(self) -> pa.Table:
        """The CSwitch rows, read again on first use (the loader gives them their seq).
        The loader is dropped only once it succeeded: after an error (the file changed:
        ``TraceFileChangedError``) the trace still knows its rows are missing."""
        loader = self._cswitch_loader
        assert loader is not None
        self._tables["cswitch"] = loader()
        self._cswitch_loader = None
        self._full_tables.pop("cswitch", None)
        self._deferred_cpus = set()
        return self._tables["cswitch"]

    def __getstate__(self) -> dict[str, Any]:
        """A pickled trace holds its CSwitch rows: they are read now (from the files as
        they were loaded, or ``TraceFileChangedError``), not wherever it is unpickled."""
        if self._cswitch_loader is not None:
            self._load_cswitch()
        return self.__dict__.copy()

    def _all_tables(self) -> dict[str, pa.Table]:
        """Every family table, the deferred CSwitch rows loaded."""
        if self._cswitch_loader is not None:
            self._load_cswitch()
        return self._tables

    @property
    def calls(self) -> pd.DataFrame:
        """The driver's calls (and IoCompleteRequest), time-ordered.

        Columns: seq, time_ns, event, then the call columns of docs/trace-format.md (cpu, pid, tid,
        mdl, source_mdl, va, size, requested_size, access_mode, operation, cache_type,
        mapped_va, priority, bugcheck_on_failure, irp, tag, target_pid, effective_pid,
        irql, status, caller, return_address) and any extra columns of the source.
        """
        return _to_pandas(self.table("calls"))

    @property
    def cswitch(self) -> pd.DataFrame:
        """Context switches. Columns: seq, time_ns, event, cpu, new_tid, old_tid, new_pid, old_pid."""
        return _to_pandas(self.table("cswitch"))

    @cached_property
    def processes(self) -> pd.DataFrame:
        """One row per process instance (a pid is reused: identity is pid + start).

        Columns: proc_id (int, index into this table), pid, image, parent_pid, wow64,
        start_ns (null: alive when the trace began), end_ns (null: alive at the end),
        start_seq, end_seq, source ('start', 'rundown', 'rundown_end': known only from
        the rundown at the trace end, or 'implicit': only seen in calls or a ProcessEnd).
        """
        return instances.process_instances(self._tables, self._extra_pids())

    @cached_property
    def threads(self) -> pd.DataFrame:
        """One row per thread instance.

        Columns: thread_id, tid, pid, start_ns (null: before the trace), end_ns,
        start_seq, end_seq, source ('start', 'rundown', 'rundown_end': known only from
        the rundown at the trace end, or 'implicit': only seen in a ThreadEnd).
        """
        return instances.thread_instances(self._tables)

    @property
    def events(self) -> pd.DataFrame:
        """The canonical event table (all families merged back in time order).

        Columns: seq plus every canonical column present in the sources (docs/trace-format.md),
        Arrow-backed; absent values are null.
        """
        return _to_pandas(self.events_table())

    def events_table(self) -> pa.Table:
        """The canonical event table as one Arrow table (see :attr:`events`)."""
        parts = []
        for t in self._all_tables().values():
            if t.num_rows:
                parts.append(t.set_column(t.column_names.index("event"), "event", _event_strings(t)))
        return _merged_by_seq(parts)

    def events_at(self, seqs: Iterable[int]) -> pa.Table:
        """The events whose ``seq`` is in ``seqs``, as rows of :meth:`events_table` (seq
        order; the columns of the families they come from). Seqs not in the trace are
        left out. Filters each family instead of merging and sorting the whole trace
        (the report's evidence of 2,000 findings in a 10M-event trace), and reads
        deferred CSwitch rows back only when some seq is not found elsewhere.
        """
        want = pa.array(sorted({int(s) for s in seqs}), pa.int64())
        parts: list[pa.Table] = []

        def pick(t: pa.Table) -> None:
            if t.num_rows and len(want):
                sub = t.filter(pc.is_in(t.column("seq"), value_set=want))
                if sub.num_rows:
                    parts.append(sub.set_column(sub.column_names.index("event"), "event",
                                                _event_strings(sub)))

        for t in self._tables.values():
            pick(t)
        if self._cswitch_loader is not None and sum(p.num_rows for p in parts) < len(want):
            pick(self._load_cswitch())
        return _merged_by_seq(parts)

    def df_events(self, name: str) -> pd.DataFrame:
        """All events of one name, with the columns of their family.

        Raises MissingEventError naming the closest event names present.
        """
        if name not in self.events_by_name:
            raise MissingEventError(name, set(self.events_by_name))
        for family, (names, _cols) in FAMILIES.items():
            if name in names:
                t = self.table(family, all_columns=False)
                break
        else:
            t = self._tables[OTHER_FAMILY]
        mask = pc.equal(_event_strings(t), name)
        return _to_pandas(t.filter(mask))

    def symbolize(self, symbol_dir: str | Path) -> "Trace":
        """Resolve the calls' ``module+offset`` callers to ``module!function+offset``
        with the PDB files of ``symbol_dir`` (:mod:`traceanalyzer.model.symbols`), in
        place; callers left unresolved are counted in ``stats`` (unsymbolized_callers).
        Call before analysing. Returns the trace."""
        from traceanalyzer.model.symbols import SymbolDir, symbolize_calls, traced_builds

        self._tables["calls"] = symbolize_calls(self._tables["calls"], SymbolDir.shared(symbol_dir),
                                                self.stats, traced_builds(self.table("images")))
        self._full_tables.pop("calls", None)
        return self

    def window(self, start_ns: int, end_ns: int) -> "Trace":
        """The trace cut to ``start_ns`` .. ``end_ns`` (inclusive, trace ns), as a new Trace.

        Calls, CSwitch and other events outside the window are left out; the process,
        thread and image events up to ``end_ns`` are kept (who was running and what was
        loaded when the window starts), and so is each CPU's last context switch before
        it (so calls at its start are still attributed). So are the KeStackAttachProcess
        calls still open at ``start_ns`` (no KeUnstackDetachProcess of the same thread
        between them and it; with the CSwitch that names the thread of one without
        ``tid``): a thread attached when the window starts is attached in it, its calls
        run in the attached process and its detach is no DETACH_MISMATCH. These calls
        are the only ones before ``start_ns``; they set context, no rule fires on them
        (an attach still open at ``end_ns`` is ATTACH_UNBALANCED, at the attach, as
        at the end of a trace). The rundown of the trace end
        (``*RundownEnd``, the only one of a memory-mode recording) is kept too, at
        ``end_ns``, for the ids nothing after the window starts, ends, loads or unloads:
        it names the processes, threads and modules alive through the window; so is a later
        ``ImageDebugId`` (which PDB build such a module is). ``time_span_ns`` is the window,
        so an analysis of it ends there: an MDL still locked at ``end_ns`` is open at the
        end; one allocated before ``start_ns`` is first seen part-way through its life, its
        lock state and mappings unknown (docs/rules.md), but still owned by the IRP its
        IoAllocateMdl named (if neither was freed or completed before ``start_ns``): that
        IRP is written into the ``irp`` cell of the MDL's first call in the window, so its
        IoCompleteRequest there releases it. Every table (calls, cswitch,
        processes, threads, images, events) is derived from the same cut. Data-quality
        counters of the readers are copied. A window reaching past either end of the trace
        is cut to the trace's span; one that misses it entirely is a ValueError.
        """
        lo, hi = int(start_ns), int(end_ns)
        if hi < lo:
            raise ValueError(f"window end {hi} is before its start {lo}")
        first, last = self._span
        if hi < first or lo > last:
            raise ValueError(f"window {lo}..{hi} ns is outside the trace ({first}..{last} ns)")
        # a window wider than the trace is the trace's span: an MDL held to the end counts
        # its bytes x seconds to the last event, not to a window end the trace never saw
        lo, hi = max(lo, first), min(hi, last)
        tables = self._all_tables()
        attach_rows, attach_switches = _open_attaches(tables, self.threads, lo)
        keep: list[pa.Table] = []
        for family, t in tables.items():
            if t.num_rows == 0:
                continue
            times = t.column("time_ns").to_numpy()
            late_rundown = None
            if family in ("processes", "threads", "images"):
                mask = times <= hi
                late_rundown = _end_rundown_after(t, family, times, hi)
                mask |= late_rundown
            else:
                mask = (times >= lo) & (times <= hi)
                if family == "calls":
                    mask[attach_rows] = True  # attached when the window starts
                    t = _carry_irps(t, lo, mask)
                if family == "cswitch" and "cpu" in t.column_names:
                    mask[attach_switches] = True  # the thread of such an attach without tid
                    before = np.flatnonzero(times < lo)
                    if before.size:  # each CPU's last switch before the window
                        cpus = t.column("cpu").to_numpy(zero_copy_only=False)[before]
                        last = before[len(cpus) - 1 - np.unique(cpus[::-1], return_index=True)[1]]
                        mask[last] = True
            if late_rundown is not None and late_rundown.any():  # alive at the window's end
                t = t.set_column(t.column_names.index("time_ns"), "time_ns",
                                 pa.array(np.where(late_rundown, hi, times), t.schema.field("time_ns").type))
            sub = t.filter(pa.array(mask))
            keep.append(sub.set_column(sub.column_names.index("event"), "event",
                                       _event_strings(sub)))
        if not keep:
            raise TraceError(f"no events between {lo} and {hi} ns")
        merged = pa.concat_tables(keep, promote_options="permissive")
        merged = merged.take(pc.sort_indices(merged, sort_keys=[("seq", "ascending")]))
        stats = Stats()
        recounted = set(self.events_by_name)  # unknown event names are counted again
        stats.extend(e for e in self.stats.entries.values()
                     if not (e.name == "unknown_events" and e.detail in recounted))
        out = Trace(merged.drop_columns(["seq"]), {**self.metadata, "window_ns": [lo, hi]},
                    stats, self.paths)
        out._span = (lo, hi)
        return out

    # --- facts ------------------------------------------------------------------------

    @property
    def time_span_ns(self) -> tuple[int, int]:
        """(first, last) time_ns of the trace."""
        return self._span

    @property
    def n_events(self) -> int:
        return self._n_events

    def cpus(self) -> list[int]:
        """Processor numbers that appear in the trace."""
        seen: set[int] = set(self._deferred_cpus)
        for t in self._tables.values():
            if "cpu" in t.column_names:
                seen.update(v for v in pc.unique(t.column("cpu")).to_pylist() if v is not None)
        return sorted(seen)

    def _extra_pids(self) -> list[int]:
        """pids that appear on calls (or as attach targets) and so need a process row."""
        calls = self._tables["calls"]
        pids: set[int] = set()
        for col in ("pid", "effective_pid", "target_pid"):
            if col in calls.column_names:
                pids.update(v for v in pc.unique(calls.column(col)).to_pylist() if v is not None)
        threads = self._tables["threads"]
        if "pid" in threads.column_names:
            pids.update(v for v in pc.unique(threads.column("pid")).to_pylist() if v is not None)
        return sorted(pids)

    def _repr_html_(self) -> str:
        from traceanalyzer.model.html_repr import trace_repr_html

        return trace_repr_html(self)

    def __repr__(self) -> str:
        lo, hi = self._span
        return (
            f"<Trace {', '.join(Path(p).name for p in self.paths) or '(in memory)'}: "
            f"{self._n_events} events, {(hi - lo) / 1e9:.3f} s, "
            f"{self._tables['calls'].num_rows} calls>"
        )


def _ranks(order: np.ndarray) -> np.ndarray:
    """The inverse of a permutation: rank[order[i]] = i (int32 when it fits)."""
    rank = np.empty(order.size, np.int32 if order.size < 2**31 else np.int64)
    rank[order] = np.arange(order.size, dtype=rank.dtype)
    return rank


def _time_ranks(times: np.ndarray) -> np.ndarray | None:
    """Each row's rank in time order, ties in row order (int32 when it fits); None when
    the rows are in time order already."""
    if times.size < 2 or bool(np.all(times[1:] >= times[:-1])):
        return None
    return _ranks(np.argsort(times, kind="stable"))


@dataclass
class _FamilyPlan:
    """One family's share of the wide table: its columns (``schema``), its rows (``mask``,
    None for all or none of them), their seq and the permutation that sorts them; the
    parts of the wide columns are gathered in ``columns``."""

    family: str
    n_rows: int
    mask: pa.Array | None
    seq: np.ndarray
    perm: pa.Array | None
    schema: pa.Schema
    columns: dict[str, Any] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return self.n_rows > 0 and name in self.schema.names

    def part_of(self, column: pa.ChunkedArray) -> Any:
        """The family's rows of one wide column: filtered, in one chunk (CSwitch: chunked,
        read once by the context), sorted by seq."""
        part = column if self.mask is None else column.filter(self.mask)
        if self.family != "cswitch":  # read column by column later: one chunk each
            part = pa.table({"c": part}).combine_chunks().column(0)
        if self.perm is not None:
            part = part.take(self.perm)
        return part

    def table(self) -> pa.Table:
        """The family's table, its columns in schema order."""
        if self.n_rows == 0:
            return self.schema.empty_table()
        return pa.table([self.columns[c] for c in self.schema.names], schema=self.schema)


#: The id column of the instance families, for :func:`_end_rundown_after`.
_INSTANCE_ID = {"processes": "pid", "threads": "tid", "images": "base"}


def _open_attaches(tables: dict[str, pa.Table], threads: pd.DataFrame,
                   lo: int) -> tuple[np.ndarray, np.ndarray]:
    """The KeStackAttachProcess calls before ``lo`` still open at ``lo`` (rows of
    ``tables['calls']``: not popped by a KeUnstackDetachProcess of the same thread before
    ``lo``), and the CSwitch rows that name the thread of those without a ``tid`` (rows of
    ``tables['cswitch']``), so that the window's context sees the thread attached, as the
    whole trace's does.

    The thread is resolved as ``context.attribution`` resolves it: the row's ``tid``, else
    the thread the last CSwitch on its ``cpu`` (strictly earlier seq) switched in; keyed by
    its thread instance while that lives, else by the tid. An attach whose thread instance
    ended before ``lo`` is not kept (its ATTACH_UNBALANCED is not the window's). Only the
    attach and detach calls are walked (rare)."""
    none = np.zeros(0, dtype=np.int64)
    calls = tables["calls"]
    if calls.num_rows == 0:
        return none, none
    attach, detach = event_masks(calls.column("event"), "KeStackAttachProcess",
                                 "KeUnstackDetachProcess")
    times = calls.column("time_ns").to_numpy()
    rows = np.flatnonzero((attach | detach) & (times < lo))
    if rows.size == 0 or not attach[rows].any():
        return none, none
    seq = calls.column("seq").to_numpy()[rows]
    tid = int_column(calls, "tid", rows)
    switch = np.full(rows.size, -1, dtype=np.int64)
    need = np.flatnonzero(tid == -1)
    cs = tables["cswitch"]
    if need.size and cs.num_rows and {"cpu", "new_tid"} <= set(cs.column_names):
        cpu = int_column(calls, "cpu", rows[need])
        switch[need] = asof_index(seq[need], cpu, cs.column("seq").to_numpy(),
                                  int_column(cs, "cpu"), strict=True)
        hit = need[switch[need] >= 0]
        tid[hit] = int_column(cs, "new_tid", switch[hit])
    instance = instances.live_thread_index(threads, seq, tid)
    stacks: dict[tuple[str, int], list[int]] = {}
    for i in range(rows.size):
        if tid[i] == -1:
            continue  # no thread: the attach cannot be followed (context does the same)
        key = ("instance", int(instance[i])) if instance[i] >= 0 else ("tid", int(tid[i]))
        stack = stacks.setdefault(key, [])
        if attach[rows[i]]:
            stack.append(i)
        elif stack:
            stack.pop()
    end_ns = threads["end_ns"]
    open_ = [i for (kind, k), stack in stacks.items()
             if not (kind == "instance" and not pd.isna(end_ns.iat[k]) and int(end_ns.iat[k]) < lo)
             for i in stack]
    if not open_:
        return none, none
    kept = np.sort(np.asarray(open_, dtype=np.int64))
    return rows[kept], switch[kept][switch[kept] >= 0]


def _carry_irps(calls: pa.Table, lo: int, kept: np.ndarray) -> pa.Table:
    """``calls`` with the IRP of each MDL allocated for one before ``lo`` and still its
    at ``lo`` (no IoFreeMdl of the MDL, no IoCompleteRequest of the IRP in between) written
    into the ``irp`` cell of the MDL's first kept call from ``lo`` on, when that call is not
    an allocation and names no IRP: the window's replay then knows the IRP owns the MDL
    (its IoCompleteRequest unlocks and frees it), as the whole trace's does."""
    if "irp" not in calls.column_names or "mdl" not in calls.column_names or not calls.num_rows:
        return calls
    is_alloc, is_free, is_done = event_masks(calls.column("event"), "IoAllocateMdl",
                                             "IoFreeMdl", "IoCompleteRequest")
    times = calls.column("time_ns").to_numpy()
    before = times < lo
    if not (is_alloc & before).any():
        return calls
    mdl, irp = int_column(calls, "mdl"), int_column(calls, "irp")
    alloc = np.flatnonzero(before & is_alloc & (mdl != -1))
    # the last allocation of each MDL before lo, and whether the MDL is gone since
    last_alloc = pd.Series(alloc, index=mdl[alloc]).groupby(level=0).last()
    freed = before & is_free
    gone_mdl = pd.Series(np.flatnonzero(freed), index=mdl[freed]).groupby(level=0).last()
    done = before & is_done & (irp != -1)
    gone_irp = pd.Series(np.flatnonzero(done), index=irp[done]).groupby(level=0).last()
    owned = last_alloc[irp[last_alloc.to_numpy()] != -1]
    owned = owned[owned.to_numpy() > gone_mdl.reindex(owned.index).fillna(-1).to_numpy()]
    owner = irp[owned.to_numpy()]
    owned = owned[owned.to_numpy() > gone_irp.reindex(owner).fillna(-1).to_numpy()]
    if owned.empty:
        return calls
    rows = np.flatnonzero(kept & ~before & np.isin(mdl, owned.index.to_numpy()))
    first = pd.Series(rows, index=mdl[rows]).groupby(level=0).first()
    rows = first.to_numpy()
    ok = ~is_alloc[rows] & (irp[rows] == -1)
    rows, carried = rows[ok], irp[owned.reindex(first.index).to_numpy()[ok]]
    if rows.size == 0:
        return calls
    col_type = calls.schema.field("irp").type
    full = irp.copy()
    full[rows] = carried
    values = pa.array(full, pa.int64(), mask=full == -1).cast(col_type, safe=False)
    return calls.set_column(calls.column_names.index("irp"), "irp", values)


def _end_rundown_after(table: pa.Table, family: str, times: np.ndarray, hi: int) -> np.ndarray:
    """Rows of ``table`` after ``hi`` that describe an id rather than change it (the
    rundown of the trace end, ``*RundownEnd``, and ``ImageDebugId``) for an id with no
    other event after ``hi`` (an id reused later belongs to a later process, thread or
    module)."""
    after = times > hi
    column = _INSTANCE_ID[family]
    if not after.any() or column not in table.column_names:
        return np.zeros(len(times), dtype=bool)
    events = _event_strings(table)
    is_end = np.asarray(pc.fill_null(pc.or_(pc.ends_with(events, "RundownEnd"),
                                            pc.equal(events, "ImageDebugId")), False))
    ids = int_column(table, column)
    busy = set(ids[after & ~is_end].tolist())
    return after & is_end & (ids != -1) & ~np.isin(ids, list(busy))


def _null_zero_pointers(table: pa.Table) -> pa.Table:
    """0 in a pointer-valued column (``schema.NULL_POINTER_COLUMNS``) is a NULL pointer:
    store it as null, so no rule mistakes ``irp=0`` for an IRP or ``mdl=0`` for an MDL
    (except where 0 is an address: ``schema.ZERO_IS_ADDRESS``)."""
    for name in NULL_POINTER_COLUMNS:
        if name not in table.column_names:
            continue
        col = table.column(name)
        if not pa.types.is_integer(col.type) or col.null_count == len(col):
            continue
        is_zero = pc.equal(col, pa.scalar(0, col.type))
        if not pc.any(is_zero).as_py():
            continue
        if name in ZERO_IS_ADDRESS:
            keep = pc.is_in(_event_strings(table), pa.array(ZERO_IS_ADDRESS[name], pa.string()))
            is_zero = pc.and_(is_zero, pc.invert(keep))
        nulled = pc.if_else(is_zero, pa.scalar(None, col.type), col)
        table = table.set_column(table.column_names.index(name), name, nulled)
    return table


def _with_missing_columns(table: pa.Table, columns: list[str]) -> pa.Table:
    """Add the family's columns that the source lacked, as nulls of the canonical type."""
    for c in columns:
        if c not in table.column_names:
            table = table.append_column(c, null_column(table.num_rows, COLUMNS.get(c, pa.int64())))
    return table
