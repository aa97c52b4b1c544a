"""The shared vocabulary: severity order, formatting and null tests, decided once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traceanalyzer import vocabulary as vocab
from traceanalyzer.rules.catalogue import RULES


def test_every_catalogue_severity_is_in_the_order() -> None:
    used = {r.severity for r in RULES.values()} | {r.severity_user_va for r in RULES.values()
                                                   if r.severity_user_va}
    assert used <= set(vocab.SEVERITIES)
    assert set(vocab.SEVERITY_COLORS) == set(vocab.SEVERITIES)


def test_severity_rank_orders_most_severe_first_and_unknown_as_critical() -> None:
    ranks = [vocab.severity_rank(s) for s in vocab.SEVERITIES]
    assert ranks == sorted(ranks) == list(range(len(vocab.SEVERITIES)))
    assert vocab.severity_rank("HIGH") == vocab.severity_rank("high")
    assert vocab.severity_rank("bogus") == vocab.severity_rank("critical")
    assert vocab.severity_rank(None) == vocab.severity_rank("critical")


@pytest.mark.parametrize("sev, floor, shown", [
    ("critical", "high", True), ("high", "high", True), ("medium", "high", False),
    ("info", None, True), ("info", "nonsense", True), ("weird", "low", True)])
def test_at_least_never_hides_an_unknown_severity(sev, floor, shown) -> None:
    assert vocab.at_least(sev, floor) is shown


@pytest.mark.parametrize("value, missing", [(None, True), (np.nan, True), (pd.NA, True),
                                            (pd.NaT, True), (0, False), ("", False),
                                            ([1, 2], False)])
def test_is_missing(value, missing) -> None:
    assert vocab.is_missing(value) is missing


def test_int_and_str_or_none() -> None:
    assert vocab.int_or_none(np.int64(7)) == 7
    assert vocab.int_or_none(pd.NA) is None and vocab.int_or_none(float("nan")) is None
    assert vocab.int_or_none("x") is None
    assert vocab.str_or_none(pd.NA) is None and vocab.str_or_none(3) == "3"


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (4096, "4 KiB"),
                                     (8192 + 512, "8.5 KiB"), (3 * 1024 ** 3, "3 GiB"),
                                     (None, "-"), (pd.NA, "-")])
def test_format_bytes(n, text) -> None:
    assert vocab.format_bytes(n) == text


@pytest.mark.parametrize("x, text", [(32.768, "33 B·s"), (0.4, "0 B·s"), (8192 * 2.5, "20 KiB·s"),
                                     (None, "-")])
def test_format_byte_seconds_rounds(x, text) -> None:
    # impact is bytes x seconds: 8 KiB exposed for 4 ms is 32.768 B·s, shown as 33
    assert vocab.format_byte_seconds(x) == text


@pytest.mark.parametrize("n, text", [(100, "100 bytes"), (8192, "8 KiB"),
                                     (3 * 1024 * 1024 // 2, "1.5 MiB"),
                                     (-1, "an unknown number of bytes"),
                                     (None, "an unknown number of bytes")])
def test_describe_bytes_for_messages(n, text) -> None:
    assert vocab.describe_bytes(n) == text


def test_addresses_round_trip_and_missing_text() -> None:
    assert vocab.format_address(0xFFFF8000_12340000) == "0xffff800012340000"
    assert vocab.address_to_int("0xffff800012340000") == 0xFFFF8000_12340000
    assert vocab.address_to_int(" 42 ") == 42 and vocab.address_to_int("zz") is None
    assert vocab.format_address(None) == "-" and vocab.format_address(-1, "?") == "?"
    assert vocab.format_address(pd.NA, "?") == "?"


def test_time_formatting() -> None:
    assert vocab.time_unit(8e9)[0] == "s"
    assert vocab.time_unit(1.5e9)[0] == "ms"
    assert vocab.time_unit(5e4)[0] == "µs"
    assert vocab.time_unit(10)[0] == "ns"
    assert vocab.format_time_ns(1_500_000_000, 500_000_000) == "1.000000 s"
    assert vocab.format_ms(1_234_567) == "1.235 ms"


def test_process_label_shortens_in_the_middle() -> None:
    label = vocab.process_label(1234, "averyveryverylongprocessname_that_goes_on.exe", 20)
    assert label.endswith(".exe (1234)") and "…" in label
    assert vocab.process_label(None, None) == "pid ?"
