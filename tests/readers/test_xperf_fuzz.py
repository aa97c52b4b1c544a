"""Mutated xperf dumps never escape as anything but TraceError (bounded hypothesis run).

Starts from the hand-written seed dump and applies random byte-level edits (delete,
insert commas / quotes / garbage / non-UTF-8 bytes, truncate, duplicate lines); the
reader must return a result or raise a TraceError subclass, in lenient and strict mode.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceanalyzer.errors import TraceError
from traceanalyzer.readers import ReadOptions, read_file

SEED = (Path(__file__).resolve().parents[1] / "data" / "xperf" / "seed_dumper.txt").read_bytes()

edit = st.tuples(
    st.sampled_from(["delete", "insert", "truncate", "dup_line"]),
    st.integers(0, len(SEED)),
    st.integers(1, 40),
    st.sampled_from([b",", b'"', b"\xff\xfe", b"\r\n", b"(", b")", b"0x", b"-", b"<none>", b"\x00", b"BeginHeader\n"]),
)


def mutate(data: bytes, edits) -> bytes:
    for kind, pos, length, blob in edits:
        pos = min(pos, len(data))
        if kind == "delete":
            data = data[:pos] + data[pos + length :]
        elif kind == "insert":
            data = data[:pos] + blob * (1 + length % 3) + data[pos:]
        elif kind == "truncate":
            data = data[: max(pos, 1)]
        else:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end + 1
            data = data[:end] + data[start:end] + data[end:]
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(edit, min_size=1, max_size=6), strict=st.booleans())
def test_mutated_dump_reads_or_raises_trace_error(tmp_path, edits, strict):
    path = tmp_path / "m.txt"
    path.write_bytes(mutate(SEED, edits))
    try:
        result = read_file(path, format="xperf", options=ReadOptions(strict=strict))
    except TraceError:
        return
    assert {"time_ns", "event"} <= set(result.table.column_names)
    assert result.table.column("time_ns").null_count == 0
