"""The TraceLogging decoder: real events against etl-parser, every in-type by hand.

Hand-built schemas follow the documented TraceLogging metadata format (TraceLoggingProvider.h:
in-type low 5 bits, 0x20 constant count, 0x40 variable count, 0x80 out-type follows;
a struct's out-type byte is its member count), written out byte by byte in each test.
"""

from __future__ import annotations

import struct
from collections import Counter
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from traceanalyzer.readers.etl.dump import provider_events
from traceanalyzer.readers.etl.tracelogging import (
    TlDecodeError,
    decode_payload,
    parse_schema,
    provider_guid,
)

ETLPARSER_OK = [
    "jtmoon79__super-speedy-syslog-searcher/WindowsUpdate.20251008.140245.443.8.etl",
    "jtmoon79__super-speedy-syslog-searcher/waasmedic.20251005_113019_195.etl",
    "jtmoon79__super-speedy-syslog-searcher/SIH.20230422.034724.362.1.etl",
    "airbus-cert__etl-parser/lxcore_kernel.etl",
    "airbus-cert__etl-parser/AMSITrace.etl",
]


def _plain(value):
    """etl-parser's values in plain Python (its GUID containers, NUL-terminated empties)."""
    if hasattr(value, "data1"):
        return uuid.UUID(fields=(value.data1, value.data2, value.data3, value.data4[0], value.data4[1],
                                 int.from_bytes(bytes(value.data4[2:]), "big")))
    if hasattr(value, "inner"):
        return _plain(value.inner)
    if isinstance(value, str):
        return value.rstrip("\0")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _ours_plain(value):
    """etl-parser ignores out-types: our chars (UINT8 + out-type STRING) compare as numbers."""
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(c, str) and len(c) == 1 for c in value):
        return [ord(c) for c in value]
    return value


@pytest.mark.parametrize("name", ETLPARSER_OK)
def test_real_tracelogging_events_equal_etlparser(real_traces: Path, name: str, oracles) -> None:
    path = real_traces / name
    ref = oracles.etlparser_tracelogging(path)
    ours = list(provider_events(path))
    assert len(ours) == len(ref) > 0
    for mine, theirs in zip(ours, ref):
        assert "error" not in theirs
        assert mine.event == theirs["name"]
        assert (mine.pid, mine.tid) == (theirs["pid"], theirs["tid"])
        assert {k: _ours_plain(v) for k, v in mine.fields.items()} == {k: _plain(v) for k, v in theirs["fields"].items()}


def test_provider_names_hash_to_their_guids(real_traces: Path) -> None:
    """The GUIDs in the files are the name hashes of the names in their provider traits."""
    seen = {}
    for name in ("jtmoon79__super-speedy-syslog-searcher/waasmedic.20251005_113019_195.etl",
                 "microsoft__perfview/SelfDescribingSingleEvent.etl"):
        for ev in provider_events(real_traces / name):
            seen[ev.provider] = ev.provider_guid
    assert seen and all(provider_guid(n) == g for n, g in seen.items())
    # the C# EventSource of TraceLoggingTester.7z (SOURCES.md)
    assert provider_guid("CSharpTraceLoggingEventSource") == uuid.UUID("a214eced-be64-5e23-fac1-1d7b9052efa4")


def test_primitive_types_where_etlparser_fails(real_traces: Path, oracles) -> None:
    """etl-parser stops at FILETIME (TlUnhandledTag); we decode all 12 fields. The FILETIME
    and SYSTEMTIME fields carry the same instant, inside the trace's 2021-09-09 window."""
    path = real_traces / "microsoft__perfview" / "primitive-types.etl"
    assert {r.get("error") for r in oracles.etlparser_tracelogging(path)} == {"TlUnhandledTag"}
    events = list(provider_events(path))
    assert len(events) == 5 and {e.event for e in events} == {"PrimitiveTypesTest"}
    for ev in events:
        f = ev.fields
        assert f["file_time_type"] == f["system_time_type"]
        assert f["file_time_type"].date().isoformat() == "2021-09-09"
        assert isinstance(f["boolean_type"], bool) and isinstance(f["guid_type"], uuid.UUID)
        assert f["char_type"] == f["string_type"][0]  # the planet's initial, as a char
        assert f["int16_type"] == -f["uint16_type"] and f["int32_type"] == -f["uint32_type"]


def _schema(event: str, *fields: bytes) -> bytes:
    body = b"\0" + event.encode() + b"\0" + b"".join(fields)  # tags byte 0, name
    return struct.pack("<H", len(body) + 2) + body


def _field(name: str, *type_bytes: int) -> bytes:
    return name.encode() + b"\0" + bytes(type_bytes)


def test_every_scalar_in_type() -> None:
    meta = _schema(
        "All",
        _field("u", 1), _field("a", 2), _field("i8", 3), _field("u8", 4), _field("i16", 5),
        _field("u16", 6), _field("i32", 7), _field("u32", 8), _field("i64", 9), _field("u64", 10),
        _field("f", 11), _field("d", 12), _field("b32", 13), _field("bin", 14), _field("g", 15),
        _field("ft", 17), _field("st", 18), _field("sid", 19), _field("h32", 20), _field("h64", 21),
        _field("cs", 22), _field("cas", 23), _field("cbin", 25),
    )
    guid = uuid.UUID("187eb5e9-857d-525c-36cb-625f55a6cdee")
    payload = (
        "wide".encode("utf-16-le") + b"\0\0" + b"ansi\0"
        + struct.pack("<bBhHiIqQfdi", -1, 255, -2, 65535, -3, 4_000_000_000, -4, 2**64 - 1, 1.5, 2.25, 1)
        + struct.pack("<H", 3) + b"\x01\x02\x03" + guid.bytes_le
        + struct.pack("<Q", (datetime(2021, 9, 9) - datetime(1601, 1, 1)).days * 86_400 * 10**7)
        + struct.pack("<8H", 2021, 9, 4, 9, 14, 59, 35, 799)
        + bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18)  # S-1-5-18
        + struct.pack("<IQ", 0xDEADBEEF, 0xFFFFC30A4B2F1000)
        + struct.pack("<H", 4) + "hé".encode("utf-16-le") + struct.pack("<H", 2) + b"ok"
        + struct.pack("<H", 2) + b"\xff\x00"
    )
    v = decode_payload(parse_schema(meta), payload)
    assert v == {
        "u": "wide", "a": "ansi", "i8": -1, "u8": 255, "i16": -2, "u16": 65535, "i32": -3,
        "u32": 4_000_000_000, "i64": -4, "u64": 2**64 - 1, "f": 1.5, "d": 2.25, "b32": True,
        "bin": b"\x01\x02\x03", "g": guid,
        "ft": datetime(2021, 9, 9, tzinfo=timezone.utc),
        "st": datetime(2021, 9, 9, 14, 59, 35, 799_000, tzinfo=timezone.utc),
        "sid": "S-1-5-18", "h32": 0xDEADBEEF, "h64": 0xFFFFC30A4B2F1000, "cs": "hé", "cas": "ok",
        "cbin": b"\xff\x00",
    }


def test_arrays_structs_out_types_and_custom() -> None:
    meta = _schema(
        "Nested",
        _field("v", 0x40 | 8),                      # variable-count UINT32 array
        _field("c", 0x20 | 21, 2, 0),               # constant count 2 of HEXINT64
        _field("s", 0x80 | 24, 2),                  # struct of the next 2 fields
        _field("name", 2), _field("flag", 0x80 | 4, 3),   # ANSI string, UINT8 as BOOLEAN
        _field("ch", 0x80 | 6, 2),                  # UINT16 as a character
        _field("sa", 0x40 | 0x80 | 24, 1),          # array of structs of 1 member
        _field("x", 7),
        _field("cust", 0x60, 2, 0, 0xAA, 0xBB),     # custom: 2 bytes of type info
    )
    payload = (
        struct.pack("<H3I", 3, 1, 2, 3) + struct.pack("<2Q", 10, 11) + b"mdl\0" + b"\x01"
        + struct.pack("<H", ord("Z")) + struct.pack("<Hii", 2, -5, 6) + struct.pack("<H", 3) + b"abc"
    )
    v = decode_payload(parse_schema(meta), payload)
    assert v == {"v": [1, 2, 3], "c": [10, 11], "s": {"name": "mdl", "flag": True}, "ch": "Z",
                 "sa": [{"x": -5}, {"x": 6}], "cust": b"abc"}


def test_short_payload_and_bad_schema_raise_decode_errors() -> None:
    schema = parse_schema(_schema("E", _field("a", 10)))
    with pytest.raises(TlDecodeError):
        decode_payload(schema, b"\x01\x02")
    with pytest.raises(TlDecodeError):
        parse_schema(b"\x09\x00\x00Ename")  # no terminating NUL
    with pytest.raises(TlDecodeError):
        parse_schema(_schema("E", _field("s", 0x80 | 24, 3), _field("a", 4)))  # 3 members declared, 1 present


def test_unknown_provider_events_counted_and_kept_on_request(real_traces: Path) -> None:
    from traceanalyzer.readers.base import ReadOptions
    from traceanalyzer.readers.etl import read_etl

    path = real_traces / "jtmoon79__super-speedy-syslog-searcher" / "WindowsUpdate.20251008.140245.443.8.etl"
    names = Counter(f"{e.provider}/{e.event}" for e in provider_events(path))
    plain = read_etl(path, ReadOptions())
    assert plain.table.num_rows == 0 and plain.stats.by_detail("unknown_events") == dict(names)
    kept = read_etl(path, ReadOptions(extra={"keep_unknown": True}))
    assert Counter(kept.table.column("event").to_pylist()) == names
    assert sum(names.values()) == 80  # SOURCES.md


def test_mapping_file_by_guid_reads_a_real_provider(real_traces: Path, tmp_path: Path) -> None:
    """lxcore's BreakPoint events, mapped by provider GUID: Line -> irql would not fit
    (2659 > 127: null), LxPid -> target_pid (-1 -> null), Function -> caller."""
    import json

    from traceanalyzer.readers.base import ReadOptions
    from traceanalyzer.readers.etl import read_etl

    mapping = tmp_path / "lx.json"
    mapping.write_text(json.dumps({"providers": [{
        "provider": "{0cd1c309-0878-4515-83db-749843b3f5c9}", "events": {"BreakPoint": "IoCompleteRequest"},
        "fields": {"Function": "caller", "LxPid": "effective_pid", "Line": "irql"}}]}))
    path = real_traces / "airbus-cert__etl-parser" / "lxcore_kernel.etl"
    result = read_etl(path, ReadOptions(field_map=mapping))
    rows = result.table.to_pylist()
    ref = list(provider_events(path))
    assert [r["event"] for r in rows] == ["IoCompleteRequest"] * len(ref) == ["IoCompleteRequest"] * 2
    assert [r["caller"] for r in rows] == [e.fields["Function"] for e in ref]
    assert all(r["irql"] is None for r in rows)           # Line 2659 / 10528 do not fit int8
    assert [r["effective_pid"] for r in rows] == [e.fields["LxPid"] for e in ref]  # -1 fits int64
    assert result.stats.by_detail("unmapped_fields")["Microsoft.Windows.Subsystem.LxCore/BreakPoint/Message"] == 2


def test_progress_reports_every_record(tmp_path: Path) -> None:
    from traceanalyzer.readers.base import ReadOptions
    from traceanalyzer.readers.etl import read_etl

    from helpers.real_traces import in_repo_trace

    seen: list[tuple[int, int]] = []
    path = in_repo_trace("airbus-cert__etl-parser/ShutdownPerfDiagLogger.buffers-0-1-24.etl")
    result = read_etl(path, ReadOptions(progress=lambda done, total: seen.append((done, total))))
    assert seen and seen[-1] == (result.metadata["records"], result.metadata["records"])
