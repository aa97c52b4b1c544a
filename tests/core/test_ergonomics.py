"""Notebook ergonomics: ordered severities, addresses in hex that stay integers."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import traceanalyzer as ta
from traceanalyzer.model.dtypes import as_address

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MDL = 0xFFFFC30A4B2F1000


@pytest.fixture(scope="module")
def seed() -> ta.Analysis:
    return ta.analyze(ta.load(SAMPLES / "seed_unlock_from_worker.csv"))


def test_severity_compares_sorts_and_groups_in_severity_order(seed: ta.Analysis):
    f = seed.findings
    assert f["severity"].tolist() == ["critical", "high", "medium"]
    assert f[f.severity >= "high"]["severity"].tolist() == ["critical", "high"]
    assert f[f.severity < "high"]["severity"].tolist() == ["medium"]
    assert f.sort_values("severity")["severity"].tolist() == ["medium", "high", "critical"]
    groups = f.groupby("severity", observed=False).size()
    assert groups.index.tolist() == ["info", "low", "medium", "high", "critical"]
    assert groups.tolist() == [0, 0, 1, 1, 1]


def test_severity_counts_leave_out_absent_severities(seed: ta.Analysis):
    assert "(1 critical, 1 high, 1 medium)" in repr(seed)


def test_addresses_show_in_hex_and_stay_integers(seed: ta.Analysis):
    f = seed.findings
    assert "0xffffc30a4b2f1000" in f[["rule", "mdl"]].to_string()
    assert "0xffffc30a4b2f1000" in f[["rule", "mdl"]].to_html()
    assert "18446677047711305728" not in repr(f)
    assert int(f["mdl"].iloc[0]) == MDL
    assert (f["mdl"] == MDL).all()
    assert len(f[f.mdl > 0xFFFF000000000000]) == 3
    for table, cols in ((seed.lifecycles, ["mdl", "va"]), (seed.mappings, ["mdl", "mapped_va"]),
                        (seed.locks, ["mdl"]), (seed.trace.calls, ["mdl", "va", "mapped_va"])):
        for c in cols:
            assert str(table[c].dtype) == "address", (c, table[c].dtype)
    calls = seed.trace.calls
    assert calls["va"].isna().sum() == len(calls) - 1  # nulls stay null
    assert int(calls["va"].dropna().iloc[0]) == 0xFFFFB00012340000


def test_address_columns_round_trip_arrow_and_pickle():
    s = pd.Series(as_address([MDL, None, 16]))
    assert pa.array(s).type == pa.uint64()
    back = pickle.loads(pickle.dumps(s))
    assert str(back.dtype) == "address" and back.isna().tolist() == [False, True, False]
    assert repr(s).splitlines()[0].endswith("0xffffc30a4b2f1000")
    assert (s + 1).iloc[2] == 17
