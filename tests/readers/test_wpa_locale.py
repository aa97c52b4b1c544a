"""The decimal-separator rule of docs/text_formats.md and exact locale number parsing."""

from __future__ import annotations

import pyarrow as pa

from traceanalyzer.readers.convert import parse_locale_decimal, parse_scaled_decimal
from traceanalyzer.readers.text_common import (
    decimal_votes,
    guess_decimal_separator,
)


def test_votes_follow_the_documented_rule():
    assert decimal_votes(["1,234.5"]) == (1, 0)        # both: the last one is decimal
    assert decimal_votes(["1.234,5"]) == (0, 1)
    assert decimal_votes(["1,073,741,840"]) == (1, 0)  # repeated: thousands -> '.' decimal
    assert decimal_votes(["1.073.741.840"]) == (0, 1)
    assert decimal_votes(["1,176567818"]) == (0, 1)    # not three digits after: decimal
    assert decimal_votes(["0.5", "5.25"]) == (2, 0)
    assert decimal_votes(["16,384", "5.909", "12", "abc", None]) == (0, 0)  # ambiguous / no number


def test_guess_defaults_to_dot_without_evidence():
    assert guess_decimal_separator(["16,384"]) == (".", "default")
    assert guess_decimal_separator(["16,384", "1,176567818"]) == (",", "data")
    assert guess_decimal_separator(["0,5", "0.5"]) == (".", "default")  # tie


def test_locale_numbers():
    ints, bad, integral = parse_locale_decimal(pa.array(["16,384", "4 096", "x", ""]), ".")
    assert ints.to_pylist() == [16384, 4096, None, None] and integral
    assert bad.tolist() == [False, False, True, False]
    floats, bad, integral = parse_locale_decimal(pa.array(["1.234,5", "2"]), ",")
    assert floats.to_pylist() == [1234.5, 2.0] and not integral


def test_scaled_times_are_exact():
    ns, bad = parse_scaled_decimal(pa.array(["29.866411895", "1,176567818", "7"]), ".", 9)
    # '.' decimal: "1,176567818" reads with ',' as thousands separator
    assert ns.to_pylist() == [29_866_411_895, 1_176_567_818 * 10**9, 7 * 10**9]
    ns, bad = parse_scaled_decimal(pa.array(["1,176567818", "-0,5", "3600,123456789123", "soon"]), ",", 9)
    assert ns.to_pylist() == [1_176_567_818, -500_000_000, 3_600_123_456_789, None]
    assert bad.tolist() == [False, False, False, True]
    us, _ = parse_scaled_decimal(pa.array(["1001.5"]), ".", 3)
    assert us.to_pylist() == [1_001_500]
