"""Cell conversion shared by every reader (readers/convert.py) and the text helpers."""

from __future__ import annotations

import pyarrow as pa

from traceanalyzer.readers.convert import parse_integers, to_canonical
from traceanalyzer.readers.text_common import parse_name_pid, split_fields


def parse_int_column(cells: pa.Array, typ: pa.DataType) -> tuple[pa.Array, object]:
    res = parse_integers(cells, typ=typ)
    return res.array, res.bad


def test_hex_and_decimal_integers_exact_to_64_bits():
    cells = pa.array(["0xffffc30a4b2f1000", " 12 ", "0XFF", "18446744073709551615", "0x0", "+7"])
    values, bad = parse_int_column(cells, pa.uint64())
    assert values.to_pylist() == [0xFFFFC30A4B2F1000, 12, 255, 2**64 - 1, 0, 7]
    assert not bad.any()


def test_integer_nulls_and_rejects():
    cells = pa.array(["<none>", "", None, "abc", "-1", "18446744073709551616", "0x1ffffffffffffffff", "true"])
    values, bad = parse_int_column(cells, pa.uint64())
    # null tokens are not bad; text, negative (unsigned column) and overflow are
    assert values.to_pylist() == [None, None, None, None, None, None, None, 1]
    assert bad.tolist() == [False, False, False, True, True, True, True, False]
    signed, bad = parse_int_column(pa.array(["-1", "9223372036854775808", "0x7fffffffffffffff"]), pa.int64())
    assert signed.to_pylist() == [-1, None, 2**63 - 1]
    assert bad.tolist() == [False, True, False]
    small, bad = parse_int_column(pa.array(["127", "128"]), pa.int8())
    assert small.to_pylist() == [127, None] and bad.tolist() == [False, True]


def test_name_pid_forms():
    names, pids, bad = parse_name_pid(
        pa.array(["System (   4)", '"dwm.exe" (900)', "a (b) (12)", "1234", "no pid here", "", "Idle (0)"])
    )
    assert names.to_pylist() == ["System", "dwm.exe", "a (b)", None, None, None, "Idle"]
    assert pids.to_pylist() == [4, 900, 12, 1234, None, None, 0]
    assert bad.tolist() == [False, False, False, False, True, False, False]


def test_split_fields_quotes():
    assert split_fields('a, "b,c" , d') == (["a", "b,c", "d"], True)
    # xperf command line: quoted program then arguments with a comma outside the quotes
    assert split_fields('P, "C:\\a.exe" --x a,b, <none>') == (["P", '"C:\\a.exe" --x a', "b", "<none>"], True)
    assert split_fields('a, "open') == (["a", '"open'], False)
    assert split_fields('a, "say ""hi"""') == (["a", 'say "hi"'], True)


def test_enums_and_tags():
    modes = to_canonical(pa.array(["KernelMode", "1", "0x1", "user", "2"]), "access_mode")
    assert modes.array.to_pylist() == ["KernelMode", "UserMode", "UserMode", "UserMode", None]
    assert modes.bad.tolist() == [False, False, False, False, True]
    tags = to_canonical(pa.array(["MdlA", "0x41", "toolong"]), "tag")
    assert tags.array.to_pylist() == [int.from_bytes(b"MdlA", "little"), 0x41, None]
    assert tags.bad.tolist() == [False, False, True]


def test_range_rule_per_column_kind():
    from traceanalyzer.readers.convert import parse_integers

    cells = pa.array(["-1", "-9223372036854775808", "-9223372036854775809", "0x00000000000000000010",
                      "0x10000000000000000", '"42"', "-0x10", "1e3"])
    va = parse_integers(cells, "va")  # pointer: a negative decimal is the signed view of the address
    assert va.array.to_pylist() == [2**64 - 1, 2**63, None, 16, None, 42, None, None]
    assert va.bad.tolist() == [False, False, True, False, True, False, True, True]
    size = parse_integers(cells, "size")  # a byte count is never negative
    assert size.array.to_pylist() == [None, None, None, 16, None, 42, None, None]
    cpu = parse_integers(pa.array(["2147483647", "2147483648", "-2147483648"]), "cpu")
    assert cpu.array.to_pylist() == [2**31 - 1, None, -(2**31)] and cpu.bad.tolist() == [False, True, False]


def test_typed_numbers_and_single_values():
    from traceanalyzer.readers.convert import int_value, integers_to_column, value_for_column

    floats = integers_to_column(pa.array([1.0, float("nan"), 1.5, float("inf"), -1.0, None]), "size")
    assert floats.array.to_pylist() == [1, None, None, None, None, None]
    assert floats.bad.tolist() == [False, False, True, True, True, False]
    ints = integers_to_column(pa.array([2**63 - 1, -5], pa.int64()), "irql")
    assert ints.array.to_pylist() == [None, -5] and ints.bad.tolist() == [True, False]
    assert int_value("irql", 300) == (None, True)
    assert int_value("va", -8192) == (2**64 - 8192, False)
    assert int_value("size", -8192) == (None, True)
    assert int_value("pid", float("nan")) == (None, False)
    assert value_for_column("tag", "MdlA") == (int.from_bytes(b"MdlA", "little"), False)
    assert value_for_column("tag", "TooLong") == (None, True)
    assert value_for_column("access_mode", 1) == ("UserMode", False)
    assert value_for_column("access_mode", 7) == (None, True)
    assert value_for_column("status", -1073741823) == ("0xC0000001", False)
