"""Mutated WPA exports never escape as anything but TraceError (bounded hypothesis run)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceanalyzer.errors import TraceError
from traceanalyzer.readers import ReadOptions, read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "wpa"
SEED = (DATA / "generic_events_seed_de.csv").read_bytes()
FIELD_MAP = DATA / "seed_field_map.json"

edit = st.tuples(
    st.sampled_from(["delete", "insert", "truncate"]),
    st.integers(0, len(SEED)),
    st.integers(1, 30),
    st.sampled_from([b",", b'"', b"\xb5", b"\n", b".", b"(", b"0x", b"\xef\xbb\xbf", b"Field 9"]),
)


def mutate(data: bytes, edits) -> bytes:
    for kind, pos, length, blob in edits:
        pos = min(pos, len(data))
        if kind == "delete":
            data = data[:pos] + data[pos + length :]
        elif kind == "insert":
            data = data[:pos] + blob * (1 + length % 3) + data[pos:]
        else:
            data = data[: max(pos, 1)]
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(edit, min_size=1, max_size=5), strict=st.booleans())
def test_mutated_export_reads_or_raises_trace_error(tmp_path, edits, strict):
    path = tmp_path / "m.csv"
    path.write_bytes(mutate(SEED, edits))
    try:
        result = read_file(path, format="wpa_csv", options=ReadOptions(strict=strict, field_map=FIELD_MAP))
    except TraceError:
        return
    assert {"time_ns", "event"} <= set(result.table.column_names)
    assert result.table.column("time_ns").null_count == 0
