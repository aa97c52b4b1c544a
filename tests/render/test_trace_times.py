"""Every output counts a finding's time from the trace start, as ``time_ns``, the
messages, the JSON and ``trace.window`` do: a tester found the hazards and report tables
(and the timelines' axes) counting from the first event, so on a trace whose first event
is 2 s in, the table said 0.005 where the message said 2005.000 ms."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.render.html_report import html_report

SEED = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"
SHIFT_NS = 2_000_000_000


@pytest.fixture
def late(tmp_path: Path) -> Path:
    frame = pd.read_csv(SEED, dtype=str, keep_default_na=False)
    frame["time_ns"] = [str(int(t) + SHIFT_NS) for t in frame["time_ns"]]
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_tables_show_the_time_the_json_and_message_give(late: Path, capsys) -> None:
    main(["hazards", str(late), "--json"])
    doc = json.loads(capsys.readouterr().out)
    first = doc["findings"][0]
    seconds = f"{first['time_ns'] / 1e9:.6f}"
    assert first["time_ns"] > SHIFT_NS and f"at {first['time_ns'] / 1e6:.3f} ms" in first["message"]
    main(["hazards", str(late), "--all"])
    assert seconds in capsys.readouterr().out  # the findings table's TIME(s)
    main(["hazards", str(late)])
    problems = capsys.readouterr().out
    assert f"{doc['problems'][0]['first_ns'] / 1e9:.6f}" in problems  # FIRST(s)
    analysis = ta.analyze(ta.load(late))
    page = html_report(analysis, figures={})
    assert seconds in page  # the report's findings table
    assert len(analysis.trace.window(first["time_ns"] - 1, first["time_ns"] + 1).calls) >= 1


@pytest.mark.parametrize(("plot", "kwargs"), [("plot_hazard_timeline", {"lanes": "process"}),
                                               ("plot_hazard_timeline", {"lanes": "problem"}),
                                               ("plot_leak_timeline", {})])
def test_the_timelines_axis_counts_from_the_trace_start(late: Path, plot: str, kwargs: dict) -> None:
    analysis = ta.analyze(ta.load(late))
    fig = getattr(analysis, plot)(**kwargs)
    lo, hi = fig.axes[0].get_xlim()
    # the axis is in ms for this 9 ms trace: 2000 ms in, not 0
    assert 1990 < lo < hi < 2020, (lo, hi)
