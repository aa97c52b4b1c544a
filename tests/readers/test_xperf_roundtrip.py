"""Round trip: canonical table -> xperf dumper text (synth.xperf_writer) -> xperf reader.

The reader must give back the same canonical rows, in the same order, for the columns
xperf text carries (see the writer's docstring), whatever xperf generation's column
set, quoting or enum style the writer imitates.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import traceanalyzer as ta
from traceanalyzer.model.schema import CALL_EVENTS, COLUMNS
from traceanalyzer.readers import read_file
from traceanalyzer.synth.xperf_writer import write_xperf_text

MDL = 0xFFFFC30A4B2F1000
CARRIED = {
    "ProcessStart": ("pid", "parent_pid", "image"),
    "ProcessEnd": ("pid", "parent_pid", "image"),
    "ProcessRundown": ("pid", "parent_pid", "image"),
    "ThreadStart": ("pid", "tid"),
    "ThreadEnd": ("pid", "tid"),
    "ThreadRundown": ("pid", "tid"),
    "ImageLoad": ("pid", "base", "image_size", "image"),
    "ImageUnload": ("pid", "base", "image_size", "image"),
    "CSwitch": ("cpu", "new_tid", "old_tid", "new_pid", "old_pid"),
}
CALL_COLUMNS = tuple(
    c for c in COLUMNS
    if c not in ("time_ns", "event", "new_tid", "old_tid", "new_pid", "old_pid", "parent_pid", "image",
                 "wow64", "base", "image_size")
)


def seed_table() -> pa.Table:
    """The seed scenario: a user-mapped locked MDL of app.exe, freed correctly, a child process."""
    rows = [
        dict(time_ns=0, event="ProcessRundown", pid=4, parent_pid=0, image="System"),
        dict(time_ns=0, event="ProcessRundown", pid=1234, parent_pid=700, image="app.exe"),
        dict(time_ns=0, event="ThreadRundown", pid=4, tid=8),
        dict(time_ns=0, event="ThreadRundown", pid=1234, tid=5678),
        dict(time_ns=0, event="ImageLoad", pid=4, base=0xFFFFF80012340000, image_size=0x20000,
             image="\\SystemRoot\\System32\\drivers\\mydriver.sys"),
        dict(time_ns=1_000_000, event="CSwitch", cpu=1, new_tid=5678, old_tid=0, new_pid=1234, old_pid=0),
        dict(time_ns=1_001_000, event="IoAllocateMdl", cpu=1, pid=1234, tid=5678, mdl=MDL, va=0x7FF612340000,
             size=8192, irp=0, caller="mydriver.sys+0x1a2b"),
        dict(time_ns=1_002_000, event="MmProbeAndLockPages", cpu=1, pid=1234, tid=5678, mdl=MDL,
             access_mode="UserMode", operation="IoWriteAccess", caller="mydriver.sys+0x1a40"),
        dict(time_ns=1_003_000, event="MmMapLockedPagesSpecifyCache", cpu=1, pid=1234, tid=5678, mdl=MDL,
             access_mode="UserMode", cache_type="MmCached", mapped_va=0x1F0000, priority=0x40000010,
             bugcheck_on_failure=0, caller="mydriver.sys+0x1a60"),
        dict(time_ns=1_003_000, event="KeStackAttachProcess", cpu=1, pid=1234, tid=5678, target_pid=2345,
             caller="mydriver.sys+0x1a70"),
        dict(time_ns=1_004_000, event="MmAllocateMappingAddress", cpu=1, pid=1234, tid=5678, va=0xFFFF800000000000,
             size=4096, tag=0x6C644D4D, caller="mydriver.sys+0x1a80"),
        dict(time_ns=1_500_000, event="CSwitch", cpu=1, new_tid=8, old_tid=5678, new_pid=4, old_pid=1234),
        dict(time_ns=2_000_000, event="ProcessStart", pid=2345, parent_pid=1234, image="child.exe", wow64=1),
        dict(time_ns=2_000_000, event="ThreadStart", pid=2345, tid=2346),
        dict(time_ns=3_000_000, event="MmUnmapLockedPages", cpu=0, pid=1234, tid=5678, mdl=MDL, mapped_va=0x1F0000,
             caller="mydriver.sys+0x1b10"),
        dict(time_ns=3_001_000, event="MmUnlockPages", cpu=0, pid=1234, tid=5678, mdl=MDL, caller="mydriver.sys+0x1b20"),
        dict(time_ns=3_002_000, event="IoFreeMdl", cpu=0, pid=1234, tid=5678, mdl=MDL, status="0x00000000",
             caller="mydriver.sys+0x1b30"),
        dict(time_ns=4_000_000, event="ThreadEnd", pid=2345, tid=2346),
        dict(time_ns=4_000_000, event="ProcessEnd", pid=2345, parent_pid=1234, image="child.exe"),
        dict(time_ns=4_500_000, event="ImageUnload", pid=4, base=0xFFFFF80012340000, image_size=0x20000,
             image="\\SystemRoot\\System32\\drivers\\mydriver.sys"),
        dict(time_ns=5_000_000, event="ProcessEnd", pid=1234, parent_pid=700, image="app.exe"),
    ]
    return _table(rows)


def _table(rows: list[dict]) -> pa.Table:
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    return pa.table({n: pa.array([r.get(n) for r in rows], COLUMNS[n]) for n in names})


def carried(event: str) -> tuple[str, ...]:
    if event in CARRIED:
        return CARRIED[event]
    if event in CALL_EVENTS:
        return CALL_COLUMNS
    return ("pid", "tid", "cpu")


def assert_same_rows(source: pa.Table, result: pa.Table, wow64: bool = False) -> None:
    """Same rows for the carried columns; with ``wow64`` also the process wow64 flag (null = 0)."""
    src = source.to_pylist()
    got = result.to_pylist()
    assert [(r["time_ns"], r["event"]) for r in got] == [(r["time_ns"], r["event"]) for r in src]
    for want, have in zip(src, got):
        for col in carried(want["event"]):
            assert have.get(col) == want.get(col), (want["event"], col)
        if wow64 and want["event"].startswith("Process"):
            assert (have.get("wow64") or 0) == (want.get("wow64") or 0), (want["event"], "wow64")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"variant": "win7"},
        {"quote_names": True, "enum_numbers": True, "trailing_column": True},
    ],
    ids=["win10", "win7", "quoted-numeric-trailing"],
)
def test_seed_scenario_round_trip(tmp_path, kwargs):
    source = seed_table()
    path = write_xperf_text(source, tmp_path / "seed.txt", lost_events=2, lost_buffers=1, **kwargs)
    result = read_file(path)
    assert_same_rows(source, result.ordered_table(), wow64=kwargs.get("variant") != "win7")  # win7 has no Flags
    assert result.stats.total("lost_events") == 2 and result.stats.total("lost_buffers") == 1
    assert result.stats.total("bad_rows") == 0 and result.stats.total("bad_values") == 0
    assert result.metadata["start_time_utc"] == "2026-01-01T00:00:00+00:00"


def test_unknown_event_round_trip(tmp_path):
    source = _table([
        dict(time_ns=5000, event="SomethingElse", pid=3, tid=4, cpu=0),
        dict(time_ns=6000, event="IoFreeMdl", pid=3, tid=4, cpu=0, mdl=1),
    ])
    path = write_xperf_text(source, tmp_path / "u.txt")
    assert_same_rows(source, read_file(path).ordered_table())
    assert ta.load(path).stats.by_detail("unknown_events") == {"SomethingElse": 1}


call_rows = st.lists(
    st.fixed_dictionaries(
        {
            "time_ns": st.integers(0, 10**12).map(lambda t: t * 1000),
            "event": st.sampled_from(["IoAllocateMdl", "MmProbeAndLockPages", "MmUnlockPages"]),
            "cpu": st.integers(0, 63),
            "pid": st.integers(0, 2**31),
            "tid": st.integers(0, 2**31),
            "mdl": st.integers(0, 2**64 - 1),
            "va": st.integers(0, 2**64 - 1) | st.none(),
            "size": st.integers(0, 2**64 - 1) | st.none(),
            "access_mode": st.sampled_from(["KernelMode", "UserMode"]) | st.none(),
            "caller": st.from_regex(r"[a-z]{1,8}\.sys\+0x[0-9a-f]{1,6}", fullmatch=True),
        }
    ),
    min_size=1,
    max_size=20,
).map(lambda rows: sorted(rows, key=lambda r: r["time_ns"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=call_rows)
def test_random_calls_round_trip(tmp_path, rows):
    source = _table(rows)
    result = read_file(write_xperf_text(source, tmp_path / "r.txt"))
    assert_same_rows(source, result.ordered_table())


def test_build_records_are_left_out_not_written_bare(tmp_path):
    """xperf text has no verified form of a build record (DbgID_RSDS): the writer leaves
    ImageDebugId rows out; a bare line under our name read back as a build record of no
    build (no base, no debug id), and extra_lines still go before their row."""
    base = 0xFFFFF80012340000
    source = _table([
        dict(time_ns=0, event="ImageLoad", pid=0, base=base, image_size=0x10000, image="\\a\\mydriver.sys"),
        dict(time_ns=0, event="ImageDebugId", pid=0, base=base, image="mydriver.pdb",
             debug_id="40b3ba70-f454-5d97-4c4c-44205044422e-1"),
        dict(time_ns=0, event="ImageDebugId", pid=0),
        dict(time_ns=6000, event="IoFreeMdl", pid=3, tid=4, cpu=0, mdl=1),
    ])
    path = write_xperf_text(source, tmp_path / "b.txt", extra_lines=[(2, "# note")])
    text = path.read_text()
    assert "ImageDebugId" not in text and "#note\nMdlTrace/IoFreeMdl" in text.replace(" ", "")
    expected = source.filter(pa.array([True, False, False, True]))
    assert_same_rows(expected, read_file(path).ordered_table())
    assert ta.load(path).events_by_name == {"ImageLoad": 1, "IoFreeMdl": 1}
