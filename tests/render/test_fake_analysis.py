"""The fake Analysis of the plot/render tests has the real tables' columns and dtypes:
compared here with a real Analysis of the seed sample (a drifted fake would keep
fallback code alive in production)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer as ta
from helpers.fake_analysis import fake_analysis

SEED = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"


@pytest.fixture(scope="module")
def real() -> ta.Analysis:
    return ta.analyze(ta.load(SEED))


@pytest.mark.parametrize("table", ["findings", "mappings", "locks"])
def test_fake_tables_have_the_real_columns_and_dtypes(real, table) -> None:
    fake = getattr(fake_analysis(), table)
    want = getattr(real, table)
    assert list(fake.columns) == list(want.columns)
    assert {c: str(t) for c, t in fake.dtypes.items()} == {c: str(t) for c, t in want.dtypes.items()}


def test_fake_leak_timeline_has_the_real_columns(real) -> None:
    assert list(fake_analysis().leak_timeline().columns) == list(real.leak_timeline().columns)


def test_fake_values_use_the_real_vocabulary(real) -> None:
    fake = fake_analysis()
    assert set(fake.mappings["end_reason"]) <= {
        "unmap", "unlock", "process_exit", "mdl_freed", "pages_freed", "irp_completed", "live"}
    assert pd.api.types.is_bool_dtype(fake.locks["user_va"])
    assert set(fake.findings["rule"]) <= set(real.findings["rule"]) | {"DOUBLE_LOCK",
                                                                        "LOCKED_MDL_NEVER_UNLOCKED"}
