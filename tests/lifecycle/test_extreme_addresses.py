"""Addresses and sizes at the edges of 64 bits (va + size past 2**63 or 2**64, a partial
MDL whose range wraps): the interpreted kernel and the compiled one give the same records
(int64 arithmetic wraps in both: addresses are uint64 bit patterns in int64), and the
interpreted one does not warn about it (numpy's "overflow encountered in scalar add")."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.rows import PRELUDE, PROCS, analyze_rows

BIG = 2**63 - 1
MDLS = [0xFFFFC30A4B2F0000 + k * 0x1000 for k in range(8)]
#: values near the int64 / uint64 edges, and ordinary ones
EDGES = [0, 1, 4096, 0x1D2C3A40000, 0x7FFFFFFF0000, 2**62, 2**63 - 4096, BIG, 2**63, 2**63 + 4096,
         0xFFFFB00012340000, 2**64 - 8192, 2**64 - 2048, 2**64 - 1]
SIZES = [1, 4096, 2**32, 2**62, BIG - 5, BIG]


def _start() -> list[dict]:
    return (list(PRELUDE) + [dict(time_ns=0, event="ProcessStart", pid=p, image=i) for p, i, _ in PROCS]
            + [dict(time_ns=0, event="ThreadStart", pid=p, tid=t) for p, _, t in PROCS])


def _calls(spec: list[tuple]) -> list[dict]:
    pid, _image, tid = PROCS[0]
    rows = _start()
    for k, (event, fields) in enumerate(spec):
        rows.append(dict(time_ns=10 + 10 * k, event=event, pid=pid, tid=tid, **fields))
    return rows


def _both_engines(rows: list[dict]):
    out = {}
    for engine in ("python", "jit"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            out[engine] = analyze_rows(rows, engine=engine)
    for name in ("slots", "mappings", "locks", "findings"):
        assert np.array_equal(getattr(out["python"].replay, name), getattr(out["jit"].replay, name)), name
    return out["python"], out["jit"]


def _lock(mdl: int, va: int, size: int, mode: str = "UserMode") -> list[tuple]:
    return [("IoAllocateMdl", dict(mdl=mdl, va=va, size=size)),
            ("MmProbeAndLockPages", dict(mdl=mdl, access_mode=mode, operation="IoWriteAccess"))]


def _partial(mdl: int, source: int, va: int, size: int) -> list[tuple]:
    return [("IoAllocateMdl", dict(mdl=mdl, va=0, size=0)),
            ("IoBuildPartialMdl", dict(mdl=mdl, source_mdl=source, va=va, size=size))]


def test_ranges_past_the_64_bit_edges_agree_without_warnings() -> None:
    spec = (
        _lock(MDLS[0], 0x1D2C3A40000, BIG)  # user va + size past 2**63
        + _partial(MDLS[1], MDLS[0], 0x1D2C3A41000, BIG)  # its partial's range check wraps
        + _lock(MDLS[2], 0x7FFFFFFF0000, BIG - 5)
        + [("MmMapLockedPagesSpecifyCache", dict(mdl=MDLS[2], access_mode="UserMode",
                                                 cache_type="MmCached", mapped_va=0x7FFFFFFF0000))]
        + _lock(MDLS[3], 2**64 - 4096, BIG, "KernelMode")  # kernel va + size past 2**64
        + _partial(MDLS[4], MDLS[3], 2**64 - 2048, BIG)
        + [("MmAllocatePagesForMdl", dict(mdl=MDLS[5], size=BIG)),
           ("MmMapLockedPagesSpecifyCache", dict(mdl=MDLS[5], access_mode="KernelMode",
                                                 cache_type="MmCached", mapped_va=2**64 - 8192))]
        + _partial(MDLS[6], MDLS[5], 2**62, BIG)
    )
    py, jit = _both_engines(_calls(spec))
    assert py.findings.drop(columns="evidence").equals(jit.findings.drop(columns="evidence"))
    assert (py.findings["rule"] == "PARTIAL_RANGE_INVALID").sum() >= 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(EDGES), st.sampled_from(SIZES), st.sampled_from(EDGES),
                          st.sampled_from(SIZES), st.booleans()), min_size=1, max_size=3))
def test_random_edge_ranges_agree_without_warnings(draws) -> None:
    spec: list[tuple] = []
    for k, (va, size, pva, psz, user) in enumerate(draws):
        src, part = MDLS[2 * k], MDLS[2 * k + 1]
        spec += _lock(src, va, size, "UserMode" if user else "KernelMode")
        spec += [("MmMapLockedPagesSpecifyCache", dict(mdl=src, access_mode="UserMode" if user else "KernelMode",
                                                       cache_type="MmCached", mapped_va=pva))]
        spec += _partial(part, src, pva, psz)
        spec += [("MmUnlockPages", dict(mdl=src)), ("IoFreeMdl", dict(mdl=part))]
    _both_engines(_calls(spec))
