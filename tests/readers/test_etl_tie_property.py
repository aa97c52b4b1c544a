"""Property (issue 11 #3): random scenarios with many equal timestamps give the same
findings from their canonical CSV and from the ETL ``synth`` writes from it.

Times are floored to 5 us, so most rows share a tick; calls carry only ``cpu`` (their
process comes from the CSwitch before them on that CPU), so the order of a call and a
context switch of the same tick decides the finding. The CSV lists rows of equal time
by CPU (rows without a cpu count as CPU 0, where synth writes them), the order the ETL
reader gives them across CPUs (docs/etl.md, "Rows and order").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import traceanalyzer as ta
from traceanalyzer.analysis import analyze
from traceanalyzer.readers.registry import read_file
from traceanalyzer.synth.make_sample_etls import exact_perf_freq
from traceanalyzer.synth.scenario import Scenario
from traceanalyzer.synth.etl_writer import write_etl

TICK = 5_000
MDLS = [0xFFFFC30A60000000 + 0x1000 * k for k in range(3)]
USER_VA = [0x1F000000000 + 0x10000 * k for k in range(3)]
MAPPED = [0x23A11000000 + 0x100000 * k for k in range(3)]
CALLS = ["IoAllocateMdl", "MmProbeAndLockPages", "MmMapLockedPagesSpecifyCache",
         "MmUnmapLockedPages", "MmUnlockPages", "IoFreeMdl"]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Two or three processes; CSwitches and cpu-only calls on 1-3 CPUs, in 5 us ticks."""
    s = Scenario()
    threads = [s.process(pid=100 * (k + 1), image=f"p{k}.exe", tid=100 * (k + 1) + 1, parent_pid=4)
               for k in range(draw(st.integers(2, 3)))]
    cpus = draw(st.integers(1, 3))
    running: dict[int, int] = {}
    rows = []
    tick = 10  # after the process and thread starts
    for _ in range(draw(st.integers(5, 40))):
        tick += draw(st.sampled_from([0, 0, 0, 1, 2]))
        cpu = draw(st.integers(0, cpus - 1))
        if draw(st.integers(0, 3)) == 0:
            new = draw(st.sampled_from(threads))
            rows.append((tick, cpu, "CSwitch", new, running.get(cpu)))
            running[cpu] = new.tid
        else:
            k = draw(st.integers(0, 2))
            rows.append((tick, cpu, draw(st.sampled_from(CALLS)), k, draw(st.integers(0, 2))))
    # equal times by CPU (stable): the order the ETL reader gives across CPUs
    for tick, cpu, event, a, b in sorted(rows, key=lambda r: (r[0], r[1])):
        s.at(tick * TICK)
        if event == "CSwitch":
            old = next((t for t in threads if t.tid == b), None)
            s.cswitch(cpu, new=a, old=old)
        elif event == "IoAllocateMdl":
            s.call(event, cpu=cpu, mdl=MDLS[a], va=USER_VA[a], size=0x2000)
        elif event == "MmProbeAndLockPages":
            s.probe_and_lock(None, MDLS[a], cpu=cpu, operation="IoReadAccess")
        elif event == "MmMapLockedPagesSpecifyCache":
            s.map_user(None, MDLS[a], MAPPED[b], cpu=cpu)
        elif event == "MmUnmapLockedPages":
            s.unmap(None, MDLS[a], MAPPED[b], cpu=cpu)
        else:
            s.call(event, cpu=cpu, mdl=MDLS[a])
    return s


def _findings(path: Path) -> pd.DataFrame:
    return analyze(ta.load(path)).findings.reset_index(drop=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_csv_and_its_etl_give_identical_findings(scenario: Scenario) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv = scenario.to_csv(Path(tmp) / "s.csv")
        table = read_file(csv).table
        write_etl(table, Path(tmp) / "s.etl", perf_freq=exact_perf_freq(table), buffer_size=1024)
        ref, ours = _findings(csv), _findings(Path(tmp) / "s.etl")
    pd.testing.assert_frame_equal(ours, ref, check_dtype=False)
