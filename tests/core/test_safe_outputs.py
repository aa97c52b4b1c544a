"""What the tool writes is safe (issue 10 item 6): files are renamed into place (never
written through a symlink, no partial file), get the umask's mode, the cache deletes only
what it wrote, CSV cells cannot run as spreadsheet formulas, and text for a person cannot
drive the terminal."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main
from traceanalyzer.escape import csv_cell, terminal_text
from traceanalyzer.gate.cache import MARKER, ResultCache

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sample_traces" / "seed_unlock_from_worker.csv"
HOSTILE = ("time_ns,event,pid,image,caller\n"
           "0,ProcessStart,4,\x1b]0;pwned\x07evil.exe,\n"
           "1,=cmd|calc,4,,@SUM(1)\n")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_check_cache_dir_keeps_what_it_did_not_write(tmp_path: Path, capsys) -> None:
    nightly = tmp_path / "nightly"
    (nightly / "sub").mkdir(parents=True)
    trace = nightly / "sub" / "case.csv"
    trace.write_bytes(SEED.read_bytes())
    (nightly / "notes.md").write_text("mine", encoding="utf-8")
    stale = ResultCache(nightly, key="0123456789abcdef")
    stale.put("ab12", {"findings": []})
    (stale.dir / "keep.md").write_text("not the cache's", encoding="utf-8")
    args = ["check", str(nightly), "--baseline", str(tmp_path / "b.json"), "--update-baseline",
            "-j", "1", "--cache-dir", str(nightly)]
    assert main(args) == 0
    capsys.readouterr()
    assert trace.read_bytes() == SEED.read_bytes() and (nightly / "notes.md").exists()
    assert not (stale.dir / "ab12.json").exists() and not (stale.dir / MARKER).exists()
    assert (stale.dir / "keep.md").read_text(encoding="utf-8") == "not the cache's"
    current = [d for d in nightly.iterdir() if (d / MARKER).is_file()]
    assert len(current) == 1 and list(current[0].glob("*.json"))  # tonight's entry, marked


def test_a_folder_without_the_marker_is_never_pruned(tmp_path: Path) -> None:
    (tmp_path / "fedcba9876543210").mkdir()
    (tmp_path / "fedcba9876543210" / "ab.json").write_text("{}", encoding="utf-8")
    assert ResultCache(tmp_path, key="current").prune_stale() == 0
    assert (tmp_path / "fedcba9876543210" / "ab.json").exists()


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    return victim


def test_report_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path, capsys) -> None:
    victim, out = _victim(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "report.html").symlink_to(victim)
    assert main(["report", str(SEED), "-o", str(out)]) == 0
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (out / "report.html").is_symlink() and "<html" in (out / "report.html").read_text()


@pytest.mark.parametrize("argv", [["convert", str(SEED), "-o"], ["synth", str(SEED), "-o"]])
def test_convert_and_synth_replace_a_symlink(tmp_path: Path, capsys, argv: list[str]) -> None:
    victim, target = _victim(tmp_path), tmp_path / "out.bin"
    target.symlink_to(victim)
    assert main([*argv, str(target)]) == 0
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not target.is_symlink() and target.stat().st_size > 100


def test_a_failed_synth_leaves_no_partial_file(tmp_path: Path, capsys, monkeypatch) -> None:
    from traceanalyzer.synth import etl_writer

    def fail(self, chunk, n):  # after the header placeholder was written
        raise ValueError("a value that cannot be written")

    monkeypatch.setattr(etl_writer._EtlJob, "add_chunk", fail)
    out = tmp_path / "out.etl"
    assert main(["synth", str(SEED), "-o", str(out)]) == 2
    assert "cannot write ETL" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_gate_files_get_the_umask_mode(tmp_path: Path, capsys, umask_022) -> None:
    files = {n: tmp_path / n for n in ("b.json", "v.json", "j.xml", "s.sarif")}
    assert main(["check", str(SEED), "--baseline", str(files["b.json"]), "--update-baseline", "-j", "1"]) == 0
    assert main(["check", str(SEED), "--baseline", str(files["b.json"]), "-j", "1", "--json", str(files["v.json"]),
                 "--junit", str(files["j.xml"]), "--sarif", str(files["s.sarif"])]) == 0
    assert main(["report", str(SEED), "-o", str(tmp_path / "r")]) == 0
    written = [*files.values(), *(tmp_path / "r").iterdir()]
    assert {p.name: _mode(p) for p in written} == {p.name: 0o644 for p in written}


def test_csv_exports_escape_formulas_and_keep_numbers(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "hostile.csv"
    trace.write_text(HOSTILE, encoding="utf-8")
    assert main(["hazards", "--csv", str(trace)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["event"] == "'=cmd|calc" and rows[0]["count"] == "1" and rows[0]["time_ns"].isdigit()
    assert main(["query", str(trace), "select event, time_ns, -5 as n from other", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "'=cmd|calc,1,-5"


@pytest.mark.parametrize("cell,expected", [
    ("=1+1", "'=1+1"), ("+x", "'+x"), ("-x", "'-x"), ("@SUM(1)", "'@SUM(1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("-8192", "-8192"), ("+1.5e3", "+1.5e3"), ("a=b", "a=b"), (7, 7), (None, None),
])
def test_csv_cell(cell, expected) -> None:
    assert csv_cell(cell) == expected


def test_info_check_and_errors_escape_control_characters(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "hostile.csv"
    trace.write_text(HOSTILE, encoding="utf-8")
    assert main(["info", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned\\x07evil.exe" in out
    named = tmp_path / "e\x1b[2Jvil.csv"
    named.write_bytes(SEED.read_bytes())
    assert main(["check", str(named), "--baseline", str(tmp_path / "b.json"), "--update-baseline", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "e\\x1b[2Jvil.csv" in out
    assert main(["info", str(tmp_path / "gone\x1b[2J.csv")]) == 2
    assert capsys.readouterr().err == f"traceanalyzer: {tmp_path}/gone\\x1b[2J.csv: no such file\n"


def test_terminal_text_keeps_line_breaks_only() -> None:
    assert terminal_text("a\tb\x1b\x9b\n") == "a\\x09b\\x1b\\x9b\n"


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
@pytest.mark.parametrize("command", ["convert", "junit", "sarif", "json", "baseline", "history", "report"])
def test_an_output_that_cannot_be_written_is_named_not_an_internal_error(
        tmp_path: Path, capsys, command: str, where: str) -> None:
    """A folder in the way, or a file where a folder should be: exit 2 and one line that
    names the output (not the trace) and says why; nothing left behind."""
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "adir" if where == "folder" else tmp_path / "afile" / "out"
    baseline = tmp_path / "b.json"
    argv = {"convert": ["convert", str(SEED), "-o", str(target)],
            "junit": ["check", str(SEED), "--baseline", str(baseline), "--junit", str(target)],
            "sarif": ["check", str(SEED), "--baseline", str(baseline), "--sarif", str(target)],
            "json": ["check", str(SEED), "--baseline", str(baseline), "--json", str(target)],
            "baseline": ["check", str(SEED), "--baseline", str(target), "--update-baseline"],
            "history": ["check", str(SEED), "--baseline", str(baseline), "--history", str(target)],
            "report": ["report", str(SEED), "-o", str(target)]}[command]
    if command in ("report", "history") and where == "folder":
        target = tmp_path / "afile"  # their target is a folder: a file is in the way
        argv[-1] = str(target)
    if command in ("junit", "sarif", "json", "history"):
        assert main(["check", str(SEED), "--baseline", str(baseline), "--update-baseline", "-q"]) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" not in err[0], err
    said = "is a folder, not a baseline file" if (command, where) == ("baseline", "folder") else "cannot write: "
    assert f"{target}" in err[0] and said in err[0], err  # names the output
    if where == "under_a_file" or command in ("report", "history"):  # not the system's "File exists"
        assert f"{tmp_path / 'afile'} is a file, not a folder" in err[0], err
    assert not [p for p in tmp_path.rglob(f".{target.name}.*")]  # no temporary file left
    assert (tmp_path / "afile").read_text() == "x" and (tmp_path / "adir").is_dir()


def test_a_long_file_name_is_written_and_a_too_long_one_named(tmp_path: Path, capsys) -> None:
    """A target name of 250 bytes is legal: its temporary name must be too. One over the
    limit is exit 2 naming it (its stat failed outside the error handling: internal error)."""
    ok = tmp_path / ("L" * 242 + ".parquet")
    assert main(["convert", str(SEED), "-o", str(ok)]) == 0 and ok.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [ok.name]
    capsys.readouterr()
    long = tmp_path / ("L" * 260 + ".parquet")
    assert main(["convert", str(SEED), "-o", str(long)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" not in err[0]
    assert f"{long}: cannot write: File name too long" in err[0]


def test_a_result_cache_that_cannot_be_written_leaves_the_check_alone(tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    baseline = tmp_path / "b.json"
    assert main(["check", str(SEED), "--baseline", str(baseline), "--update-baseline", "-q"]) == 0
    capsys.readouterr()
    assert main(["check", str(SEED), "--baseline", str(baseline),
                 "--cache-dir", str(tmp_path / "afile" / "cache")]) == 0
    assert "result cache not written: " in capsys.readouterr().out
    cache = ResultCache(tmp_path / "afile" / "cache")
    cache.put("ab" * 8, {"findings": []})
    assert cache.unwritable is not None and str(tmp_path / "afile") in cache.unwritable


def test_a_stale_cache_folder_that_cannot_be_pruned_does_not_stop_the_cache(tmp_path: Path, monkeypatch) -> None:
    stale = tmp_path / "oldkey"
    stale.mkdir()
    (stale / MARKER).write_text("{}")
    (stale / "abcd.json").write_text("{}")
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):  # root ignores permissions: EACCES simulated
        if self.parent == stale:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    cache = ResultCache(tmp_path, key="newkey")
    cache.prune_stale()
    monkeypatch.setattr(Path, "unlink", real_unlink)
    cache.put("ffff", {"findings": []})
    assert cache.unwritable is None and "cannot prune" in (cache.not_pruned or "")
    assert (tmp_path / "newkey" / "ffff.json").exists() and (stale / "abcd.json").exists()


#: Every bidirectional control (and a NUL) in a process name and a caller: a
#: right-to-left override would show "app.exe" reversed after it. The line and paragraph
#: separators too: editors and browsers break the line there (a forged line of output).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
_SPOOF_NAME = "app\u202eexe.gpj\u2066x\x00y\u2028z\u2029.exe"


def _spoofed_trace(tmp_path: Path) -> Path:
    text = SEED.read_text(encoding="utf-8").replace("app.exe", _SPOOF_NAME)
    text = text.replace("mydriver.sys+0x1b6b", f"my{_BIDI}driver.sys+0x1b6b")
    trace = tmp_path / "spoof.csv"
    trace.write_text(text, encoding="utf-8")
    return trace


def _raw_controls(text: str) -> set[str]:
    return {c for c in text if c in _BIDI or (ord(c) < 32 and c not in "\t\n\r")
            or 0x7F <= ord(c) < 0xA0}


_SHOWN_NAME = "app\\u202eexe.gpj\\u2066x\\x00y\\u2028z\\u2029.exe"
_SHOWN_CALLER = "my" + "".join(f"\\u{ord(c):04x}" for c in _BIDI) + "driver.sys+0x1b6b"


@pytest.mark.parametrize("char", list(_BIDI))
def test_terminal_text_writes_bidi_controls_as_u_escapes(char: str) -> None:
    assert terminal_text(f"a{char}b\n") == f"a\\u{ord(char):04x}b\n"
    assert csv_cell(f"={char}") == f"'=\\u{ord(char):04x}"


def test_text_outputs_show_bidi_controls_as_escapes(tmp_path: Path, capsys) -> None:
    trace = _spoofed_trace(tmp_path)
    assert main(["hazards", str(trace)]) == 0
    out = capsys.readouterr().out
    assert not _raw_controls(out) and _SHOWN_NAME in out and _SHOWN_CALLER[:40] in out
    assert main(["info", str(trace)]) == 0
    out = capsys.readouterr().out
    assert not _raw_controls(out) and _SHOWN_NAME in out
    clean = tmp_path / "clean" / trace.name  # same trace id, the names unspoofed
    clean.parent.mkdir()
    clean.write_bytes(SEED.read_bytes())
    baseline = str(tmp_path / "b.json")
    assert main(["check", str(clean), "--baseline", baseline, "--update-baseline", "-j", "1"]) == 0
    capsys.readouterr()
    assert main(["check", str(trace), "--baseline", baseline, "-j", "1", "-v"]) == 1
    out = capsys.readouterr().out
    assert not _raw_controls(out) and _SHOWN_NAME in out and _SHOWN_CALLER[:40] in out


def test_csv_escapes_bidi_controls_and_json_keeps_the_true_string(tmp_path: Path, capsys) -> None:
    trace = _spoofed_trace(tmp_path)
    assert main(["hazards", "--csv", str(trace)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert not any(c in _BIDI for r in rows for v in r.values() for c in v)
    assert _SHOWN_CALLER in {r["caller"] for r in rows}
    assert main(["hazards", "--json", str(trace)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert f"my{_BIDI}driver.sys+0x1b6b" in json.dumps(doc, ensure_ascii=False)


def test_report_html_has_no_raw_controls_nor_nul(tmp_path: Path, capsys) -> None:
    trace = _spoofed_trace(tmp_path)
    assert main(["report", str(trace), "-o", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert not _raw_controls(page)
    assert _SHOWN_NAME in page and _SHOWN_CALLER in page
    # the interactive timeline's hover text and legend (Bokeh's data): visible escapes too
    import traceanalyzer as ta
    from traceanalyzer.render import interactive

    a = ta.analyze(ta.load(trace))
    points, lanes = interactive._finding_points(a.findings, a.problems, 0.0, 1e9, 15, 5000)
    legend = [label for label, _ in interactive._leak_series(a, 0.0, 1e7, 1e9, 8)]
    shown = json.dumps([points["caller"], points["process"], points["lane"], lanes, legend],
                       ensure_ascii=False)
    assert not _raw_controls(shown)
    assert _SHOWN_NAME in points["process"][0] and _SHOWN_CALLER in points["caller"]
    assert any(_SHOWN_NAME in label for label in legend)
