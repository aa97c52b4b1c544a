"""Hazard timeline: lanes, exposure windows, zoom, legible (non-overlapping) labels."""

from __future__ import annotations


import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from helpers.fake_analysis import MDL, S, fake_analysis, seed_tables

from traceanalyzer.plot.hazard_timeline import (
    hazard_lanes, plot_hazard_timeline, with_call_context,
)
from traceanalyzer.plot.style import SYSTEM_LANE


def _plot(t: dict, **kw):
    return plot_hazard_timeline(t["findings"], t["mappings"], t["locks"],
                                time_span_ns=t["time_span_ns"], **kw)


def _labels(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_call_context_comes_from_the_attributed_call() -> None:
    a = fake_analysis()
    f = with_call_context(a.findings)
    unlock = f[f["rule"] == "UNLOCK_WHILE_USER_MAPPED"].iloc[0]
    # charged to app.exe (its mapping is exposed) but called by System's worker thread
    assert (unlock["pid"], unlock["ctx_pid"], unlock["ctx_tid"]) == (1234, 4, 88)
    assert unlock["ctx_process"] == "System"


def test_lanes_put_processes_first_and_the_worker_context_last() -> None:
    a = fake_analysis()
    lanes = hazard_lanes(with_call_context(a.findings), a.mappings)
    assert list(lanes["label"]) == ["app.exe (1234)", SYSTEM_LANE]
    assert lanes.iloc[0]["worst_severity"] == "critical"
    assert list(lanes["findings"]) == [2, 0]
    assert list(lanes["causing_calls"]) == [0, 1]
    # without the call context there is nothing on the System lane
    assert list(hazard_lanes(a.findings, a.mappings)["label"]) == ["app.exe (1234)"]


def test_worker_unlock_is_marked_in_system_lane_with_arrow_to_the_finding() -> None:
    a = fake_analysis()
    t = a.tables
    fig = plot_hazard_timeline(with_call_context(a.findings), a.mappings, a.locks,
                               time_span_ns=t["time_span_ns"])
    ax = fig.axes[0]
    assert "MmUnlockPages by tid 88" in _labels(fig)
    arrows = [c for c in ax.texts if c.get_text() == "" and c.arrow_patch is not None]
    assert len(arrows) == 1
    (x0, y0), (x1, y1) = arrows[0].xyann, arrows[0].xy
    assert x0 == x1 == pytest.approx(2.0)  # at the unlock, 2 s
    assert y0 < y1  # from the System lane (bottom) up to app.exe
    ticks = [tl.get_text() for tl in ax.get_yticklabels()]
    assert ticks[-1] == f"{SYSTEM_LANE}\n1 causing call"


def test_many_processes_fold_into_others_lane() -> None:
    t = seed_tables(extra_processes=200)
    lanes = hazard_lanes(t["findings"], t["mappings"], max_lanes=6)
    assert len(lanes) == 6
    assert lanes.iloc[0]["label"] == "app.exe (1234)"  # the critical exposure ranks first
    # 201 processes: 5 lanes of their own, the other 196 folded into the last lane
    assert lanes.iloc[-1]["label"] == "others (196 processes)"
    assert lanes["findings"].sum() == len(t["findings"])


def test_seed_figure_shows_exposure_window_in_the_mapped_process_lane() -> None:
    t = seed_tables()
    fig = _plot(t)
    ax = fig.axes[0]
    expo = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch() == "///"]
    assert len(expo) == 1
    # unlock at 2 s -> process exit at 5 s, drawn on the app.exe lane (the only one, y = 0)
    assert expo[0].get_x() == pytest.approx(2.0)
    assert expo[0].get_width() == pytest.approx(3.0)
    assert expo[0].get_y() + expo[0].get_height() / 2 == pytest.approx(0.0)
    labels = _labels(fig)
    assert "UNLOCK_WHILE_USER_MAPPED" in labels
    assert "USER_MAPPING_NOT_UNMAPPED_AT_EXIT" in labels
    assert any(s.startswith("exposed 3 s") for s in labels)
    assert "1 critical, 1 high" in fig._suptitle.get_text()


def test_zoom_to_one_mdl_keeps_only_its_findings() -> None:
    t = seed_tables(extra_processes=20)
    fig = _plot(t, mdl=hex(MDL))
    labels = _labels(fig)
    assert "UNLOCK_WHILE_USER_MAPPED" in labels
    assert "DOUBLE_LOCK" not in labels and "LOCKED_MDL_NEVER_UNLOCKED" not in labels
    assert "zoom: MDL 0xffffc30a4b2f1000" in fig._suptitle.get_text()


def test_zoom_to_time_window_sets_the_axis_and_drops_outside_findings() -> None:
    t = seed_tables()
    fig = _plot(t, time_window_ns=(int(1.5 * S), int(3 * S)))
    lo, hi = fig.axes[0].get_xlim()
    # a 1.5 s window is drawn in milliseconds since trace start (1 % padding each side)
    assert fig.axes[0].get_xlabel() == "time since trace start (ms)"
    assert lo == pytest.approx(1500, abs=20) and hi == pytest.approx(3000, abs=20)
    labels = _labels(fig)
    assert "UNLOCK_WHILE_USER_MAPPED" in labels
    assert "USER_MAPPING_NOT_UNMAPPED_AT_EXIT" not in labels


def test_info_findings_are_counted_not_drawn_by_default() -> None:
    t = seed_tables()
    info = t["findings"].iloc[[0]].assign(rule="TRACE_CONTEXT_UNRESOLVED", severity="info",
                                          mapping_id=None, exposure_start_ns=None)
    f = pd.concat([t["findings"], info], ignore_index=True)
    fig = plot_hazard_timeline(f, t["mappings"], t["locks"], time_span_ns=t["time_span_ns"])
    assert "TRACE_CONTEXT_UNRESOLVED" not in _labels(fig)
    assert "1 info finding not drawn" in fig._suptitle.get_text()
    fig = plot_hazard_timeline(f, t["mappings"], t["locks"], time_span_ns=t["time_span_ns"],
                               include_info=True)
    assert "TRACE_CONTEXT_UNRESOLVED" in _labels(fig)


def test_rule_labels_never_overlap_in_the_png() -> None:
    t = seed_tables(extra_processes=120)
    fig = _plot(t, max_lanes=8)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    rule_names = set(t["findings"]["rule"])
    boxes = [Text.get_window_extent(a, renderer) for a in fig.axes[0].texts
             if a.get_text().split(" ×")[0] in rule_names]
    assert len(boxes) > 10
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    # labels that did not fit are counted in the lane name, not dropped silently
    ticks = [tl.get_text() for tl in fig.axes[0].get_yticklabels()]
    assert any("unlabelled" in s for s in ticks)


def test_no_findings_gives_an_empty_but_valid_figure() -> None:
    t = seed_tables()
    fig = plot_hazard_timeline(t["findings"].iloc[0:0], None, None, time_span_ns=(0, S))
    assert "no findings" in _labels(fig)
