"""Findings as a table, assembled column-wise from the sources that produce them.

Each source (the replay kernel, the attach walk, the stateless rules, trace quality)
yields a *partial* frame that says which rule fired on which call / lifetime /
mapping; :class:`FindingAssembler` fills in everything else with array operations:
process and thread, caller, MDL, bytes, impact, severity, fingerprint, evidence and
the message.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from traceanalyzer.lifecycle.tables import LifecycleTables, nullable
from traceanalyzer.model.dtypes import as_address
from traceanalyzer.model.encoding import dictionary_codes, gather, take_column
from traceanalyzer.model.schema import PAGE_SIZE
from traceanalyzer.rules.catalogue import PERMANENT_LEAKS, RULES
from traceanalyzer.rules.messages import message_for
from traceanalyzer.vocabulary import SEVERITY_DTYPE, SEVERITY_RANK, describe_bytes, format_address, format_ms

#: Columns of a partial frame (``-1`` = absent for integers, None for objects).
PARTIAL_COLUMNS = (
    "rule", "time_ns", "proc", "slot", "call_idx", "rel_call", "event_call", "start_ns",
    "end_ns", "expo", "mapping_id", "sev_up", "count", "bytes", "event", "evidence",
)

FINDING_COLUMNS = [
    "rule", "severity", "time_ns", "pid", "process", "tid", "mdl", "caller", "event",
    "bytes", "impact_byte_seconds", "start_ns", "end_ns", "exposure_start_ns",
    "exposure_end_ns", "message", "advice", "fingerprint", "evidence", "lifetime_id",
    "mapping_id", "count", "call_pid", "call_process", "permanent",
]


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

    def _proc_text(self, proc: np.ndarray) -> list[str]:
        out = []
        for p in proc:
            if p < 0:
                out.append("an unattributed context")
            else:
                out.append(f"{self.image_of_proc[p] or '?'} ({self.pid_of_proc[p]})")
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
        nbytes = np.where(nbytes >= 0, nbytes, gather(self.slot_bytes, slot, 0))
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
        severity = np.array([RULES[r].severity for r in rules], dtype=object)
        severity = np.where(p["sev_up"].to_numpy(dtype=bool), "critical", severity)
        ctx_proc = gather(self.ctx.proc_id, call_idx, -1)
        ctx_pid = gather(self.ctx.pid, call_idx, -1)
        ctx_text = [t if cp >= 0 or q < 0 else f"pid {cp}"
                    for t, cp, q in zip(self._proc_text(ctx_proc), ctx_pid, ctx_proc)]
        alloc_proc = gather(T.lifetime_alloc_proc, slot, -1)
        other_text = self._proc_text(alloc_proc)
        counts = p["count"].to_numpy(dtype=np.int64)
        fp_cache: dict[tuple, str] = {}
        fingerprints, messages = [], []
        time_ns = p["time_ns"].to_numpy(dtype=np.int64)
        for i in range(n):
            key = (rules[i], caller[i], image[i])
            fp = fp_cache.get(key)
            if fp is None:
                fp = fp_cache[key] = fingerprint(*key)
            fingerprints.append(fp)
            messages.append(message_for(
                rules[i], process=image[i] or "?", pid=pid[i] if pid[i] >= 0 else "?",
                tid=tid[i] if tid[i] >= 0 else "?", mdl=format_address(_u64(mdl[i]), "?"),
                bytes=describe_bytes(int(nbytes[i])), t_ms=format_ms(time_ns[i]),
                va=format_address(_u64(map_va[i]), None) or format_address(call_va[i], "?"),
                call_va=format_address(call_va[i], "?"),
                irql="?" if pd.isna(irql[i]) else int(irql[i]),
                event=event[i], caller_ctx=ctx_text[i],
                other=other_text[i], mdl_va=format_address(_u64(slot_va[i]), "?"),
                count=int(counts[i]),
            ))
        df = pd.DataFrame({
            "rule": rules, "severity": severity, "time_ns": time_ns,
            "pid": nullable(pid), "process": image, "tid": nullable(tid),
            "mdl": pd.array([_u64(m) for m in mdl], dtype="UInt64"),
            "caller": caller, "event": event, "bytes": nullable(nbytes),
            "impact_byte_seconds": impact, "start_ns": start, "end_ns": end,
            "exposure_start_ns": nullable(np.where(expo, start, -1)),
            "exposure_end_ns": nullable(np.where(expo, end, -1)),
            "message": messages, "advice": [RULES[r].advice for r in rules],
            "fingerprint": fingerprints, "evidence": p["evidence"].tolist(),
            "lifetime_id": nullable(slot), "mapping_id": nullable(mapping_id),
            "count": counts,
            "call_pid": nullable(ctx_pid),
            "call_process": gather(self.image_of_proc, ctx_proc, None),
            "permanent": np.array([r in PERMANENT_LEAKS for r in rules], dtype=bool),
        })
        return typed_findings(rank_findings(df))


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


def _u64(x: int) -> int | None:
    return None if x == -1 else int(np.int64(x).view(np.uint64))


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
