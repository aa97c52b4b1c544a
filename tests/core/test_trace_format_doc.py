"""docs/trace-format.md agrees with the code: the canonical columns and their types
(model/schema.py), the event names and their families, the enum numbers, the kernel
providers the ETL reader decodes, the MdlTrace mapping of the ETL reader (name, GUID,
field names) and the in-types the ETL writer uses."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pyarrow as pa

from traceanalyzer.model import schema
from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.readers.etl import kernel, layout
from traceanalyzer.readers.field_map import MDL_PROVIDER, load_field_map, provider_guid
from traceanalyzer.synth import tracelogging as tl
from traceanalyzer.synth.etl_calls import FIELD_ORDER, in_type_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"
TEXT = DOC.read_text(encoding="utf-8")


def _section(heading: str) -> str:
    return re.split(r"\n#{2,3} ", TEXT.split(heading + "\n", 1)[1], maxsplit=1)[0]


def _rows(section: str, columns: int) -> list[list[str]]:
    """Cells of the table rows with ``columns`` cells (header and rule rows left out)."""
    out = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == columns:
                out.append(cells)
    return out[1:]  # the header row


def _code(cell: str) -> str:
    return cell.strip("`")


def test_canonical_columns_and_types_are_the_schema() -> None:
    rows = _rows(_section("## The canonical table"), 3)
    assert [_code(r[0]) for r in rows] == list(schema.COLUMNS)
    for name, typ, _ in rows:
        assert pa.type_for_alias(typ) == schema.COLUMNS[_code(name)], name
    for name in schema.REQUIRED_COLUMNS:
        assert next(r for r in rows if _code(r[0]) == name)[2].startswith("required")


def test_event_names_and_families_are_the_schema() -> None:
    section = _section("## Event names")
    documented = {_code(r[0]): r[1] for r in _rows(section, 3) + _rows(section, 2)}
    assert set(documented) == set(schema.KNOWN_EVENTS)
    for event, family in documented.items():
        assert schema.family_of(event) == family, event


def test_enum_numbers_are_the_aliases_and_the_schema_file() -> None:
    rows = {_code(r[0]): r[1] for r in _rows(_section("### The MdlTrace TraceLogging provider"), 2)}
    for column, aliases in schema.ENUM_ALIASES.items():
        pairs = re.findall(r"(\d+) (\w+)", rows[column])
        assert pairs and all(aliases[n] == name for n, name in pairs), column
        assert {name for _, name in pairs} == set(aliases.values())
        assert {name: int(n) for n, name in pairs} == mdltrace_schema().enums[column]


def test_kernel_providers_are_what_the_reader_decodes() -> None:
    rows = {r[0]: r for r in _rows(_section("### Kernel providers"), 4)}
    guids = {"Process": layout.PROCESS_GUID, "Thread": layout.THREAD_GUID, "Image": layout.IMAGE_GUID,
             "ImageID": layout.IMAGE_ID_GUID}
    opcodes = {"Process": kernel.PROCESS_EVENTS, "Thread": {**kernel.THREAD_EVENTS, 36: "CSwitch"},
               "Image": kernel.IMAGE_EVENTS, "ImageID": {layout.DBGID_RSDS_OPCODE: "ImageDebugId"}}
    assert set(rows) == set(guids)
    for provider, row in rows.items():
        assert uuid.UUID(_code(row[1])) == guids[provider]
        numbers = [int(n) for n in re.findall(r"(\d+) \w+", row[2])]
        events = [_code(e.strip()) for e in row[3].split(",")]
        assert [opcodes[provider][n] for n in numbers] == events, provider
        # every opcode that makes a row is documented
        assert {n for n, e in opcodes[provider].items() if e} == set(numbers), provider


def test_mdltrace_name_guid_and_fields_are_the_readers_mapping() -> None:
    section = _section("### The MdlTrace TraceLogging provider")
    guid = provider_guid(MDL_PROVIDER)
    assert f"**`{MDL_PROVIDER}`**" in section
    assert f"**`{guid}`**" in section
    fmap = load_field_map(None)
    rows = _rows(section, 5)
    fields = [_code(r[0]) for r in rows]
    assert fields == list(FIELD_ORDER)
    for event in schema.CALL_EVENTS + schema.IO_EVENTS:
        # by name and by GUID: event name = canonical event, field name = column name
        for mapping in (fmap.lookup(MDL_PROVIDER, event), fmap.lookup(None, event, guid=guid)):
            assert mapping is not None and mapping.canonical == event
            assert all(mapping.column(field) == field for field in fields)
    # the header and the buffer supply these; the doc says so and no field carries them
    for column in ("time_ns", "cpu", "pid", "tid"):
        assert column not in fields and f"`{column}`" in section


def test_mdltrace_in_types_are_what_synth_writes_and_the_schema_file_says() -> None:
    names = {v: k[3:] for k, v in vars(tl).items() if k.startswith("IN_") and isinstance(v, int)}
    mdltrace = mdltrace_schema()
    for field, typ, in64, in32, macro in _rows(_section("### The MdlTrace TraceLogging provider"), 5):
        column = _code(field)
        assert pa.type_for_alias(typ) == schema.COLUMNS[column]
        assert names[in_type_of(column, 8)] == in64, column
        assert names[in_type_of(column, 4)] == in32, column
        if column in mdltrace.field_types:
            ftype = mdltrace.field_type(column)
            assert (names[ftype.in_type_for(8)], names[ftype.in_type_for(4)], ftype.macro) == (
                in64, in32, macro), column
        else:
            assert macro == "-", column


def test_mdltrace_events_and_their_fields_are_the_schema_file() -> None:
    mdltrace = mdltrace_schema()
    section = _section("### The MdlTrace TraceLogging provider")
    rows = _rows(section, 3)
    assert [_code(r[0]) for r in rows] == list(mdltrace.events)
    for event, fields, routines in rows:
        ev = mdltrace.events[_code(event)]
        assert [_code(f.strip()) for f in fields.split(",") if f.strip() != "-"] == list(ev.own_fields)
        assert [r.strip() for r in routines.split(",")] == list(ev.routines)
    common = next(iter(mdltrace.events.values())).common_fields
    assert "common fields " + ", ".join(f"`{f}`" for f in common) in " ".join(section.split())
    assert f"level {mdltrace.level}, keyword {mdltrace.keyword}" in " ".join(section.split())
    assert f"**`{mdltrace.guid}`**" in section and f"**`{mdltrace.provider}`**" in section


def test_xperf_kernel_names_are_the_readers() -> None:
    from traceanalyzer.readers.xperf_text import KERNEL_EVENTS

    rows = _rows(_section("## xperf dumper text"), 2)
    documented: dict[str, str] = {}
    for names, events in rows:
        xs = [_code(n.strip()) for n in names.split(",")]
        es = [_code(e.strip()) for e in events.split(",")]
        if len(xs) == len(es):
            documented.update(zip(xs, es))
    assert {k: v for k, v in documented.items() if k in KERNEL_EVENTS} == {
        k: v[0] for k, v in KERNEL_EVENTS.items()}


def test_the_csv_example_is_the_sample_file() -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_traces" / "seed_unlock_from_worker.csv"
    block = _section("## Canonical CSV").split("```\n", 2)[1]
    assert sample.read_text(encoding="utf-8").startswith(block)
