"""ta.sql and ``traceanalyzer query``: SQL over the trace and analysis tables."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import traceanalyzer as ta
from traceanalyzer.synth.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
SCRIPT = Path(sys.executable).with_name("traceanalyzer")
S = 1_000_000_000
MDL_A, MDL_B = 0xFFFFC30A4B2F1000, 0xFFFFC30A4B2F3000


def _locks_scenario() -> Scenario:
    """app.exe locks 8 KiB from 0.5 s to 2.5 s; db.exe 4 KiB from 1 s to the end (3 s)."""
    s = Scenario()
    app = s.process(pid=1234, image="app.exe", tid=5678)
    db = s.process(pid=2222, image="db.exe", tid=2223)
    s.at(S // 2).allocate_mdl(app, mdl=MDL_A, va=0x10000, size=8192)
    s.probe_and_lock(app, mdl=MDL_A)
    s.at(S).allocate_mdl(db, mdl=MDL_B, va=0x20000, size=4096)
    s.probe_and_lock(db, mdl=MDL_B)
    s.at(5 * S // 2).unlock(app, mdl=MDL_A)
    s.free_mdl(app, mdl=MDL_A)
    s.at(3 * S).cswitch(0, app)
    return s


@pytest.fixture(scope="module")
def locks_trace(tmp_path_factory) -> Path:
    return _locks_scenario().to_csv(tmp_path_factory.mktemp("q") / "locks.csv")


@pytest.fixture(scope="module")
def seed() -> ta.Analysis:
    return ta.analyze(ta.load(SAMPLES / "seed_unlock_from_worker.csv"))


def _doc_queries() -> list[str]:
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


def test_findings_query_agrees_with_the_dataframe(seed: ta.Analysis):
    got = ta.sql(seed, "select rule, count(*) as n from findings group by rule order by rule")
    want = seed.findings.groupby("rule").size().sort_index()
    assert got["rule"].tolist() == want.index.tolist()
    assert got["n"].tolist() == want.tolist()


def test_addresses_stay_unsigned_64_bit(seed: ta.Analysis):
    got = ta.sql(seed, "select distinct mdl, printf('0x%x', mdl) as hex from findings "
                       "where mdl is not null")
    assert got["hex"].tolist() == ["0xffffc30a4b2f1000"]
    assert int(got["mdl"].iloc[0]) == 0xFFFFC30A4B2F1000


def test_severity_is_ordered_in_sql(seed: ta.Analysis):
    """info < low < medium < high < critical in comparisons, ORDER BY and min/max (it was
    text: >= 'high' dropped critical and kept medium, ORDER BY was alphabetical)."""
    def rules(where: str) -> list[str]:
        return ta.sql(seed, f"select severity from findings where {where} "
                            "order by severity")["severity"].tolist()
    assert rules("severity >= 'high'") == ["high", "critical"]
    assert rules("'high' > severity") == rules("findings.severity < 'high'") == ["medium"]
    assert rules('"Severity" between \'medium\' and \'high\'') == ["medium", "high"]
    assert rules("severity not between 'low' and 'high'") == ["critical"]
    assert rules("severity = 'bogus' or severity in ('high')") == ["high"]
    assert ta.sql(seed, "select f.severity from findings f, problems p "
                        "where f.severity > p.severity order by 1")["severity"].tolist() == [
        "high", "critical", "critical"]
    out = ta.sql(seed, "select min(severity) as lo, max(severity) as hi from problems")
    assert out.iloc[0].tolist() == ["medium", "critical"]
    assert ta.sql(seed, "select greatest(severity, 'high'::severity) as s from findings "
                        "order by s")["s"].tolist() == ["high", "high", "critical"]
    desc = ta.sql(seed, "select severity from findings order by severity desc")
    assert desc["severity"].tolist() == ["critical", "high", "medium"]
    assert desc["severity"].dtype == seed.findings["severity"].dtype  # ordered Categorical
    kind = ta.sql(seed, "select column_type from (describe findings) "
                        "where column_name = 'severity'")["column_type"].iloc[0]
    assert kind == "ENUM('info', 'low', 'medium', 'high', 'critical')"
    # two literals are text, as written: 'high' < 'medium'
    assert ta.sql(seed, "select 'high' >= 'medium' as text")["text"].tolist() == [False]


def test_cli_query_severity_is_ordered():
    q = "select severity from findings where severity >= 'high' order by severity"
    rows = json.loads(_cli("query", str(SAMPLES / "seed_unlock_from_worker.csv"), q,
                           "--json").stdout)
    assert rows == [{"severity": "high"}, {"severity": "critical"}]


def test_arrow_output_and_trace_tables_scanned_in_place(seed: ta.Analysis):
    out = ta.sql(seed.trace, "select event, count(*) as n from calls group by event "
                             "order by event", output="arrow")
    assert isinstance(out, pa.Table)
    calls = seed.trace.calls
    want = calls["event"].astype(str).value_counts().sort_index()
    assert out.column("event").to_pylist() == want.index.tolist()
    assert out.column("n").to_pylist() == want.tolist()


def test_join_of_trace_and_analysis_tables(seed: ta.Analysis):
    got = ta.sql(seed, "select f.rule, c.event from findings f join calls c "
                       "on c.seq = f.evidence[1] order by f.rule")
    assert len(got) == len(seed.findings[seed.findings["evidence"].map(len) > 0])
    assert set(got["event"]) == {"IoAllocateMdl"}


def test_a_trace_cannot_answer_an_analysis_table(seed: ta.Analysis):
    with pytest.raises(ta.QueryError, match="ta.analyze"):
        ta.sql(seed.trace, "select * from findings")


@pytest.mark.parametrize("query, message", [
    ("select * from nosuchtable", "nosuchtable"),
    ("selec 1", "syntax error"),
    ("select nosuchcolumn from calls", "nosuchcolumn"),
])
def test_bad_queries_are_one_line_query_errors(seed: ta.Analysis, query: str, message: str):
    with pytest.raises(ta.QueryError, match=message) as err:
        ta.sql(seed, query)
    assert "\n" not in str(err.value)


def test_bytes_locked_per_process_per_second(locks_trace: Path):
    a = ta.analyze(ta.load(locks_trace))
    query = next(q for q in _doc_queries() if "avg_bytes_locked" in q)
    got = ta.sql(a, query)
    rows = {(int(r.second), r.process): float(r.avg_bytes_locked) for r in got.itertuples()}
    # trace runs 0 .. 3 s; app.exe holds 8 KiB over [0.5, 2.5), db.exe 4 KiB over [1, 3]
    assert rows == pytest.approx({
        (0, "app.exe"): 4096.0, (1, "app.exe"): 8192.0, (2, "app.exe"): 4096.0,
        (1, "db.exe"): 4096.0, (2, "db.exe"): 4096.0,
    }, rel=1e-5)  # (the scenario's calls are 1 us apart)


@pytest.mark.parametrize("query", _doc_queries())
def test_documented_queries_run(seed: ta.Analysis, locks_trace: Path, query: str):
    for analysis in (seed, ta.analyze(ta.load(locks_trace))):
        out = ta.sql(analysis, query)
        assert isinstance(out, pd.DataFrame) and len(out.columns) >= 2


def _cli(*args: str, rc: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def test_cli_query_prints_json_csv_and_table(locks_trace: Path):
    q = "select process, sum(bytes) as bytes from locks group by process order by process"
    rows = json.loads(_cli("query", str(locks_trace), q, "--json").stdout)
    assert rows == [{"process": "app.exe", "bytes": 8192}, {"process": "db.exe", "bytes": 4096}]
    csv = _cli("query", str(locks_trace), q, "--csv").stdout
    assert csv.splitlines() == ["process,bytes", "app.exe,8192", "db.exe,4096"]
    table = _cli("query", str(locks_trace), "select seq from calls", "--max-rows", "2").stdout
    assert "... 4 more rows" in table


def test_cli_query_csv_and_json_write_lists_whole_and_addresses_as_hazards_does():
    """Lists were numpy text ('[5 6 7 8]', '...' past 1000 items) in --csv, addresses
    decimal in --csv and --json; now as hazards --csv (space-separated, 0x hex) and
    hazards --json ("0x..." strings, lists as arrays)."""
    seed = str(SAMPLES / "seed_unlock_from_worker.csv")
    q = ("select mdl, evidence, range(0, 2000) as r, ['a', null] as s, null::ubigint as va "
         "from findings where rule = 'UNLOCK_WHILE_USER_MAPPED'")
    header, row = _cli("query", seed, q, "--csv").stdout.splitlines()
    assert header == "mdl,evidence,r,s,va"
    [cells] = [r for r in csv.DictReader(io.StringIO(_cli("hazards", seed, "--csv").stdout))
               if r["rule"] == "UNLOCK_WHILE_USER_MAPPED"]
    assert row == ",".join([cells["mdl"], cells["evidence"], " ".join(map(str, range(2000))),
                            "a null", ""])
    assert cells["mdl"] == "0xffffc30a4b2f1000" and cells["evidence"] == "5 6 7 8"
    [record] = json.loads(_cli("query", seed, q, "--json").stdout)
    [first] = [f for f in json.loads(_cli("hazards", seed, "--json").stdout)["findings"]
               if f["rule"] == "UNLOCK_WHILE_USER_MAPPED"]
    assert record == {"mdl": first["mdl"], "evidence": first["evidence_seq"],
                      "r": list(range(2000)), "s": ["a", None], "va": None}


def test_cli_query_max_rows_0_prints_the_columns_and_the_count(locks_trace: Path):
    q = "select seq, event from calls"
    table = _cli("query", str(locks_trace), q, "--max-rows", "0").stdout
    assert table == "seq  event\n... 6 more rows (--max-rows, --csv or --json for all)\n"
    err = _cli("query", str(locks_trace), q, "--max-rows", "-1", rc=2).stderr
    assert err == "traceanalyzer: --max-rows must be 0 or more\n"


def test_table_names_are_case_insensitive_as_in_duckdb(seed: ta.Analysis, locks_trace: Path):
    assert list(ta.sql(seed, 'select count(*) as n from Findings join "CALLS" c on true')["n"]) == [
        len(seed.findings) * len(seed.trace.table("calls"))]
    with pytest.raises(ta.QueryError, match="analysis table"):
        ta.sql(seed.trace, "select * from FINDINGS")
    rows = json.loads(_cli("query", str(locks_trace), "select count(*) as n from LOCKS", "--json").stdout)
    assert rows == [{"n": 2}]


def test_cli_query_errors_are_exit_2_one_line(locks_trace: Path):
    err = _cli("query", str(locks_trace), "select * from nosuch", rc=2).stderr
    assert err.count("\n") == 1 and "nosuch" in err


@pytest.mark.parametrize("query", [
    "copy (select 1 as x) to '{out}/copied.csv'",
    "attach '{out}/attached.db' as other_db",
    "select * from read_csv('{passwd}')",
    "select * from read_text('{passwd}')",
    "select * from read_blob('{passwd}')",
    "select * from glob('{out}/*')",
    "install httpfs",
    "load httpfs",
    "set enable_external_access = true",
])
def test_queries_reach_nothing_but_the_tables(seed: ta.Analysis, tmp_path: Path, query: str):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0\n", encoding="utf-8")
    q = query.format(out=tmp_path.as_posix(), passwd=secret.as_posix())
    for source in (seed, seed.trace):
        with pytest.raises(ta.QueryError, match="reads only the trace's and the analysis's tables") as err:
            ta.sql(source, q)
        assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]  # nothing written


def test_every_table_is_readable_with_external_access_off(seed: ta.Analysis):
    for name in ta.query.table_names(seed):
        got = ta.sql(seed, f"with v as (select * from {name}) select count(*) as n from v")
        assert list(got["n"]) == [len(ta.sql(seed, f"select * from {name}"))]


def test_unknown_table_hint_lists_the_analysis_tables_too(seed: ta.Analysis):
    every = ", ".join(sorted([*ta.query.TRACE_TABLES, *ta.query.ANALYSIS_TABLES]))
    for source in (seed, seed.trace):
        with pytest.raises(ta.QueryError) as err:
            ta.sql(source, "select * from nosuch")
        assert f"(tables: {every})" in str(err.value)


def test_cli_query_refuses_files_exit_2_one_line(locks_trace: Path, tmp_path: Path):
    out = tmp_path / "x.csv"
    err = _cli("query", str(locks_trace), f"copy (select 1) to '{out.as_posix()}'", rc=2).stderr
    assert err.count("\n") == 1 and "reads only the trace's" in err and not out.exists()
    err = _cli("query", str(locks_trace), "select * from nosuch", rc=2).stderr
    assert "findings" in err and "locks" in err


def test_other_table_holds_what_sql_md_says_per_reader(tmp_path: Path, real_traces: Path):
    """docs/sql.md, "The `other` table": a non-canonical event of a canonical CSV and of
    its ETL twin (the MdlTrace provider) is a row; another provider's ETL events are only
    counted unless keep_unknown; the section names every reader."""
    lines = (SAMPLES / "seed_unlock_from_worker.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = dict.fromkeys(header, "") | {"time_ns": "5", "event": "MyDriverHeartbeat",
                                       "pid": "4", "tid": "8"}
    csv = tmp_path / "u.csv"
    csv.write_text("\n".join([lines[0], ",".join(row[h] for h in header), *lines[1:]]) + "\n",
                   encoding="utf-8")
    etl = tmp_path / "u.etl"
    _cli("synth", str(csv), "-o", str(etl))
    for path in (csv, etl):
        got = ta.sql(ta.load(path), "select event, pid, tid from other")
        assert got.values.tolist() == [["MyDriverHeartbeat", 4, 8]], path
    other_provider = (real_traces / "jtmoon79__super-speedy-syslog-searcher"
                      / "WindowsUpdate.20251008.140245.443.8.etl")
    plain = ta.load(other_provider)
    assert plain.table("other").num_rows == 0 and plain.stats.total("unknown_events") == 80
    assert ta.load(other_provider, keep_unknown=True).table("other").num_rows == 80
    section = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8").split("### The `other` table")[1]
    section = section.split("\n## ")[0]
    for reader in ta.readers.readers():
        assert f"(`{reader}`)" in section, reader
