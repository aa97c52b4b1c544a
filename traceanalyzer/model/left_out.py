"""Rows a reader numbered but did not keep (the deferred CSwitch rows of a single-file
load), held as what their ``seq`` needs and nothing else: each row's time and tie key,
delta-coded.

A CSwitch row of a 100M-event ETL trace would cost 24 bytes as table columns (time,
event code, cpu, stream key); here it costs 5: the time as the step from the row before
(uint32) and the tie key likewise (uint8). A row whose step does not fit (the first of a
part, a new buffer, a time going back) is an anchor and keeps both values whole.
:meth:`LeftOut.parts` gives them back, part by part, for :func:`.order.ranks_around`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numba as nb
import numpy as np

_MAX_DT = (1 << 32) - 1
_MAX_DK = (1 << 8) - 1
_CPU_SLOTS = 1 << 16  # CPU numbers marked in a table; others (never seen in ETL) by np.unique


@nb.njit(cache=True, nogil=True)
def _encode(times, keys, cpus, select, dt, dk, anchors, cpu_seen):  # pragma: no cover - compiled
    """Steps of the selected rows' ``times``/``keys`` into ``dt``/``dk``; anchor rows
    listed in ``anchors``, CPUs marked in ``cpu_seen``. Returns (anchors, rows whose CPU
    is outside the table, least time, greatest time)."""
    n_anchor = 0
    odd_cpu = 0
    prev_t = np.int64(0)
    prev_k = np.int64(0)
    lo = np.int64(0)
    hi = np.int64(0)
    j = 0
    for i in range(times.shape[0]):
        if not select[i]:
            continue
        t = np.int64(times[i])
        k = np.int64(keys[i])
        d = t - prev_t
        e = k - prev_k
        if j == 0 or d < 0 or d > _MAX_DT or e < 0 or e > _MAX_DK:
            anchors[n_anchor] = j
            n_anchor += 1
            dt[j] = 0
            dk[j] = 0
        else:
            dt[j] = d
            dk[j] = e
        if j == 0 or t < lo:
            lo = t
        if j == 0 or t > hi:
            hi = t
        prev_t = t
        prev_k = k
        c = cpus[i]
        if 0 <= c < _CPU_SLOTS:
            cpu_seen[c] = True
        else:
            odd_cpu += 1
        j += 1
    return n_anchor, odd_cpu, lo, hi


@nb.njit(cache=True, nogil=True)
def _decode(dt, dk, anchors, anchor_t, anchor_k, times, keys):  # pragma: no cover - compiled
    a = 0
    t = np.int64(0)
    k = np.int64(0)
    for i in range(dt.shape[0]):
        if a < anchors.shape[0] and anchors[a] == i:
            t = anchor_t[a]
            k = anchor_k[a]
            a += 1
        else:
            t += np.int64(dt[i])
            k += np.int64(dk[i])
        times[i] = t
        keys[i] = k


@dataclass
class _Part:
    dt: np.ndarray  # uint32
    dk: np.ndarray  # uint8
    anchors: np.ndarray  # int64 row indexes
    anchor_t: np.ndarray  # int64
    anchor_k: np.ndarray  # int64


@dataclass
class LeftOut:
    """Rows of one event (``event``) a reader left out of its table: their count, time
    range, CPUs, and each row's (time, tie key) for counting them into ``seq``.

    The tie key orders rows of equal time as the reader's ``ReadResult.order_key`` does
    (ETL: the stream key); the kept rows' keys are that column."""

    event: str = "CSwitch"
    count: int = 0
    t_min: int | None = None
    t_max: int | None = None
    _parts: list[_Part] = field(default_factory=list)
    _cpu_seen: np.ndarray = field(default_factory=lambda: np.zeros(_CPU_SLOTS, np.bool_))
    _odd_cpus: set[int] = field(default_factory=set)

    def add(self, times: np.ndarray, keys: np.ndarray, cpus: np.ndarray,
            select: np.ndarray | None = None) -> None:
        """More rows left out (those of ``select``, a boolean mask, when given), in any
        order (rows in the order they were logged take the least room: small steps)."""
        if select is None:
            select = np.ones(times.shape[0], np.bool_)
        n = int(np.count_nonzero(select))
        if not n:
            return
        dt, dk = np.empty(n, np.uint32), np.empty(n, np.uint8)
        anchors = np.empty(n, np.int64)
        n_anchor, odd, lo, hi = _encode(times, keys, cpus, select, dt, dk, anchors, self._cpu_seen)
        if odd:
            c = np.asarray(cpus, np.int64)[select]
            self._odd_cpus.update(np.unique(c[(c < 0) | (c >= _CPU_SLOTS)]).tolist())
        anchors = anchors[:n_anchor].copy()
        rows = np.flatnonzero(select)[anchors]
        self._parts.append(_Part(dt, dk, anchors, np.asarray(times, np.int64)[rows],
                                 np.asarray(keys, np.int64)[rows]))
        self.count += n
        self.t_min = int(lo) if self.t_min is None else min(self.t_min, int(lo))
        self.t_max = int(hi) if self.t_max is None else max(self.t_max, int(hi))

    def parts(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(times, tie keys) of the rows, one part at a time (int64 arrays)."""
        for p in self._parts:
            times, keys = np.empty(p.dt.size, np.int64), np.empty(p.dt.size, np.int64)
            _decode(p.dt, p.dk, p.anchors, p.anchor_t, p.anchor_k, times, keys)
            yield times, keys

    def cpus(self) -> set[int]:
        """The CPUs of the rows."""
        return set(np.flatnonzero(self._cpu_seen).tolist()) | self._odd_cpus

    @property
    def nbytes(self) -> int:
        """Bytes held for the rows."""
        return sum(p.dt.nbytes + p.dk.nbytes + 3 * p.anchors.nbytes for p in self._parts)
