"""Rules that need no lifecycle state: vectorized checks over the calls and mappings.

Each is registered with :func:`stateless_rule` and returns a DataFrame with columns
``rule, call_index`` (row in ``trace.table('calls')``) and optionally ``mapping_id``.
The analysis fills in the rest of the finding from the call.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.model.encoding import dictionary_codes
from traceanalyzer.model.schema import (
    MDL_MAPPING_NO_EXECUTE, USER_RANGE_END_64, USER_RANGE_END_WOW64, USER_SPACE_LIMIT,
)

RuleFn = Callable[["RuleInput"], pd.DataFrame]
STATELESS_RULES: dict[str, RuleFn] = {}


class RuleInput:
    """What a stateless rule sees: the calls table, per-call context and the mappings."""

    def __init__(self, calls: pa.Table, mappings: pd.DataFrame, processes: pd.DataFrame):
        self.calls = calls
        self.mappings = mappings
        self.processes = processes

    def col(self, name: str) -> pa.ChunkedArray | None:
        return self.calls.column(name) if name in self.calls.column_names else None

    def is_event(self, name: str) -> np.ndarray:
        codes, names = self._event_codes
        code = names.get(name)
        return codes == code if code is not None else np.zeros(codes.size, dtype=bool)

    @cached_property
    def _event_codes(self) -> tuple[np.ndarray, dict[str, int]]:
        """``event`` as dictionary codes (-1 for null), computed once: rules ask often."""
        codes, names = dictionary_codes(self.calls.column("event"))
        return codes, {str(n): i for i, n in enumerate(names)}

    def equals(self, column: str, value: object) -> np.ndarray:
        c = self.col(column)
        if c is None or pa.types.is_null(c.type):
            return np.zeros(self.calls.num_rows, dtype=bool)
        return np.asarray(pc.fill_null(pc.equal(c, value), False))


def stateless_rule(rule_id: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        STATELESS_RULES[rule_id] = fn
        return fn

    return register


def _rows(rule: str, mask: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"rule": rule, "call_index": np.flatnonzero(mask)})


def _mapped_ok(inp: RuleInput) -> np.ndarray:
    c = inp.col("mapped_va")
    if c is None or pa.types.is_null(c.type):
        return np.ones(inp.calls.num_rows, dtype=bool)
    return np.asarray(pc.fill_null(pc.not_equal(c, pa.scalar(0, c.type)), True))


@stateless_rule("KMAP_BUGCHECK_ON_FAILURE")
def kmap_bugcheck_on_failure(inp: RuleInput) -> pd.DataFrame:
    kernel = inp.equals("access_mode", "KernelMode")
    specify = inp.is_event("MmMapLockedPagesSpecifyCache") & inp.equals("bugcheck_on_failure", 1)
    legacy = inp.is_event("MmMapLockedPages")
    return _rows("KMAP_BUGCHECK_ON_FAILURE", kernel & (specify | legacy) & _mapped_ok(inp))


@stateless_rule("KMAP_EXECUTABLE")
def kmap_executable(inp: RuleInput) -> pd.DataFrame:
    prio = inp.col("priority")
    if prio is None or pa.types.is_null(prio.type):
        return _rows("KMAP_EXECUTABLE", np.zeros(inp.calls.num_rows, dtype=bool))
    no_exec = pc.not_equal(pc.bit_wise_and(prio.cast(pa.int64()), MDL_MAPPING_NO_EXECUTE), 0)
    lacks = ~np.asarray(pc.fill_null(no_exec, True))
    mask = inp.is_event("MmMapLockedPagesSpecifyCache") & inp.equals("access_mode", "KernelMode")
    return _rows("KMAP_EXECUTABLE", mask & lacks & _mapped_ok(inp))


@stateless_rule("USER_MAP_OUTSIDE_USER_RANGE")
def user_map_outside_user_range(inp: RuleInput) -> pd.DataFrame:
    m = inp.mappings
    if m.empty:
        return pd.DataFrame(columns=["rule", "call_index", "mapping_id"])
    user = m[m["mode"] == "UserMode"]
    wow = user["process_wow64"].fillna(0).astype(int).to_numpy() == 1
    va = user["mapped_va"].astype("uint64").to_numpy()
    limit = np.where(wow, USER_RANGE_END_WOW64, USER_RANGE_END_64).astype(np.uint64)
    bad = user[va > limit]
    return pd.DataFrame(
        {"rule": "USER_MAP_OUTSIDE_USER_RANGE", "call_index": bad["map_call_index"].to_numpy(),
         "mapping_id": bad["mapping_id"].to_numpy()}
    )


#: IRQL levels (rules.md, IRQL_VIOLATION).
APC_LEVEL, DISPATCH_LEVEL = 1, 2


@stateless_rule("IRQL_VIOLATION")
def irql_violation(inp: RuleInput) -> pd.DataFrame:
    """A call above its documented IRQL: probe/lock > DISPATCH, user map/unmap > APC,
    MmAllocatePagesForMdl(Ex) > DISPATCH, KeStackAttachProcess >= DISPATCH. Rows without
    ``irql`` never fire."""
    n = inp.calls.num_rows
    col = inp.col("irql")
    if col is None or pa.types.is_null(col.type):
        return _rows("IRQL_VIOLATION", np.zeros(n, dtype=bool))
    irql = np.asarray(pc.fill_null(col.cast(pa.int64()), -1))
    user = inp.equals("access_mode", "UserMode")
    mva = inp.col("mapped_va")
    if mva is None or pa.types.is_null(mva.type):
        user_va = np.zeros(n, dtype=bool)
    else:
        v = pc.cast(mva, pa.uint64())
        user_va = np.asarray(pc.fill_null(
            pc.and_(pc.greater(v, pa.scalar(0, pa.uint64())),
                    pc.less(v, pa.scalar(USER_SPACE_LIMIT, pa.uint64()))), False))
    lock = inp.is_event("MmProbeAndLockPages") | inp.is_event("MmProbeAndLockProcessPages")
    alloc = inp.is_event("MmAllocatePagesForMdl") | inp.is_event("MmAllocatePagesForMdlEx")
    umap = (inp.is_event("MmMapLockedPagesSpecifyCache") | inp.is_event("MmMapLockedPages")) & user
    uunmap = inp.is_event("MmUnmapLockedPages") & user_va
    attach = inp.is_event("KeStackAttachProcess")
    bad = (((lock | alloc) & (irql > DISPATCH_LEVEL)) | ((umap | uunmap) & (irql > APC_LEVEL))
           | (attach & (irql >= DISPATCH_LEVEL)))
    return _rows("IRQL_VIOLATION", bad)
