"""0 in a pointer-valued column is a NULL pointer (events.md), in every input format.

A TraceLogging pointer field has no null: ``IoAllocateMdl(..., Irp=NULL)`` is logged as
``irp=0``. The issue-11 example: driver-owned MDLs (irp=0) must not draw
DRIVER_FREES_IO_MANAGER_MDL, and the one never freed is an MDL_STRUCT_LEAK.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import traceanalyzer as ta
from traceanalyzer.synth.etl_writer import write_etl
from traceanalyzer.synth.scenario import Scenario
from traceanalyzer.synth.xperf_writer import write_xperf_text

MS = 1_000_000
M1, M2 = 0xFFFFC30A60046000, 0xFFFFC30A60047000


def issue_example() -> Scenario:
    s = Scenario()
    app = s.process(pid=100, image="a.exe", tid=101, parent_pid=4)
    s.at(1 * MS).allocate_mdl(app, M1, va=0x1F000000000, size=4096, irp=0)
    s.at(2 * MS).probe_and_lock(app, M1, mode="UserMode", operation="IoWriteAccess")
    s.at(3 * MS).unlock(app, M1)
    s.at(4 * MS).free_mdl(app, M1)
    s.at(5 * MS).allocate_mdl(app, M2, va=0xFFFFC30A4B2F1000, size=4096, irp=0)
    return s


def _found(trace: ta.Trace) -> list[tuple[str, int, int]]:
    f = ta.analyze(trace).findings
    return sorted((str(r), int(t), int(m)) for r, t, m in zip(f["rule"], f["time_ns"], f["mdl"]))


EXPECTED = [("MDL_STRUCT_LEAK", 5 * MS, M2)]


def _write_csv(s: Scenario, path):
    return s.to_csv(path.with_suffix(".csv"))


def _write_csv_zero_spellings(s: Scenario, path):
    """The same rows with irp written as 0, 0x00 and 0x0 (all NULL)."""
    text = s.csv_text().replace(",0x0,", ",0x00,", 1)
    out = path.with_suffix(".csv")
    out.write_text(text.replace(",0x0,", ",0,", 1), encoding="utf-8")
    return out


def _write_etl(s: Scenario, path):
    out = path.with_suffix(".etl")
    write_etl(s.to_frame(), out)
    return out


def _write_xperf(s: Scenario, path):
    return write_xperf_text(s.to_frame(), path.with_suffix(".txt"))


def _write_parquet(s: Scenario, path):
    out = path.with_suffix(".parquet")
    pq.write_table(pa.Table.from_pandas(s.to_frame(), preserve_index=False), out)
    return out


WRITERS = {"csv": _write_csv, "csv-zero-spellings": _write_csv_zero_spellings,
           "etl": _write_etl, "xperf": _write_xperf, "parquet": _write_parquet}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_irp_zero_is_a_null_irp_in_every_format(fmt, tmp_path):
    path = WRITERS[fmt](issue_example(), tmp_path / "irp0")
    trace = ta.load(path)
    calls = trace.calls
    allocs = calls[calls["event"] == "IoAllocateMdl"]
    assert allocs["irp"].isna().all(), allocs["irp"].tolist()
    assert _found(trace) == EXPECTED


def test_zero_pointers_become_null_but_zero_addresses_stay(tmp_path):
    s = Scenario()
    w = s.system_thread(tid=8)
    pages, part = 0xFFFFC30A60050000, 0xFFFFC30A60051000
    s.at(1 * MS).call("MmAllocatePagesForMdl", w, mdl=pages, size=0x4000)
    s.at(2 * MS).allocate_mdl(w, part, va=0, size=0x1000, irp=0)
    # a partial MDL of a page-allocated MDL: VirtualAddress 0 is the first page
    s.at(3 * MS).call("IoBuildPartialMdl", w, mdl=part, source_mdl=pages, va=0, size=0x1000)
    s.at(4 * MS).map_kernel(w, pages, 0)  # mapped_va 0: the map failed
    s.at(5 * MS).call("IoAllocateMdl", w, mdl=0, va=0x1F000000000, size=4096)  # failed
    calls = ta.load(s.to_csv(tmp_path / "z.csv")).calls
    by_event = {e: calls[calls["event"] == e].iloc[0] for e in calls["event"].unique()}
    assert by_event["IoBuildPartialMdl"]["va"] == 0
    assert by_event["MmMapLockedPagesSpecifyCache"]["mapped_va"] == 0
    allocs = calls[calls["event"] == "IoAllocateMdl"]
    assert allocs["va"].isna().tolist() == [True, False]
    assert allocs["irp"].isna().all()
    assert allocs["mdl"].isna().tolist() == [False, True]


def test_failed_allocation_is_no_mdl(tmp_path):
    """IoAllocateMdl / MmAllocatePagesForMdl returning NULL (mdl=0) leaks nothing."""
    s = Scenario()
    w = s.system_thread(tid=8)
    s.at(1 * MS).allocate_mdl(w, 0, va=0xFFFFC30A4B2F1000, size=4096)
    s.at(2 * MS).call("MmAllocatePagesForMdl", w, mdl=0, size=0, requested_size=0x4000)
    found = ta.analyze(ta.load(s.to_csv(tmp_path / "f.csv"))).findings
    assert found.empty, found[["rule", "time_ns"]]
