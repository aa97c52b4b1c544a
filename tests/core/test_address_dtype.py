"""The ``address`` dtype against pandas' own ExtensionArray test suite (a subset: the
interface, not arithmetic or reductions, which are UInt64's): what pandas checks of
every extension array — indexes, merges, sorts, groupby, reshaping, casting, missing
values — holds for addresses, and results keep the ``address`` dtype."""

from __future__ import annotations

import inspect
import re

import pandas as pd
import pytest

from traceanalyzer.model.dtypes import AddressDtype, as_address

base = pytest.importorskip("pandas.tests.extension.base")
from pandas.tests.extension.conftest import *  # noqa: E402,F401,F403  (the suite's fixtures)

# kernel-ish addresses that do not overflow when added to themselves (test_combine_add)
A, B, C = 0x7FFF_0000_1000, 0x7FFF_0000_2000, 0x7FFF_0000_3000
#: the length the suite wants of ``data``: 100 in pandas 2, 10 in pandas 3 (its test_len)
N = int(re.search(r"len\(data\) == (\d+)",
                  inspect.getsource(base.BaseInterfaceTests.test_len)).group(1))


@pytest.fixture
def dtype():
    return AddressDtype()


@pytest.fixture
def data():
    return as_address([A + 0x10 * i for i in range(N)])


@pytest.fixture
def data_for_twos():
    return as_address([2] * N)


@pytest.fixture
def data_missing():
    return as_address([None, A])


@pytest.fixture
def data_for_sorting():
    return as_address([B, C, A])


@pytest.fixture
def data_missing_for_sorting():
    return as_address([B, None, A])


@pytest.fixture
def data_for_grouping():
    return as_address([B, B, None, None, A, A, B, C])


@pytest.fixture
def na_cmp():
    return lambda x, y: x is pd.NA and y is pd.NA


class TestDtype(base.BaseDtypeTests):
    pass


class TestConstructors(base.BaseConstructorsTests):
    pass


class TestGetitem(base.BaseGetitemTests):
    pass


class TestSetitem(base.BaseSetitemTests):
    pass


class TestIndex(base.BaseIndexTests):
    pass


class TestInterface(base.BaseInterfaceTests):
    pass


class TestMethods(base.BaseMethodsTests):
    _combine_le_expected_dtype = "boolean"  # as every masked array's


class TestMissing(base.BaseMissingTests):
    pass


class TestReshaping(base.BaseReshapingTests):
    pass


class TestGroupby(base.BaseGroupbyTests):
    pass


class TestCasting(base.BaseCastingTests):
    pass


class TestPrinting(base.BasePrintingTests):
    pass


class TestComparison(base.BaseComparisonOpsTests):
    pass
