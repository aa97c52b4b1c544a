"""Formatting helpers shared by figures and renderers."""

from __future__ import annotations

import pandas as pd
import pytest

from traceanalyzer.plot import style


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (4096, "4 KiB"),
                                     (8192 + 512, "8.5 KiB"), (3 * 1024 ** 3, "3 GiB"),
                                     (None, "-"), (pd.NA, "-")])
def test_format_bytes(n, text) -> None:
    assert style.format_bytes(n) == text


def test_byte_ticks_are_round_binary_values() -> None:
    assert style.byte_ticks(8192) == [0, 2048, 4096, 6144, 8192]
    ticks = style.byte_ticks(700 * 1024)
    assert ticks == [0, 200 * 1024, 400 * 1024, 600 * 1024]
    assert style.byte_ticks(0) == [0.0]


def test_time_unit_follows_the_span() -> None:
    assert style.time_unit(8e9)[0] == "s"
    assert style.time_unit(1.5e9)[0] == "ms"
    assert style.time_unit(5e4)[0] == "µs"


def test_plot_text_defuses_mathtext_and_control_characters() -> None:
    assert style.plot_text("a$b$.exe") == r"a\$b\$.exe"
    assert style.plot_text("x\x1b[31m") == "x?[31m"


def test_process_label_shortens_in_the_middle() -> None:
    label = style.process_label(1234, "averyveryverylongprocessname_that_goes_on.exe", 20)
    assert label.endswith(".exe (1234)") and "…" in label
    assert style.process_label(None, None) == "pid ?"


@pytest.mark.parametrize("x, text", [(32.768, "33 B·s"), (0.4, "0 B·s"), (8192 * 2.5, "20 KiB·s"),
                                     (None, "-")])
def test_format_byte_seconds_rounds(x, text) -> None:
    # impact is bytes x seconds: 8 KiB exposed for 4 ms is 32.768 B·s, shown as 33
    assert style.format_byte_seconds(x) == text

