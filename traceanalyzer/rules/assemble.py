"""Findings as a table, assembled column-wise from the sources that produce them.

Each source (the replay kernel, the attach walk, the stateless rules, trace quality)
yields a *partial* frame that says which rule fired on which call / lifetime /
mapping; :class:`FindingAssembler` fills in everything else with array operations:
process and thread, caller, MDL, bytes, impact, severity, fingerprint, evidence and
the message.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import pandas as pd

from traceanalyzer.lifecycle.tables import LifecycleTables, nullable
from traceanalyzer.model.dtypes import as_address
from traceanalyzer.model.encoding import dictionary_codes, gather, take_column
from traceanalyzer.model.schema import IDLE_PID, PAGE_SIZE, SYSTEM_PID
from traceanalyzer.rules.catalogue import PERMANENT_LEAKS, RULES
from traceanalyzer.rules.messages import messages_for, object_array
from traceanalyzer.vocabulary import SEVERITY_DTYPE, SEVERITY_RANK, describe_bytes, format_address, format_ms

#: A partial's ``bytes`` when the size is known to be unknown (``-1`` means: the size of
#: its MDL lifetime, ``slot``; 0 when it has none).
UNKNOWN_SIZE = -2

#: Columns of a partial frame (``-1`` = absent for integers, None for objects).
PARTIAL_COLUMNS = (
    "rule", "time_ns", "proc", "slot", "call_idx", "rel_call", "event_call", "start_ns",
    "end_ns", "expo", "mapping_id", "sev_up", "count", "bytes", "event", "evidence",
)

#: Columns of ``Analysis.findings``, in order; ``hazards --csv`` writes these too.
FINDING_COLUMNS: tuple[str, ...] = (
    "rule", "severity", "time_ns", "pid", "process", "tid", "mdl", "caller", "event",
    "bytes", "impact_byte_seconds", "start_ns", "end_ns", "exposure_start_ns",
    "exposure_end_ns", "message", "advice", "fingerprint", "evidence", "lifetime_id",
    "mapping_id", "count", "call_pid", "call_process", "permanent",
)


def fingerprint(rule: str, caller: str | None, image: str | None) -> str:
    """Stable finding identity across runs: rule + caller + process image (never
    addresses, pids or times)."""
    key = f"{rule}|{caller or ''}|{(image or '').lower()}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def partial_frame(n: int, **columns: object) -> pd.DataFrame:
    """A partial frame of ``n`` rows; absent columns get their 'absent' value."""
    data: dict[str, object] = {}
    for c in PARTIAL_COLUMNS:
        if c in columns:
            data[c] = columns[c]
        elif c in ("rule", "event"):
            data[c] = np.full(n, None, dtype=object)
        elif c == "evidence":
            data[c] = [[] for _ in range(n)]
        elif c == "count":
            data[c] = np.ones(n, dtype=np.int64)
        elif c in ("expo", "sev_up"):
            data[c] = np.zeros(n, dtype=bool)
        else:
            data[c] = np.full(n, -1, dtype=np.int64)
    return pd.DataFrame(data)


def kernel_partials(raw: pd.DataFrame) -> pd.DataFrame:
    """Partial findings from the replay's raw findings (``LifecycleTables.raw_findings``)."""
    n = len(raw)
    if n == 0:
        return partial_frame(0)
    return partial_frame(
        n,
        rule=raw["rule"].to_numpy(dtype=object), time_ns=raw["time_ns"].to_numpy(),
        proc=raw["proc"].to_numpy(), slot=raw["lifetime_id"].to_numpy(),
        call_idx=raw["call_idx"].to_numpy(), rel_call=raw["released_call"].to_numpy(),
        event_call=raw["event_call"].to_numpy(), start_ns=raw["start_ns"].to_numpy(),
        end_ns=raw["end_ns"].to_numpy(), expo=raw["exposure"].to_numpy(),
        mapping_id=raw["mapping_id"].to_numpy(), sev_up=raw["severity_raised"].to_numpy(),
        event=np.where(raw["process_end"].to_numpy(), "ProcessEnd", None).astype(object),
        evidence=raw["evidence"].tolist(),
    )


class FindingAssembler:
    """Turns partial frames into the findings table (see ``Analysis.findings``)."""

    def __init__(self, tables: LifecycleTables, trace_end_ns: int) -> None:
        self.tables = tables
        self.calls = tables.calls
        self.ctx = tables.context
        self.trace_end_ns = trace_end_ns
        self.pid_of_proc = tables.pid_of_proc
        self.image_of_proc = tables.image_of_proc
        self.slot_bytes = tables.slot_bytes

    # -- column helpers --------------------------------------------------------------

    def take_calls(self, column: str, idx: np.ndarray) -> np.ndarray:
        """Values of a calls column at row indices (None where idx is -1 or absent)."""
        return take_column(self.calls, column, idx)

    def _proc_text(self, proc: np.ndarray) -> np.ndarray:
        """``image (pid)`` of process instances, 'an unattributed context' for -1."""
        texts = object_array([f"{image or '?'} ({pid})" for image, pid in
                               zip(self.image_of_proc, self.pid_of_proc.tolist())]
                              + ["an unattributed context"])
        return texts[np.where(proc < 0, len(texts) - 1, proc)]

    def _requester_text(self, alloc_proc: np.ndarray) -> np.ndarray:
        """Why a lock's process is wrong (LOCK_IN_WRONG_PROCESS): 'but the MDL was
        allocated for image (pid)', or, where IoAllocateMdl ran in System or Idle or
        before the trace, that the locking process has no user buffers of a requester."""
        pid = gather(self.pid_of_proc, alloc_proc, -1)
        user = (alloc_proc >= 0) & ~np.isin(pid, [SYSTEM_PID, IDLE_PID])
        return np.where(user, "but the MDL was allocated for " + self._proc_text(alloc_proc),
                        "which has no user address space of a requesting process")

    def _context_text(self, ctx_proc: np.ndarray, ctx_pid: np.ndarray) -> np.ndarray:
        """The context a call ran in: its process instance ('an unattributed context'
        when it has none), ``pid N`` when an instance has no pid."""
        out = self._proc_text(ctx_proc)
        bare = np.flatnonzero((ctx_pid < 0) & (ctx_proc >= 0))
        out[bare] = [f"pid {c}" for c in ctx_pid[bare].tolist()]
        return out

    def reservation_bytes(self, rules: np.ndarray, call_idx: np.ndarray, nbytes: np.ndarray,
                          has_slot: np.ndarray) -> np.ndarray:
        """RESERVED_* findings without an MDL: the size of the reservation they are about
        (its MmAllocateMappingAddress NumberOfBytes, in whole pages), found by address."""
        want = np.flatnonzero(~has_slot & (nbytes == 0) & np.array(
            [str(r).startswith("RESERVED_") for r in rules], dtype=bool))
        if not want.size or "size" not in self.calls.column_names:
            return nbytes
        codes, names = dictionary_codes(self.calls.column("event"))
        alloc = "MmAllocateMappingAddress"
        rows = np.flatnonzero(codes == names.index(alloc)) if alloc in names else np.zeros(0, int)

        def address(idx: np.ndarray) -> np.ndarray:
            va, mapped = self.take_calls("va", idx), self.take_calls("mapped_va", idx)
            return np.where(pd.isna(va), mapped, va)

        allocs: dict[int, list[tuple[int, int]]] = {}  # address -> [(call row, size)], in order
        for row, addr, size in zip(rows, address(rows), self.take_calls("size", rows)):
            if addr is not None and size is not None:
                allocs.setdefault(int(addr), []).append((int(row), int(size)))
        out = nbytes.copy()
        for k, addr in zip(want, address(call_idx[want])):
            c = int(call_idx[k])
            earlier = [sz for row, sz in allocs.get(int(addr), []) if row <= c] if addr is not None else []
            if c >= 0 and earlier:
                out[k] = -(-earlier[-1] // PAGE_SIZE) * PAGE_SIZE
        return out

    # -- assembly ---------------------------------------------------------------------

    def assemble(self, partials: pd.DataFrame) -> pd.DataFrame:
        p = partials.reset_index(drop=True)
        n = len(p)
        if n == 0:
            return typed_findings(pd.DataFrame(columns=FINDING_COLUMNS))
        T = self.tables
        proc = p["proc"].to_numpy(dtype=np.int64)
        slot = p["slot"].to_numpy(dtype=np.int64)
        call_idx = p["call_idx"].to_numpy(dtype=np.int64)
        rel_call = p["rel_call"].to_numpy(dtype=np.int64)
        event_call = p["event_call"].to_numpy(dtype=np.int64)
        mapping_id = p["mapping_id"].to_numpy(dtype=np.int64)
        rules = p["rule"].to_numpy(dtype=object)

        pid = gather(self.pid_of_proc, proc, -1)
        image = gather(self.image_of_proc, proc, None)
        tid = gather(self.ctx.tid, call_idx, -1)
        caller = self.take_calls("caller", call_idx)
        fallback = self.take_calls("caller", rel_call)
        caller = np.where(pd.isna(caller), fallback, caller)
        event = p["event"].to_numpy(dtype=object)
        ev_from_call = self.take_calls("event", np.where(event_call >= 0, event_call, call_idx))
        event = np.where(pd.isna(event), ev_from_call, event)
        has_slot = slot >= 0
        mdl = gather(T.lifetime_mdl, slot, -1)
        slot_va = gather(T.lifetime_va, slot, -1)
        nbytes = p["bytes"].to_numpy(dtype=np.int64)
        nbytes = np.where(nbytes >= 0, nbytes, np.where(nbytes == UNKNOWN_SIZE, -1,
                                                        gather(self.slot_bytes, slot, 0)))
        nbytes = self.reservation_bytes(rules, call_idx, nbytes, has_slot)
        map_va = gather(T.mapping_va, mapping_id, -1)
        # the address the call itself names: mapped_va (map/unmap), else va
        call_va = self.take_calls("mapped_va", call_idx)
        call_va = np.where(pd.isna(call_va), self.take_calls("va", call_idx), call_va)
        irql = self.take_calls("irql", call_idx)
        start = p["start_ns"].to_numpy(dtype=np.int64)
        end = p["end_ns"].to_numpy(dtype=np.int64)
        end = np.where(end < 0, self.trace_end_ns, end)
        # unknown size (-1): bytes and impact are null, not 0
        impact = np.where(nbytes < 0, np.nan, nbytes * np.maximum(0, end - start) / 1e9)
        expo = p["expo"].to_numpy(dtype=bool)
        rule_codes, rule_names = pd.factorize(rules)
        severity = np.array([RULES[r].severity for r in rule_names], dtype=object)[rule_codes]
        severity = np.where(p["sev_up"].to_numpy(dtype=bool), "critical", severity)
        ctx_proc = gather(self.ctx.proc_id, call_idx, -1)
        ctx_pid = gather(self.ctx.pid, call_idx, -1)
        alloc_proc = gather(T.lifetime_alloc_proc, slot, -1)
        counts = p["count"].to_numpy(dtype=np.int64)
        time_ns = p["time_ns"].to_numpy(dtype=np.int64)
        call_va_text = object_array(format_address(v, "?") for v in call_va)

        def rel_va() -> np.ndarray:
            """The address the related call unmapped (an unlock under a mapping made
            before the trace: the unmap that showed the mapping was live)."""
            return object_array(format_address(v, "?")
                                for v in self.take_calls("mapped_va", rel_call))

        fields: dict[str, Callable[[], np.ndarray]] = {  # the message template fields
            "process": lambda: object_array(i or "?" for i in image),
            "pid": lambda: _int_text(pid), "tid": lambda: _int_text(tid),
            "mdl": lambda: _hex(mdl, "?"), "bytes": lambda: _bytes_text(nbytes),
            "t_ms": lambda: object_array(map(format_ms, time_ns.tolist())),
            "va": lambda: np.where(map_va != -1, _hex(map_va, "?"), _or(call_va_text, rel_va())),
            "call_va": lambda: call_va_text,
            "irql": lambda: object_array("?" if v is None else str(int(v)) for v in irql),
            "event": lambda: event, "caller_ctx": lambda: self._context_text(ctx_proc, ctx_pid),
            "other": lambda: self._requester_text(alloc_proc), "mdl_va": lambda: _hex(slot_va, "?"),
            "count": lambda: object_array(map(str, counts.tolist())),
        }
        messages = messages_for(rules, _Lazy(fields))
        df = pd.DataFrame({
            "rule": rules, "severity": severity, "time_ns": time_ns,
            "pid": nullable(pid), "process": image, "tid": nullable(tid),
            "mdl": pd.arrays.IntegerArray(mdl.astype(np.int64).view(np.uint64), mdl == -1),
            "caller": caller, "event": event, "bytes": nullable(nbytes),
            "impact_byte_seconds": impact, "start_ns": start, "end_ns": end,
            "exposure_start_ns": nullable(np.where(expo, start, -1)),
            "exposure_end_ns": nullable(np.where(expo, end, -1)),
            "message": messages,
            "advice": np.array([RULES[r].advice for r in rule_names], dtype=object)[rule_codes],
            "fingerprint": fingerprints(rules, caller, image),
            "evidence": p["evidence"].tolist(),
            "lifetime_id": nullable(slot), "mapping_id": nullable(mapping_id),
            "count": counts,
            "call_pid": nullable(ctx_pid),
            "call_process": gather(self.image_of_proc, ctx_proc, None),
            "permanent": np.isin(rules, list(PERMANENT_LEAKS)),
        })
        return typed_findings(rank_findings(df))


def fingerprints(rules: np.ndarray, caller: np.ndarray, image: np.ndarray) -> np.ndarray:
    """:func:`fingerprint` of every row, each distinct (rule, caller, image) hashed once."""
    keys = pd.Series(rules, dtype=object).astype(str) + "|" + pd.Series(
        caller, dtype=object).fillna("").astype(str) + "|" + pd.Series(
        image, dtype=object).fillna("").astype(str).str.lower()
    codes, uniques = pd.factorize(keys.to_numpy(dtype=object))
    hashed = object_array(hashlib.sha1(k.encode()).hexdigest()[:16] for k in uniques)
    return hashed[codes]


class _Lazy:
    """Template field name -> its column, computed on first use (None if unknown)."""

    def __init__(self, makers: dict[str, Callable[[], np.ndarray]]) -> None:
        self.makers = makers
        self.done: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray | None:
        if name not in self.done:
            maker = self.makers.get(name)
            if maker is None:
                return None
            self.done[name] = maker()
        return self.done[name]


def _int_text(values: np.ndarray) -> np.ndarray:
    """Integers as text, '?' where negative (absent)."""
    out = object_array(map(str, values.tolist()))
    out[values < 0] = "?"
    return out


def _hex(bits: np.ndarray, missing: str) -> np.ndarray:
    """int64 bit patterns of addresses as ``0x...`` text, ``missing`` where -1."""
    bits = np.asarray(bits, dtype=np.int64)
    out = object_array(f"0x{v:x}" for v in bits.view(np.uint64).tolist())
    out[bits == -1] = missing
    return out


def _bytes_text(nbytes: np.ndarray) -> np.ndarray:
    """:func:`describe_bytes` of each value, each distinct value formatted once."""
    uniq, inverse = np.unique(nbytes, return_inverse=True)
    return object_array(describe_bytes(int(b)) for b in uniq.tolist())[inverse.ravel()]


def rank_findings(df: pd.DataFrame) -> pd.DataFrame:
    """Findings in report order: by severity; within one severity the permanent leaks
    first, largest bytes first (a leak until reboot outweighs any finite impact), then the
    others by impact (bytes x seconds), largest first; ties by time."""
    # unknown size: a permanent leak still ranks with the permanent ones (after those of
    # known size), an unknown impact after the known ones
    perm_bytes = np.nan_to_num(df["bytes"].to_numpy(dtype=float, na_value=np.nan), nan=0.5)
    key = np.where(df["permanent"].to_numpy(dtype=bool), perm_bytes,
                   df["impact_byte_seconds"].to_numpy(dtype=float))
    order = df.assign(_rank=df["severity"].map(SEVERITY_RANK), _perm=df["permanent"], _key=key)
    order = order.sort_values(["_rank", "_perm", "_key", "time_ns"],
                              ascending=[True, False, False, True], kind="stable")
    return order.drop(columns=["_rank", "_perm", "_key"]).reset_index(drop=True)


def typed_findings(df: pd.DataFrame) -> pd.DataFrame:
    """A findings frame with the column dtypes of ``Analysis.findings``."""
    df = df.copy()
    for c in ("time_ns", "pid", "tid", "bytes", "start_ns", "end_ns", "exposure_start_ns",
              "exposure_end_ns", "lifetime_id", "mapping_id", "count"):
        df[c] = df[c].astype("Int64")
    df["mdl"] = as_address(df["mdl"])
    df["impact_byte_seconds"] = df["impact_byte_seconds"].astype("float64")
    df["call_pid"] = df["call_pid"].astype("Int64")
    df["permanent"] = df["permanent"].astype(bool)
    for c in ("rule", "process", "caller", "event", "message", "advice", "fingerprint",
              "call_process"):
        df[c] = df[c].astype("string")
    df["severity"] = df["severity"].astype(SEVERITY_DTYPE)
    return df


def _or(text: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``text``, with ``other`` where it is '?' (unknown)."""
    return np.where(text == "?", other, text)
