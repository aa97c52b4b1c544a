"""synth --header-schema: scenario calls written exactly as capture/mdltrace.h logs them
(return addresses, schema fields only), analysed to the same findings."""

from __future__ import annotations

import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.readers.etl.dump import provider_events
from traceanalyzer.readers.registry import read_file
from traceanalyzer.synth.etl_writer import write_etl
from traceanalyzer.synth.header_rows import header_rows
from traceanalyzer.synth.make_sample_etls import SAMPLE_DIR, scenario_csvs

SCHEMA = mdltrace_schema()
KEY = ["rule", "time_ns", "pid", "mdl", "bytes", "caller"]


def _findings(path):
    f = ta.analyze(ta.load(path)).findings
    return sorted(tuple(str(v) for v in row) for row in f[KEY].itertuples(index=False))


@pytest.mark.parametrize("csv", scenario_csvs(SAMPLE_DIR), ids=lambda p: p.stem)
def test_header_schema_etl_gives_the_same_findings(csv, tmp_path):
    etl = tmp_path / "h.etl"
    write_etl(header_rows(read_file(csv).table), etl)
    for ev in provider_events(etl):
        if ev.event not in SCHEMA.events:
            continue  # MmPrepareMdlForReuse: a macro, the header has no wrapper for it
        fields = list(ev.fields)
        want = [f for f in SCHEMA.event_fields(ev.event) if f in fields]
        assert fields == want, (ev.event, fields)   # schema fields only, in schema order
    assert _findings(etl) == _findings(csv)
    assert ta.load(etl).stats.total("unresolved_return_addresses") == 0


def test_cli_header_schema(tmp_path, capsys):
    src = SAMPLE_DIR / "seed_unlock_from_worker.csv"
    out = tmp_path / "seed.etl"
    assert main(["synth", str(src), "-o", str(out), "--header-schema"]) == 0
    events = [ev for ev in provider_events(out)]
    assert events and all("caller" not in ev.fields and "return_address" in ev.fields for ev in events)
    trace = ta.load(out)
    assert trace.events_by_name["ImageLoad"] == 1
    assert set(trace.table("calls").column("caller").to_pylist()) <= set(
        read_file(src).table.column("caller").to_pylist())
