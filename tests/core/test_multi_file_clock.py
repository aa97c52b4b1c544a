"""Several files are put on one clock before they are merged (docs/cli.md, "Trace
inputs"): each file's times count from its own start, so an ETL file that started later
is shifted by how much later, and time 0 is the earliest start. A file without an
absolute start (canonical CSV) keeps its times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

import traceanalyzer as ta
from traceanalyzer.session import time_offsets
from traceanalyzer.synth.etl_writer import write_etl

from helpers.etl_oracles import scenario_frame

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
LATE_S = 5


def _kernel() -> pd.DataFrame:
    return scenario_frame([
        dict(time_ns=0, event="ProcessRundown", pid=4, image="System"),
        dict(time_ns=1000, event="ThreadRundown", pid=4, tid=88),
        dict(time_ns=2000, event="ProcessStart", pid=1234, image="app.exe"),
        dict(time_ns=3000, event="ThreadStart", pid=1234, tid=5678),
        dict(time_ns=4000, event="CSwitch", cpu=0, new_tid=5678, old_tid=0),
        dict(time_ns=(LATE_S + 1) * 10**9, event="CSwitch", cpu=0, new_tid=0, old_tid=5678),
        dict(time_ns=(LATE_S + 2) * 10**9, event="ProcessEnd", pid=1234, image="app.exe"),
    ])


def _driver() -> pd.DataFrame:
    mdl = 0xFFFFC30A4B2F1000
    return scenario_frame([
        dict(time_ns=1000, event="IoAllocateMdl", pid=1234, tid=5678, mdl=mdl, va=0xFFFFB00012340000, size=8192),
        dict(time_ns=2000, event="CSwitch", cpu=0, new_tid=5678, old_tid=0),
        dict(time_ns=3000, event="IoFreeMdl", pid=1234, tid=5678, mdl=mdl),
    ])


def _files(tmp_path: Path) -> tuple[Path, Path]:
    kernel, late = tmp_path / "kernel.etl", tmp_path / "driver.etl"
    write_etl(_kernel(), kernel, start_time=START)
    write_etl(_driver(), late, start_time=START + timedelta(seconds=LATE_S), logger_name="MdlTraceSession")
    return kernel, late


def test_a_later_etl_is_shifted_by_how_much_later_it_started(tmp_path: Path) -> None:
    kernel, late = _files(tmp_path)
    shift = LATE_S * 10**9
    for paths in ([kernel, late], [late, kernel]):  # the order of the files does not matter
        trace = ta.load(paths)
        assert trace.calls.time_ns.tolist() == [shift + 1000, shift + 3000]
        assert trace.time_span_ns == (0, (LATE_S + 2) * 10**9)
        assert trace.metadata["start_time_utc"] == START.isoformat()
        files = {Path(f["trace"]).name: f for f in trace.metadata["files"]}
        assert files["driver.etl"]["offset_ns"] == shift and files["kernel.etl"]["offset_ns"] == 0
    # the CSwitch rows read again on first use get the same shift (and the same seq)
    kept = ta.load([kernel, late], keep_cswitch=True).cswitch
    again = ta.load([kernel, late]).cswitch
    assert again.time_ns.tolist() == kept.time_ns.tolist() == [4000, shift + 2000, shift + 10**9]
    assert again.seq.tolist() == kept.seq.tolist()


def test_a_file_without_an_absolute_start_keeps_its_times(tmp_path: Path) -> None:
    kernel, late = _files(tmp_path)
    csv = tmp_path / "driver.csv"
    _driver().to_csv(csv, index=False)
    trace = ta.load([late, csv])
    assert trace.metadata["start_time_utc"] == (START + timedelta(seconds=LATE_S)).isoformat()
    assert sorted(trace.calls.time_ns.tolist()) == [1000, 1000, 3000, 3000]
    assert [f["offset_ns"] for f in trace.metadata["files"]] == [0, 0]
    assert trace.metadata["files"][1]["start_time_utc"] is None


def test_files_of_one_boot_align_by_their_qpc_clock() -> None:
    qpc = dict(format="etl", boot_time_filetime=133_000_000_000_000_000, clock_type="QPC",
               ticks_per_second=10_000_000)
    first = dict(qpc, start_time_filetime=134_000_000_000_000_000, start_clock=36_000_000_000)
    # StartTime says 1 ms later (system-time granularity); the QPC says 1234.5678 ms
    second = dict(qpc, start_time_filetime=134_000_000_000_010_000, start_clock=36_012_345_678)
    assert time_offsets([first, second, {"format": "csv"}]) == [0, 1_234_567_800, 0]
    other_boot = dict(second, boot_time_filetime=133_000_000_000_000_001)
    assert time_offsets([other_boot, first]) == [1_000_000, 0]  # by StartTime
    assert time_offsets([dict(first, start_time_filetime=0), second]) == [0, 0]  # no believable start


def test_an_xperf_text_aligns_by_its_trace_start(tmp_path: Path) -> None:
    from traceanalyzer.synth.xperf_writer import write_xperf_text

    kernel, _late = _files(tmp_path)
    text = tmp_path / "driver.txt"
    write_xperf_text(_driver(), text, start_time_utc=(START + timedelta(seconds=LATE_S)).isoformat())
    trace = ta.load([text, kernel])
    assert trace.calls.time_ns.tolist() == [LATE_S * 10**9 + 1000, LATE_S * 10**9 + 3000]
    assert [f["offset_ns"] for f in trace.metadata["files"]] == [LATE_S * 10**9, 0]
