"""model/mdltrace_schema.json is the one MdlTrace schema: the writer (synth) emits it,
the reader maps every field of it to its canonical column, and it agrees with the
canonical table's names and enum numbers."""

from __future__ import annotations

import pytest
from helpers.tables import canonical_table

from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.model.schema import CALL_EVENTS, COLUMNS, ENUM_ALIASES, IO_EVENTS
from traceanalyzer.readers.etl.dump import provider_events
from traceanalyzer.readers.field_map import MDL_PROVIDER as MDLTRACE_NAME, provider_guid
from traceanalyzer.readers.registry import read_file
from traceanalyzer.synth.etl_writer import write_etl

SCHEMA = mdltrace_schema()
#: rows per event: above the reader's BULK_MIN_EVENTS, so the bulk decoder runs too
ROWS = 40


def test_schema_names_are_canonical():
    assert SCHEMA.provider == MDLTRACE_NAME and SCHEMA.guid == str(provider_guid(MDLTRACE_NAME))
    assert set(SCHEMA.events) <= set(CALL_EVENTS + IO_EVENTS)
    # every call the header can log, except the ones it has no routine for
    assert set(CALL_EVENTS) - set(SCHEMA.events) == {"MmPrepareMdlForReuse"}
    for event in SCHEMA.events.values():
        assert set(event.fields) <= set(COLUMNS) - {"time_ns", "event", "cpu", "pid", "tid"}
    for column, values in SCHEMA.enums.items():
        assert {ENUM_ALIASES[column][str(number)] for number in values.values()} == set(values)
        assert all(ENUM_ALIASES[column][str(number)] == name for name, number in values.items())
        assert SCHEMA.field_types[column] == "uint8"
    # hot events: fixed-size fields only
    fixed = {"pointer", "uint8", "uint32", "uint64", "hexint32"}
    assert {SCHEMA.field_types[f] for e in SCHEMA.events.values() for f in e.fields} <= fixed


def _value(column: str, k: int):
    kind = SCHEMA.field_types[column]
    if column in SCHEMA.enums:
        names = list(SCHEMA.enums[column])
        return names[k % len(names)]
    if column == "status":
        return f"0x{0xC0000005 if k % 2 else 0:08X}"
    if kind == "pointer":
        return 0xFFFFC30A00000000 + 0x1000 * k + len(column) * 0x10
    if column == "irql":
        return k % 3
    if column == "bugcheck_on_failure":
        return k % 2
    return 4096 * (k + 1) if kind == "uint64" else 1000 + k


def _rows(pointer_size: int) -> list[dict]:
    rows = []
    t = 0
    for event in SCHEMA.events.values():
        for k in range(ROWS):
            t += 1000
            row = {"time_ns": t, "event": event.name, "cpu": k % 2, "pid": 500, "tid": 600}
            for column in event.fields:
                value = _value(column, k)
                if pointer_size == 4 and SCHEMA.field_types[column] == "pointer":
                    value &= 0xFFFFFFFF
                row[column] = value
            rows.append(row)
    return rows


_table = canonical_table


@pytest.mark.parametrize("pointer_size", [8, 4])
def test_every_schema_event_is_written_in_schema_order_and_read_back(tmp_path, pointer_size):
    rows = _rows(pointer_size)
    path = tmp_path / "calls.etl"
    write_etl(_table(rows), path, pointer_size=pointer_size)
    # the writer: schema field order and in-types, nothing else
    seen = {}
    for ev in provider_events(path):
        seen.setdefault(ev.event, list(ev.fields))
    for event in SCHEMA.events.values():
        assert seen[event.name] == list(event.fields), event.name
    # the reader: each field in its column, the values given (enum names, status text)
    result = read_file(path)
    assert result.stats.total("unmapped_fields") == 0
    assert result.stats.total("unknown_events") == 0
    got = sorted(({k: v for k, v in r.items() if v is not None} for r in result.table.to_pylist()),
                 key=lambda r: r["time_ns"])
    assert got == rows


def test_schema_in_types_are_the_writers():
    from traceanalyzer.synth.etl_calls import in_type_of

    for column, kind in SCHEMA.field_types.items():
        ftype = SCHEMA.types[kind]
        assert in_type_of(column, 8) == ftype.in_type_for(8), column
        assert in_type_of(column, 4) == ftype.in_type_for(4), column


def test_the_reader_still_reads_the_older_layout(tmp_path, monkeypatch):
    """Before the schema file, synth wrote fields in COLUMNS order, status as an ANSI
    string and bugcheck_on_failure as INT32: such files read to the same rows."""
    from traceanalyzer.synth import etl_calls, etl_writer
    from traceanalyzer.synth import tracelogging as tl

    rows = _rows(8)
    new = read_file(_write(tmp_path / "new.etl", rows)).table
    old_types = {"status": tl.IN_ANSISTRING, "bugcheck_on_failure": tl.IN_INT32}
    real_in_type_of = etl_calls.in_type_of
    monkeypatch.setattr(etl_writer, "BULK_CALLS", False)
    monkeypatch.setattr(etl_calls, "in_type_of", lambda c, *a, **k: old_types.get(c) or real_in_type_of(c, *a, **k))
    monkeypatch.setattr(etl_calls, "ordered_fields", lambda event, present: [c for c in etl_calls.FIELD_ORDER if c in present])
    monkeypatch.setattr(etl_calls, "status_number", lambda value: None)
    old_path = _write(tmp_path / "old.etl", rows)
    first = next(ev for ev in provider_events(old_path) if ev.event == "MmProbeAndLockPages")
    assert list(first.fields) == ["mdl", "access_mode", "operation", "effective_pid", "irql", "status",
                                  "return_address"]
    assert isinstance(first.fields["status"], str)
    old = read_file(old_path).table

    def by_time(table):
        return sorted(table.to_pylist(), key=lambda r: r["time_ns"])

    assert by_time(old) == by_time(new)


def _write(path, rows):
    write_etl(_table(rows), path)
    return path
