"""The as-of join on ``seq`` under context attribution and ``Trace.window``: for each
row, the latest row of another table with the same key (cpu, tid, pid, MDL address) at
or before it. One compiled merge of both sides in seq order."""

from __future__ import annotations

import numba as nb
import numpy as np
import pandas as pd


def asof_index(left_seq: np.ndarray, left_key: np.ndarray, right_seq: np.ndarray,
               right_key: np.ndarray, strict: bool = False) -> np.ndarray:
    """For each left row, the index of the right row with the same key and the greatest
    seq <= left seq (< when strict; of right rows with equal seq, the last); -1 if none.
    Keys equal to -1 never match.

    One compiled merge of both sides in seq order (each is sorted only when it is not in
    order already), keys numbered by a hash table: no per-key sort, no frames."""
    out = np.full(left_seq.size, -1, dtype=np.int64)
    if left_seq.size == 0 or right_seq.size == 0:
        return out
    left_seq, right_seq = _int64(left_seq), _int64(right_seq)
    left_key, right_key = _int64(left_key), _int64(right_key)
    keys = np.concatenate([left_key, right_key])
    low, high = int(keys.min()), int(keys.max())
    if low >= -1 and high < _DIRECT_KEYS:  # cpu, pid, tid: the key is its own number
        codes, n_codes = keys, high + 1
    else:
        codes, uniques = pd.factorize(keys)
        codes = codes.astype(np.int64, copy=False)
        codes[keys == -1] = -1
        n_codes = len(uniques)
    n = left_seq.size
    _asof_merge(left_seq, codes[:n], _order(left_seq), right_seq, codes[n:], _order(right_seq),
                n_codes, strict, out)
    return out


#: Keys from -1 up to this are used as their own numbers by :func:`asof_index`.
_DIRECT_KEYS = 1 << 22


def _int64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


def _order(seq: np.ndarray) -> np.ndarray:
    """Indexes of ``seq`` in ascending order, equal values in row order."""
    if seq.size < 2 or bool(np.all(seq[1:] >= seq[:-1])):
        return np.arange(seq.size, dtype=np.int64)
    return np.argsort(seq, kind="stable").astype(np.int64, copy=False)


@nb.njit(cache=True, nogil=True)
def _asof_merge(lseq, lcode, lorder, rseq, rcode, rorder, n_codes, strict, out):  # pragma: no cover - compiled
    """Walk the left rows in seq order; before each, take in every right row of smaller
    seq (or equal, unless ``strict``) as its key's latest; ``out[i]`` = the latest right
    row of left row i's key (-1: none). Code -1: no key."""
    latest = np.full(max(n_codes, 1), -1, np.int64)
    j = 0
    n_r = rorder.shape[0]
    for ii in range(lorder.shape[0]):
        i = lorder[ii]
        s = lseq[i]
        while j < n_r:
            r = rorder[j]
            if rseq[r] < s or (not strict and rseq[r] == s):
                if rcode[r] >= 0:
                    latest[rcode[r]] = r
                j += 1
            else:
                break
        if lcode[i] >= 0:
            out[i] = latest[lcode[i]]
