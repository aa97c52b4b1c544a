"""Canonical Arrow tables from row dicts (for writing test traces)."""

from __future__ import annotations

import pyarrow as pa

from traceanalyzer.model.schema import COLUMNS


def canonical_table(rows: list[dict]) -> pa.Table:
    """The canonical columns present in any of ``rows``, in schema order and types."""
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    return pa.Table.from_pylist(rows, schema=pa.schema([(c, COLUMNS[c]) for c in names]))
