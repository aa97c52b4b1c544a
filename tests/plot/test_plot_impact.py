"""Impact summary: bytes x seconds per caller and per rule, table and bar chart."""

from __future__ import annotations

import pandas as pd
import pytest

from traceanalyzer.analysis.impact import impact_table
from traceanalyzer.plot.impact import plot_impact


def _findings() -> pd.DataFrame:
    rows = [
        # rule, severity, caller, bytes, impact, count
        ("UNLOCK_WHILE_USER_MAPPED", "critical", "a.sys+0x10", 8192, 100.0, 1),
        ("UNLOCK_WHILE_USER_MAPPED", "critical", "a.sys+0x10", 4096, 50.0, 1),
        ("DOUBLE_LOCK", "high", "b.sys+0x20", 4096, 400.0, 1),
        ("MDL_STRUCT_LEAK", "low", "b.sys+0x20", 0, 0.0, 3),
        ("TRACE_UNKNOWN_EVENT", "info", None, 0, 0.0, 7),
    ]
    return pd.DataFrame(rows, columns=["rule", "severity", "caller", "bytes",
                                       "impact_byte_seconds", "count"])


def test_per_rule_sums_and_orders_by_severity_then_impact() -> None:
    t = impact_table(_findings(), "rule")
    assert list(t["rule"]) == ["UNLOCK_WHILE_USER_MAPPED", "DOUBLE_LOCK", "MDL_STRUCT_LEAK",
                               "TRACE_UNKNOWN_EVENT"]
    first = t.iloc[0]
    assert (first["findings"], first["bytes"], first["impact_byte_seconds"]) == (2, 12288, 150.0)
    assert t.set_index("rule").loc["TRACE_UNKNOWN_EVENT", "findings"] == 7  # count column
    assert t["share"].sum() == pytest.approx(1.0)
    assert t.iloc[1]["share"] == pytest.approx(400 / 550)


def test_per_caller_groups_unknown_callers_and_keeps_worst_severity() -> None:
    t = impact_table(_findings(), "caller").set_index("caller")
    assert set(t.index) == {"a.sys+0x10", "b.sys+0x20", "?"}
    assert t.loc["b.sys+0x20", "worst_severity"] == "high"
    assert t.loc["b.sys+0x20", "findings"] == 4
    assert t.loc["b.sys+0x20", "impact_byte_seconds"] == 400.0


def test_bad_grouping_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="caller"):
        impact_table(_findings(), "pid")


def test_bar_lengths_are_the_impacts_and_top_n_limits_bars() -> None:
    fig = plot_impact(_findings(), top_n=2)
    ax_caller, ax_rule = fig.axes[:2]
    widths = sorted(p.get_width() for p in ax_rule.patches)
    assert widths == [150.0, 400.0]  # two largest rules only
    assert sorted(p.get_width() for p in ax_caller.patches) == [150.0, 400.0]
    assert any("more not shown" in t.get_text() for t in ax_rule.texts)
    assert "550 B·s held in total" in fig._suptitle.get_text()


def test_empty_findings() -> None:
    empty = _findings().iloc[0:0]
    assert impact_table(empty, "rule").empty
    fig = plot_impact(empty)
    assert any(t.get_text() == "no findings" for ax in fig.axes for t in ax.texts)
