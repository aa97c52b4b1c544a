"""Analysis-shaped tables for the plot/render unit tests, with the real column lists and
dtypes (``tests/render/test_fake_analysis.py`` compares them with a real Analysis).

The numbers follow the seed scenario by hand:
app.exe (pid 1234) locks an 8 KiB user buffer at 1 s and maps it into itself; a worker
thread (System, pid 4, tid 88) unlocks it at 2 s while it is still mapped (the finding is
charged to app.exe, whose mapping is exposed; the evidence event shows pid 4); app.exe exits at 5 s
with the mapping live; the trace ends at 8 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa

import traceanalyzer.model.dtypes  # noqa: F401  (registers the "address" dtype)
from traceanalyzer.rules.assemble import FINDING_COLUMNS, typed_findings

S = 1_000_000_000
MDL = 0xFFFFC30A4B2F1000

#: Columns of Analysis.mappings and Analysis.locks, in order, with their dtypes.
MAPPING_DTYPES = {
    "mapping_id": "int64", "lifetime_id": "int64", "mdl": "address", "mode": "string",
    "pid": "Int64", "process": "string", "process_wow64": "Int64", "mapped_va": "address",
    "cache_type": "string", "bytes": "Int64", "start_ns": "int64", "end_ns": "Int64",
    "end_reason": "string", "map_tid": "Int64", "map_caller": "string", "unmap_tid": "Int64",
    "unmap_caller": "string", "map_call_index": "int64",
}
LOCK_DTYPES = {
    "lock_id": "int64", "lifetime_id": "int64", "mdl": "address", "pid": "Int64",
    "process": "string", "user_va": "bool", "bytes": "Int64", "start_ns": "int64",
    "end_ns": "Int64", "end_reason": "string", "caller": "string",
}


def _frame(rows: list[dict], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(dtypes)).astype(dtypes)


def seed_tables(extra_processes: int = 0, hostile_name: str | None = None) -> dict:
    """The seed scenario's tables; ``extra_processes`` adds small leakers."""
    app = hostile_name or "app.exe"
    findings = [
        dict(rule="UNLOCK_WHILE_USER_MAPPED", severity="critical", time_ns=2 * S, pid=1234,
             process=app, tid=88, mdl=MDL, caller="mydriver.sys+0x1a2b",
             event="MmUnlockPages", bytes=8192, impact_byte_seconds=8192 * 3.0,
             start_ns=2 * S, end_ns=5 * S, exposure_start_ns=2 * S, exposure_end_ns=5 * S,
             message=f"MmUnlockPages while still mapped into {app} (1234)",
             advice="Unmap in the owning process before unlocking.",
             fingerprint="fp-unlock", evidence=[3, 4, 6], lifetime_id=1, mapping_id=1,
             count=1, call_pid=4, call_process="System"),
        dict(rule="USER_MAPPING_NOT_UNMAPPED_AT_EXIT", severity="high", time_ns=5 * S,
             pid=1234, process=app, tid=None, mdl=MDL, caller="mydriver.sys+0x1a00",
             event="ProcessEnd", bytes=8192, impact_byte_seconds=8192 * 3.0,
             start_ns=5 * S, end_ns=8 * S, exposure_start_ns=None, exposure_end_ns=None,
             message=f"{app} (1234) exited with 8192 bytes still user-mapped",
             advice="Unmap in IRP_MJ_CLEANUP of the process.",
             fingerprint="fp-exit", evidence=[4, 7], lifetime_id=1, mapping_id=1, count=1,
             call_pid=None, call_process=None),
    ]
    mappings = [dict(mapping_id=1, lifetime_id=1, mdl=MDL, mode="UserMode", pid=1234,
                     process=app, process_wow64=0, mapped_va=0x1F0000, cache_type="MmCached",
                     bytes=8192, start_ns=int(1.001 * S), end_ns=None, end_reason="process_exit",
                     map_tid=1300, map_caller="mydriver.sys+0x1a00", unmap_tid=None,
                     unmap_caller=None, map_call_index=1)]
    locks = [dict(lock_id=1, lifetime_id=1, mdl=MDL, pid=1234, process=app,
                  user_va=True, bytes=8192, start_ns=1 * S, end_ns=2 * S,
                  end_reason="unlock", caller="mydriver.sys+0x19f0")]
    timeline = [
        dict(time_ns=1 * S, pid=1234, process=app, kind="locked", bytes=8192),
        dict(time_ns=2 * S, pid=1234, process=app, kind="locked", bytes=0),
        dict(time_ns=int(1.001 * S), pid=1234, process=app, kind="user_mapped", bytes=8192),
        # one MDL, locked then mapped: held once, from the lock to the end
        dict(time_ns=1 * S, pid=1234, process=app, kind="held", bytes=8192),
    ]
    processes = [dict(pid=4, process="System", start_ns=None, end_ns=None),
                 dict(pid=1234, process=app, start_ns=int(0.5 * S), end_ns=5 * S)]
    for i in range(extra_processes):
        pid = 2000 + 4 * i
        t = (1 + (i % 50) / 10) * S
        size = 4096 * (1 + i % 7)
        name = f"worker{i:03d}.exe"
        for kind in ("locked", "held"):  # locked only: held is the locked level
            timeline.append(dict(time_ns=int(t), pid=pid, process=name, kind=kind,
                                 bytes=size))
            timeline.append(dict(time_ns=int(t + 0.5 * S), pid=pid, process=name, kind=kind,
                                 bytes=0 if i % 3 else size // 2))
        processes.append(dict(pid=pid, process=name, start_ns=int(t - 0.2 * S),
                              end_ns=int(t + S) if i % 2 else None))
        findings.append(dict(
            findings[1], rule="LOCKED_MDL_NEVER_UNLOCKED" if i % 3 == 0 else "DOUBLE_LOCK",
            severity="high", time_ns=int(t), pid=pid, process=name, tid=pid + 1,
            caller=f"other{i % 4}.sys+0x{0x100 + i:x}", bytes=size,
            impact_byte_seconds=size * 0.5, exposure_start_ns=None, exposure_end_ns=None,
            message=f"{name} lock issue", fingerprint=f"fp-{i}", mapping_id=None,
            mdl=0xFFFFC30A00000000 + 0x1000 * i, lifetime_id=100 + i,
            call_pid=pid, call_process=name))
    filler = [dict(seq=i, time_ns=int(i * 0.1 * S), event="CSwitch", pid=None, tid=None,
                   caller=None, mdl=None, va=None, size=None) for i in (0, 1, 2, 5)]
    events = pd.DataFrame(filler + [
        dict(seq=3, time_ns=1 * S, event="MmProbeAndLockPages", pid=1234, tid=1300,
             caller="mydriver.sys+0x19f0", mdl=MDL, va=0x2A0000, size=8192),
        dict(seq=4, time_ns=int(1.001 * S), event="MmMapLockedPagesSpecifyCache", pid=1234,
             tid=1300, caller="mydriver.sys+0x1a00", mdl=MDL, va=None, size=None),
        dict(seq=6, time_ns=2 * S, event="MmUnlockPages", pid=4, tid=88,
             caller="mydriver.sys+0x1a2b", mdl=MDL, va=None, size=None),
        dict(seq=7, time_ns=5 * S, event="ProcessEnd", pid=1234, tid=1300, caller=None,
             mdl=None, va=None, size=None),
    ]).sort_values("seq", ignore_index=True)
    return dict(
        findings=typed_findings(pd.DataFrame(findings, columns=FINDING_COLUMNS)),
        mappings=_frame(mappings, MAPPING_DTYPES),
        locks=_frame(locks, LOCK_DTYPES),
        leak_timeline=pd.DataFrame(timeline),
        processes=pd.DataFrame(processes),
        events=events,
        time_span_ns=(0, 8 * S),
    )


@dataclass
class FakeAnalysis:
    """Quacks like traceanalyzer.Analysis for the renderers."""

    tables: dict
    trace: SimpleNamespace = field(init=False)

    def __post_init__(self) -> None:
        t = self.tables
        self.findings = t["findings"]
        self.mappings = t["mappings"]
        self.locks = t["locks"]
        self.lifecycles = pd.DataFrame([dict(lifetime_id=1, mdl=MDL, kind="io_allocated",
                                             bytes=8192)]).astype({"mdl": "address"})
        events = t["events"]
        self.trace = SimpleNamespace(
            events=events, processes=t["processes"], paths=["traces/seed.csv"],
            time_span_ns=t["time_span_ns"],
            # like Trace.events_table(): row position == seq
            events_table=lambda: pa.Table.from_pandas(events, preserve_index=False))

    def leak_timeline(self) -> pd.DataFrame:
        return self.tables["leak_timeline"]

    @property
    def problems(self) -> pd.DataFrame:
        from traceanalyzer.rules.problems import problems_of

        return problems_of(self.findings)

    @property
    def leaks(self) -> dict:
        return self.summary()["leaks"]

    def plot_leak_timeline(self, **kwargs):
        from traceanalyzer.plot.leak_timeline import plot_leak_timeline_for

        return plot_leak_timeline_for(self, **kwargs)

    def plot_hazard_timeline(self, **kwargs):
        from traceanalyzer.plot.hazard_timeline import plot_hazard_timeline_for

        return plot_hazard_timeline_for(self, **kwargs)

    def plot_impact(self, **kwargs):
        from traceanalyzer.plot.impact import plot_impact_for

        return plot_impact_for(self, **kwargs)

    def summary(self) -> dict:
        f = self.findings
        findings = []
        for r in f.to_dict("records"):
            findings.append({k: r[k] for k in (
                "rule", "severity", "time_ns", "pid", "process", "tid", "mdl", "caller",
                "bytes", "impact_byte_seconds", "message", "fingerprint")})
        return {
            "traces": ["traces/seed.csv"],
            "time_span_ns": list(self.tables["time_span_ns"]),
            "findings": findings,
            "leaks": {"bytes_at_end": 8192,
                      "by_process": [{"pid": 1234, "process": str(f.iloc[1]["process"]),
                                      "bytes": 8192}]},
            "stats": {"events": 9, "events_by_name": {"MmUnlockPages": 1}, "unknown_events": 0,
                      "lost_events": 0, "unresolved_context": 0},
        }


def fake_analysis(**kwargs) -> FakeAnalysis:
    """A FakeAnalysis over :func:`seed_tables`."""
    return FakeAnalysis(seed_tables(**kwargs))
