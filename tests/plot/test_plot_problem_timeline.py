"""Problem lanes of the hazard timeline: top N problems, the rest folded, at 10,000 findings."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.plot import style
from traceanalyzer.plot.problem_timeline import plot_problem_timeline, problem_lanes

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
N = 10_000


@pytest.fixture(scope="module")
def small() -> ta.Analysis:
    return ta.analyze(ta.load(SAMPLES / "double_lock_and_double_unlock.csv"))


@pytest.fixture(scope="module")
def many(small: ta.Analysis) -> pd.DataFrame:
    """10,000 findings from 40 call sites (two rules: 80 problems) in 7 processes; call
    site k occurs k+1 times as often as call site 0."""
    f = small.findings
    weights = np.repeat(np.arange(40), np.arange(1, 41))
    site = weights[np.arange(N) % len(weights)]
    big = f.loc[np.arange(N) % len(f)].reset_index(drop=True)
    big["caller"] = [f"mydriver.sys+0x{0x1000 + 0x10 * int(k):x}" for k in site]
    big["time_ns"] = pd.array(np.arange(N) * 100_000, dtype="Int64")
    big["process"] = [f"app{i % 7}.exe" for i in range(N)]
    return big


def test_lanes_are_the_top_problems_and_one_folded_lane(many: pd.DataFrame):
    lanes = problem_lanes(many, max_lanes=8)
    assert len(lanes) == 8
    assert lanes["count"].sum() == N  # nothing dropped
    assert lanes["problems"].tolist() == [1] * 7 + [80 - 7]
    assert lanes["label"].iloc[-1].startswith("others\n73 problems")
    top = lanes.iloc[0]
    assert f"{top['count']}x in app0.exe, app1.exe +5" in top["label"]


def test_ten_thousand_findings_draw_one_artist_per_severity(many: pd.DataFrame):
    fig = plot_problem_timeline(many, time_span_ns=(0, N * 100_000), max_lanes=8)
    ax = fig.axes[0]
    assert len(ax.collections) <= 5
    assert sum(len(c.get_offsets()) for c in ax.collections) == N
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 8 and labels[-1].startswith("others")
    assert "80 problems, 10000 findings" in fig._suptitle.get_text()
    assert style.figure_png(fig)[:4] == b"\x89PNG"


def test_time_window_keeps_only_findings_inside(many: pd.DataFrame):
    fig = plot_problem_timeline(many, time_span_ns=(0, N * 100_000),
                                time_window_ns=(0, 100 * 100_000 - 1))
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 100


def test_analysis_plot_hazard_timeline_picks_lanes(small: ta.Analysis):
    by_process = small.plot_hazard_timeline()  # 3 findings: process lanes
    assert any("db.exe" in t.get_text() for t in by_process.axes[0].get_yticklabels())
    by_problem = small.plot_hazard_timeline(lanes="problem")
    labels = [t.get_text() for t in by_problem.axes[0].get_yticklabels()]
    assert labels[0].startswith("UNLOCK_NOT_LOCKED\nmydriver.sys+0x1b6b\n2x")
    with pytest.raises(ValueError, match="lanes"):
        small.plot_hazard_timeline(lanes="bogus")


@pytest.mark.parametrize("name", ["plot_leak_timeline", "plot_hazard_timeline", "plot_impact"])
def test_plot_methods_have_explicit_documented_parameters(name: str):
    method = getattr(ta.Analysis, name)
    params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    assert params and all(p.kind is p.KEYWORD_ONLY for p in params)
    for p in params:
        assert p.name in (method.__doc__ or ""), (name, p.name)


def test_a_dollar_in_a_caller_is_escaped_for_matplotlib_only(small: ta.Analysis):
    """A '$' in trace text would start mathtext in a matplotlib label, so the figure
    escapes it; the interactive timeline (Bokeh) shows the text as it is."""
    from traceanalyzer.render.interactive import _finding_points

    f = small.findings.copy()
    f["caller"] = "my$drv.sys+0x10"
    figure_labels = [t.get_text() for t in
                     plot_problem_timeline(f, max_lanes=4).axes[0].get_yticklabels()]
    assert any(r"my\$drv.sys+0x10" in lbl for lbl in figure_labels)
    assert "my$drv.sys+0x10" in problem_lanes(f)["label"].iloc[0]
    problems = small.problems.assign(caller="my$drv.sys+0x10")
    _, lane_labels = _finding_points(f, problems, 0.0, 1e9, max_lanes=4, max_points=100)
    assert lane_labels and all("my$drv.sys+0x10" in lbl and "\\" not in lbl
                               for lbl in lane_labels)
