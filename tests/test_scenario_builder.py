"""The scenario builder (traceanalyzer.synth.scenario): the rows it writes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from traceanalyzer.readers.registry import read_file
from traceanalyzer.synth.scenario import NX_NORMAL_PRIORITY, Scenario, pool_tag

MDL = 0xFFFFC30A4B2F1000
KVA = 0xFFFFB00012340000
UVA = 0x000001D2C3A40000


def rows_of(s: Scenario, event: str) -> list[dict]:
    return [r for r in s.rows if r["event"] == event]


def test_process_writes_start_rows_and_returns_its_first_thread():
    s = Scenario()
    app = s.process(pid=1234, image="app.exe", tid=5678, parent_pid=900, wow64=True)
    assert [r["event"] for r in s.rows] == ["ProcessStart", "ThreadStart"]
    start, thread = s.rows
    assert (start["pid"], start["image"], start["parent_pid"], start["wow64"]) == (
        1234, "app.exe", 900, 1)
    assert (thread["pid"], thread["tid"]) == (1234, 5678)
    assert "tid" not in start  # the process row has no thread
    assert (app.pid, app.tid, app.process.image, app.process.wow64) == (1234, 5678, "app.exe",
                                                                        True)


def test_system_threads_share_one_idle_and_system_rundown():
    s = Scenario()
    w1 = s.system_thread(tid=88)
    w2 = s.system_thread(tid=92, cpu=3)
    rundowns = rows_of(s, "ProcessRundown")
    assert [(r["pid"], r["image"]) for r in rundowns] == [(0, "Idle"), (4, "System")]
    assert [(r["pid"], r["tid"]) for r in rows_of(s, "ThreadRundown")] == [(4, 88), (4, 92)]
    assert (w1.pid, w2.pid, w2.cpu) == (4, 4, 3)


def test_at_sets_time_and_rows_without_at_follow_by_step():
    s = Scenario(step_ns=500)
    s.at(1_000_000).event("ImageLoad", image="mydriver.sys")
    s.event("ImageLoad", image="other.sys")
    s.after(20_000).event("ImageLoad", image="third.sys")
    assert [r["time_ns"] for r in s.rows] == [1_000_000, 1_000_500, 1_020_500]
    with pytest.raises(ValueError):
        s.at(-1)


def test_thread_fills_pid_tid_and_cpu_of_a_call():
    s = Scenario(driver="acme.sys")
    app = s.process(pid=1234, image="app.exe", tid=5678, cpu=2)
    s.at(1_000).allocate_mdl(app, mdl=MDL, va=UVA, size=8192)
    s.at(2_000).allocate_mdl(app.on(5), mdl=MDL + 0x1000, va=UVA, size=4096, irp=0xFFFF1000)
    first, second = rows_of(s, "IoAllocateMdl")
    assert (first["pid"], first["tid"], first["cpu"]) == (1234, 5678, 2)
    assert (first["mdl"], first["va"], first["size"]) == (MDL, UVA, 8192)
    assert first["caller"].startswith("acme.sys+0x")
    assert "irp" not in first
    assert (second["cpu"], second["irp"]) == (5, 0xFFFF1000)


def test_cpu_only_call_has_no_pid_or_tid():
    s = Scenario()
    s.at(10).unlock(None, MDL, cpu=1)
    (row,) = s.rows
    assert row["cpu"] == 1 and "pid" not in row and "tid" not in row
    assert row["event"] == "MmUnlockPages" and row["mdl"] == MDL


def test_map_helpers_write_mode_cache_and_priority():
    s = Scenario()
    app = s.process(pid=1, image="a.exe", tid=2)
    s.at(10).map_kernel(app, MDL, 0xFFFFA58012340000)
    s.at(20).map_user(app, MDL, UVA, cache="MmNonCached")
    s.at(30).map_kernel(app, MDL, 0, priority=16, bugcheck_on_failure=1)
    k, u, bad = rows_of(s, "MmMapLockedPagesSpecifyCache")
    assert (k["access_mode"], k["cache_type"], k["priority"], k["bugcheck_on_failure"]) == (
        "KernelMode", "MmCached", NX_NORMAL_PRIORITY, 0)
    assert NX_NORMAL_PRIORITY & 0x40000000
    assert (u["access_mode"], u["cache_type"], u["mapped_va"]) == ("UserMode", "MmNonCached", UVA)
    assert not u["priority"] & 0x40000000
    assert (bad["priority"], bad["bugcheck_on_failure"], bad["mapped_va"]) == (16, 1, 0)


def test_attach_detach_cswitch_rows():
    s = Scenario()
    w = s.system_thread(tid=88)
    app = s.process(pid=1234, image="app.exe", tid=5678)
    s.attach(w, app)
    s.detach(w)
    s.cswitch(1, new=app)
    s.cswitch(0, new=w, old=app, with_pids=True)
    att, det = rows_of(s, "KeStackAttachProcess"), rows_of(s, "KeUnstackDetachProcess")
    assert (att[0]["pid"], att[0]["tid"], att[0]["target_pid"]) == (4, 88, 1234)
    assert (det[0]["pid"], det[0]["tid"]) == (4, 88) and "target_pid" not in det[0]
    first, second = rows_of(s, "CSwitch")
    assert (first["cpu"], first["new_tid"], first["old_tid"]) == (1, 5678, 0)
    assert "new_pid" not in first and "pid" not in first
    assert (second["new_pid"], second["old_pid"], second["old_tid"]) == (4, 1234, 5678)


def test_process_end_ends_its_live_threads_at_the_same_time():
    s = Scenario()
    app = s.process(pid=1234, image="app.exe", tid=5678)
    t2 = s.thread(app, tid=5690)
    t3 = s.thread(app.process, tid=5694)
    s.at(500_000).thread_end(t2)
    s.at(900_000).process_end(t3)  # a thread stands for its process
    ends = [r for r in s.rows if r["time_ns"] == 900_000]
    assert [(r["event"], r.get("tid")) for r in ends] == [
        ("ThreadEnd", 5678), ("ThreadEnd", 5694), ("ProcessEnd", None)]
    assert ends[-1]["pid"] == 1234
    # the same pid again is a new process instance
    again = s.at(1_000_000).process(pid=1234, image="app.exe", tid=5700)
    assert again.process != app.process and again.process.start_ns == 1_000_000


def test_mistakes_raise():
    s = Scenario()
    with pytest.raises(ValueError, match="unknown canonical column"):
        s.event("IoFreeMdl", mld=MDL)
    with pytest.raises(ValueError, match="not a call"):
        s.call("ProcessStart")
    with pytest.raises(ValueError):
        pool_tag("Tag")


def test_pool_tag_is_the_little_endian_ulong():
    assert pool_tag("MdlR") == 0x526C644D
    assert pool_tag(0x1234) == 0x1234


def test_columns_are_only_those_used_in_schema_order():
    s = Scenario()
    app = s.process(pid=1234, image="app.exe", tid=5678)
    s.at(1_000).free_mdl(app, MDL)
    assert s.columns() == ["time_ns", "event", "pid", "tid", "mdl", "caller", "image"]


def test_csv_text_writes_addresses_hex_and_counts_decimal():
    s = Scenario()
    app = s.process(pid=1234, image="app, with comma.exe", tid=5678)
    s.at(1_000_000).allocate_mdl(app, MDL, va=KVA, size=8192)
    s.at(1_100_000).call("MmAllocateMappingAddress", app, mapped_va=KVA, size=0x10000,
                         tag=pool_tag("MdlR"))
    lines = s.csv_text().splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["time_ns", "event"]
    alloc = dict(zip(header, lines[3].split(",")))
    assert alloc["mdl"] == "0xffffc30a4b2f1000" and alloc["va"] == "0xffffb00012340000"
    assert (alloc["size"], alloc["pid"], alloc["mapped_va"]) == ("8192", "1234", "")
    rsv = dict(zip(header, lines[4].split(",")))
    assert rsv["tag"] == "0x526c644d" and rsv["size"] == "65536"
    assert lines[1].endswith(',"app, with comma.exe"')


def test_to_frame_types_and_nulls():
    s = Scenario()
    app = s.process(pid=1234, image="app.exe", tid=5678)
    s.at(1_000).allocate_mdl(app, MDL, va=KVA, size=8192)
    df = s.to_frame()
    assert str(df["mdl"].dtype) == "UInt64" and str(df["pid"].dtype) == "Int64"
    assert str(df["event"].dtype) == "string"
    assert df["mdl"].isna().tolist() == [True, True, False]
    assert int(df["mdl"].iloc[2]) == MDL and int(df["size"].iloc[2]) == 8192


def test_csv_reads_back_through_the_canonical_reader(tmp_path):
    s = Scenario()
    w = s.system_thread(tid=88)
    app = s.process(pid=1234, image="app.exe", tid=5678)
    s.at(1_000_000).allocate_mdl(app, MDL, va=KVA, size=8192)
    s.at(1_010_000).probe_and_lock(app, MDL, mode="KernelMode")
    s.at(1_020_000).map_user(app, MDL, UVA)
    s.at(5_000_000).unlock(w, MDL)
    s.at(9_000_000).process_end(app)
    table = read_file(s.to_csv(tmp_path / "t.csv")).table
    assert table.num_rows == len(s.rows)
    got = table.to_pylist()
    for want, row in zip(s.rows, got):
        for key, value in want.items():
            assert row[key] == value, (key, want, row)
    assert table.schema.field("mdl").type == pa.uint64()


def test_idle_thread_is_tid_0_of_the_idle_process():
    s = Scenario()
    idle = s.idle_thread(cpu=2)
    assert (idle.pid, idle.tid, idle.cpu, idle.process.image) == (0, 0, 2, "Idle")
    assert (s.rows[-1]["event"], s.rows[-1]["pid"], s.rows[-1]["tid"]) == ("ThreadRundown", 0, 0)
    assert sum(1 for r in s.rows if r["event"] == "ProcessRundown") == 2  # Idle + System
