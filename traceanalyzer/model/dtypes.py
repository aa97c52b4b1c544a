"""pandas dtypes for the tables the library hands out.

``address``: a nullable unsigned 64-bit integer (``UInt64``) that pandas shows in hex
(``0xffffc30a4b2f1000``) in reprs, ``to_string`` and HTML, while every value stays an
integer: ``f[f.mdl == 0xffffc30a4b2f1000]``, ``int(f.mdl[0])``, arithmetic and Arrow
conversion (to ``uint64``) behave as for ``UInt64``. Joins, merges, indexes and sorts on
an address column work as on ``UInt64`` (pandas' hash engine for ``UInt64``), and results
that stay unsigned 64-bit (``min``, ``first``, ``+ offset``, ``concat``) stay ``address``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from pandas._libs import index as libindex
from pandas.api.extensions import register_extension_dtype
from pandas.core.indexes import base as index_base
from pandas.core.arrays.integer import IntegerArray, UInt64Dtype


__all__ = ["ADDRESS_COLUMNS", "AddressArray", "AddressDtype", "as_address", "with_addresses"]

#: Columns of the library's tables that hold addresses (shown in hex).
ADDRESS_COLUMNS: frozenset[str] = frozenset(
    {"mdl", "source_mdl", "va", "mapped_va", "irp", "base", "return_address"}
)


@register_extension_dtype
class AddressDtype(UInt64Dtype):
    """``UInt64`` shown in hex. The dtype's name is ``"address"``."""

    name = "address"

    @classmethod
    def construct_array_type(cls) -> type["AddressArray"]:
        return AddressArray

    def __repr__(self) -> str:
        return "address"

    def _get_common_dtype(self, dtypes: list) -> Any:
        """address with address is address (concat, where); with other types, as UInt64."""
        if all(isinstance(d, AddressDtype) for d in dtypes):
            return self
        return super()._get_common_dtype(dtypes)


class AddressArray(IntegerArray):
    """A ``UInt64`` array whose values pandas formats as ``0x`` hex."""

    @property
    def dtype(self) -> AddressDtype:  # type: ignore[override]
        return AddressDtype()

    def _formatter(self, boxed: bool = False) -> Callable[[Any], str]:
        return lambda x: "<NA>" if x is pd.NA or x is None else f"0x{int(x):x}"

    def _maybe_mask_result(self, result: Any, mask: np.ndarray) -> Any:
        """Results of reductions, groupby aggregations and arithmetic that are still
        unsigned 64-bit stay addresses (pandas would make them ``UInt64``)."""
        return _still_address(super()._maybe_mask_result(result, mask))

    def _cast_pointwise_result(self, values: Any) -> Any:
        """``map``, ``combine``, ``.loc`` enlargement (pandas >= 3): likewise."""
        return _still_address(super()._cast_pointwise_result(values))


def _still_address(out: Any) -> Any:
    """A ``UInt64`` array computed from addresses -> an :class:`AddressArray` (same
    buffers); anything else as it is."""
    if type(out) is IntegerArray and out._data.dtype == np.uint64:
        return AddressArray(out._data, out._mask)
    return out


# An Index over addresses (set_index, merge/join keys, sort_values on several columns)
# needs a hash engine, which pandas picks by the dtype's *name* from this table
# (pandas >= 2.0); unknown names of masked arrays fall through to a numpy-only engine
# ("expected numpy.ndarray, got AddressArray"). The values are UInt64's.
index_base._masked_engines.setdefault(AddressDtype.name, libindex.MaskedUInt64Engine)


def as_address(values: Any) -> AddressArray:
    """Addresses (ints or None, a uint64 array, a UInt64 or uint64 ArrowDtype column)
    -> an :class:`AddressArray`."""
    if isinstance(values, AddressArray):
        return values
    if isinstance(values, np.ndarray):
        arr = pd.array(values.astype(np.uint64, copy=False), dtype="UInt64")
    elif hasattr(values, "astype"):
        arr = pd.array(values.astype("UInt64"))
    else:
        arr = pd.array(values, dtype="UInt64")
    return AddressArray(np.asarray(arr._data, dtype=np.uint64), np.asarray(arr._mask))


def with_addresses(df: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """``df`` with its address columns (``ADDRESS_COLUMNS`` present, or ``columns``) as
    ``address`` dtype, in place; other columns untouched."""
    names = ADDRESS_COLUMNS if columns is None else set(columns)
    for c in df.columns:
        if c in names and str(df[c].dtype) != "address":
            df[c] = as_address(df[c])
    return df
