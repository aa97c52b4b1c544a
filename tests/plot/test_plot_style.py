"""Presentation helpers of the figures (formatting itself is tested in test_vocabulary)."""

from __future__ import annotations

from traceanalyzer.plot import style


def test_byte_ticks_are_round_binary_values() -> None:
    assert style.byte_ticks(8192) == [0, 2048, 4096, 6144, 8192]
    ticks = style.byte_ticks(700 * 1024)
    assert ticks == [0, 200 * 1024, 400 * 1024, 600 * 1024]
    assert style.byte_ticks(0) == [0.0]


def test_plot_text_defuses_mathtext_and_control_characters() -> None:
    assert style.plot_text("a$b$.exe") == r"a\$b\$.exe"
    assert style.plot_text("x\x1b[31m") == "x?[31m"


def test_every_severity_has_a_marker() -> None:
    from traceanalyzer.vocabulary import SEVERITIES

    assert set(style.SEVERITY_MARKERS) == set(SEVERITIES)
