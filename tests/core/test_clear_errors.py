"""Inputs that used to end in ``internal error: ...``: one line naming the file and what
is wrong, exit 2 (issue 10 item 5); the catch-all names the file it was working on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sample_traces" / "seed_unlock_from_worker.csv"
XPERF = ROOT / "tests" / "data" / "xperf" / "seed_dumper.txt"
WPA = ROOT / "tests" / "data" / "wpa" / "generic_events_seed.csv"


def _one_clear_line(argv: list[str], capsys, path: Path, what: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err, err
    assert err.startswith(f"traceanalyzer: {path}") and what in err, err


def test_invalid_utf8_in_a_csv_header(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"time_ns,ev\xffent\n0,Foo\n")
    _one_clear_line(["hazards", str(path)], capsys, path, "header line is not valid UTF-8 (byte 0xff")


@pytest.mark.parametrize("value", ["100000000000000000000", "-3"])
def test_xperf_events_lost_out_of_range(tmp_path: Path, capsys, value: str) -> None:
    path = tmp_path / "lost.txt"
    path.write_bytes(XPERF.read_bytes().replace(b"Events Lost: 3,", f"Events Lost: {value},".encode()))
    _one_clear_line(["hazards", str(path)], capsys, path, f"line 22: Events Lost {value} is not a loss count")


def test_xperf_timestamp_of_1e20_is_a_bad_row_or_a_strict_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ts.txt"
    path.write_bytes(XPERF.read_bytes().replace(b"CSwitch,       1000,", b"CSwitch, 100000000000000000000,"))
    assert main(["hazards", "--json", str(path)]) == 0  # lenient: dropped and counted
    assert "internal error" not in capsys.readouterr().err
    _one_clear_line(["hazards", "--strict", str(path)], capsys, path, "line ")


def test_wpa_time_of_1e300_is_a_bad_row_or_a_strict_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_text(WPA.read_text(encoding="utf-8").replace(",1.001000000,", ",1e300,"), encoding="utf-8")
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quality"]["bad_rows"] == 1
    _one_clear_line(["info", "--strict", str(path)], capsys, path, "line 2: Time (s)")


@pytest.mark.parametrize("key,value", [("count", "1e400"), ("bytes_at_end", "1e400"), ("count", "-1")])
def test_baseline_numbers_out_of_range(tmp_path: Path, capsys, key: str, value: str) -> None:
    baseline = tmp_path / "b.json"
    assert main(["check", str(SEED), "--baseline", str(baseline), "--update-baseline", "-j", "1"]) == 0
    capsys.readouterr()
    doc = baseline.read_text(encoding="utf-8")
    assert f'"{key}": ' in doc
    import re

    baseline.write_text(re.sub(rf'"{key}": \d+', f'"{key}": {value}', doc, count=1), encoding="utf-8")
    _one_clear_line(["check", str(SEED), "--baseline", str(baseline), "-j", "1"], capsys, baseline,
                    f"{key} {float(value) if 'e' in value else int(value)!r} is not a whole number")


def test_the_catch_all_names_the_file_it_was_working_on(tmp_path: Path, capsys, monkeypatch) -> None:
    from traceanalyzer.readers import csv_canonical

    def broken(self, path, options):
        raise RuntimeError("a bug")

    monkeypatch.setattr(csv_canonical.CanonicalCsvReader, "read", broken)
    other = tmp_path / "other.csv"
    other.write_text("time_ns,event\n0,Foo\n", encoding="utf-8")
    assert main(["info", "--format", "csv", str(other)]) == 2
    err = capsys.readouterr().err
    assert err == (f"traceanalyzer: {other}: internal error: RuntimeError: a bug "
                   "(run with --debug for the traceback)\n")
    # as the hint says: --debug before the command or after it (argparse refused it there)
    for argv in (["--debug", "info", str(other)], ["info", str(other), "--debug"], ["info", "--debug", str(other)]):
        with pytest.raises(RuntimeError, match="a bug"):
            main(argv)
