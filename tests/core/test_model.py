"""The Trace model: family tables, round trip through Parquet, counters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.model.parquet_writer import write_parquet

CSV = """time_ns,event,cpu,pid,tid,mdl,va,size,new_tid,old_tid,image,vendor_note
0,ProcessRundown,0,4,,,,,,,System,
5,ThreadRundown,0,4,88,,,,,,,
30,CSwitch,1,,,,,,88,0,,
20,CSwitch,1,,,,,,0,88,,
100,IoAllocateMdl,0,4,88,0xffffc30a4b2f1000,0xffffb00012340000,0x2000,,,,first
200,IoFreeMdl,0,4,88,0xffffc30a4b2f1000,,,,,,second
250,SomethingElse,0,4,88,,,,,,,
"""


@pytest.fixture()
def trace(tmp_path: Path) -> ta.Trace:
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    return ta.load(p)


def test_families_hold_only_their_own_columns(trace: ta.Trace):
    cs = trace.cswitch
    assert list(cs.columns) == ["seq", "time_ns", "event", "cpu", "new_tid", "old_tid", "new_pid", "old_pid"]
    assert cs["time_ns"].tolist() == [20, 30]  # sorted by time
    calls = trace.calls
    assert "new_tid" not in calls.columns and "image" not in calls.columns
    assert calls["mdl"].tolist() == [0xFFFFC30A4B2F1000] * 2
    assert calls["size"].tolist()[0] == 0x2000
    # an unknown column is kept with the calls
    assert calls["vendor_note"].tolist() == ["first", "second"]


def test_counters_for_unknown_events_and_time_disorder(trace: ta.Trace):
    assert trace.stats.by_detail("unknown_events") == {"SomethingElse": 1}
    assert trace.stats.total("time_disorder") == 1  # cpu 1: 30 then 20 in file order
    rules = ta.analyze(trace).findings["rule"].tolist()
    assert "TRACE_UNKNOWN_EVENT" in rules and "TRACE_TIME_DISORDER" in rules


def test_events_table_keeps_every_row_in_time_order(trace: ta.Trace):
    ev = trace.events
    assert len(ev) == 7
    assert ev["time_ns"].tolist() == sorted(ev["time_ns"].tolist())
    assert ev["seq"].tolist() == list(range(7))
    assert ev.loc[ev["event"] == "SomethingElse", "tid"].tolist() == [88]


def test_events_at_gives_the_rows_of_the_events_table(trace: ta.Trace):
    """Each family filtered by seq (the report's evidence) = those rows of the merged
    table: the same values in the columns the picked families have, the others null."""
    whole = trace.events_table().to_pandas()
    for seqs in ([4, 0, 2], [1, 2], [6], [5, 99], []):
        got = trace.events_at(seqs).to_pandas()
        want = whole[whole["seq"].isin(seqs)].reset_index(drop=True)
        assert got["seq"].tolist() == sorted(s for s in set(seqs) if s < 7)
        pd.testing.assert_frame_equal(got, want[list(got.columns)], check_dtype=False)
        assert want.drop(columns=list(got.columns)).isna().all().all()


def test_parquet_round_trip_gives_the_same_tables(trace: ta.Trace, tmp_path: Path):
    out = tmp_path / "t.parquet"
    write_parquet(trace, out)
    back = ta.load(out)
    for family in ("calls", "cswitch", "processes", "threads", "images", "other"):
        a = trace.table(family).to_pandas()
        b = back.table(family).to_pandas()[list(a.columns)]
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=family)
    assert back.stats.total("time_disorder") == trace.stats.total("time_disorder")


def test_missing_event_names_the_closest(trace: ta.Trace):
    with pytest.raises(ta.MissingEventError, match="closest present: IoAllocateMdl"):
        trace.df_events("IoAllocMdl")
    assert len(trace.df_events("CSwitch")) == 2


def test_several_files_merge_by_time(tmp_path: Path):
    a = tmp_path / "kernel.csv"
    b = tmp_path / "driver.csv"
    a.write_text("time_ns,event,pid,image\n0,ProcessStart,1234,app.exe\n900,ProcessEnd,1234,app.exe\n")
    b.write_text("time_ns,event,pid,tid,mdl,va,size\n100,IoAllocateMdl,1234,7,0x10,0x1000,4096\n")
    t = ta.load([a, b])
    assert t.events["event"].tolist() == ["ProcessStart", "IoAllocateMdl", "ProcessEnd"]
    f = ta.analyze(t).findings
    assert f.loc[f["rule"] == "MDL_STRUCT_LEAK", "process"].tolist() == ["app.exe"]


def test_pool_tags_as_text_or_number(tmp_path: Path):
    p = tmp_path / "tags.csv"
    p.write_text("time_ns,event,va,tag\n1,MmAllocateMappingAddress,0xffff900000000000,MdlR\n"
                 "2,MmFreeMappingAddress,0xffff900000000000,0x526c644d\n")
    # 'MdlR' as the kernel sees it: first character in the lowest byte
    assert ta.load(p).calls["tag"].tolist() == [0x526C644D, 0x526C644D]
    p.write_text("time_ns,event,tag\n1,MmFreeMappingAddress,TooLong\n")
    assert ta.load(p).calls["tag"].isna().all()  # lenient: null, counted as bad_values
    with pytest.raises(ta.TraceFormatError, match="line 2: column 'tag'"):
        ta.load(p, strict=True)
