"""Every real ETL file (tests/data/real, or $TA_REAL_TRACES) opens, with dissect.etl's record counts.

dissect.etl (test-only) walks the same buffers independently; its record count includes
the logfile header and extension records, as ``metadata["records"]`` does.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers import pick_reader, read_file
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import read_etl

from helpers.real_traces import (full_collection, full_collection_trace, in_repo_trace,
                                  real_trace_files)

ETL_FILES = real_trace_files((".etl",))


def test_the_real_traces_are_there(real_traces: Path) -> None:
    # the full collection's SOURCES.md lists 24 plain .etl files; the in-repo subset has 22
    assert len(ETL_FILES) >= (24 if full_collection() else 22)


@pytest.mark.parametrize("name", ETL_FILES, ids=str)
def test_real_file_opens_with_dissect_record_count(real_traces: Path, name: Path, oracles) -> None:
    path = real_traces / name
    assert pick_reader(path).name == "etl"
    result = read_file(path)
    assert result.metadata["records"] == oracles.dissect_record_count(path)
    assert result.stats.total("corrupt_buffers") == 0
    assert result.stats.total("truncated_records") == 0
    for column in result.table.column_names:
        typ = result.table.schema.field(column).type
        expected = COLUMNS[column]
        assert typ == expected or (column == "event" and pa.types.is_dictionary(typ)), column


SHUTDOWN_CUT = "airbus-cert__etl-parser/ShutdownPerfDiagLogger.buffers-0-1-24.etl"
SHUTDOWN = "airbus-cert__etl-parser/ShutdownPerfDiagLogger.etl"


@pytest.mark.parametrize("name", [SHUTDOWN_CUT, SHUTDOWN], ids=["cut", "full"])
def test_logfile_header_facts_match_dissect(name: str, oracles) -> None:
    path = in_repo_trace(name) if name == SHUTDOWN_CUT else full_collection_trace(name)
    meta = read_etl(path, ReadOptions()).metadata
    header = oracles.dissect_logfile(path)
    assert meta["cpus"] == 2 and meta["pointer_size"] == 8 and meta["os_build"] == 18362  # SOURCES.md
    assert meta["ticks_per_second"] == header.perf_freq
    assert meta["start_time_filetime"] == header.start_time
    assert meta["start_time_utc"].startswith("2020-02-28")


@pytest.mark.parametrize("name", [
    "airbus-cert__etl-parser/AMSITrace.etl",
    "jtmoon79__super-speedy-syslog-searcher/WindowsUpdate.20251008.140245.443.8.etl",
])
def test_lost_events_come_from_the_logfile_header(real_traces: Path, name: str, oracles) -> None:
    path = real_traces / name
    expected = oracles.dissect_logfile(path).header.EventsLost
    assert expected > 0  # both sessions lost events
    assert read_etl(path, ReadOptions()).stats.total("lost_events") == expected


def test_kernel_event_counts_of_the_shutdown_trace() -> None:
    """SOURCES.md (dissect symbols): Process DCStart 94 / End 60 / DCEnd 37 / Defunct 5,
    Thread DCStart 1175 / End 1032 / DCEnd 501 / Start 350, Image UnLoad 4791,
    Process-group ImageLoad(10) 72; Process/Thread/Image DCEnd are rows (ProcessRundownEnd,
    ThreadRundownEnd, ImageRundownEnd 2145), Process Defunct is counted, not a row."""
    result = read_etl(full_collection_trace(SHUTDOWN), ReadOptions())
    counts = result.table.column("event").to_pandas().astype(str).value_counts().to_dict()
    assert counts["ProcessRundown"] == 94 and counts["ProcessEnd"] == 60
    assert counts["ThreadRundown"] == 1175 and counts["ThreadEnd"] == 1032 and counts["ThreadStart"] == 350
    assert counts["ImageUnload"] == 4791
    assert counts["ProcessRundownEnd"] == 37 and counts["ThreadRundownEnd"] == 501
    assert counts["ImageRundownEnd"] == 2145 and not result.stats.by_detail("rundown_end_events")
    assert result.stats.by_detail("process_defunct_events") == {"Process/39": 5}
    # Image DCStart (6745 as etl-parser decodes them) and the 72 hook-0x030A loads
    assert counts["ImageLoad"] == 6745 + 72


def test_kernel_event_counts_of_the_shutdown_cut() -> None:
    """The in-repo cut (SOURCES.md): Process rundown 9 / end 1, Thread rundown 168 / end 64
    / start 3, Image DCStart 389 + load (hook 0x030A) 1 / unload 138, five Process
    Terminate (opcode 11, not decoded: counted as unknown)."""
    result = read_etl(in_repo_trace(SHUTDOWN_CUT), ReadOptions())
    counts = result.table.column("event").to_pandas().astype(str).value_counts().to_dict()
    assert counts == {"ImageLoad": 390, "ThreadRundown": 168, "ImageUnload": 138,
                      "ProcessRundown": 9, "ThreadEnd": 64, "ThreadStart": 3, "ProcessEnd": 1}
    assert result.stats.by_detail("unknown_events") == {"Kernel-Process/11": 5}
    frame = result.table.to_pandas()
    threads = frame[frame["event"].astype(str).str.startswith("Thread")]
    assert threads["tid"].notna().all() and threads["pid"].notna().all()
    assert set(frame.loc[frame["event"] == "ProcessRundown", "image"]) >= {"System"}


def test_compressed_relogged_file_decompresses_in_repo() -> None:
    """SelfDescribingSingleEvent.etl (relogged, compressed buffers): every record of its 3
    buffers is walked, the TraceLogging TestEvent among them (SOURCES.md)."""
    path = in_repo_trace("microsoft__perfview/SelfDescribingSingleEvent.etl")
    data = path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    assert int.from_bytes(data[size + 0x34:size + 0x36], "little") & 0x40  # buffer 1 is compressed
    result = read_etl(path, ReadOptions())
    assert result.metadata["buffers"] == 3 and result.metadata["records"] == 23
    assert result.stats.by_detail("unknown_events")["MySource/TestEvent"] == 1
    assert result.stats.total("corrupt_buffers") == 0


def test_compressed_relogged_files_decompress() -> None:
    result = read_etl(full_collection_trace("microsoft__perfview/net.4.5.2.x64.etl"), ReadOptions())
    assert result.metadata["records"] == 179_474  # SOURCES.md
    counts = result.table.column("event").to_pandas().astype(str).value_counts().to_dict()
    assert counts["ProcessRundown"] == 32 and counts["ThreadRundown"] == 670
    assert result.stats.by_detail("unknown_events")["Kernel-PerfInfo/46"] == 79_528  # SampleProf


def test_gzipped_etl_after_gunzip(real_traces: Path, tmp_path: Path, oracles) -> None:
    src = real_traces / "jtmoon79__super-speedy-syslog-searcher" / "CldFlt0-2025-12-21-121418.etlgz"
    path = tmp_path / "CldFlt0.etl"
    path.write_bytes(gzip.decompress(src.read_bytes()))
    result = read_file(path)
    assert result.metadata["records"] == oracles.dissect_record_count(path)
    assert result.stats.total("wpp_events") == 13  # SOURCES.md: 13 WPP records


@pytest.mark.slow
def test_tracelogging_tester_7z(tmp_path: Path, oracles) -> None:
    import py7zr

    archive_path = full_collection_trace("Siemens-Healthineers__ETWAnalyzer/TraceLoggingTester.7z")
    with py7zr.SevenZipFile(archive_path) as archive:
        archive.extractall(tmp_path)
    path = next(tmp_path.rglob("*.etl"))
    result = read_file(path)
    assert result.metadata["records"] == oracles.dissect_record_count(path) == 172_716
    assert result.metadata["cpus"] == 20
    unknown = result.stats.by_detail("unknown_events")
    tl = {k: v for k, v in unknown.items() if k.startswith("CSharpTraceLoggingEventSource/")}
    assert sum(tl.values()) == 70 and set(tl.values()) == {10}  # 7 events x 10 (SOURCES.md)
    counts = result.table.column("event").to_pandas().astype(str).value_counts().to_dict()
    assert counts["ThreadStart"] == 23 and counts["ThreadEnd"] == 8
    assert counts["ProcessStart"] == 1 and counts["ProcessEnd"] == 1
    # a WPR memory-mode trace: no DCStart rundown, only DCEnd (SOURCES.md)
    assert counts["ProcessRundownEnd"] == 360 and counts["ThreadRundownEnd"] == 6719
    assert "ProcessRundown" not in counts and "ThreadRundown" not in counts
    assert counts["ImageRundownEnd"] == 23367 and not result.stats.by_detail("rundown_end_events")


@pytest.mark.slow
def test_tracelogging_tester_names_its_processes_from_the_end_rundown(tmp_path) -> None:
    """The processes alive before the trace are named by their DCEnd rundown (before,
    12 of the 16 processes the events touch had no name), and it ends none of them."""
    import py7zr

    import traceanalyzer as ta

    archive_path = full_collection_trace("Siemens-Healthineers__ETWAnalyzer/TraceLoggingTester.7z")
    with py7zr.SevenZipFile(archive_path) as archive:
        archive.extractall(tmp_path)
    trace = ta.load(next(tmp_path.rglob("*.etl")))
    procs = trace.processes
    assert procs["image"].notna().all()
    assert not procs["pid"].duplicated().any()
    by_source = procs["source"].value_counts().to_dict()
    # wpr.exe 3296 ends (ProcessEnd only); wpr.exe 39036 starts and is in the rundown too
    assert by_source == {"rundown_end": 359, "start": 1, "implicit": 1}
    wpr = procs[procs["image"] == "wpr.exe"].sort_values("pid")
    assert wpr[["pid", "source"]].values.tolist() == [[3296, "implicit"], [39036, "start"]]
    assert wpr["end_ns"].notna().tolist() == [True, False]
    assert procs.loc[procs["source"] == "rundown_end", "end_ns"].isna().all()
    # every thread the rundown lists has its owning process
    threads = trace.threads
    assert threads["pid"].notna().all() and set(threads["pid"]) <= set(procs["pid"])
    assert not threads["tid"].duplicated().any()


@pytest.mark.parametrize("name", ETL_FILES, ids=str)
def test_analysis_reports_what_a_real_trace_could_not_decode(real_traces: Path, name: Path) -> None:
    """These files hold no MDL calls: the findings are the trace-quality ones, and every
    unknown event is counted in TRACE_UNKNOWN_EVENT (no crash on a trace without calls)."""
    import traceanalyzer as ta

    trace = ta.load(real_traces / name)
    findings = ta.analyze(trace).findings
    assert set(findings["severity"]) <= {"info"}
    unknown = findings[findings["rule"] == "TRACE_UNKNOWN_EVENT"]
    assert int(unknown["count"].sum()) == trace.stats.total("unknown_events")
    assert unknown["pid"].isna().all()
