"""Notebook ergonomics: ordered severities, addresses in hex that stay integers."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import traceanalyzer as ta
from traceanalyzer.model.dtypes import ADDRESS_COLUMNS, as_address

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


def test_address_columns_join_index_and_sort(seed: ta.Analysis):
    """merge/join/set_index/sort on an address column (they raised "expected
    numpy.ndarray, got AddressArray": pandas found no index engine for the dtype)."""
    f, lc, calls = seed.findings, seed.lifecycles, seed.trace.calls
    merged = f.merge(lc, on="mdl", suffixes=("", "_lc"))
    assert len(merged) == len(f) * (lc.mdl == MDL).sum() and str(merged.mdl.dtype) == "address"
    assert len(seed.mappings.merge(lc, on="mdl")) == len(seed.mappings) * len(lc)
    with_calls = f.merge(calls[["mdl", "event"]], on="mdl", suffixes=("", "_call"))
    assert len(with_calls) == len(f) * len(calls) and "IoFreeMdl" in set(with_calls.event_call)
    assert len(f.set_index("mdl").loc[MDL]) == len(f)
    assert len(f.set_index("mdl").join(lc.set_index("mdl")[["end_state"]])) == len(f)
    assert f.sort_values(["mdl", "time_ns"]).time_ns.is_monotonic_increasing
    assert f.groupby("mdl").size().to_dict() == {MDL: 3}
    assert str(f.groupby("rule").mdl.first().dtype) == "address"
    assert str(pd.concat([f, f]).mdl.dtype) == "address"
    assert f.drop_duplicates("mdl").mdl.tolist() == [MDL]
    assert f.mdl.isin([MDL]).all() and f.mdl.value_counts().to_dict() == {MDL: 3}
    assert f.mdl.astype("uint64").dtype == "uint64" and f.mdl.to_numpy()[0] == MDL


@pytest.mark.parametrize("doc, start, end", [
    ("architecture.md", "Address columns (", ") have the `address` dtype"),
    ("sql.md", "(an\nunsigned 64-bit column named", ") is the `address` dtype")])
def test_docs_name_the_address_columns(doc: str, start: str, end: str):
    text = (SAMPLES.parent / "docs" / doc).read_text(encoding="utf-8")
    para = text[text.index(start):]
    assert set(re.findall(r"`(\w+)`", para[:para.index(end)])) == ADDRESS_COLUMNS


# --- views: one process, one time range --------------------------------------------------

@pytest.fixture(scope="module")
def reuse() -> ta.Analysis:
    """camsvc.exe (5100) locks 128 KiB at 1.01 ms; viewer.exe (6000) maps it 1.5 .. 3 ms
    and exits with it mapped; the unmap at 4 ms comes after the owner's exit."""
    return ta.analyze(ta.load(SAMPLES / "pid_reuse_unmap_after_exit.csv"))


def test_for_process_cuts_every_table_the_same_way(reuse: ta.Analysis):
    viewer = reuse.for_process("Viewer.EXE")
    assert set(viewer.findings["process"]) == {"viewer.exe"} and len(viewer.findings) == 2
    assert viewer.problems["count"].sum() == 2
    assert set(viewer.mappings["pid"]) == {6000} and viewer.locks.empty
    assert set(viewer.lifecycles["lifetime_id"]) == set(viewer.mappings["lifetime_id"])
    assert set(viewer.leak_timeline()["pid"].dropna()) == {6000}
    by_pid = reuse.for_process(6000)
    assert by_pid.findings.equals(viewer.findings)
    cam = reuse.for_process(5100)
    assert cam.findings.empty and set(cam.locks["pid"]) == {5100}
    assert set(cam.calls["pid"]) <= {5100}
    assert reuse.for_process(99999).findings.empty
    assert reuse.for_process(["viewer.exe", 5100]).findings.equals(viewer.findings)


def test_window_keeps_what_happened_or_was_held_in_it(reuse: ta.Analysis):
    early = reuse.window(0, 3_000_000)
    assert early.findings["time_ns"].max() <= 3_000_000
    assert len(early.findings) == len(reuse.findings[reuse.findings["time_ns"] <= 3_000_000])
    late = reuse.window(3_500_000, 5_000_000)
    assert late.findings["rule"].tolist() == ["USER_UNMAP_AFTER_OWNER_EXIT"]
    # the lock taken at 1.01 ms is held during the late window: kept, level shown at its start
    assert len(late.locks) == len(reuse.locks[reuse.locks["end_ns"].isna()
                                             | (reuse.locks["end_ns"] >= 3_500_000)])
    lt = late.leak_timeline()
    assert lt["time_ns"].min() >= 3_500_000 and (lt["time_ns"] == 3_500_000).any()
    assert ((late.calls["time_ns"] >= 3_500_000) & (late.calls["time_ns"] <= 5_000_000)).all()
    both = reuse.for_process("viewer.exe").window(3_500_000, 5_000_000)
    assert both.findings["rule"].tolist() == ["USER_UNMAP_AFTER_OWNER_EXIT"]
    assert ta.sql(both, "select count(*) as n from findings")["n"].tolist() == [1]
    with pytest.raises(ValueError):
        reuse.window(5, 1)


def test_view_plots_draw(reuse: ta.Analysis):
    v = reuse.for_process("viewer.exe")
    assert v.plot_hazard_timeline().axes and v.plot_leak_timeline().axes
    assert reuse.window(0, 3_000_000).plot_hazard_timeline(lanes="problem").axes


def test_trace_window_cuts_calls_and_keeps_process_state():
    trace = ta.load(SAMPLES / "seed_unlock_from_worker.csv")
    w = trace.window(4_000_000, 9_500_000)
    assert w.time_span_ns == (4_000_000, 9_000_000)  # the trace's last event is at 9 ms
    assert w.calls["event"].astype(str).tolist() == ["MmUnlockPages", "IoFreeMdl"]
    assert set(w.processes["image"]) == set(trace.processes["image"])  # started before
    events = w.events
    assert events["time_ns"].max() <= 9_500_000
    whole = ta.analyze(trace)
    cut = ta.analyze(w)  # the lock and map happened before the window: not known to it
    assert "UNLOCK_WHILE_USER_MAPPED" in set(whole.findings["rule"])
    assert "UNLOCK_WHILE_USER_MAPPED" not in set(cut.findings["rule"])
    with pytest.raises(ValueError):
        trace.window(2, 1)


def test_trace_window_past_the_trace_is_cut_to_its_span():
    """A window wider than the trace analyses like the trace: held memory counts to the
    last event, not to a window end the trace never saw (it was 12,287,987 byte-seconds
    for 24.45); one that misses the trace is a ValueError."""
    t = ta.load(SAMPLES / "free_before_unlock.csv")
    whole = ta.analyze(t).findings
    wide = t.window(-100, 10**12)
    assert wide.time_span_ns == t.time_span_ns
    cut = ta.analyze(wide).findings
    assert list(cut["rule"]) == list(whole["rule"])
    assert list(cut["impact_byte_seconds"]) == list(whole["impact_byte_seconds"])
    with pytest.raises(ValueError, match="outside the trace"):
        t.window(t.time_span_ns[1] + 1, t.time_span_ns[1] + 10)


@pytest.mark.parametrize("table", ["findings", "problems"])
def test_every_column_is_named_in_the_docstring(seed: ta.Analysis, table: str):
    """The docstring of each Analysis table names every column it returns (a column
    added without its documentation fails here)."""
    import re

    doc = getattr(ta.Analysis, table).__doc__ or ""
    named = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", doc))
    columns = list(getattr(seed, table).columns)
    assert columns and [c for c in columns if c not in named] == []
