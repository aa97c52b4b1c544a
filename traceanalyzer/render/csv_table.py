"""CSV renderer: the findings table, one row per finding (text cells that a spreadsheet
would run as a formula get a leading ``'``: see :mod:`traceanalyzer.escape`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from traceanalyzer.escape import csv_safe_frame
from traceanalyzer.render.base import filter_findings
from traceanalyzer.rules.assemble import FINDING_COLUMNS
from traceanalyzer import vocabulary as vocab

def findings_csv_frame(findings: pd.DataFrame) -> pd.DataFrame:
    """The findings as written to CSV: the columns of the findings table
    (``rules.assemble.FINDING_COLUMNS``, in order), as :func:`csv_frame` writes them
    (``mdl`` as ``0x`` hex text, ``evidence`` as space-separated seq)."""
    return csv_frame(findings[list(FINDING_COLUMNS)])


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with its cells as CSV writes them (``hazards --csv``, ``query
    --csv``): ``address`` columns as ``0x`` hex text (empty when missing); a list cell
    as its items separated by single spaces, every item (``null`` for a missing one),
    never shortened; a struct or map cell as JSON. Other cells as they are."""
    out = df.copy()
    for c in out.columns:
        column = out[c]
        if str(column.dtype) == "address":
            out[c] = [vocab.format_address(x, missing="") for x in column]
        elif column.dtype == object and any(isinstance(v, _NESTED) for v in column):
            out[c] = [_csv_nested(v) if isinstance(v, _NESTED) else v for v in column]
    return out


_NESTED = (list, tuple, np.ndarray, dict)


def _csv_nested(value: Any) -> str:
    plain = json_ready(value)
    if isinstance(plain, dict):
        return json.dumps(plain)
    return " ".join(v if isinstance(v, str) else json.dumps(v) for v in plain)


def json_ready(value: Any) -> Any:
    """``value`` (a cell of a query result: numpy scalars and arrays, lists, dicts) as
    plain Python lists, dicts, ints, floats, str and None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if vocab.is_missing(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # Decimal, date, ...


class CsvRenderer:
    """``csv``: the findings table (``hazards --csv``)."""

    name = "csv"
    extensions = (".csv",)
    binary = False

    def render(self, analysis: Any, min_severity: str | None = None, **_options: Any) -> str:
        """``analysis.findings`` (at or above ``min_severity``) as CSV with a header row."""
        findings = filter_findings(analysis.findings, min_severity)
        return csv_safe_frame(findings_csv_frame(findings)).to_csv(index=False, lineterminator="\n")


RENDERER = CsvRenderer()
