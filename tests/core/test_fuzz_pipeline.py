"""Mutated inputs of every format through ``ta.load`` and ``ta.analyze`` (issue 10 item 7).

The contract, for ETL, canonical CSV (plain and .csv.gz), xperf text, WPA CSV and
Parquet, lenient and strict: the pipeline returns (findings, summary) or raises a
``TraceError`` subclass naming the file; it never raises anything else, never hangs
(an alarm per example) and its peak memory stays bounded (RSS growth per example). An
ETL file that lost events against its seed has a counter that says so.
Bounded hypothesis runs here (``TA_FUZZ_EXAMPLES``, default 200 per format); the long
campaign is ``python benchmarks/fuzz_campaign.py --cases 50000`` (README, "Fuzzing").
"""

from __future__ import annotations

import gzip
import io
import os
import resource
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import traceanalyzer as ta
from traceanalyzer.errors import TraceError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
DATA = ROOT / "tests" / "data"
EXAMPLES = int(os.environ.get("TA_FUZZ_EXAMPLES", "200"))
#: Seconds one example may take (load + analyze of a few KB; generous for a loaded CI box).
ALARM_S = 60
#: Peak RSS growth one example may cause (its input is a few KB).
MAX_GROWTH_MB = 512

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: Cells that broke readers before: huge, negative, hex, null tokens, quotes, separators.
TOKENS = [b"", b"-1", b"-8192", b"0", b"300", b"4294967296", b"9223372036854775808", b"90000000000000000000",
          b"1e300", b"0x", b"0xffffffffffffffffff", b"NaN", b"NULL", b"N/A", b"<none>", b'"', b",", b"\n",
          b"\r\n", b"\xff\xfe", b"\x00", b"()", b"(-5)", b"UserMode", b"Sideways", b"TooLongTag", b"1,5",
          b"=cmd", b"IoAllocateMdl", b"ProcessEnd", b"CSwitch"]


class _Hang(Exception):
    pass


def _alarm(_sig, _frame):  # pragma: no cover - only on a hang
    raise _Hang(f"one example took over {ALARM_S} s")


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":"))


def _reset_peak() -> int:
    """Reset the peak RSS (Linux: clear_refs 5) and return the RSS now, in KiB; where the
    peak cannot be reset, the process peak so far."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak() -> int:
    try:
        return _status_kb("VmHWM")
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_pipeline(path: Path, strict: bool, **options: object) -> ta.Trace | None:
    """Load + analyze + summary; only TraceError may escape; no hang; bounded memory.
    Returns the trace (None after a TraceError)."""
    before = _reset_peak()
    trace = None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ALARM_S)
    try:
        trace = ta.load(path, strict=strict, **options)
        analysis = ta.analyze(trace)
        assert {"rule", "severity"} <= set(analysis.findings.columns)
        assert isinstance(analysis.summary(), dict)
    except TraceError as exc:
        assert str(exc), "a TraceError with an empty message"
        trace = None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    growth_mb = (_peak() - before) / 1024
    assert growth_mb < MAX_GROWTH_MB, f"peak memory grew by {growth_mb:.0f} MB on a {path.stat().st_size} B input"
    return trace


#: Counters of size, not of loss: "a counter moved" looks at every other one.
_SIZE_COUNTERS = frozenset({"events", "rows"})


def counters(trace: ta.Trace) -> dict[str, int]:
    return {e.name: trace.stats.total(e.name) for e in trace.stats.entries.values() if e.name not in _SIZE_COUNTERS}


_SEED_FIGURES: dict[Path, tuple[int, dict[str, int]]] = {}


def seed_figures(seed: Path) -> tuple[int, dict[str, int]]:
    """(events, counters) of an unmutated seed."""
    if seed not in _SEED_FIGURES:
        trace = ta.load(seed)
        _SEED_FIGURES[seed] = (trace.events.shape[0], counters(trace))
    return _SEED_FIGURES[seed]


# --- mutations --------------------------------------------------------------------------

byte_edit = st.tuples(st.sampled_from(["overwrite", "insert", "delete", "truncate"]),
                      st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8))
text_edit = st.tuples(st.sampled_from(["cell", "insert", "delete", "dup_line", "truncate"]),
                      st.floats(0, 1, exclude_max=True), st.sampled_from(TOKENS))


def mutate_bytes(data: bytes, edits: list) -> bytes:
    """Byte-level edits at relative positions (for binary formats)."""
    buf = bytearray(data)
    for kind, where, blob in edits:
        at = int(where * len(buf))
        if kind == "overwrite":
            buf[at:at + len(blob)] = blob
        elif kind == "insert":
            buf[at:at] = blob
        elif kind == "delete":
            del buf[at:at + len(blob) * 64]
        else:
            del buf[max(at, 1):]
    return bytes(buf)


def mutate_text(data: bytes, edits: list) -> bytes:
    """Cell- and line-level edits (for text formats): a cell replaced by a token, a token
    inserted, a run deleted, a line duplicated, the file cut."""
    for kind, where, token in edits:
        at = int(where * len(data))
        if kind == "cell":  # replace the cell around ``at`` (between separators)
            start = max(data.rfind(b",", 0, at), data.rfind(b"\n", 0, at)) + 1
            ends = [e for e in (data.find(b",", at), data.find(b"\n", at)) if e >= 0]
            end = min(ends) if ends else len(data)
            data = data[:start] + token + data[end:]
        elif kind == "insert":
            data = data[:at] + token + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + 1 + len(token) * 4:]
        elif kind == "dup_line":
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end + 1
            data = data[:end] + data[start:end] + data[end:]
        else:
            data = data[:max(at, 1)]
    return data


# --- seeds ------------------------------------------------------------------------------

ETL_SEEDS = sorted(SAMPLES.glob("*.etl"))[:6] + sorted((DATA / "real").rglob("*.etl"))[:4]
CSV_SEEDS = sorted(SAMPLES.glob("*.csv"))
CSV_SEEDS = [p for p in CSV_SEEDS if not p.name.endswith(".expected.csv")][:6]
XPERF_SEED = DATA / "xperf" / "seed_dumper.txt"
WPA_SEEDS = [DATA / "wpa" / "generic_events_seed.csv", DATA / "wpa" / "generic_events_seed_de.csv"]
WPA_MAP = DATA / "wpa" / "seed_field_map.json"


def test_seeds_are_present_and_analyse() -> None:
    """The fuzz starts from inputs that load and analyse (else it only fuzzes the sniffer)."""
    assert len(ETL_SEEDS) >= 6 and len(CSV_SEEDS) >= 3
    for path in (ETL_SEEDS[0], CSV_SEEDS[0], XPERF_SEED):
        assert len(ta.analyze(ta.load(path)).findings.columns) > 0
    assert ta.load(WPA_SEEDS[0], field_map=WPA_MAP).calls.shape[0] > 0


@FUZZ
@given(seed=st.sampled_from(ETL_SEEDS), edits=st.lists(byte_edit, min_size=1, max_size=10), strict=st.booleans())
def test_fuzz_etl(tmp_path: Path, seed: Path, edits: list, strict: bool) -> None:
    path = tmp_path / "fuzz.etl"
    path.write_bytes(mutate_bytes(seed.read_bytes(), edits))
    trace = run_pipeline(path, strict)
    seed_events, seed_counts = seed_figures(seed)
    if trace is not None and trace.events.shape[0] < seed_events:  # events went missing: a counter says so
        moved = {k: v for k, v in counters(trace).items() if v > seed_counts.get(k, 0)}
        assert moved, f"{seed_events - trace.events.shape[0]} of {seed_events} events gone and no counter moved"


@FUZZ
@given(seed=st.sampled_from(CSV_SEEDS), edits=st.lists(text_edit, min_size=1, max_size=8), strict=st.booleans(),
       gz=st.booleans(), raw_gz_edits=st.lists(byte_edit, max_size=2))
def test_fuzz_canonical_csv(tmp_path: Path, seed: Path, edits: list, strict: bool, gz: bool,
                            raw_gz_edits: list) -> None:
    data = mutate_text(seed.read_bytes(), edits)
    if gz:
        path = tmp_path / "fuzz.csv.gz"
        path.write_bytes(mutate_bytes(gzip.compress(data), raw_gz_edits))
    else:
        path = tmp_path / "fuzz.csv"
        path.write_bytes(data)
    run_pipeline(path, strict)


@FUZZ
@given(edits=st.lists(text_edit, min_size=1, max_size=8), strict=st.booleans())
def test_fuzz_xperf_text(tmp_path: Path, edits: list, strict: bool) -> None:
    path = tmp_path / "fuzz.txt"
    path.write_bytes(mutate_text(XPERF_SEED.read_bytes(), edits))
    run_pipeline(path, strict, format="xperf")


@FUZZ
@given(seed=st.sampled_from(WPA_SEEDS), edits=st.lists(text_edit, min_size=1, max_size=8), strict=st.booleans())
def test_fuzz_wpa_csv(tmp_path: Path, seed: Path, edits: list, strict: bool) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(mutate_text(seed.read_bytes(), edits))
    run_pipeline(path, strict, format="wpa_csv", field_map=WPA_MAP)


@pytest.fixture(scope="module")
def parquet_seeds(tmp_path_factory) -> list[Path]:
    from traceanalyzer.model.parquet_writer import write_parquet

    out = []
    for csv in CSV_SEEDS[:3]:
        path = tmp_path_factory.mktemp("pq") / f"{csv.stem}.parquet"
        write_parquet(ta.load(csv), path)
        out.append(path)
    return out


#: Column edits for Parquet: typed values a writer other than ours could store.
parquet_edit = st.tuples(
    st.sampled_from(["time_ns", "pid", "tid", "cpu", "mdl", "va", "size", "irql", "tag", "access_mode", "event"]),
    st.sampled_from(["int64", "float64", "string", "null", "uint64"]),
    st.sampled_from([0, -1, -8192, 300, 2**32, 2**63 - 1, -(2**63), float("nan"), 1.5, 1e300, "x", "0x10", None]),
)


def _retyped(table: pa.Table, column: str, typ: str, value: object) -> pa.Table:
    n = table.num_rows
    if typ == "null" or value is None:
        arr = pa.nulls(n)
    elif typ == "string":
        arr = pa.array([str(value)] * n, pa.string())
    elif typ == "float64":
        arr = pa.array([float(value) if not isinstance(value, str) else float("nan")] * n, pa.float64())
    elif isinstance(value, str) or (isinstance(value, float) and not value.is_integer()) or value != value:
        arr = pa.array([str(value)] * n, pa.string())
    else:
        v = int(value)
        kind = (pa.uint64() if typ == "uint64" and 0 <= v < 2**64
                else pa.int64() if -(2**63) <= v < 2**63 else pa.string())
        arr = pa.array([v if kind != pa.string() else str(v)] * n, kind)
    if column in table.column_names:
        return table.set_column(table.column_names.index(column), column, arr)
    return table.append_column(column, arr)


@FUZZ
@given(seed=st.integers(0, 2), edits=st.lists(parquet_edit, max_size=3), raw=st.lists(byte_edit, max_size=3),
       strict=st.booleans())
def test_fuzz_parquet(tmp_path: Path, parquet_seeds: list[Path], seed: int, edits: list, raw: list,
                      strict: bool) -> None:
    table = pq.read_table(parquet_seeds[seed])
    for column, typ, value in edits:
        table = _retyped(table, column, typ, value)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    path = tmp_path / "fuzz.parquet"
    path.write_bytes(mutate_bytes(sink.getvalue(), raw))
    run_pipeline(path, strict)
