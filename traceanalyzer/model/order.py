"""seq of the rows a Trace keeps when it leaves others out (the deferred CSwitch rows):
the rank each kept row has in the time order of all rows (ties by a tie key such as the
ETL stream key, or in row order), counted without sorting the rows left out."""

from __future__ import annotations

from collections.abc import Iterable

import numba as nb
import numpy as np
import pyarrow as pa

from traceanalyzer.errors import TraceError
from traceanalyzer.model.left_out import LeftOut


def kept_ranks(times: pa.ChunkedArray, left_out: np.ndarray,
               ties: pa.ChunkedArray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(kept row indexes, their seq): seq = rank of the row in the time order of every
    row of ``times`` (equal times by ``ties``, an integer per row, e.g. the ETL stream
    key, else in row order), rows where ``left_out`` is True included but never sorted
    (:func:`ranks_around`)."""
    kept = np.flatnonzero(~left_out)
    all_times = [c.to_numpy(zero_copy_only=False) for c in times.chunks] if kept.size else []
    all_ties = [c.to_numpy(zero_copy_only=False) for c in ties.chunks] if ties is not None and kept.size else None
    kt = _gather(all_times, kept)
    kk = kept if all_ties is None else _gather(all_ties, kept)
    if not kept.size or kept.size == left_out.size:
        return kept, ranks_around(kt, kk, ())
    return kept, ranks_around(kt, kk, _left_parts(all_times, all_ties, left_out))


def ranks_around_left_out(times: pa.ChunkedArray, ties: pa.ChunkedArray | None,
                          left_out: LeftOut) -> np.ndarray:
    """seq of every row of ``times`` (ties by ``ties``: the reader's order key, which the
    left-out rows carry too) among those rows and the rows a reader left out."""
    if ties is None and left_out.count:
        raise TraceError("left-out rows need the reader's order key to be ranked among")
    kt = _int64s(times)
    kk = np.arange(kt.size, dtype=np.int64) if ties is None else _int64s(ties)
    return ranks_around(kt, kk, left_out.parts())


def _int64s(column: pa.ChunkedArray) -> np.ndarray:
    """An integer column without nulls as one int64 array."""
    parts = [c.to_numpy(zero_copy_only=False) for c in column.chunks]
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)


def _left_parts(all_times: list[np.ndarray], all_ties: list[np.ndarray] | None,
                left_out: np.ndarray):
    """(times, tie keys) of the left-out rows, a slice of rows at a time: the scratch of a
    10M-row chunk (a reader's CSwitch rows in one piece) would be 160 MB. Ties may be
    chunked unlike the times: gathered by row."""
    start = 0
    for chunk in all_times:
        for lo in range(0, chunk.size, _SLICE_ROWS):
            hi = min(lo + _SLICE_ROWS, chunk.size)
            at = np.flatnonzero(left_out[start + lo:start + hi])
            if at.size:
                rows = at + (start + lo)
                yield chunk[lo:hi][at], rows if all_ties is None else _gather(all_ties, rows)
        start += chunk.size


def ranks_around(kt: np.ndarray, kk: np.ndarray,
                 left: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """seq of the kept rows (times ``kt``, tie keys ``kk``: distinct integers) in the time
    order of those rows and of the rows ``left`` gives, part by part, as (times, tie keys).

    The left-out rows are only counted: for each distinct kept time, how many left-out
    rows come earlier, plus, at an equal time, those with a smaller tie key."""
    korder = np.lexsort((kk, kt))
    seq = np.empty(kt.size, np.int64)
    seq[korder] = np.arange(kt.size, dtype=np.int64)  # rank among the kept rows
    if not kt.size:
        return seq
    u = kt[korder]  # the distinct kept times, sorted
    first = np.r_[True, u[1:] != u[:-1]]
    m_k = np.empty(kt.size, np.int64)  # each kept row's index in u
    m_k[korder] = np.cumsum(first) - 1
    u = u[first]
    del first
    less = np.zeros(u.size + 1, np.int64)
    tie_m, tie_key = [], []
    buckets, shift = _buckets(u)
    at_buf = m_buf = np.empty(0, np.int64)
    counted = False
    for part, keys in left:
        if part.size > at_buf.size:
            at_buf, m_buf = np.empty(part.size, np.int64), np.empty(part.size, np.int64)
        at, m = at_buf[:part.size], m_buf[:part.size]
        n_eq = _count_chunk(part, u, buckets, shift, less, at, m)
        counted = True
        if n_eq:
            tie_m.append(m[:n_eq].copy())
            tie_key.append(keys[at[:n_eq]])
    if not counted:
        return seq
    # left-out rows with a time < u[m]: those whose count of kept times <= t is <= m
    before = np.cumsum(less)[:-1]
    seq += before[m_k]
    if tie_m:  # left-out rows at a kept row's time (in `before` only from u[m + 1] on)
        # add those before each kept row by key: sort ties and kept rows by (m, key);
        # the ties come first in the keys, so key index < n_tie marks a tie. Each step
        # frees what the next no longer needs (millions of ties at 10M rows).
        n_tie = sum(part.size for part in tie_m)
        key_m = np.concatenate(tie_m + [m_k])
        del tie_m, m_k
        key_r = np.concatenate(tie_key + [kk])
        del tie_key
        o = np.lexsort((key_r, key_m))
        del key_r
        is_tie = o < n_tie
        ties_so_far = np.cumsum(is_tie)
        grp = key_m[o]
        del key_m
        # ties counted from the start of each time group m
        first = np.searchsorted(grp, grp, side="left")
        del grp
        base = np.where(first > 0, ties_so_far[first - 1], 0)
        del first
        at = ~is_tie
        del is_tie
        seq[o[at] - n_tie] += ties_so_far[at] - base[at]
    return seq


#: Rows of one call of :func:`_count_chunk`.
_SLICE_ROWS = 1 << 20


def _gather(chunks: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Values at global row indexes of a list of chunks."""
    if not chunks:
        return np.zeros(0, np.int64)
    offsets = np.cumsum([0] + [c.size for c in chunks])
    which = np.searchsorted(offsets, rows, side="right") - 1
    out = np.empty(rows.size, np.int64)
    for i, c in enumerate(chunks):
        sel = which == i
        if sel.any():
            out[sel] = c[rows[sel] - offsets[i]]
    return out


def _buckets(u: np.ndarray) -> tuple[np.ndarray, int]:
    """A lookup over the sorted distinct times ``u``: bucket b covers times
    ``u[0] + [b << shift, (b + 1) << shift)``; ``buckets[b]`` = how many of ``u`` lie below
    it (about two buckets per value, so a row's place in ``u`` is a short binary search)."""
    span = int(u[-1]) - int(u[0]) + 1
    want = min(1 << 24, max(64, 2 * u.size))
    shift = max(0, (span - 1) // want).bit_length() if span > want else 0
    buckets = np.empty((span >> shift) + 2, np.int64)
    _fill_buckets(u, shift, buckets)
    return buckets, shift


@nb.njit(cache=True, nogil=True)
def _fill_buckets(u, shift, buckets):
    """``buckets[b]`` = how many of the sorted ``u`` lie below ``u[0] + (b << shift)``:
    one merge pass (a binary search per bucket cost more than the whole count)."""
    j = 0
    n_u = u.shape[0]
    for b in range(buckets.shape[0]):
        edge = u[0] + (np.int64(b) << shift)
        while j < n_u and u[j] < edge:
            j += 1
        buckets[b] = j


@nb.njit(cache=True, nogil=True)
def _count_chunk(t, u, buckets, shift, less, at, m):
    """For each left-out row i of one part: ``less[r] += 1`` with r = how many of ``u``
    are <= t[i]; a row whose time is in ``u`` is also listed: ``at[k] = i``, ``m[k]`` =
    the index of its time in ``u``. Returns the number listed."""
    n_u = u.shape[0]
    lo_t = u[0]
    k = 0
    for i in range(t.shape[0]):
        x = t[i]
        if x < lo_t:
            r = 0
        elif x >= u[n_u - 1]:
            r = n_u
        else:
            b = (x - lo_t) >> shift
            lo = buckets[b]
            hi = buckets[b + 1]
            while lo < hi:  # first of u[lo:hi] greater than x
                mid = (lo + hi) >> 1
                if u[mid] <= x:
                    lo = mid + 1
                else:
                    hi = mid
            r = lo
        less[r] += 1
        if r > 0 and u[r - 1] == x:
            at[k] = i
            m[k] = r - 1
            k += 1
    return k
