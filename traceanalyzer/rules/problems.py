"""Problems: findings grouped into what a developer fixes.

One problem is one rule at one call site: every finding with the same ``rule`` and
``caller`` (``module+offset``, the code that misused the MDL), whichever process or MDL
it hit. A driver that leaks a mapping 1,280 times from one line of code has one problem
with ``count`` 1,280, not 1,280 rows to read.

>>> analysis.problems[["rule", "severity", "caller", "count", "processes"]]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from traceanalyzer.vocabulary import SEVERITY_DTYPE, int_or_none, str_or_none

__all__ = ["PROBLEM_COLUMNS", "problem_id", "problem_records", "problems_of"]

#: Columns of :func:`problems_of`, in order.
PROBLEM_COLUMNS: tuple[str, ...] = (
    "problem_id", "rule", "severity", "caller", "module", "count", "findings", "first_ns",
    "last_ns", "processes", "process_count", "pids", "mdls", "bytes", "permanent_bytes",
    "impact_byte_seconds", "message", "advice", "example_evidence", "example_time_ns", "fingerprints",
)


def problem_id(rule: str, caller: str | None) -> str:
    """Stable id of a problem: a hash of rule + call site, the same in every run of the
    same driver build (no address, pid or time in it)."""
    key = f"{rule}|{caller or ''}".lower()
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _module(caller: str | None) -> str | None:
    """``mydriver.sys+0x2c00`` / ``mydriver!Fn+0x3b`` -> ``mydriver.sys`` / ``mydriver``."""
    if not caller:
        return None
    text = str(caller)
    for sep in ("!", "+"):
        if sep in text:
            return text.split(sep, 1)[0] or None
    return None if text.startswith("0x") else text


def problems_of(findings: pd.DataFrame) -> pd.DataFrame:
    """Group a findings table (``Analysis.findings`` columns) into problems.

    Columns (one row per rule + caller, most severe first, then by permanent bytes, then
    by impact, then count):

    - problem_id: :func:`problem_id` (rule + caller), stable across runs.
    - rule, severity (the worst of its findings; ordered Categorical), caller (null when
      the trace did not say), module (the caller's image, e.g. ``mydriver.sys``).
    - count: occurrences (the sum of the findings' ``count``); findings: rows grouped.
    - first_ns, last_ns: first and last finding time.
    - processes: sorted list of the process images hurt; process_count: how many
      distinct (pid, image) pairs; pids: sorted list of pids.
    - mdls: distinct MDL lifetimes involved.
    - bytes, impact_byte_seconds: sums over the findings whose size is known (null when
      none is: an MDL the trace never saw built); permanent_bytes: the bytes of its
      ``permanent`` findings (leaks nothing releases before reboot; 0 when it has none,
      null when their sizes are all unknown), which rank a problem above any finite
      impact of the same severity.
    - message, advice: the earliest finding's text (one example), the rule's advice.
    - example_evidence: the earliest finding's ``evidence`` (list of event ``seq``);
      example_time_ns: its time.
    - fingerprints: the findings' fingerprints (rule + caller + process image), the keys
      ``check`` baselines had before problems.
    """
    if findings.empty:
        return _empty()
    f = findings.reset_index(drop=True)
    caller = f["caller"].astype("string").fillna("")
    keys = f["rule"].astype(str) + "\x00" + caller
    codes, uniques = pd.factorize(keys, sort=False)
    g = pd.Series(codes)
    time = f["time_ns"].astype("Int64")
    time_np = time.fillna(np.iinfo(np.int64).max).to_numpy(dtype=np.int64)
    order = np.lexsort((np.arange(len(f)), time_np, codes))
    first_row = pd.Series(order).groupby(codes[order]).first()  # earliest finding per group
    sev_rank = f["severity"].astype(SEVERITY_DTYPE).cat.codes.to_numpy()  # higher = worse
    pid = pd.to_numeric(f["pid"], errors="coerce")
    proc_key = pid.fillna(-1).astype("int64").astype(str) + "/" + f["process"].astype(str)
    nbytes = pd.to_numeric(f["bytes"], errors="coerce")
    known = nbytes.notna().to_numpy()  # null bytes: the MDL's size is unknown
    permanent = (f["permanent"].fillna(False).to_numpy(dtype=bool) if "permanent" in f.columns
                 else np.zeros(len(f), dtype=bool))
    agg = pd.DataFrame({
        "g": g,
        "count": pd.to_numeric(f["count"], errors="coerce").fillna(1).astype("int64"),
        "bytes": nbytes.fillna(0).astype("int64"),
        "known": known,
        "permanent_bytes": np.where(permanent, nbytes.fillna(0).astype("int64"), 0),
        "perm_known": permanent & known,
        "perm_any": permanent,
        "impact": f["impact_byte_seconds"].astype("float64").fillna(0.0),
        "time": time,
        "sev": sev_rank,
        "lifetime": pd.to_numeric(f["lifetime_id"], errors="coerce"),
        "proc_key": proc_key,
    }).groupby("g", sort=True).agg(
        count=("count", "sum"), findings=("count", "size"), bytes=("bytes", "sum"),
        known=("known", "any"), permanent_bytes=("permanent_bytes", "sum"),
        perm_known=("perm_known", "any"), perm_any=("perm_any", "any"),
        impact=("impact", "sum"), first=("time", "min"), last=("time", "max"),
        sev=("sev", "max"), mdls=("lifetime", "nunique"), process_count=("proc_key", "nunique"),
    )
    images = f["process"].astype("string")
    processes = images.groupby(codes).agg(lambda s: sorted(set(s.dropna())))
    pids = pid.groupby(codes).agg(lambda s: sorted({int(v) for v in s.dropna()}))
    fps = f["fingerprint"].astype(str).groupby(codes).agg(lambda s: sorted(set(s)))
    ex = first_row.reindex(agg.index).to_numpy()
    rules = f["rule"].astype(str).to_numpy()[ex]
    callers = f["caller"].astype("string").to_numpy()[ex]
    out = pd.DataFrame({
        "problem_id": [problem_id(r, None if pd.isna(c) else c) for r, c in zip(rules, callers)],
        "rule": pd.array(rules, dtype="string"),
        "severity": pd.Categorical.from_codes(agg["sev"].to_numpy(), dtype=SEVERITY_DTYPE),
        "caller": pd.array(callers, dtype="string"),
        "module": pd.array([None if pd.isna(c) else _module(c) for c in callers], dtype="string"),
        "count": agg["count"].to_numpy(),
        "findings": agg["findings"].to_numpy(),
        "first_ns": agg["first"].astype("Int64").array,
        "last_ns": agg["last"].astype("Int64").array,
        "processes": processes.reindex(agg.index).tolist(),
        "process_count": agg["process_count"].to_numpy(),
        "pids": pids.reindex(agg.index).tolist(),
        "mdls": agg["mdls"].to_numpy(),
        "bytes": _known_sum(agg["bytes"], agg["known"]),
        "permanent_bytes": _known_sum(agg["permanent_bytes"],
                                      agg["perm_known"] | ~agg["perm_any"]),
        "impact_byte_seconds": np.where(agg["known"], agg["impact"], np.nan),
        "message": pd.array(f["message"].astype("string").to_numpy()[ex], dtype="string"),
        "advice": pd.array(f["advice"].astype("string").to_numpy()[ex], dtype="string"),
        "example_evidence": [list(f["evidence"].iloc[i]) for i in ex],
        "example_time_ns": time.array[ex],
        "fingerprints": fps.reindex(agg.index).tolist(),
    })
    # a permanent leak of unknown size still outranks every finite impact
    out["_perm"] = out["permanent_bytes"].astype("float64").fillna(0.5)
    out = out.sort_values(["severity", "_perm", "impact_byte_seconds", "count",
                           "first_ns"], ascending=[False, False, False, False, True],
                          kind="stable")
    return out.reset_index(drop=True)[list(PROBLEM_COLUMNS)]


def _known_sum(total: pd.Series, known: pd.Series) -> pd.arrays.IntegerArray:
    """Sums of known bytes as nullable Int64: null where no finding's size was known."""
    return pd.arrays.IntegerArray(total.to_numpy(dtype=np.int64), ~known.to_numpy(dtype=bool))


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "problem_id": pd.array([], dtype="string"), "rule": pd.array([], dtype="string"),
        "severity": pd.Categorical([], dtype=SEVERITY_DTYPE),
        "caller": pd.array([], dtype="string"), "module": pd.array([], dtype="string"),
        "count": np.zeros(0, np.int64), "findings": np.zeros(0, np.int64),
        "first_ns": pd.array([], dtype="Int64"), "last_ns": pd.array([], dtype="Int64"),
        "processes": pd.Series([], dtype=object), "process_count": np.zeros(0, np.int64), "pids": pd.Series([], dtype=object),
        "mdls": np.zeros(0, np.int64), "bytes": pd.array([], dtype="Int64"),
        "permanent_bytes": pd.array([], dtype="Int64"),
        "impact_byte_seconds": np.zeros(0, np.float64),
        "message": pd.array([], dtype="string"), "advice": pd.array([], dtype="string"),
        "example_evidence": pd.Series([], dtype=object), "example_time_ns": pd.array([], dtype="Int64"),
        "fingerprints": pd.Series([], dtype=object),
    })[list(PROBLEM_COLUMNS)]


def problem_records(problems: pd.DataFrame) -> list[dict[str, Any]]:
    """The problems as JSON-ready dicts (the ``problems`` list of the JSON summary)."""
    out = []
    for rec in problems.to_dict("records"):
        out.append({
            "problem_id": rec["problem_id"], "rule": rec["rule"], "severity": str(rec["severity"]),
            "caller": str_or_none(rec["caller"]), "module": str_or_none(rec["module"]),
            "count": int(rec["count"]), "findings": int(rec["findings"]),
            "first_ns": int_or_none(rec["first_ns"]), "last_ns": int_or_none(rec["last_ns"]),
            "processes": [str(p) for p in rec["processes"]],
            "process_count": int(rec["process_count"]),
            "pids": [int(p) for p in rec["pids"]], "mdls": int(rec["mdls"]),
            "bytes": int_or_none(rec["bytes"]),
            "permanent_bytes": int_or_none(rec["permanent_bytes"]),
            "impact_byte_seconds": None if pd.isna(rec["impact_byte_seconds"])
            else round(float(rec["impact_byte_seconds"]), 6),
            "message": str_or_none(rec["message"]), "advice": str_or_none(rec["advice"]),
            "example_evidence_seq": [int(x) for x in rec["example_evidence"]],
            "fingerprints": list(rec["fingerprints"]),
        })
    return out
