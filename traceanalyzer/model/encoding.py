"""Dictionary codes of string columns: rules and the model compare small integers, not strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def as_dictionary(col: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """``col`` as one dictionary array with a single dictionary (chunks unified)."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 0:
            return pa.array([], type=col.type)
        col = col.unify_dictionaries().combine_chunks()
    return col


def dictionary_codes(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """(codes, names): row i holds ``names[codes[i]]``; a null row has code -1."""
    d = as_dictionary(col)
    idx = d.indices
    codes = (pc.fill_null(idx, -1) if idx.null_count else idx).to_numpy(zero_copy_only=False)
    return codes, d.dictionary.to_pylist()
