"""The seed scenario played by a small C driver instrumented with capture/mdltrace.h
(host build, tests/capture/host): the analyzer finds UNLOCK_WHILE_USER_MAPPED and the
mapping leaked at the app's exit, at the driver's own source lines (addr2line)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest

import traceanalyzer as ta
from test_capture_header import HERE, _run, _table, harness, parse_events  # noqa: F401 (fixture)
from traceanalyzer.synth.etl_writer import write_etl


def _site_lines() -> dict[str, int]:
    lines = (HERE / "host" / "driver.c").read_text().splitlines()
    return {m.group(1): i + 1 for i, line in enumerate(lines) if (m := re.search(r"SITE:(\w+)", line))}


def _source_line(exe: Path, image_base: int, caller: str) -> int:
    module, offset = caller.split("+")
    assert module == "mydriver.sys"
    # a return address is the instruction after the call: look up the byte before it
    out = _run(["addr2line", "-e", str(exe), hex(image_base + int(offset, 16) - 1)]).stdout.strip()
    assert out.split(":")[0].endswith("driver.c"), out
    return int(out.split(":")[1].split()[0])


@pytest.mark.parametrize("form", ["csv", "etl"])
def test_seed_scenario_from_the_instrumented_driver(harness, tmp_path, form):
    out = tmp_path / "seed.txt"
    _run([str(harness), "scenario", str(out)])
    rows, _, meta = parse_events(out.read_text())
    table = _table(rows)
    path = tmp_path / f"seed.{form}"
    if form == "csv":
        pa_csv.write_csv(table, path)
    else:
        write_etl(table, path)
    trace = ta.load(path)
    findings = ta.analyze(trace).findings
    by_rule = {r: findings[findings.rule == r] for r in set(findings.rule)}
    assert {"UNLOCK_WHILE_USER_MAPPED", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"} <= set(by_rule)
    sites = _site_lines()
    base = int(meta["image_base"], 16)
    (unlock,) = by_rule["UNLOCK_WHILE_USER_MAPPED"].itertuples()
    assert (unlock.pid, unlock.time_ns) == (1234, 5_000_000)
    assert _source_line(harness, base, unlock.caller) == sites["unlock"]
    (leak,) = by_rule["USER_MAPPING_NOT_UNMAPPED_AT_EXIT"].itertuples()
    assert leak.pid == 1234 and leak.bytes == 8192
    assert _source_line(harness, base, leak.caller) == sites["map"]
    assert trace.stats.total("unresolved_return_addresses") == 0


