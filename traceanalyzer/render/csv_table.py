"""CSV renderer: the findings table, one row per finding (text cells that a spreadsheet
would run as a formula get a leading ``'``: see :mod:`traceanalyzer.escape`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from traceanalyzer.escape import csv_safe_frame
from traceanalyzer.render.base import filter_findings
from traceanalyzer.rules.assemble import FINDING_COLUMNS
from traceanalyzer import vocabulary as vocab

def findings_csv_frame(findings: pd.DataFrame) -> pd.DataFrame:
    """The findings as written to CSV: the columns of the findings table
    (``rules.assemble.FINDING_COLUMNS``, in order), ``mdl`` as ``0x`` hex text,
    ``evidence`` as space-separated seq."""
    out = findings[list(FINDING_COLUMNS)].copy()
    out["mdl"] = [vocab.format_address(x, missing="") for x in out["mdl"]]
    out["evidence"] = [" ".join(str(int(s)) for s in ev) for ev in out["evidence"]]
    return out


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
