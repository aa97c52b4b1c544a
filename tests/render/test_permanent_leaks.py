"""A leak that lasts until reboot is marked permanent and ranked by its bytes (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import traceanalyzer as ta
from traceanalyzer.analysis.impact import impact_table
from traceanalyzer.rules.assemble import rank_findings

SEED = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"


def _rows(*specs: tuple[str, str, int, float, bool, int]) -> pd.DataFrame:
    return pd.DataFrame([dict(rule=r, severity=s, bytes=b, impact_byte_seconds=i, permanent=p,
                              time_ns=t) for r, s, b, i, p, t in specs])


def test_permanent_leaks_rank_first_in_their_severity_by_bytes():
    df = _rows(("TRANSIENT", "high", 1 << 20, 5e6, False, 1),
               ("SMALL_LEAK", "high", 4096, 0.0, True, 2),
               ("BIG_LEAK", "high", 1 << 16, 0.0, True, 3),
               ("WORSE", "critical", 4096, 1.0, False, 4),
               ("LOW_LEAK", "medium", 1 << 30, 0.0, True, 5))
    assert rank_findings(df)["rule"].tolist() == [
        "WORSE", "BIG_LEAK", "SMALL_LEAK", "TRANSIENT", "LOW_LEAK"]


def test_seed_exit_leak_is_permanent_everywhere():
    a = ta.analyze(ta.load(SEED))
    f = a.findings
    leak = f[f["rule"] == "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]
    assert leak["permanent"].tolist() == [True]
    assert not f[f["rule"] != "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]["permanent"].any()
    js = [x for x in a.summary()["findings"] if x["rule"] == "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]
    assert js[0]["permanent"] is True
    by_rule = impact_table(f, "rule").set_index("rule")
    assert by_rule.loc["USER_MAPPING_NOT_UNMAPPED_AT_EXIT", "permanent_bytes"] == 8192
    assert by_rule.loc["UNLOCK_WHILE_USER_MAPPED", "permanent_bytes"] == 0


def test_text_table_marks_permanent_impact():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "traceanalyzer", "hazards", str(SEED)],
                         capture_output=True, text=True, check=False)
    line = next(l for l in out.stdout.splitlines() if "USER_MAPPING_NOT_UNMAPPED_AT_EXIT" in l)
    assert line.rstrip().endswith("permanent"), line
