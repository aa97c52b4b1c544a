"""seq of the rows a Trace keeps when it leaves others out (the deferred CSwitch rows):
the rank each kept row has in the time order of all rows (ties keep row order), counted
without sorting the rows left out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def kept_ranks(times: pa.ChunkedArray, left_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept row indexes, their seq): seq = rank of the row in the stable time order of
    every row of ``times``, rows where ``left_out`` is True included but never sorted.

    The rows left out are only counted: for each distinct kept time, how many left-out
    rows come earlier (searchsorted chunk by chunk), plus, at an equal time, those before
    the kept row in row order."""
    kept = np.flatnonzero(~left_out)
    all_times = [c.to_numpy(zero_copy_only=False) for c in times.chunks] if kept.size else []
    kt = _gather(all_times, kept)
    korder = np.argsort(kt, kind="stable")
    seq = np.empty(kept.size, np.int64)
    seq[korder] = np.arange(kept.size, dtype=np.int64)  # rank among the kept rows
    if not kept.size or kept.size == left_out.size:
        return kept, seq
    u = np.unique(kt)
    less = np.zeros(u.size + 1, np.int64)
    tie_m, tie_row = [], []
    start = 0
    for chunk in all_times:
        stop = start + chunk.size
        out = np.flatnonzero(left_out[start:stop])
        t = chunk[out]
        r = np.searchsorted(u, t, side="right")  # kept times <= t
        less += np.bincount(r, minlength=u.size + 1)
        eq = np.flatnonzero((r > 0) & (u[np.maximum(r - 1, 0)] == t))
        if eq.size:
            tie_m.append(r[eq] - 1)
            tie_row.append(out[eq] + start)
        start = stop
    # left-out rows with a time < u[m]: those whose count of kept times <= t is <= m
    before = np.cumsum(less)[:-1]
    m_k = np.searchsorted(u, kt)
    seq += before[m_k]
    if tie_m:  # left-out rows at a kept row's time (in `before` only from u[m + 1] on)
        tm, tr = np.concatenate(tie_m), np.concatenate(tie_row)
        # add those before each kept row in row order: sort ties and kept rows by (m, row)
        key_m = np.concatenate([tm, m_k])
        key_r = np.concatenate([tr, kept])
        is_tie = np.concatenate([np.ones(tm.size, bool), np.zeros(kept.size, bool)])
        o = np.lexsort((key_r, key_m))
        ties_so_far = np.cumsum(is_tie[o])
        # ties counted from the start of each time group m
        grp = key_m[o]
        first = np.searchsorted(grp, grp, side="left")
        base = np.where(first > 0, ties_so_far[first - 1], 0)
        at = ~is_tie[o]
        idx = o[at] - tm.size
        seq[idx] += (ties_so_far[at] - base[at])
    return kept, seq


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
