"""analyze() reports replay progress to a callback; the CLI is silent when not a TTY."""

from __future__ import annotations

import traceanalyzer as ta

from tests.core.util import trace_from_rows


def test_analyze_reports_start_and_end_of_replay():
    rows = [
        {"time_ns": 1, "event": "IoAllocateMdl", "pid": 4, "tid": 8, "mdl": 0x10, "va": 0x1000, "size": 10},
        {"time_ns": 2, "event": "IoFreeMdl", "pid": 4, "tid": 8, "mdl": 0x10},
    ]
    seen: list[tuple[int, int]] = []
    ta.analyze(trace_from_rows(rows), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 2), (2, 2)]
