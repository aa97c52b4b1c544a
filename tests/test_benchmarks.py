"""The README's scaling table comes from benchmarks/scaling.py: it must keep running
(tiny sizes here; the figures themselves are measured by hand, not by a timed test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scaling_table_runs_every_input_kind(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--sizes", "3000",
         "--repeat", "1", "--no-others", "--markdown", "--keep", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=600)
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert [c.strip() for c in header][:3] == ["input", "size", "events"]
    assert sorted(r[0].strip() for r in body) == ["csv", "csv-calls", "etl-calls", "etl-cswitch", "xperf"]
    events_of = {r[0].strip(): r[2].strip() for r in body}
    assert events_of["csv-calls"] == events_of["etl-calls"]  # the same trace in both formats
    for r in body:
        events = int(r[2].strip().replace(",", ""))
        assert 2_500 <= events <= 3_500, r  # the generators round to whole lifecycles
        assert float(r[4]) > 0 and int(r[6].strip().replace(",", "")) > 50  # wall s, RSS MB
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".csv", ".csv", ".etl", ".etl", ".txt"]
