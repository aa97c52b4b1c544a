"""check --symbols on a rebuilt driver: real PE + PDB builds (clang + lld-link, see
tests/helpers/driver_build.py) whose functions sit at other offsets in build B.

The same bugs in build B must stay known when both nights are read with their build's
symbols (a problem is matched by rule + module!function); read without symbols, every
call site moves and the findings look new, as docs/check.md says.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.driver_build import build_driver, function_rvas

from traceanalyzer.cli.main import main
from traceanalyzer.synth.scenario import Scenario

BUILD_A = """
typedef unsigned long long u64;
volatile u64 sink;
__declspec(noinline) void MapToUser(u64 x) { sink = x + 1; sink ^= x; sink += 3; }
__declspec(noinline) void ReleaseBuffer(u64 x) { sink = x * 3; sink += x; sink ^= 5; }
__declspec(noinline) long DriverEntry(void *a, void *b)
{ MapToUser((u64)a); ReleaseBuffer((u64)b); return 0; }
"""
# build B: a function added in front and ReleaseBuffer grown: every offset moves
BUILD_B = ("volatile int pad[64];\n"
           "__declspec(noinline) void Other(int x) { pad[x] = x; pad[x + 1] = 2 * x; }\n"
           + BUILD_A.replace("sink = x * 3;", "sink = x * 5; sink -= 1;"))
MDL, UVA = 0xFFFFC30A4B2F0000, 0x000001F000000000


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[Path, dict[str, int]]]:
    """Build name -> (its symbols folder, function RVAs)."""
    out = {}
    for name, source in (("a", BUILD_A), ("b", BUILD_B)):
        root = tmp_path_factory.mktemp(f"build_{name}")
        _sys, pdb = build_driver(root / "obj", source)
        (root / "symbols").mkdir()
        shutil.copy(pdb, root / "symbols")
        out[name] = (root / "symbols", function_rvas(pdb))
    assert out["a"][1]["ReleaseBuffer"] != out["b"][1]["ReleaseBuffer"]
    return out


def night(path: Path, rvas: dict[str, int], offset: int, worse: bool = False) -> Path:
    """A user mapping made in MapToUser, unlocked by a worker in ReleaseBuffer while still
    mapped, left at exit; ``worse``: DriverEntry unlocks a second one the same way.
    Callers are ``mydriver.sys+0x<rva>`` at ``offset`` bytes into each function."""
    site = {fn: f"mydriver.sys+0x{rva + offset:x}" for fn, rva in rvas.items()}
    s = Scenario(driver="mydriver.sys")
    worker = s.at(0).system_thread(tid=88)
    app = s.at(100_000).process(pid=1234, image="app.exe", tid=5678)
    for i, unlocker in enumerate(["ReleaseBuffer"] + (["DriverEntry"] if worse else [])):
        mdl, t = MDL + i * 0x1000, 1_000_000 * (i + 1)
        s.at(t).allocate_mdl(app, mdl=mdl, va=UVA + i * 0x100000, size=8192, caller=site["MapToUser"])
        s.at(t + 10_000).probe_and_lock(app, mdl=mdl, caller=site["MapToUser"])
        s.at(t + 20_000).map_user(app, mdl=mdl, mapped_va=UVA + 0x9000000 + i * 0x100000, caller=site["MapToUser"])
        s.at(t + 500_000).unlock(worker, mdl=mdl, caller=site[unlocker])
    s.at(5_000_000).process_end(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    return s.to_csv(path)


def check(folder: Path, baseline: Path, *extra: str) -> int:
    return main(["check", str(folder), "--baseline", str(baseline), "--jobs", "1", *extra])


def test_a_rebuild_with_the_same_bugs_passes_with_symbols_and_looks_new_without(tmp_path, builds, capsys):
    (syms_a, rvas_a), (syms_b, rvas_b) = builds["a"], builds["b"]
    base = tmp_path / "baseline.json"
    assert check(night(tmp_path / "a" / "case.csv", rvas_a, 5), base, "--update-baseline",
                 "--symbols", str(syms_a)) == 0
    callers = {g["caller"] for g in json.loads(base.read_text())["traces"]["case.csv"]["findings"].values()}
    assert "mydriver!ReleaseBuffer+0x5" in callers and "mydriver!MapToUser+0x5" in callers
    capsys.readouterr()

    # build B, the same bugs at other offsets, read with its symbols: known problems
    rebuilt = night(tmp_path / "b" / "case.csv", rvas_b, 9).parent
    sarif = tmp_path / "b.sarif"
    assert check(rebuilt, base, "--symbols", str(syms_b), "--sarif", str(sarif)) == 0
    out = capsys.readouterr().out
    assert "passed        case.csv" in out and "new finding" not in out
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert {r["baselineState"] for r in results} == {"unchanged"}
    assert "mydriver!ReleaseBuffer+0x9" in {r["locations"][0]["logicalLocations"][0]["name"] for r in results}

    # a real new bug in build B still fails, named by function
    worse = night(tmp_path / "b2" / "case.csv", rvas_b, 9, worse=True).parent
    assert check(worse, base, "--symbols", str(syms_b)) == 1
    out = capsys.readouterr().out
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical] mydriver!DriverEntry+0x9 in app.exe" in out
    assert out.count("new finding") == 1

    # without symbols a rebuild moves every module+offset: the findings look new
    plain = tmp_path / "plain.json"
    assert check(night(tmp_path / "a" / "case.csv", rvas_a, 5).parent, plain, "--update-baseline") == 0
    capsys.readouterr()
    assert check(rebuilt, plain) == 1
    assert "new finding UNLOCK_WHILE_USER_MAPPED [critical] mydriver.sys+0x" in capsys.readouterr().out
