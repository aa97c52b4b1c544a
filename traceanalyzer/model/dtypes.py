"""pandas dtypes for the tables the library hands out.

``address``: a nullable unsigned 64-bit integer (``UInt64``) that pandas shows in hex
(``0xffffc30a4b2f1000``) in reprs, ``to_string`` and HTML, while every value stays an
integer: ``f[f.mdl == 0xffffc30a4b2f1000]``, ``int(f.mdl[0])``, arithmetic and Arrow
conversion (to ``uint64``) behave as for ``UInt64``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from pandas.api.extensions import register_extension_dtype
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


class AddressArray(IntegerArray):
    """A ``UInt64`` array whose values pandas formats as ``0x`` hex."""

    @property
    def dtype(self) -> AddressDtype:  # type: ignore[override]
        return AddressDtype()

    def _formatter(self, boxed: bool = False) -> Callable[[Any], str]:
        return lambda x: "<NA>" if x is pd.NA or x is None else f"0x{int(x):x}"


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
