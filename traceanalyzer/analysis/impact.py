"""Impact summary: bytes x seconds per caller (module+offset) and per rule.

Answers "how do I measure the impact and prioritise": the call sites and rules whose
findings hold the most memory for the longest (``plot/impact.py`` draws them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from traceanalyzer import vocabulary as vocab

IMPACT_COLUMNS: tuple[str, ...] = ("findings", "bytes", "impact_byte_seconds",
                                   "worst_severity", "share", "permanent_bytes")


def impact_table(findings: pd.DataFrame, by: str = "caller") -> pd.DataFrame:
    """Findings grouped by ``by`` (``'caller'`` or ``'rule'``), most severe/costly first.

    Columns: ``<by>`` (the group: call site ``module+0xoffset`` or rule ID; ``'?'``
    when unknown), ``findings`` (number of findings, counting each finding's ``count``),
    ``bytes`` (sum of the known bytes; null when no finding's size is known),
    ``impact_byte_seconds`` (sum of bytes x seconds held; null likewise),
    ``worst_severity``, ``share`` (fraction of the total impact, 0..1),
    ``permanent_bytes`` (bytes of leaks that last until reboot: ``permanent`` findings).
    Sorted by worst severity, then permanent bytes (a leak until reboot outweighs any
    finite impact), then impact.
    """
    if by not in ("caller", "rule"):
        raise ValueError(f"impact_table: by must be 'caller' or 'rule', not {by!r}")
    cols = [by, *IMPACT_COLUMNS]
    if findings is None or len(findings) == 0:
        return pd.DataFrame(columns=cols)
    key = findings[by].astype(object).where(findings[by].notna(), "?").astype(str)
    key = key.where(key != "", "?")
    df = pd.DataFrame({
        by: key.to_numpy(),
        "count": _numeric(findings["count"]).fillna(1).to_numpy()
        if "count" in findings.columns else np.ones(len(findings)),
        "bytes": _numeric(findings["bytes"]).fillna(0).to_numpy(),
        "known": _numeric(findings["bytes"]).notna().to_numpy(),
        "impact": _numeric(findings["impact_byte_seconds"]).fillna(0).to_numpy(),
        "rank": _severity_ranks(findings["severity"]),
    })
    permanent = (findings["permanent"].fillna(False).to_numpy(dtype=bool)
                 if "permanent" in findings.columns else np.zeros(len(findings), dtype=bool))
    df["permanent_bytes"] = np.where(permanent, df["bytes"], 0)
    g = df.groupby(by, sort=False).agg(findings=("count", "sum"), bytes=("bytes", "sum"),
                                       known=("known", "any"),
                                       impact_byte_seconds=("impact", "sum"),
                                       rank=("rank", "min"),
                                       permanent_bytes=("permanent_bytes", "sum"))
    total = float(g["impact_byte_seconds"].sum())
    g["share"] = g["impact_byte_seconds"] / total if total > 0 else 0.0
    g["worst_severity"] = [vocab.SEVERITIES[int(r)] for r in g["rank"]]
    g = g.sort_values(["rank", "permanent_bytes", "impact_byte_seconds"],
                      ascending=[True, False, False])
    g["permanent_bytes"] = g["permanent_bytes"].astype("int64")
    g["findings"] = g["findings"].astype(int)
    # null where no finding of the group had a known size (not 0 bytes)
    g["bytes"] = pd.arrays.IntegerArray(g["bytes"].to_numpy(dtype="int64"),
                                        ~g["known"].to_numpy(dtype=bool))
    g["impact_byte_seconds"] = g["impact_byte_seconds"].where(g["known"])
    return g.reset_index()[cols]


def _severity_ranks(severity: pd.Series) -> np.ndarray:
    """:func:`vocab.severity_rank` of each row, looked up once per distinct severity
    (a lookup per row was most of the table's time at 100k findings)."""
    codes, uniques = pd.factorize(severity)  # missing: -1, the last entry (unknown)
    ranks = [vocab.severity_rank(u) for u in uniques] + [vocab.severity_rank(None)]
    return np.array(ranks, dtype=np.int64)[codes]


def _numeric(series: Any) -> pd.Series:
    """A float64 Series (missing -> NaN) from any column, Arrow-backed or not."""
    return pd.to_numeric(pd.Series(series), errors="coerce").astype("float64")
