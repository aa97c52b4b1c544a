"""Every sample trace, rewritten as xperf dumper text, gives the same findings as its CSV.

sample_traces/*.csv are the canonical scenarios with expected findings; their times
are whole microseconds, so xperf text (microsecond TimeStamps) loses nothing the
analysis uses. This checks the whole path: writer -> xperf reader -> Trace -> analysis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.readers import read_file
from traceanalyzer.synth.xperf_writer import write_xperf_text

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
SCENARIOS = sorted(p for p in SAMPLES.glob("*.csv") if not p.name.endswith(".expected.csv"))
KEY = ["rule", "severity", "time_ns", "pid", "tid", "mdl", "caller", "bytes", "fingerprint"]


@pytest.mark.parametrize("csv_path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_xperf_text_gives_the_csv_findings(tmp_path, csv_path):
    table = read_file(csv_path).table
    text = write_xperf_text(table, tmp_path / f"{csv_path.stem}.txt")
    from_csv = ta.analyze(ta.load(csv_path)).findings
    from_xperf = ta.analyze(ta.load(text)).findings
    assert from_xperf[KEY].to_dict("records") == from_csv[KEY].to_dict("records")


def test_there_are_samples():
    assert len(SCENARIOS) >= 20
