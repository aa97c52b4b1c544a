"""File names that are not UTF-8 (a Latin-1 ``café.csv``: byte 0xE9): Python holds such a
name with a surrogate escape (``'caf\\udce9.csv'``), which pyarrow, pandas' Arrow strings,
JSON files and XML cannot encode. Every command reads such a file, and every output
shows its name as ``caf\\xe9.csv`` (``escape.path_text``) instead of crashing with
"internal error: UnicodeEncodeError ... surrogates not allowed"."""

from __future__ import annotations

import csv
import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main
from traceanalyzer.errors import TraceError
from traceanalyzer.escape import csv_cell, path_text, terminal_safe, terminal_text

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sample_traces" / "seed_unlock_from_worker.csv"
CAFE = os.fsdecode(b"caf\xe9")  # 'caf\udce9'
SHOWN = "caf\\xe9"  # how every output names it


def _plain(text: str) -> str:
    """``text``, asserted to hold no surrogate (it encodes as UTF-8)."""
    text.encode("utf-8")
    return text


def test_escapes_write_a_surrogate_escape_as_its_byte() -> None:
    assert path_text(os.fsencode(CAFE + ".csv")) == path_text(Path(CAFE + ".csv")) == SHOWN + ".csv"
    assert path_text("café.csv") == "café.csv"  # UTF-8 names as they are
    assert terminal_safe(CAFE) == terminal_text(CAFE) == SHOWN
    assert csv_cell("=" + CAFE) == "'=" + SHOWN
    assert terminal_safe("\ud800x") == "\\ud800x"  # a lone surrogate that is no byte
    err = TraceError(f"also {CAFE}.etl", f"{CAFE}.csv")  # a message may name other files
    assert (str(err), err.path) == (f"{SHOWN}.csv: also {SHOWN}.etl", f"{SHOWN}.csv")


@pytest.fixture(params=["csv", "etl", "parquet", "csv.gz"])
def cafe_trace(request, tmp_path: Path, capsys) -> Path:
    """The seed trace in a file (in a folder) whose name is not UTF-8, in each format."""
    folder = tmp_path / f"in{CAFE}"
    folder.mkdir()
    trace = folder / f"{CAFE}.{request.param}"
    if request.param == "csv":
        trace.write_bytes(SEED.read_bytes())
    elif request.param == "csv.gz":
        import gzip

        trace.write_bytes(gzip.compress(SEED.read_bytes()))
    else:
        command = "synth" if request.param == "etl" else "convert"
        assert main([command, str(SEED), "-o", str(trace)]) == 0
    capsys.readouterr()
    return trace


def test_every_trace_command_reads_it_and_names_it_safely(cafe_trace: Path, tmp_path: Path, capsys) -> None:
    shown = f"{SHOWN}.{cafe_trace.name.split('.', 1)[1]}"
    assert main(["info", str(cafe_trace)]) == 0
    assert shown in _plain(capsys.readouterr().out)
    assert main(["info", str(cafe_trace), "--json"]) == 0
    info = json.loads(_plain(capsys.readouterr().out))
    assert info["traces"] == [path_text(cafe_trace)] and shown in info["traces"][0]
    assert main(["hazards", str(cafe_trace)]) == 0
    assert "UNLOCK_WHILE_USER_MAPPED" in _plain(capsys.readouterr().out)
    assert main(["hazards", str(cafe_trace), "--json"]) == 0
    assert json.loads(_plain(capsys.readouterr().out))["traces"] == [path_text(cafe_trace)]
    assert main(["hazards", str(cafe_trace), "--csv"]) == 0
    assert list(csv.DictReader(io.StringIO(_plain(capsys.readouterr().out))))
    assert main(["query", str(cafe_trace), "select count(*) as n from findings", "--json"]) == 0
    assert json.loads(_plain(capsys.readouterr().out))[0]["n"] == 3
    out = tmp_path / f"report{CAFE}"
    assert main(["report", str(cafe_trace), "-o", str(out)]) == 0
    assert f"report{SHOWN}" in _plain(capsys.readouterr().out)
    assert shown in (out / "report.html").read_text(encoding="utf-8")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["traces"] == [path_text(cafe_trace)]
    parquet = tmp_path / f"{CAFE}.parquet"
    assert main(["convert", str(cafe_trace), "-o", str(parquet)]) == 0
    etl = tmp_path / f"{CAFE}.etl"
    assert main(["synth", str(cafe_trace), "-o", str(etl)]) == 0
    capsys.readouterr()
    assert main(["hazards", str(parquet), str(etl), "--json"]) == 0  # both written, both read back
    doc = json.loads(_plain(capsys.readouterr().out))
    assert doc["traces"] == [f"{tmp_path}/{SHOWN}.parquet", f"{tmp_path}/{SHOWN}.etl"]


def test_errors_name_it_safely(tmp_path: Path, capsys) -> None:
    assert main(["info", str(tmp_path / f"no{CAFE}.csv")]) == 2
    assert _plain(capsys.readouterr().err) == f"traceanalyzer: {tmp_path}/no{SHOWN}.csv: no such file\n"
    bad = tmp_path / f"{CAFE}.csv"
    bad.write_text("time_ns,event\nx,y\n")
    assert main(["hazards", str(bad), "--strict"]) == 2
    err = _plain(capsys.readouterr().err)
    assert err.startswith(f"traceanalyzer: {tmp_path}/{SHOWN}.csv: ") and "internal error" not in err
    assert main(["query", str(SEED), f"select '{CAFE}' as a"]) == 2
    assert _plain(capsys.readouterr().err) == f"traceanalyzer: SQL query: not UTF-8 text: select '{SHOWN}' as a\n"


def test_check_names_it_safely_in_every_output(tmp_path: Path, capsys) -> None:
    nightly = tmp_path / f"nightly{CAFE}"
    (nightly / f"sub{CAFE}").mkdir(parents=True)
    (nightly / f"sub{CAFE}" / f"{CAFE}.csv").write_bytes(SEED.read_bytes())
    (nightly / f"{CAFE}.csv").write_bytes(SEED.read_bytes())
    baseline = tmp_path / f"b{CAFE}.json"
    assert main(["check", str(nightly), "--baseline", str(baseline), "--update-baseline", "-j", "1"]) == 0
    ids = [f"{SHOWN}.csv", f"sub{SHOWN}/{SHOWN}.csv"]
    assert sorted(json.loads(baseline.read_text(encoding="utf-8"))["traces"]) == ids
    capsys.readouterr()
    files = {k: tmp_path / f"{k}{CAFE}.{k}" for k in ("json", "xml", "sarif")}
    history = tmp_path / f"h{CAFE}"
    assert main(["check", str(nightly), "--baseline", str(baseline), "-j", "2", "--no-cache", "-v",
                 "--json", str(files["json"]),
                 "--junit", str(files["xml"]), "--sarif", str(files["sarif"]), "--history", str(history),
                 "--trend", "UNLOCK_WHILE_USER_MAPPED", "--trend-trace", f"{CAFE}.csv"]) == 0
    out = _plain(capsys.readouterr().out)
    assert all(i in out for i in ids) and " 0 new, 0 missing," in out  # the IDs match
    assert f"h{SHOWN}/trend-UNLOCK_WHILE_USER_MAPPED.png" in out
    verdicts = json.loads(files["json"].read_text(encoding="utf-8"))["traces"]
    assert sorted(verdicts) == ids and {v["status"] for v in verdicts.values()} == {"passed"}
    assert {v["path"] for v in verdicts.values()} == {f"{path_text(nightly)}/{i}" for i in ids}
    junit = ET.parse(files["xml"]).getroot()
    assert sorted(c.get("name") for c in junit.iter("testcase")) == ids
    sarif = json.loads(files["sarif"].read_text(encoding="utf-8"))
    assert {r["properties"]["trace"] for r in sarif["runs"][0]["results"]} == set(ids)
    # a URI names the file by its bytes (a trace ID's \xNN would name another file)
    assert sorted(a["location"]["uri"] for a in sarif["runs"][0]["artifacts"]) == ["caf%E9.csv", "subcaf%E9/caf%E9.csv"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"]} == {"caf%E9.csv", "subcaf%E9/caf%E9.csv"}
    assert sarif["runs"][0]["originalUriBaseIds"]["TRACEROOT0"]["uri"].endswith("/nightlycaf%E9/")
    (run_file,) = history.glob("run-*.json")
    assert sorted(json.loads(run_file.read_text(encoding="utf-8"))["traces"]) == ids
    # a trace ID can be named as IDs show it, too
    assert main(["check", str(nightly), "--baseline", str(baseline), "-q", "--history", str(history),
                 "--trend", "UNLOCK_WHILE_USER_MAPPED", "--trend-trace", f"{SHOWN}.csv"]) == 0


def test_a_worker_error_line_names_it_safely(tmp_path: Path) -> None:
    """The pool's own error lines ('timed out', 'worker died') name the file too: escaped
    where the gate stores every error, so JUnit stays well-formed XML."""
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    (nightly / f"{CAFE}.csv").write_bytes(SEED.read_bytes())
    xml = tmp_path / "out.xml"
    assert main(["check", str(nightly), "--baseline", str(tmp_path / "b.json"),
                 "--update-baseline", "-j", "2", "--timeout", "0.000001", "--no-cache",
                 "--junit", str(xml)]) == 2
    (case,) = ET.parse(xml).getroot().iter("testcase")
    text = ET.tostring(case, encoding="unicode")
    assert "timed out" in text and SHOWN in text
