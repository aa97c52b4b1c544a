"""Golden test: a trace with only the rundown of its end (DCEnd) gives the findings of
the same trace with the rundown of its start (DCStart).

WPR in memory (circular-buffer) mode writes the Process/Thread rundown only when the
session stops: ``ProcessRundownEnd`` / ``ThreadRundownEnd`` rows at the trace end, no
``ProcessRundown`` / ``ThreadRundown`` (docs/trace-format.md, "Process context"). Both
traces below hold the same workload, written by our ETL writer (and by the xperf text
writer):

* file mode: DCStart rundown at the start and DCEnd rundown at the end (as WPR writes a
  file-mode trace);
* memory mode: the DCEnd rundown only.

app.exe (1234, thread 5678) and System's worker 88 exist before the trace; child.exe
(2000) starts in the trace and is alive at its end (ProcessStart and DCEnd); short.exe
(2500) starts and exits in the trace with pages still locked. One call carries neither
pid nor tid: its thread comes from a CSwitch and its process only from the thread's
rundown. The findings (rule, time, process name and pid, caller, fingerprint, message)
must be the same, and the process/thread instance tables must say the same.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer as ta
from traceanalyzer.synth.etl_writer import write_etl
from traceanalyzer.synth.xperf_writer import write_xperf_text

from helpers.etl_oracles import scenario_frame

MDL_A, MDL_B, MDL_C = 0xFFFFC30A4B2F1000, 0xFFFFC30A4B2F2000, 0xFFFFC30A4B2F3000
END = 9_000_000


def _rundown(event_suffix: str, t0: int) -> list[dict]:
    """The rundown of the processes/threads alive at its time (DCStart: ``""``, DCEnd:
    ``"End"``); at the end, child.exe (started in the trace) is alive too."""
    p, t = f"ProcessRundown{event_suffix}", f"ThreadRundown{event_suffix}"
    rows = [
        dict(event=p, pid=0, parent_pid=0, image="Idle"),
        dict(event=p, pid=4, parent_pid=0, image="System"),
        dict(event=t, pid=4, tid=88),
        dict(event=p, pid=1234, parent_pid=700, image="app.exe"),
        dict(event=t, pid=1234, tid=5678),
    ]
    if event_suffix == "End":
        rows += [dict(event=p, pid=2000, parent_pid=1234, image="child.exe"),
                 dict(event=t, pid=2000, tid=2004)]
    return [dict(time_ns=t0 + 1000 * i, cpu=0, **r) for i, r in enumerate(rows)]


def _workload() -> list[dict]:
    call = dict(cpu=0, pid=1234, tid=5678)
    return [
        dict(time_ns=1_000_000, event="IoAllocateMdl", **call, mdl=MDL_A, va=0x1D2C3A40000, size=8192,
             caller="mydriver.sys+0x1a2b"),
        dict(time_ns=1_010_000, event="MmProbeAndLockPages", **call, mdl=MDL_A, access_mode="UserMode",
             operation="IoWriteAccess", caller="mydriver.sys+0x1aeb"),
        dict(time_ns=1_020_000, event="MmMapLockedPagesSpecifyCache", **call, mdl=MDL_A,
             access_mode="UserMode", cache_type="MmCached", mapped_va=0x1D2C3A50000, priority=16,
             bugcheck_on_failure=0, caller="mydriver.sys+0x1cab"),
        dict(time_ns=1_500_000, event="ProcessStart", cpu=0, pid=2000, parent_pid=1234, image="child.exe"),
        dict(time_ns=1_510_000, event="ThreadStart", cpu=0, pid=2000, tid=2004),
        dict(time_ns=1_600_000, event="ProcessStart", cpu=0, pid=2500, parent_pid=1234, image="short.exe"),
        dict(time_ns=1_610_000, event="ThreadStart", cpu=0, pid=2500, tid=2504),
        dict(time_ns=1_700_000, event="IoAllocateMdl", cpu=0, pid=2500, tid=2504, mdl=MDL_B,
             va=0x2000000, size=4096, caller="mydriver.sys+0x2000"),
        dict(time_ns=1_710_000, event="MmProbeAndLockPages", cpu=0, pid=2500, tid=2504, mdl=MDL_B,
             access_mode="UserMode", operation="IoReadAccess", caller="mydriver.sys+0x2040"),
        dict(time_ns=2_000_000, event="ThreadEnd", cpu=0, pid=2500, tid=2504),
        dict(time_ns=2_010_000, event="ProcessEnd", cpu=0, pid=2500, parent_pid=1234, image="short.exe"),
        # a call without pid and tid: thread 5678 from the CSwitch, app.exe from its rundown
        dict(time_ns=3_000_000, event="CSwitch", cpu=1, new_tid=5678, old_tid=0),
        dict(time_ns=3_010_000, event="IoAllocateMdl", cpu=1, mdl=MDL_C, va=0x3000000, size=4096,
             caller="mydriver.sys+0x3000"),
        dict(time_ns=3_020_000, event="MmProbeAndLockPages", cpu=1, mdl=MDL_C, access_mode="UserMode",
             operation="IoReadAccess", caller="mydriver.sys+0x3040"),
        dict(time_ns=5_000_000, event="MmUnlockPages", cpu=0, pid=4, tid=88, mdl=MDL_A,
             caller="mydriver.sys+0x1b6b"),
    ]


def rows_of(mode: str) -> list[dict]:
    """The workload as WPR records it in ``mode`` ("file" or "memory")."""
    start = _rundown("", 0) if mode == "file" else []
    return start + _workload() + _rundown("End", END)


def _write(mode: str, fmt: str, folder: Path) -> Path:
    frame = scenario_frame(rows_of(mode))
    if fmt == "etl":
        path = folder / f"{mode}.etl"
        write_etl(frame, path)
    else:
        path = folder / f"{mode}.txt"
        write_xperf_text(frame, path)
    return path


FINDING_COLUMNS = ["rule", "severity", "time_ns", "pid", "process", "tid", "mdl", "caller", "bytes",
                   "call_pid", "call_process", "fingerprint", "message"]


def _findings(trace: ta.Trace) -> list[dict]:
    f = ta.analyze(trace).findings
    f = f[FINDING_COLUMNS].astype(object).where(f[FINDING_COLUMNS].notna(), None)
    return sorted(f.to_dict("records"), key=lambda r: (r["rule"], r["time_ns"], str(r["mdl"])))


def _instances(frame: pd.DataFrame, key: str, columns: list[str]) -> list[tuple]:
    f = frame[columns].astype(object).where(frame[columns].notna(), None)
    return sorted(f.itertuples(index=False, name=None), key=lambda r: (r[0], str(r[1:])))


@pytest.fixture(scope="module", params=["etl", "xperf"])
def traces(request, tmp_path_factory) -> dict[str, ta.Trace]:
    folder = tmp_path_factory.mktemp(f"dcend-{request.param}")
    return {mode: ta.load(_write(mode, request.param, folder)) for mode in ("file", "memory")}


def test_memory_mode_trace_gives_the_findings_of_the_file_mode_trace(traces) -> None:
    file_mode, memory_mode = _findings(traces["file"]), _findings(traces["memory"])
    rules = {f["rule"] for f in file_mode}
    assert {"UNLOCK_WHILE_USER_MAPPED", "MDL_STRUCT_LEAK", "LOCKED_PAGES_AT_PROCESS_EXIT"} <= rules
    assert memory_mode == file_mode
    # the processes have their names, from the rundown (not "pid 1234")
    named = {(f["pid"], f["process"]) for f in memory_mode if f["pid"] is not None}
    assert (1234, "app.exe") in named and (2500, "short.exe") in named
    # the call without pid/tid: thread 5678 (CSwitch), owner app.exe from the thread's rundown
    (no_ids,) = [f for f in memory_mode if f["rule"] == "MDL_STRUCT_LEAK" and f["mdl"] == MDL_C]
    assert (no_ids["tid"], no_ids["pid"], no_ids["process"]) == (5678, 1234, "app.exe")


def test_memory_mode_trace_describes_the_same_processes_and_threads(traces) -> None:
    cols = ["pid", "image", "parent_pid", "start_ns", "end_ns"]
    file_p, memory_p = traces["file"].processes, traces["memory"].processes
    assert _instances(memory_p, "pid", cols) == _instances(file_p, "pid", cols)
    tcols = ["tid", "pid", "start_ns", "end_ns"]
    assert _instances(traces["memory"].threads, "tid", tcols) == _instances(traces["file"].threads, "tid", tcols)
    assert set(memory_p.loc[memory_p["pid"].isin([0, 4, 1234]), "source"]) == {"rundown_end"}
    assert set(file_p.loc[file_p["pid"].isin([0, 4, 1234]), "source"]) == {"rundown"}
    # what the end rundown describes is used, so not counted as dropped
    for trace in traces.values():
        assert trace.stats.total("rundown_end_events") == 0


def test_a_started_process_seen_again_in_the_end_rundown_keeps_its_one_instance(traces) -> None:
    """child.exe has ProcessStart and DCEnd: one instance, started at its ProcessStart,
    not ended; short.exe (ProcessStart, ProcessEnd) keeps its end."""
    for trace in traces.values():
        procs, threads = trace.processes, trace.threads
        (child,) = procs[procs["pid"] == 2000].itertuples()
        assert (child.source, child.start_ns, child.image) == ("start", 1_500_000, "child.exe")
        assert pd.isna(child.end_ns) and pd.isna(child.end_seq)
        (short,) = procs[procs["pid"] == 2500].itertuples()
        assert (short.source, short.start_ns, short.end_ns) == ("start", 1_600_000, 2_010_000)
        (child_thread,) = threads[threads["tid"] == 2004].itertuples()
        assert (child_thread.source, child_thread.start_ns, child_thread.pid) == ("start", 1_510_000, 2000)
        assert pd.isna(child_thread.end_ns)
        # every pid / tid has exactly one instance
        assert not procs["pid"].duplicated().any() and not threads["tid"].duplicated().any()


def test_end_rundown_instances_in_the_model() -> None:
    """The instance rules on canonical rows: a reused id's end-rundown instance starts
    where the previous instance ended (its calls before that stay with the ended one);
    a duplicate end rundown (merged sessions) adds nothing; a live instance without an
    image or owner gets it from the rundown and nothing else."""
    from helpers.rows import trace_from_rows

    trace = trace_from_rows([
        {"time_ns": 0, "event": "ProcessRundown", "pid": 300},  # no image logged
        {"time_ns": 0, "event": "ThreadRundown", "tid": 3000},  # no owner logged
        {"time_ns": 10, "event": "IoAllocateMdl", "pid": 100, "tid": 1000, "mdl": MDL_A, "size": 4096},
        {"time_ns": 20, "event": "ThreadEnd", "pid": 100, "tid": 1000},
        {"time_ns": 21, "event": "ProcessEnd", "pid": 100, "image": "old.exe"},
        {"time_ns": 30, "event": "IoAllocateMdl", "pid": 100, "tid": 1000, "mdl": MDL_B, "size": 4096},
        {"time_ns": 90, "event": "ProcessRundownEnd", "pid": 100, "image": "new.exe"},
        {"time_ns": 90, "event": "ThreadRundownEnd", "pid": 100, "tid": 1000},
        {"time_ns": 91, "event": "ProcessRundownEnd", "pid": 300, "image": "late.exe"},
        {"time_ns": 91, "event": "ThreadRundownEnd", "pid": 300, "tid": 3000},
        {"time_ns": 92, "event": "ProcessRundownEnd", "pid": 100, "image": "new.exe"},  # duplicate
    ])
    procs = trace.processes.set_index(["pid", "source"])
    assert len(trace.processes) == len(procs.index.unique())
    old, new = procs.loc[(100, "implicit")], procs.loc[(100, "rundown_end")]
    assert (old["image"], old["end_ns"]) == ("old.exe", 21)
    assert new["image"] == "new.exe" and new["start_seq"] == old["end_seq"] and pd.isna(new["end_ns"])
    assert procs.loc[(300, "rundown"), "image"] == "late.exe"
    threads = trace.threads.set_index(["tid", "source"])
    assert threads.loc[(1000, "rundown_end"), "start_seq"] == threads.loc[(1000, "implicit"), "end_seq"]
    assert threads.loc[(3000, "rundown"), "pid"] == 300
    assert len(trace.threads) == 3
    # calls before the reuse go to the ended instance, calls after it to the new one
    from traceanalyzer.context.attribution import attribute

    ctx = attribute(trace)
    images = trace.processes["image"].to_numpy()[ctx.proc_id]
    assert dict(zip(trace.calls["mdl"], images)) == {MDL_A: "old.exe", MDL_B: "new.exe"}


@pytest.mark.parametrize("fmt", ["etl", "xperf"])
def test_memory_mode_resolves_return_addresses_from_the_image_end_rundown(tmp_path: Path, fmt: str) -> None:
    """With the capture header's events (return addresses, no caller text) the modules
    come from the image rundown: in memory mode only the one of the trace end
    (ImageRundownEnd). The calls resolve to the same ``module+0xoffset`` callers, so the
    findings and their fingerprints equal the file-mode trace's."""
    import pyarrow as pa

    from traceanalyzer.synth.header_rows import header_rows

    findings = {}
    for mode in ("file", "memory"):
        rows = header_rows(pa.Table.from_pandas(scenario_frame(rows_of(mode)), preserve_index=False)).to_pylist()
        if mode == "memory":  # the drivers' rundown comes at the trace end, as DCEnd
            images = [dict(r, event="ImageRundownEnd", time_ns=END + 6000) for r in rows if r["event"] == "ImageLoad"]
            rows = [r for r in rows if r["event"] != "ImageLoad"] + images
        frame = scenario_frame([{k: v for k, v in r.items() if v is not None} for r in rows])
        path = tmp_path / f"{mode}.{fmt}"
        write_etl(frame, path) if fmt == "etl" else write_xperf_text(frame, path)
        trace = ta.load(path)
        assert trace.stats.total("unresolved_return_addresses") == 0
        if mode == "memory":
            assert set(trace.table("images").column("event").cast(pa.string()).to_pylist()) == {"ImageRundownEnd"}
        findings[mode] = _findings(trace)
    assert findings["memory"] == findings["file"]
    assert {f["caller"].split("+")[0] for f in findings["memory"] if f["caller"]} == {"mydriver.sys"}


def test_a_window_of_a_memory_mode_trace_keeps_the_names_from_the_end_rundown(traces) -> None:
    """trace.window cuts at its end; the end rundown (after it) still names what was
    alive through the window, as the start rundown does in file mode."""
    lo, hi = 900_000, 4_000_000
    file_w, memory_w = traces["file"].window(lo, hi), traces["memory"].window(lo, hi)
    assert _findings(memory_w) == _findings(file_w)
    names = dict(zip(memory_w.processes["pid"], memory_w.processes["image"]))
    assert names[1234] == "app.exe" and names[4] == "System"
    assert memory_w.time_span_ns == (max(lo, traces["memory"].time_span_ns[0]), hi)  # cut to the trace
    # short.exe (2500) ended inside the window: no end rundown of it, its exit kept
    short = memory_w.processes[memory_w.processes["pid"] == 2500]
    assert list(short["end_ns"]) == [2_010_000]


def test_an_id_reused_after_the_window_is_not_named_by_the_end_rundown() -> None:
    from helpers.rows import trace_from_rows

    trace = trace_from_rows([
        {"time_ns": 10, "event": "IoAllocateMdl", "pid": 100, "tid": 1000, "mdl": MDL_A, "size": 4096},
        {"time_ns": 50, "event": "ProcessStart", "pid": 100, "image": "later.exe"},
        {"time_ns": 90, "event": "ProcessRundownEnd", "pid": 100, "image": "later.exe"},
        {"time_ns": 90, "event": "ProcessRundownEnd", "pid": 200, "image": "kept.exe"},
    ])
    names = dict(zip(trace.window(0, 20).processes["pid"], trace.window(0, 20).processes["image"]))
    assert str(names.get(100)) != "later.exe" and names[200] == "kept.exe"
