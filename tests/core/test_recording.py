"""traceanalyzer info says whether everything the analysis needs was recorded."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.model.trace import Trace
from traceanalyzer.recording import recording_check
from traceanalyzer.synth.make_sample_etls import SAMPLE_DIR


def test_a_complete_sample_is_complete():
    check = recording_check(ta.load(SAMPLE_DIR / "seed_unlock_from_worker.etl"))
    assert check["complete"] and check["missing"] == []


def test_calls_alone_name_what_is_missing(tmp_path, capsys):
    calls = pa.table({"time_ns": [1, 2], "event": ["IoAllocateMdl", "IoFreeMdl"],
                      "cpu": [0, 0], "mdl": pa.array([16, 16], pa.uint64()),
                      "return_address": pa.array([0xFFFFF80012341A2B] * 2, pa.uint64())})
    check = recording_check(Trace(calls))
    assert check["missing"] == ["process events", "thread events", "context switches", "image loads"]
    path = tmp_path / "calls.csv"
    path.write_text("time_ns,event,cpu,mdl,return_address\n1,IoAllocateMdl,0,0x10,0xfffff80012341a2b\n")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "recording: missing process events, thread events, context switches, image loads" in out
    assert "record the kernel CSwitch keyword" in out


def test_no_calls_is_missing_calls():
    table = pa.table({"time_ns": [0], "event": ["ProcessRundown"], "pid": [4]})
    assert recording_check(Trace(table))["missing"][0] == "MDL calls"


def test_a_trace_without_calls_claims_nothing_about_calls(tmp_path, capsys):
    """info said "not needed: every call carries its thread" and "0 image events (calls
    carry caller names)" of a trace with no calls at all."""
    table = pa.table({"time_ns": [0, 1], "event": ["ProcessRundown", "ImageLoad"], "pid": [4, 4]})
    check = {c["name"]: c for c in recording_check(Trace(table))["checks"]}
    assert [check[n]["detail"] for n in ("MDL calls", "context switches", "image loads")] == [
        "no driver calls in the trace", "not needed: no driver calls in the trace",
        "1 image events (no driver calls in the trace)"]
    assert check["context switches"]["ok"] and check["image loads"]["ok"] and not check["MDL calls"]["ok"]
    path = tmp_path / "no_calls.csv"
    path.write_text("time_ns,event,pid\n0,ProcessRundown,4\n")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "carries its thread" not in out and "carry caller names" not in out
    assert "not needed: no driver calls in the trace" in out


def test_cswitch_not_needed_when_calls_carry_their_thread():
    table = pa.table({"time_ns": [0, 1, 2], "event": ["ProcessRundown", "ThreadRundown", "IoFreeMdl"],
                      "pid": [4, 4, 4], "tid": [None, 8, 8], "mdl": pa.array([None, None, 16], pa.uint64())})
    check = {c["name"]: c for c in recording_check(Trace(table))["checks"]}
    assert check["context switches"]["ok"] and "not needed" in check["context switches"]["detail"]


def test_build_records_are_not_counted_as_image_events():
    """An ImageDebugId row names the PDB build of an image; it loads nothing, so `info`
    counts only the loads (a merged trace has one build record per loaded image)."""
    real = ta.load(Path(__file__).parents[1] / "data" / "real" / "microsoft__perfview"
                   / "net.4.5.2.x64.buffers-0-1.etl")
    assert real.events_by_name["ImageDebugId"] == real.events_by_name["ImageLoad"] == 60
    check = {c["name"]: c for c in recording_check(real)["checks"]}
    assert check["image loads"]["detail"] == "60 image events (no driver calls in the trace)"
    table = pa.table({"time_ns": [0, 1], "event": ["ImageDebugId", "IoFreeMdl"], "pid": [0, 4],
                      "base": pa.array([0xFFFFF80012340000, None], pa.uint64()),
                      "image": ["mydriver.pdb", None], "debug_id": ["40b3ba70-f454-5d97-4c4c-44205044422e-1", None],
                      "return_address": pa.array([None, 0xFFFFF80012341A2B], pa.uint64())})
    check = {c["name"]: c for c in recording_check(Trace(table))["checks"]}
    assert not check["image loads"]["ok"]
    assert check["image loads"]["detail"] == "1 of 1 return addresses are in no loaded module (0 image events)"
