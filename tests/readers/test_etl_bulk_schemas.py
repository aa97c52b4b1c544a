"""TraceLogging events are decoded in bulk whatever their schema: the bulk path gives
exactly what the per-event path gives, on every schema the writer produces (every
MdlTrace event, ANSI and UTF-16 strings, text status, both pointer sizes) and on
hand-built schemas with counted strings, binary, arrays, SIDs, GUIDs, booleans, chars and
FILETIMEs; and no MdlTrace event of those traces takes the per-event path."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers.tables import canonical_table

from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import bulk_events as B
from traceanalyzer.readers.etl import events as etl_events
from traceanalyzer.readers.etl import read_etl
from traceanalyzer.readers.etl import tracelogging as tl
from traceanalyzer.synth.etl_writer import write_etl
from traceanalyzer.synth.header_rows import header_rows

SCHEMA = mdltrace_schema()
ROWS = 80  # per event: each schema variant (numeric or text status) above BULK_MIN_EVENTS
CALLERS = ["mydriver.sys+0x1a2b", "mydriver.sys+0x2b00", "other.sys+0x10", "ünïcode.sys+0x1"]


def _rows(pointer_size: int) -> list[dict]:
    rows, t = [], 0
    for event in SCHEMA.events.values():
        for k in range(ROWS):
            t += 1000
            row = {"time_ns": t, "event": event.name, "cpu": k % 2, "pid": 500, "tid": 600 + k % 3,
                   "caller": CALLERS[k % len(CALLERS)]}
            for column in event.fields:
                kind = SCHEMA.field_types[column]
                if column in SCHEMA.enums:
                    value = list(SCHEMA.enums[column])[k % len(SCHEMA.enums[column])]
                elif column == "status":  # numbers, and the text the capture writes on an exception
                    value = "exception" if k >= ROWS // 2 else ("0x00000000", "0xC0000005")[k % 2]
                elif kind == "pointer":
                    value = (0xFFFFC30A00000000 + 0x1000 * k) & (0xFFFFFFFF if pointer_size == 4 else ~0)
                elif column in ("irql", "bugcheck_on_failure"):
                    value = k % 2
                else:
                    value = 4096 * (k + 1) if kind == "uint64" else 1000 + k
                row[column] = value
            rows.append(row)
    return rows


def _sorted(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (r["time_ns"], str(r["event"])))


@pytest.mark.parametrize("pointer_size", [8, 4])
@pytest.mark.parametrize("variant", ["ansi", "utf16", "header"])
def test_bulk_equals_per_event_on_every_writer_schema(tmp_path: Path, monkeypatch, pointer_size: int,
                                                      variant: str) -> None:
    """Callers as ANSI or UTF-16 strings, or (``synth --header-schema``, what the capture
    header logs) as return addresses with ImageLoad events."""
    path = tmp_path / "calls.etl"
    table = canonical_table(_rows(pointer_size))
    if variant == "header":
        table = header_rows(table)
    write_etl(table, path, pointer_size=pointer_size, unicode_strings=variant == "utf16")
    per_event_calls = []
    original = etl_events.RareDecoder._event

    def counting(self, *args, **kwargs):
        per_event_calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(etl_events.RareDecoder, "_event", counting)
    bulk = read_etl(path, ReadOptions())
    assert per_event_calls == []  # every MdlTrace event went through the bulk path
    monkeypatch.setattr(etl_events, "BULK_MIN_EVENTS", 10**9)
    slow = read_etl(path, ReadOptions())
    assert len(per_event_calls) == len(SCHEMA.events) * ROWS
    assert _sorted(bulk.table) == _sorted(slow.table)
    assert {k: e.value for k, e in bulk.stats.entries.items()} == {k: e.value for k, e in slow.stats.entries.items()}
    if variant != "header":
        assert {r["caller"] for r in bulk.table.to_pylist() if r["caller"]} == set(CALLERS)
    else:
        assert bulk.table.column("return_address").null_count < bulk.table.num_rows


@pytest.mark.parametrize("variant", ["ansi", "utf16", "header"])
def test_classes_walked_on_two_threads_read_like_one_thread(tmp_path: Path, monkeypatch, variant: str) -> None:
    """The compiled walks of a chunk's classes run on two threads (decode_bulk_all); the
    columns and counters are then made class by class, so the table, its row order and
    the counters (in order) equal the single-thread read."""
    import threading

    path = tmp_path / "calls.etl"
    table = canonical_table(_rows(8))
    write_etl(header_rows(table) if variant == "header" else table, path,
              unicode_strings=variant == "utf16")
    monkeypatch.setattr(B, "PARALLEL_MIN_EVENTS", 10**12)
    one = read_etl(path, ReadOptions())
    threads = []
    original = B.decode_bulk

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(B, "decode_bulk", spy)
    monkeypatch.setattr(B, "PARALLEL_MIN_EVENTS", 0)
    two = read_etl(path, ReadOptions())
    assert len(threads) >= 2 and all(t.startswith("traceanalyzer-etl-decode") for t in threads)
    assert two.table.equals(one.table)
    assert two.ordered_table().equals(one.ordered_table())
    assert list(two.stats.entries.items()) == list(one.stats.entries.items())


# --- hand-built schemas: the compiled walk and the dictionary decode vs decode_payload ---

def _meta(name: str, fields: list[tuple[str, int, bytes]]) -> bytes:
    body = b"\0" + name.encode() + b"\0"
    for fname, raw_in, extra in fields:
        body += fname.encode() + b"\0" + bytes([raw_in]) + extra
    return struct.pack("<H", len(body) + 2) + body


SID = bytes([1, 2, 0, 0, 0, 0, 0, 5]) + struct.pack("<2I", 32, 544)
EXOTIC = [
    ("a", tl.IN_ANSISTRING, b""),
    ("u", tl.IN_UNICODESTRING, b""),
    ("n", tl.IN_UINT32, b""),
    ("cs", tl.IN_COUNTEDSTRING, b""),
    ("ca", tl.IN_COUNTEDANSISTRING, b""),
    ("bin", tl.IN_BINARY, b""),
    ("arr", tl.IN_UINT16 | 0x40, b""),                     # variable count
    ("fix", tl.IN_UINT8 | 0x20, struct.pack("<H", 3)),     # constant count
    ("g", tl.IN_GUID, b""),
    ("ok", tl.IN_BOOL32, b""),
    ("ch", tl.IN_UINT16 | 0x80, bytes([tl.OUT_STRING])),   # a UTF-16 character
    ("ft", tl.IN_FILETIME, b""),
    ("sid", tl.IN_SID, b""),
    ("cust", tl.IN_BINARY | 0x60, struct.pack("<H", 2) + b"xy"),  # custom: its own size
    ("last", tl.IN_HEXINT64, b""),
]


def _payload(k: int) -> bytes:
    word = ("abc", "", "x" * (k % 5), "mdl")[k % 4]
    return b"".join([
        word.encode() + b"\0", word.encode("utf-16-le") + b"\0\0", struct.pack("<I", k),
        struct.pack("<H", 2 * len(word)) + word.encode("utf-16-le"), struct.pack("<H", len(word)) + word.encode(),
        struct.pack("<H", k % 3) + bytes(range(k % 3)), struct.pack("<H", k % 4) + struct.pack(f"<{k % 4}H", *range(k % 4)),
        bytes([k % 2, 1, 2]), uuid.UUID(int=k % 3).bytes_le, struct.pack("<i", k % 2), struct.pack("<H", 65 + k % 2),
        struct.pack("<Q", 132_000_000_000_000_000 + k % 2), SID, struct.pack("<H", 1) + b"z",
        struct.pack("<Q", 0xFFFF000000000000 + k),
    ])


def test_compiled_walk_and_dictionary_decode_equal_decode_payload() -> None:
    schema = tl.parse_schema(_meta("Exotic", EXOTIC))
    plan = B.compile_plan(schema)
    assert plan is not None
    payloads = [_payload(k) for k in range(60)] + [_payload(1)[:-3]]  # the last one is cut short
    data = np.frombuffer(b"".join(payloads), np.uint8)
    ends = np.cumsum([len(p) for p in payloads])
    starts = ends - [len(p) for p in payloads]
    n, m = len(payloads), len(schema.fields)
    offs, lens, ok = np.zeros((n, m), np.int64), np.zeros((n, m), np.int64), np.zeros(n, np.bool_)
    B.field_spans(data, starts.astype(np.int64), ends.astype(np.int64), plan.kinds, plan.args, offs, lens, ok)
    assert ok[:-1].all() and not ok[-1]
    with pytest.raises(tl.TlDecodeError):
        tl.decode_payload(schema, payloads[-1])
    for i, payload in enumerate(payloads[:-1]):
        expected = tl.decode_payload(schema, payload)
        got = {f.name: tl.decode_field(f, bytes(data[offs[i, j]:offs[i, j] + lens[i, j]]))
               for j, f in enumerate(schema.fields)}
        assert got == expected, i
    # dictionary encoding by bytes: one decode per distinct value, spans verified
    j = [f.name for f in schema.fields].index("a")
    converted, _first_bad = B._by_value(data, schema.fields[j], "caller", offs[:-1, j], lens[:-1, j], 8)
    assert not converted.bad.any()
    assert converted.array.to_pylist() == [tl.decode_payload(schema, p)["a"] for p in payloads[:-1]]


def test_structs_stay_on_the_per_event_path() -> None:
    schema = tl.parse_schema(_meta("S", [("s", tl.IN_STRUCT | 0x80, bytes([1])), ("x", tl.IN_UINT8, b"")]))
    assert B.compile_plan(schema) is None


def test_dictionary_codes_compare_bytes_so_colliding_slots_never_merge_values() -> None:
    """3,000 distinct strings in a table of 8,192 slots (slot collisions are certain; a
    full 64-bit hash collision takes the same path: the bytes decide): every distinct
    span gets its own code, equal spans share one, first rows point at the value."""
    words = [f"drv{k}.sys+0x{k * 7:x}".encode() + b"\0" for k in range(3000)]
    rows = [words[(k * 13) % 3000] for k in range(6000)]
    data = np.frombuffer(b"".join(rows), np.uint8)
    lens = np.array([len(r) for r in rows], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    codes, firsts = np.empty(6000, np.int32), np.empty(6000, np.int64)
    distinct = B.dictionary_codes(data, offs, lens, codes, firsts)
    assert distinct == 3000
    for k, row in enumerate(rows):
        r = firsts[codes[k]]
        assert bytes(data[offs[r]:offs[r] + lens[r]]) == row
    by_value: dict[bytes, set[int]] = {}
    for k, row in enumerate(rows):
        by_value.setdefault(row, set()).add(int(codes[k]))
    assert all(len(c) == 1 for c in by_value.values()) and len({min(c) for c in by_value.values()}) == 3000


def test_one_pass_decode_group_equals_decode_payload() -> None:
    """decode_group (what bulk_events runs): plain numbers copied side by side, every other
    field dictionary-encoded by its bytes, in one pass; an event cut short is not ok and
    adds no value to any dictionary."""
    schema = tl.parse_schema(_meta("Exotic", EXOTIC))
    plan = B.compile_plan(schema)
    payloads = [_payload(k) for k in range(60)] + [_payload(1)[:-3]]
    data = np.frombuffer(b"".join(payloads), np.uint8)
    ends = np.cumsum([len(p) for p in payloads]).astype(np.int64)
    starts = ends - np.array([len(p) for p in payloads], np.int64)
    n, m = len(payloads), len(schema.fields)
    numeric = [j for j in range(m) if plan.numeric[j] is not None]
    strings = [j for j in range(m) if plan.numeric[j] is None]
    assert numeric and strings
    roles = np.array([1 if j in numeric else 2 for j in range(m)], np.int64)
    widths = [int(plan.args[j]) for j in numeric]
    slots = np.zeros(m, np.int64)
    slots[numeric] = np.cumsum([0] + widths)[:-1]
    slots[strings] = np.arange(len(strings))
    raw = np.zeros((n, sum(widths)), np.uint8)
    s = len(strings)
    codes = np.zeros((s, n), np.int32)
    first_off, first_len = np.zeros((s, n), np.int64), np.zeros((s, n), np.int64)
    distinct, ok = np.zeros(s, np.int64), np.zeros(n, np.bool_)
    B.decode_group(data, starts, ends, plan.kinds, plan.args, roles, slots, raw, codes, first_off, first_len,
                   np.full((s, B._table_size(n)), -1, np.int64), distinct, ok)
    assert ok[:-1].all() and not ok[-1]
    for i, payload in enumerate(payloads[:-1]):
        expected = tl.decode_payload(schema, payload)
        for j, f in enumerate(schema.fields):
            if j in numeric:
                at = int(slots[j])
                value = raw[i, at:at + int(plan.args[j])].view(plan.numeric[j])[0].item()
            else:
                k = int(slots[j])
                c = int(codes[k, i])
                assert c < distinct[k]
                o, length = int(first_off[k, c]), int(first_len[k, c])
                value = tl.decode_field(f, bytes(data[o:o + length]))
            assert value == expected[f.name], (i, f.name)
    # each dictionary holds exactly the distinct byte spans of the good events
    offs, lens, good = np.zeros((n, m), np.int64), np.zeros((n, m), np.int64), np.zeros(n, np.bool_)
    B.field_spans(data, starts, ends, plan.kinds, plan.args, offs, lens, good)
    for k, j in enumerate(strings):
        spans = {bytes(data[offs[i, j]:offs[i, j] + lens[i, j]]) for i in range(n - 1)}
        assert int(distinct[k]) == len(spans), schema.fields[j].name
