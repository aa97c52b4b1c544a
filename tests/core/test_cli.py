"""The CLI through the installed console script: exit codes, outputs, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("traceanalyzer")

SEED = """time_ns,event,pid,tid,cpu,mdl,va,size,access_mode,mapped_va,image,cache_type,caller
0,ProcessRundown,4,,,,,,,,System,,
0,ProcessStart,1234,,0,,,,,,app.exe,,
1,ThreadStart,1234,5678,0,,,,,,,,
2,ThreadRundown,4,88,0,,,,,,,,
1000000,IoAllocateMdl,1234,5678,0,0xffffc30a4b2f1000,0xffffb00012340000,8192,,,,,mydriver.sys+0x1a2b
1100000,MmProbeAndLockPages,1234,5678,0,0xffffc30a4b2f1000,,,KernelMode,,,,mydriver.sys+0x1a40
1200000,MmMapLockedPagesSpecifyCache,1234,5678,0,0xffffc30a4b2f1000,,,UserMode,0x1d2c3a40000,,MmCached,mydriver.sys+0x1a60
5000000,MmUnlockPages,4,88,1,0xffffc30a4b2f1000,,,,,,,mydriver.sys+0x2b00
5100000,IoFreeMdl,4,88,1,0xffffc30a4b2f1000,,,,,,,mydriver.sys+0x2b10
9000000,ProcessEnd,1234,,0,,,,,,app.exe,,
10000000,CSwitch,,,0,,,,,,,,
"""


def run(*args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture()
def seed(tmp_path: Path) -> Path:
    p = tmp_path / "seed.csv"
    p.write_text(SEED)
    return p


def test_console_script_is_installed():
    assert SCRIPT.exists(), "pip install -e . must install the traceanalyzer script"


def test_hazards_json_has_the_cli_md_shape(seed: Path):
    out = json.loads(run("hazards", str(seed), "--json").stdout)
    assert set(out) >= {"traces", "time_span_ns", "findings", "leaks", "stats"}
    assert out["time_span_ns"] == [0, 10_000_000]
    rules = [f["rule"] for f in out["findings"] if f["severity"] != "info"]
    assert rules == ["UNLOCK_WHILE_USER_MAPPED", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT",
                     "USER_MAP_KERNEL_MEMORY"]
    top = out["findings"][0]
    for key in ("rule", "severity", "time_ns", "pid", "process", "tid", "mdl", "caller",
                "bytes", "impact_byte_seconds", "message", "fingerprint"):
        assert key in top
    assert (top["pid"], top["process"], top["tid"], top["mdl"], top["bytes"]) == (
        1234, "app.exe", 88, "0xffffc30a4b2f1000", 8192)
    # exposed from the unlock (5 ms) until the process exit tore the mapping down (9 ms)
    assert top["exposure_window_ns"] == [5_000_000, 9_000_000]
    assert top["impact_byte_seconds"] == pytest.approx(8192 * 0.004)
    assert out["leaks"]["bytes_at_end"] == 8192
    assert out["leaks"]["by_process"] == [{"pid": 1234, "process": "app.exe", "bytes": 8192}]
    assert out["stats"]["events"] == 11 and out["stats"]["unresolved_context"] == 0


def test_hazards_text_and_csv(seed: Path):
    text = run("hazards", str(seed)).stdout
    assert "UNLOCK_WHILE_USER_MAPPED" in text and "app.exe" in text
    csv_out = run("hazards", str(seed), "--csv").stdout.splitlines()
    assert csv_out[0].startswith("rule,severity")
    assert len([line for line in csv_out[1:] if line.startswith(("UNLOCK", "USER_"))]) == 3


def test_convert_to_parquet_and_back_gives_the_same_findings(seed: Path, tmp_path: Path):
    pq = tmp_path / "seed.parquet"
    assert "wrote" in run("convert", str(seed), "-o", str(pq)).stdout
    a = json.loads(run("hazards", str(seed), "--json").stdout)
    b = json.loads(run("hazards", str(pq), "--json").stdout)
    strip = lambda d: [{k: v for k, v in f.items()} for f in d["findings"]]  # noqa: E731
    assert strip(a) == strip(b)
    assert a["stats"]["events_by_name"] == b["stats"]["events_by_name"]


def test_info_json(seed: Path):
    info = json.loads(run("info", str(seed), "--json").stdout)
    assert info["events"] == 11 and info["calls"] == 5
    assert info["cpus"] == [0, 1]
    assert {p["image"] for p in info["processes"]} >= {"app.exe", "System"}
    assert info["quality"]["unresolved_context"] == 0


def test_info_text_shows_times_in_seconds_like_hazards(seed: Path):
    out = run("info", str(seed)).stdout
    info = json.loads(run("info", str(seed), "--json").stdout)
    lo, hi = info["time_span_ns"]
    assert f"time span:  {lo / 1e9:.6f} .. {hi / 1e9:.6f} s" in out
    app = next(p for p in info["processes"] if p["image"] == "app.exe")
    start = f"{app['start_ns'] / 1e9:.6f}" if app["start_ns"] is not None else "(before)"
    end = f"{app['end_ns'] / 1e9:.6f}" if app["end_ns"] is not None else "(after)"
    line = next(line for line in out.splitlines() if "app.exe" in line)
    assert line.split()[-3:] == [start, "..", end]


@pytest.mark.parametrize(
    "content, expected, flags",
    [
        ("", "file is empty", ()),
        ("time,event\n1,IoFreeMdl\n", "lacks required column(s) time_ns", ()),
        # a bad cell is counted in lenient mode (tests/readers/test_bad_values.py), an error with --strict
        ("time_ns,event,pid\n1,IoFreeMdl,4\n2,IoFreeMdl,12x\n", "line 3: column 'pid': '12x' is not a number",
         ("--strict",)),
        ("time_ns,event,access_mode\n1,IoFreeMdl,Sideways\n", "'Sideways' is not one of KernelMode, UserMode",
         ("--strict",)),
        ("time_ns,event\n", "no event rows", ()),
        ("\x00\x01garbage", "header lacks required column(s) time_ns, event", ()),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_file(tmp_path: Path, content: str, expected: str, flags):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    proc = run("hazards", *flags, str(bad), check_rc=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_format_is_named(tmp_path: Path):
    odd = tmp_path / "trace.bin"
    odd.write_bytes(b"\x00\x01garbage" * 10)
    proc = run("info", str(odd), check_rc=2)
    assert "not a trace format traceanalyzer knows" in proc.stderr


def test_missing_file_and_debug_traceback(tmp_path: Path):
    missing = tmp_path / "nope.etl"
    proc = run("info", str(missing), check_rc=2)
    assert proc.stderr.strip() == f"traceanalyzer: {missing}: no such file"
    proc = run("--debug", "info", str(missing), check_rc=None)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_every_command_help_ends_with_an_example():
    top = run("--help").stdout
    commands = ["info", "hazards", "convert"]
    for extra in ("report", "check", "synth"):
        if f"    {extra} " in top:
            commands.append(extra)
    for cmd in commands:
        last_paragraph = run(cmd, "--help").stdout.strip().split("\n\n")[-1]
        assert last_paragraph.lstrip().lower().startswith("example"), cmd


def test_module_entry_point(seed: Path):
    proc = subprocess.run([sys.executable, "-m", "traceanalyzer", "hazards", str(seed), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["findings"][0]["rule"] == "UNLOCK_WHILE_USER_MAPPED"


@pytest.mark.parametrize("args", [["hazards"], ["hazards", "--json"], ["info"],
                                  ["query", "SELECT count(*) AS n FROM calls"]])
def test_commands_without_figures_do_not_load_matplotlib_or_bokeh(seed: Path, args):
    """Drawing libraries cost ~0.3-0.7 s and ~30 MB at start: only the commands that
    draw (report, plot) load them."""
    code = ("import sys, contextlib, io\n"
            "from traceanalyzer.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(sys.argv[1:])\n"
            "    except SystemExit as e:\n        assert not e.code or e.code == 1, e.code\n"
            "print(sorted(m for m in ('matplotlib', 'bokeh') if m in sys.modules))\n")
    cmd = [args[0], str(seed), *args[1:]] if args[0] == "query" else [*args, str(seed)]
    proc = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_info_text_shows_records_counted_but_not_made_into_rows(seed: Path):
    """A file of WPP messages only (real OneDrive CldFlt log): 0 events, and info says
    what the records were instead of showing nothing (they are in --json's stats too)."""
    path = Path(__file__).resolve().parents[1] / "data" / "real" / "jtmoon79__super-speedy-syslog-searcher" \
        / "CldFlt0-2025-12-21-121418.etlgz"
    out = run("info", str(path)).stdout
    section = out.split("also counted (info):", 1)[1].split("\nrecording:", 1)[0]
    assert "wpp_events" in section and " 13 " in section and "TMF" in section
    assert "also counted" not in run("info", str(seed)).stdout  # rows read are not listed
