"""Kernel Process/Thread/Image events of ShutdownPerfDiagLogger.etl against etl-parser.

Always on the in-repo cut of it (logfile-header buffer + buffers 1 and 24, tests/data/real
SOURCES.md); on the whole file too when the full collection is in use (TA_REAL_TRACES).

etl-parser 1.0.1 is the reference decoder for the kernel classes it handles. Its
logfile-header struct is mis-sized (docs/etl.md), so expected times use its raw QPC
timestamps with dissect.etl's clock (PerfFreq and the header record's timestamp).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import read_etl

from helpers.real_traces import full_collection_trace, in_repo_trace

_PROCESS = {1: "ProcessStart", 2: "ProcessEnd", 3: "ProcessRundown"}
_THREAD = {1: "ThreadStart", 2: "ThreadEnd", 3: "ThreadRundown"}


CUT = "airbus-cert__etl-parser/ShutdownPerfDiagLogger.buffers-0-1-24.etl"
FULL = "airbus-cert__etl-parser/ShutdownPerfDiagLogger.etl"

#: Per file: process events (rundown + end), thread events (rundown + end + start),
#: processes terminated (opcode 11), rows etl-parser's fallback adds (SOURCES.md counts).
COUNTS = {
    CUT: {"process": 9 + 1, "thread": 168 + 64 + 3, "terminated": 5, "fallback_rows": 5},
    FULL: {"process": 94 + 60, "thread": 1175 + 1032 + 350, "terminated": 60, "fallback_rows": 62},
}


def _path(name: str) -> Path:
    return in_repo_trace(name) if name == CUT else full_collection_trace(name)


@pytest.fixture(scope="module", params=[CUT, FULL], ids=["cut", "full"])
def shutdown(request, oracles):
    path = _path(request.param)
    ours = read_etl(path, ReadOptions()).table.to_pandas()
    ours["event"] = ours["event"].astype(str)
    header = oracles.dissect_logfile(path)
    origin, freq = header.system_header.time_delta, header.perf_freq
    return (ours, oracles.etlparser_kernel_records(path),
            (lambda ts: (ts - origin) * 1_000_000_000 // freq), COUNTS[request.param])


def _ours(frame, events, cols):
    sub = frame[frame["event"].isin(events)]
    return Counter(tuple(None if v != v else (int(v) if not isinstance(v, str) else v) for v in row)
                   for row in sub[cols].itertuples(index=False))


def test_process_events_match_etlparser(shutdown) -> None:
    ours, ref, to_ns, counts = shutdown
    expected = Counter(
        (_PROCESS[r["etype"]], r["fields"]["ProcessId"], r["fields"]["ParentId"], r["image"], to_ns(r["ts"]))
        for r in ref if r.get("mof", "").startswith("Process_V") and r["etype"] in _PROCESS
    )
    assert sum(expected.values()) == counts["process"]
    got = _ours(ours, list(_PROCESS.values()), ["event", "pid", "parent_pid", "image", "time_ns"])
    assert got == expected


def test_thread_events_match_etlparser(shutdown) -> None:
    ours, ref, to_ns, counts = shutdown
    expected = Counter(
        (_THREAD[r["etype"]], r["fields"]["ProcessId"], r["fields"]["ThreadId"], to_ns(r["ts"]))
        for r in ref if r.get("mof") == "Thread_TypeGroup1" and r["etype"] in _THREAD
    )
    assert sum(expected.values()) == counts["thread"]
    got = _ours(ours, list(_THREAD.values()), ["event", "pid", "tid", "time_ns"])
    assert got == expected


def test_image_events_match_etlparser(shutdown) -> None:
    ours, ref, to_ns, _ = shutdown
    names = {10: "ImageLoad", 3: "ImageLoad", 2: "ImageUnload"}
    expected = Counter(
        (names[r["etype"]], r["fields"]["ProcessId"], r["fields"]["ImageBase"], r["fields"]["ImageSize"],
         r["image"], to_ns(r["ts"]))
        for r in ref if r.get("mof") == "ImageLoad" and r["etype"] in names
    )
    got = _ours(ours, ["ImageLoad", "ImageUnload"], ["event", "pid", "base", "image_size", "image", "time_ns"])
    assert got == expected


def test_header_cpu_and_rows_of_a_process_end(shutdown) -> None:
    """A ProcessEnd is logged in the exiting process: its header ids are the subject's."""
    ours, ref, _, _ = shutdown
    ends = [r for r in ref if r.get("mof", "").startswith("Process_V") and r["etype"] == 2]
    mine = ours[ours["event"] == "ProcessEnd"]
    assert sorted(mine["pid"].astype(int)) == sorted(r["fields"]["ProcessId"] for r in ends)
    assert set(mine["cpu"].astype(int)) <= {0, 1}  # a 2-CPU trace


@pytest.mark.parametrize("name", [CUT, FULL], ids=["cut", "full"])
def test_etlparser_fallback_for_kernel_classes_we_do_not_decode(name: str) -> None:
    """Process opcode 11 (Terminate) is not ours; etl-parser decodes it on request. In the
    whole file each terminated process also has a ProcessEnd (decoded by us) with the same
    pid (the cut keeps 5 Terminates and the ProcessEnd of another process)."""
    path, counts = _path(name), COUNTS[name]
    plain = read_etl(path, ReadOptions())
    assert plain.stats.by_detail("unknown_events")["Kernel-Process/11"] == counts["terminated"]
    with_fallback = read_etl(path, ReadOptions(extra={"etlparser_fallback": True})).table.to_pandas()
    with_fallback["event"] = with_fallback["event"].astype(str)
    terminated = with_fallback[with_fallback["event"] == "Kernel-Process_Terminate_TypeGroup1/Write"]
    ended = with_fallback[with_fallback["event"] == "ProcessEnd"]
    assert len(terminated) == counts["terminated"]
    pids = sorted(terminated["etlparser.ProcessId"].astype(int))
    assert len(ended) >= 1 and all(pid > 4 for pid in pids)
    if name == FULL:
        assert pids == sorted(ended["pid"].astype(int))
    # + the Terminate events (and, in the whole file, KernelBase 1, HypercallPage 1)
    assert plain.table.num_rows == len(with_fallback) - counts["fallback_rows"]
