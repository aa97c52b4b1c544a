"""asof_index (the as-of join under every context attribution) against pandas
merge_asof, the join it replaced: random seqs with ties, unsorted sides, keys that repeat,
the no-key -1 and negative keys (MDL addresses as int64), strict and not."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from traceanalyzer.model.asof import asof_index


def merge_asof_index(left_seq, left_key, right_seq, right_key, strict=False) -> np.ndarray:
    """The pandas reference: merge_asof by key, backward, last right row of equal seq."""
    out = np.full(left_seq.size, -1, dtype=np.int64)
    left = pd.DataFrame({"seq": left_seq, "key": left_key, "pos": np.arange(left_seq.size)})
    left = left[left["key"] != -1]
    right = pd.DataFrame({"seq": right_seq, "key": right_key, "ridx": np.arange(right_seq.size)})
    right = right[right["key"] != -1].sort_values("seq", kind="stable")
    if left.empty or right.empty:
        return out
    merged = pd.merge_asof(left.sort_values("seq", kind="stable"), right, on="seq", by="key",
                           allow_exact_matches=not strict, direction="backward")
    found = merged["ridx"].notna().to_numpy()
    out[merged["pos"].to_numpy()[found]] = merged["ridx"].to_numpy()[found].astype(np.int64)
    return out


KEYS = st.sampled_from([-1, 0, 1, 2, 7, -5, -(2**63), 2**63 - 1, 0x7FFF_C30A_4B00_0000])


@settings(max_examples=300, deadline=None)
@given(left=st.lists(st.tuples(st.integers(-2, 40), KEYS), max_size=60),
       right=st.lists(st.tuples(st.integers(-2, 40), KEYS), max_size=60),
       strict=st.booleans(), sort_left=st.booleans(), sort_right=st.booleans())
def test_asof_index_equals_merge_asof(left, right, strict, sort_left, sort_right) -> None:
    if sort_left:
        left = sorted(left, key=lambda r: r[0])
    if sort_right:
        right = sorted(right, key=lambda r: r[0])
    ls = np.array([s for s, _ in left], dtype=np.int64)
    lk = np.array([k for _, k in left], dtype=np.int64)
    rs = np.array([s for s, _ in right], dtype=np.int64)
    rk = np.array([k for _, k in right], dtype=np.int64)
    got = asof_index(ls, lk, rs, rk, strict=strict)
    assert got.tolist() == merge_asof_index(ls, lk, rs, rk, strict=strict).tolist()


def test_asof_index_on_a_large_random_case() -> None:
    rng = np.random.default_rng(3)
    ls, rs = rng.integers(0, 10**6, 200_000), rng.integers(0, 10**6, 50_000)
    lk, rk = rng.integers(-1, 300, ls.size), rng.integers(-1, 300, rs.size)
    for strict in (False, True):
        got = asof_index(ls, lk, rs, rk, strict=strict)
        assert (got >= 0).sum() > 100_000  # most rows find one
        assert np.array_equal(got, merge_asof_index(ls, lk, rs, rk, strict=strict))
