"""analyze() reports its progress to a callback, stage by stage."""

from __future__ import annotations

import traceanalyzer as ta

from helpers.rows import trace_from_rows


def test_analyze_reports_progress_after_each_stage():
    rows = []
    for i in range(3):
        mdl = 0x10 + 0x10 * i
        rows += [
            {"time_ns": 2 * i + 1, "event": "IoAllocateMdl", "pid": 4, "tid": 8, "mdl": mdl, "va": 0x1000, "size": 10},
            {"time_ns": 2 * i + 2, "event": "IoFreeMdl", "pid": 4, "tid": 8, "mdl": mdl},
        ]
    seen: list[tuple[int, int]] = []
    ta.analyze(trace_from_rows(rows), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 6), (2, 6), (4, 6), (6, 6)]
