"""What can be checked here of the recording side (neither runs on Linux, docs/capture.md
says so): the WPR profile is well-formed XML enabling the kernel keywords and the
MdlTrace provider the docs name, and the DTrace script prints rows of the canonical
header it prints first."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.model.schema import COLUMNS

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "capture"
DOC = (REPO / "docs" / "capture.md").read_text(encoding="utf-8")
SCHEMA = mdltrace_schema()
KERNEL_KEYWORDS = {"ProcessThread", "CSwitch", "Loader"}


def test_wpr_profile_enables_what_the_docs_name():
    root = ET.parse(CAPTURE / "mdltrace.wprp").getroot()
    assert root.tag == "WindowsPerformanceRecorder"
    system = {k.get("Value") for p in root.iter("SystemProvider") for k in p.iter("Keyword")}
    assert system == KERNEL_KEYWORDS
    (provider,) = root.iter("EventProvider")
    assert provider.get("Name") == SCHEMA.guid and int(provider.get("Level")) == SCHEMA.level
    assert [int(k.get("Value"), 16) for k in provider.iter("Keyword")] == [SCHEMA.keyword]
    ids = {e.get("Id") for e in root.iter() if e.get("Id")}
    profiles = {p.get("Id"): p for p in root.iter("Profile")}
    assert {p.get("LoggingMode") for p in profiles.values()} == {"File", "Memory"}
    for profile in profiles.values():  # every reference resolves
        refs = [e.get("Value") for e in profile.iter() if e.tag.endswith("Id") and e.get("Value")]
        assert refs and set(refs) <= ids, refs
    for name in (*KERNEL_KEYWORDS, SCHEMA.guid, *profiles):
        assert name in DOC, f"docs/capture.md does not name {name}"
    assert f"0x{SCHEMA.keyword:x}" in DOC


def _printf_formats(text: str) -> list[str]:
    return re.findall(r'printf\("([^"]*)\\n"', text)


def test_dtrace_rows_match_the_canonical_header_it_prints():
    text = (CAPTURE / "mdltrace.d").read_text(encoding="utf-8")
    header, *rows = _printf_formats(text)
    columns = header.split(",")
    assert set(columns) <= set(COLUMNS) and columns[:2] == ["time_ns", "event"]
    assert len(rows) >= 10
    for fmt in rows:
        cells = fmt.split(",")
        assert len(cells) == len(columns), fmt
        assert cells[0] == "%d" and cells[columns.index("caller")] == "%s+0x%x", fmt
    probed = set(re.findall(r"fbt:nt:(\w+):entry", text))
    returned = set(re.findall(r"fbt:nt:(\w+):return", text))
    assert probed == returned
    routines = {r for e in SCHEMA.events.values() for r in e.routines}
    assert probed <= routines
    named = {cells.split(",")[1] for cells in rows} - {"%s"}
    assert named <= set(SCHEMA.events)
    assert "not run in CI" in text and "not run in CI" in DOC


def test_docs_list_each_event_with_its_schema_fields():
    for event in SCHEMA.events.values():
        fields = ", ".join(f"{f} ({SCHEMA.field_types[f]})" for f in event.own_fields) or "-"
        row = f"| `{event.name}` | {', '.join(event.routines)} | {fields} |"
        assert row in DOC, row
    for column, values in SCHEMA.enums.items():
        for name, number in values.items():
            assert f"{name} = {number}" in DOC
