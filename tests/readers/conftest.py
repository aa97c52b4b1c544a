"""Fixtures for the ETL reader tests: the two oracles (dissect.etl and etl-parser are
test-only dependencies). The ``real_traces`` fixture comes from ``tests/conftest.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

def dissect_record_count(path: Path) -> int:
    """Records dissect.etl walks in the file (logfile header and extension records included)."""
    from dissect.etl.etl import ETL

    with open(path, "rb") as fh:
        return sum(1 for _ in ETL(fh))


def dissect_logfile(path: Path) -> Any:
    """dissect.etl's parsed logfile header (PerfFreq, StartTime, EventsLost, ...)."""
    from dissect.etl.etl import ETL

    with open(path, "rb") as fh:
        return ETL(fh).logfile_header


def etlparser_kernel_records(path: Path) -> list[dict[str, Any]]:
    """Kernel records as etl-parser decodes them, in file order: kind, raw timestamp ``ts``,
    header ``htid``/``hpid`` (system headers), ``mof`` class, ``etype`` (opcode), ``fields``
    and ``image``; ``error`` names the exception when it cannot decode one."""
    from etl.etl import IEtlFileObserver, build_from_stream

    out: list[dict[str, Any]] = []

    def kernel(kind: str, obj: Any, ts: int) -> dict[str, Any]:
        rec: dict[str, Any] = {"kind": kind, "ts": ts}
        try:
            mof = obj.get_mof()
            rec["mof"] = type(mof).__name__
            rec["etype"] = mof.event_type
            rec["fields"] = {k: v for k, v in mof.source.items() if not k.startswith("_")}
            if "ImageFileName" in rec["fields"]:
                rec["image"] = mof.get_image_file_name()
            if "FileName" in rec["fields"]:
                rec["image"] = bytes(mof.source.FileName.string[:-2]).decode("utf-16-le")
        except Exception as exc:  # noqa: BLE001 - etl-parser's known failures are recorded
            rec["error"] = type(exc).__name__
        return rec

    class Observer(IEtlFileObserver):
        def on_event_record(self, event: Any) -> None:
            out.append({"kind": "event"})

        def on_trace_record(self, event: Any) -> None:
            out.append({"kind": "trace"})

        def on_win_trace(self, obj: Any) -> None:
            out.append({"kind": "win"})

        def on_perfinfo_trace(self, obj: Any) -> None:
            out.append(kernel("perfinfo", obj, obj.get_timestamp()))

        def on_system_trace(self, obj: Any) -> None:
            rec = kernel("system", obj, obj.source.system_header.system_time)
            rec.update(htid=obj.get_thread_id(), hpid=obj.get_process_id())
            out.append(rec)

    build_from_stream(path.read_bytes()).parse(Observer())
    return out


def etlparser_tracelogging(path: Path) -> list[dict[str, Any]]:
    """TraceLogging events as etl-parser decodes them: name, fields (or error)."""
    from etl.etl import IEtlFileObserver, build_from_stream

    out: list[dict[str, Any]] = []

    class Observer(IEtlFileObserver):
        def on_event_record(self, event: Any) -> None:
            rec: dict[str, Any] = {"pid": event.get_process_id(), "tid": event.get_thread_id()}
            try:
                parsed = event.parse_tracelogging()
                rec.update(name=parsed.get_name(), fields=dict(parsed))
            except Exception as exc:  # noqa: BLE001
                rec["error"] = type(exc).__name__
            out.append(rec)

        def on_trace_record(self, event: Any) -> None: ...

        def on_win_trace(self, obj: Any) -> None: ...

        def on_perfinfo_trace(self, obj: Any) -> None: ...

        def on_system_trace(self, obj: Any) -> None: ...

    build_from_stream(path.read_bytes()).parse(Observer())
    return out


@pytest.fixture(scope="session")
def oracles() -> Any:
    """The oracle helpers above, as a namespace (test modules cannot import conftest)."""

    class Oracles:
        dissect_record_count = staticmethod(dissect_record_count)
        dissect_logfile = staticmethod(dissect_logfile)
        etlparser_kernel_records = staticmethod(etlparser_kernel_records)
        etlparser_tracelogging = staticmethod(etlparser_tracelogging)

    return Oracles
