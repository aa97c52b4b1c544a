"""--symbols: callers resolved to module!function+offset with a real PDB.

The driver image and its PDB are built here (tests/helpers/driver_build.py: Debian's
clang and lld, so the PE's CodeView record names the PDB's GUID + age as a real build's
does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.driver_build import build_driver as _build
from helpers.driver_build import function_rvas as _functions

import traceanalyzer as ta
from traceanalyzer.model.symbols import SymbolDir

DRIVER_C = """
typedef unsigned long long u64;
volatile u64 sink;
__declspec(noinline) void ReleaseBuffer(u64 x) { sink = x * 3; sink += x; }
__declspec(noinline) void LockUserBuffer(u64 x) { sink = x + 7; sink ^= x; }
__declspec(noinline) long DriverEntry(void *a, void *b)
{ LockUserBuffer((u64)a); ReleaseBuffer((u64)b); return 0; }
"""
BASE = 0xFFFFF80012340000
SCRIPT = Path(sys.executable).with_name("traceanalyzer")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    sys_file, pdb = _build(tmp_path_factory.mktemp("sym") / "build", DRIVER_C)
    return sys_file, pdb, _functions(pdb)


def _trace_csv(path: Path, rvas: list[int]) -> Path:
    rows = ["time_ns,event,pid,tid,image,base,image_size,mdl,return_address,caller",
            f"0,ImageLoad,0,,\\SystemRoot\\System32\\drivers\\mydriver.sys,0x{BASE:x},0x10000,,,"]
    for i, rva in enumerate(rvas):
        rows.append(f"{1000 * (i + 1)},IoFreeMdl,4,8,,,,0x{0x10 * (i + 1):x},0x{BASE + rva:x},")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_return_addresses_resolve_to_functions(built, tmp_path: Path):
    _sys, pdb, funcs = built
    assert {"ReleaseBuffer", "LockUserBuffer", "DriverEntry"} <= set(funcs)
    symdir = tmp_path / "symbols"
    symdir.mkdir()
    shutil.copy(pdb, symdir)
    rvas = [funcs["ReleaseBuffer"] + 3, funcs["DriverEntry"], 0xF000]
    trace = ta.load(_trace_csv(tmp_path / "t.csv", rvas), symbols=symdir)
    callers = trace.table("calls").column("caller").to_pylist()
    assert callers == ["mydriver!ReleaseBuffer+0x3", "mydriver!DriverEntry+0x0",
                       "mydriver.sys+0xf000"]  # past every function: kept, counted
    assert trace.stats.by_detail("unsymbolized_callers") == {
        "offset in no function of mydriver.sys": 1}
    # the same through the CLI and into the findings
    out = subprocess.run([str(SCRIPT), "query", str(tmp_path / "t.csv"), "--symbols",
                          str(symdir), "select caller from calls order by seq", "--csv"],
                         capture_output=True, text=True, check=True).stdout
    assert "mydriver!ReleaseBuffer+0x3" in out


def test_a_symbol_folder_whose_name_is_not_utf8(built, tmp_path: Path):
    """symbolic opens a file by a UTF-8 name only: a folder named in Latin-1 (café) left
    every caller unresolved, "mydriver.pdb unreadable (UnicodeEncodeError)"."""
    sys_file, pdb, funcs = built
    symdir = tmp_path / os.fsdecode(b"symbol\xe9s")
    symdir.mkdir()
    shutil.copy(pdb, symdir)
    shutil.copy(sys_file, symdir)  # chosen by the debug id its PE names, read alike
    trace = ta.load(_trace_csv(tmp_path / "t.csv", [funcs["ReleaseBuffer"] + 3]), symbols=symdir)
    assert trace.table("calls").column("caller").to_pylist() == ["mydriver!ReleaseBuffer+0x3"]


def test_symbol_server_layout_picks_the_pdb_matching_the_image(built, tmp_path: Path):
    sys_file, pdb, funcs = built
    other_sys, other_pdb = _build(tmp_path / "other", DRIVER_C.replace(
        "sink = x * 3;", "sink = x * 5; sink -= 1;"))
    store = tmp_path / "store"
    for p in (pdb, other_pdb):
        from symbolic import Archive

        debug_id = str(next(Archive.open(str(p)).iter_objects()).debug_id)
        guid_age = debug_id.replace("-", "").upper()
        (store / "mydriver.pdb" / guid_age).mkdir(parents=True)
        shutil.copy(p, store / "mydriver.pdb" / guid_age / "mydriver.pdb")
    symbols = SymbolDir(store)
    found, why = symbols.pdb_for("mydriver.sys")
    assert found is None and "2 mydriver.pdb" in why  # ambiguous without the image
    shutil.copy(sys_file, store / "mydriver.sys")
    symbols = SymbolDir(store)
    found, _ = symbols.pdb_for("mydriver.sys")
    assert found is not None and found.read_bytes() == pdb.read_bytes()
    text, _ = symbols.resolve(f"mydriver.sys+0x{funcs['LockUserBuffer'] + 1:x}")
    assert text == "mydriver!LockUserBuffer+0x1"


def test_a_store_with_several_builds_of_the_module_does_not_guess(built, tmp_path: Path):
    """Two builds (PE + PDB each) in symbol-server layout: the trace does not say which
    ran, and the other build's PDB would name the wrong function: unresolved, counted."""
    from symbolic import Archive

    sys_a, pdb_a, funcs = built
    sys_b, pdb_b = _build(tmp_path / "b", "volatile int pad[64];\n"
                          "__declspec(noinline) void Other(int x) { pad[x] = x; pad[x + 1] = 2 * x; }\n"
                          + DRIVER_C)
    store = tmp_path / "store"
    for pe, pdb in ((sys_a, pdb_a), (sys_b, pdb_b)):
        guid_age = str(next(Archive.open(str(pdb)).iter_objects()).debug_id).replace("-", "").upper()
        for f in (pe, pdb):
            (store / f.name / guid_age).mkdir(parents=True)
            shutil.copy(f, store / f.name / guid_age / f.name)
    found, why = SymbolDir(store).pdb_for("mydriver.sys")
    assert found is None and "2 mydriver.sys builds" in why
    trace = ta.load(_trace_csv(tmp_path / "t.csv", [funcs["LockUserBuffer"]]), symbols=store)
    assert trace.table("calls").column("caller").to_pylist() == [
        f"mydriver.sys+0x{funcs['LockUserBuffer']:x}"]
    assert sum(trace.stats.by_detail("unsymbolized_callers").values()) == 1


def test_no_pdb_leaves_module_offsets_and_counts(tmp_path: Path):
    empty = tmp_path / "none"
    empty.mkdir()
    trace = ta.load(_trace_csv(tmp_path / "t.csv", [0x1000]), symbols=empty)
    assert trace.table("calls").column("caller").to_pylist() == ["mydriver.sys+0x1000"]
    assert trace.stats.by_detail("unsymbolized_callers") == {"no mydriver.pdb": 1}
    with pytest.raises(ta.TraceError, match="not a folder"):
        ta.load(_trace_csv(tmp_path / "t.csv", [0x1000]), symbols=tmp_path / "missing")


# --- the build the trace names (DbgID_RSDS -> ImageDebugId rows) -------------------------

def _debug_id_of(pdb: Path) -> str:
    from symbolic import Archive

    return str(next(Archive.open(str(pdb)).iter_objects()).debug_id)


def _store(folder: Path, builds: list[tuple[Path, Path]], pdb_name: str = "mydriver.pdb") -> Path:
    """A symbol-server store of the builds' PDBs (saved as ``pdb_name``), no PE files."""
    for _pe, pdb in builds:
        guid_age = _debug_id_of(pdb).replace("-", "").upper()
        (folder / pdb_name / guid_age).mkdir(parents=True)
        shutil.copy(pdb, folder / pdb_name / guid_age / pdb_name)
    return folder


def _trace_with_debug_id(path: Path, rvas: list[int], debug_id: str, pdb_name: str = "mydriver.pdb") -> Path:
    """_trace_csv plus the ImageDebugId row xperf's merge writes after the image load."""
    _trace_csv(path, rvas)
    lines = path.read_text().splitlines()
    lines[0] += ",debug_id"
    lines = [lines[0]] + [line + "," for line in lines[1:]]
    lines.insert(2, f"0,ImageDebugId,0,,{pdb_name},0x{BASE:x},,,,,{debug_id}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def two_builds(built, tmp_path_factory) -> tuple[tuple[Path, Path], tuple[Path, Path], dict[str, int]]:
    """Build A (``built``) and a build B whose functions sit at other offsets."""
    sys_a, pdb_a, funcs_a = built
    sys_b, pdb_b = _build(tmp_path_factory.mktemp("symb") / "b", "volatile int pad[64];\n"
                          "__declspec(noinline) void Other(int x) { pad[x] = x; pad[x + 1] = 2 * x; }\n"
                          + DRIVER_C)
    funcs_b = _functions(pdb_b)
    assert funcs_b["LockUserBuffer"] != funcs_a["LockUserBuffer"]
    return (sys_a, pdb_a), (sys_b, pdb_b), funcs_b


def test_the_build_the_trace_names_is_the_one_resolved(two_builds, tmp_path: Path):
    """Two builds in the store and no PE files: the trace's ImageDebugId picks build B,
    so B's offsets resolve to B's functions (A's PDB would name others)."""
    build_a, build_b, funcs_b = two_builds
    store = _store(tmp_path / "store", [build_a, build_b])
    rva = funcs_b["LockUserBuffer"] + 1
    trace = ta.load(_trace_with_debug_id(tmp_path / "t.csv", [rva], _debug_id_of(build_b[1])), symbols=store)
    assert trace.table("calls").column("caller").to_pylist() == ["mydriver!LockUserBuffer+0x1"]
    assert trace.stats.by_detail("unsymbolized_callers") == {}


def test_the_pdb_is_found_by_the_name_the_trace_gives_it(two_builds, tmp_path: Path):
    """ntoskrnl.exe's PDB is ntkrnlmp.pdb: the trace's PDB name, not the module's stem."""
    _build_a, build_b, funcs_b = two_builds
    store = _store(tmp_path / "store", [build_b], pdb_name="mydrv_build.pdb")
    path = _trace_with_debug_id(tmp_path / "t.csv", [funcs_b["DriverEntry"]], _debug_id_of(build_b[1]),
                                pdb_name="D:\\build\\x64\\mydrv_build.pdb")
    trace = ta.load(path, symbols=store)
    assert trace.table("calls").column("caller").to_pylist() == ["mydriver!DriverEntry+0x0"]


def test_a_traced_build_missing_from_the_store_is_not_replaced_by_another(two_builds, tmp_path: Path):
    build_a, build_b, funcs_b = two_builds
    store = _store(tmp_path / "store", [build_a])  # only A, the only candidate by name
    wanted = _debug_id_of(build_b[1])
    trace = ta.load(_trace_with_debug_id(tmp_path / "t.csv", [funcs_b["LockUserBuffer"]], wanted),
                    symbols=store)
    assert trace.table("calls").column("caller").to_pylist() == [f"mydriver.sys+0x{funcs_b['LockUserBuffer']:x}"]
    assert trace.stats.by_detail("unsymbolized_callers") == {
        f"no mydriver.pdb with the debug id the trace names for mydriver.sys ({wanted})": 1}


def test_a_window_keeps_the_build_record_logged_after_it(two_builds, tmp_path: Path):
    """A merge logs the build with the rundown at the trace end too: a window before
    that keeps it (at the window's end), so its callers still resolve."""
    _build_a, build_b, funcs_b = two_builds
    path = _trace_with_debug_id(tmp_path / "t.csv", [funcs_b["DriverEntry"], 0x1001], _debug_id_of(build_b[1]))
    lines = path.read_text().splitlines()
    moved = lines.pop(2).replace("0,ImageDebugId", "9000,ImageDebugId", 1)
    path.write_text("\n".join(lines + [moved]) + "\n")
    trace = ta.load(path)
    window = trace.window(500, 1500)
    images = window.table("images").to_pandas()
    assert list(images["event"]) == ["ImageLoad", "ImageDebugId"]
    assert list(images["time_ns"]) == [0, 1500] and images["debug_id"].iloc[1] == _debug_id_of(build_b[1])
    store = _store(tmp_path / "store", [build_b])
    assert window.symbolize(store).table("calls").column("caller").to_pylist() == ["mydriver!DriverEntry+0x0"]


def test_a_build_belongs_to_the_module_loaded_at_its_base_not_the_one_unloaded_there(tmp_path: Path):
    """a.sys unloads at a base, b.sys loads there: b's build record (logged next to its
    load, as near to a's unload) is b's, and a window before b's load keeps none of it."""
    from traceanalyzer.model.symbols import traced_builds

    path = tmp_path / "t.csv"
    path.write_text("\n".join([
        "time_ns,event,pid,image,base,image_size,debug_id",
        f"0,ImageDebugId,0,a.pdb,0x{BASE:x},,40b3ba70-f454-5d97-4c4c-44205044422e-1",
        f"0,ImageLoad,0,\\SystemRoot\\a.sys,0x{BASE:x},0x10000,",
        f"500,ImageUnload,0,\\SystemRoot\\a.sys,0x{BASE:x},0x10000,",
        f"500,ImageDebugId,0,b.pdb,0x{BASE:x},,0a0b0c0d-0001-0002-0304-05060708090a-1",
        f"500,ImageLoad,0,\\SystemRoot\\b.sys,0x{BASE:x},0x10000,",
        "1000,IoFreeMdl,4,,,,",
    ]) + "\n")
    trace = ta.load(path)
    assert traced_builds(trace.table("images")).by_module() == {
        "a.sys": {("a.pdb", "40b3ba70-f454-5d97-4c4c-44205044422e-1")},
        "b.sys": {("b.pdb", "0a0b0c0d-0001-0002-0304-05060708090a-1")}}
    assert traced_builds(trace.window(0, 100).table("images")).by_module() == {
        "a.sys": {("a.pdb", "40b3ba70-f454-5d97-4c4c-44205044422e-1")}}


def test_a_build_matches_however_its_debug_id_is_written(two_builds, tmp_path: Path):
    """The trace's debug id is compared in one form with the PDB's: upper case, braces, a
    symbol store's <GUID><AGE>; records of one build in two forms are one build."""
    build_a, build_b, funcs_b = two_builds
    store = _store(tmp_path / "store", [build_a, build_b])
    guid, age = _debug_id_of(build_b[1]).rsplit("-", 1)
    rva = funcs_b["LockUserBuffer"] + 1
    for written in ("{" + guid.upper() + "}-" + age, guid.replace("-", "").upper() + age):
        trace = ta.load(_trace_with_debug_id(tmp_path / "t.csv", [rva], written), symbols=store)
        assert trace.table("calls").column("caller").to_pylist() == ["mydriver!LockUserBuffer+0x1"], written
    path = _trace_with_debug_id(tmp_path / "t2.csv", [rva], _debug_id_of(build_b[1]))
    lines = path.read_text().splitlines()
    lines.insert(3, lines[2].replace(_debug_id_of(build_b[1]), guid.replace("-", "").upper() + age)
                 .replace("mydriver.pdb", "D:\\build\\MyDriver.pdb"))
    path.write_text("\n".join(lines) + "\n")
    trace = ta.load(path, symbols=store)
    assert trace.table("calls").column("caller").to_pylist() == ["mydriver!LockUserBuffer+0x1"]


def test_age_zero_is_one_debug_id_in_every_form():
    """symbolic leaves an age of 0 out of its debug id; the column writes ``-0``."""
    from traceanalyzer.model.debug_id import normal_debug_id, parse_debug_id

    guid = "72482100-1c1c-4a03-aed8-c4c71c2e8d1d"
    forms = [f"{guid}-0", guid, guid.upper(), "{" + guid.upper() + "}", guid.replace("-", "").upper() + "0"]
    assert {normal_debug_id(f) for f in forms} == {guid}
    assert normal_debug_id(f"{guid}-1f") == normal_debug_id("{" + guid.upper() + "}-1F") == f"{guid}-1f"
    for bad in (None, float("nan"), "", "nan", guid[:-1], f"{guid}-123456789"):
        assert parse_debug_id(bad) is None and normal_debug_id(bad) is None


def test_each_load_of_a_module_resolves_with_its_own_build(two_builds, tmp_path: Path):
    """mydriver.sys loaded as build A, unloaded, loaded again as build B (at the same base,
    then at another): each call resolves with the PDB of the build loaded when it ran, as
    the build records belong to a load, not to a module name."""
    from traceanalyzer.model.symbols import traced_builds

    build_a, build_b, funcs_b = two_builds
    funcs_a = _functions(build_a[1])
    id_a, id_b = _debug_id_of(build_a[1]), _debug_id_of(build_b[1])
    other = BASE + 0x100000
    drv = "\\SystemRoot\\System32\\drivers\\mydriver.sys"
    path = tmp_path / "t.csv"
    path.write_text("\n".join([
        "time_ns,event,pid,tid,image,base,image_size,debug_id,mdl,return_address",
        f"0,ImageLoad,0,,{drv},0x{BASE:x},0x10000,,,",
        f"0,ImageDebugId,0,,mydriver.pdb,0x{BASE:x},,{id_a},,",
        f"100,IoFreeMdl,4,8,,,,,0x10,0x{BASE + funcs_a['LockUserBuffer'] + 1:x}",
        f"200,ImageUnload,0,,{drv},0x{BASE:x},0x10000,,,",
        f"300,ImageLoad,0,,{drv},0x{BASE:x},0x10000,,,",
        f"300,ImageDebugId,0,,mydriver.pdb,0x{BASE:x},,{id_b},,",
        f"400,IoFreeMdl,4,8,,,,,0x20,0x{BASE + funcs_b['LockUserBuffer'] + 1:x}",
        f"500,ImageUnload,0,,{drv},0x{BASE:x},0x10000,,,",
        f"600,ImageLoad,0,,{drv},0x{other:x},0x10000,,,",
        f"600,ImageDebugId,0,,mydriver.pdb,0x{other:x},,{id_a},,",
        f"700,IoFreeMdl,4,8,,,,,0x30,0x{other + funcs_a['DriverEntry']:x}",
    ]) + "\n")
    store = _store(tmp_path / "store", [build_a, build_b])
    trace = ta.load(path, symbols=store)
    assert trace.table("calls").column("caller").to_pylist() == [
        "mydriver!LockUserBuffer+0x1", "mydriver!LockUserBuffer+0x1", "mydriver!DriverEntry+0x0"]
    assert trace.stats.by_detail("unsymbolized_callers") == {}
    assert traced_builds(ta.load(path).table("images")).by_module() == {
        "mydriver.sys": {("mydriver.pdb", id_a), ("mydriver.pdb", id_b)}}
    # callers logged as text (no return address): the image loaded at the call's time
    logged = path.read_text().replace("return_address", "caller")
    for ra in {line.rsplit(",", 1)[1] for line in logged.splitlines() if ",IoFreeMdl," in line}:
        address = int(ra, 16)
        logged = logged.replace(ra, f"mydriver.sys+0x{address - (other if address >= other else BASE):x}")
    path.write_text(logged)
    assert ta.load(path, symbols=store).table("calls").column("caller").to_pylist() == [
        "mydriver!LockUserBuffer+0x1", "mydriver!LockUserBuffer+0x1", "mydriver!DriverEntry+0x0"]


def test_a_symbols_folder_is_read_once_while_its_files_stay_the_same(tmp_path) -> None:
    """check loads many traces with one --symbols: the PDBs read for the first stay read
    (SymbolDir.shared), until a file of the folder is added or changed."""
    import os

    from traceanalyzer.gate.cache import options_key
    from traceanalyzer.model.symbols import SymbolDir

    (tmp_path / "a.pdb").write_bytes(b"not a pdb")
    (tmp_path / "notes.txt").write_text("not read")
    first = SymbolDir.shared(tmp_path)
    assert SymbolDir.shared(str(tmp_path)) is first
    assert [name for name, _size, _mtime in first.listing()] == ["a.pdb"]
    key = options_key({"symbols": str(tmp_path)})
    (tmp_path / "notes.txt").write_text("still not read")
    assert SymbolDir.shared(tmp_path) is first and options_key({"symbols": str(tmp_path)}) == key
    os.utime(tmp_path / "a.pdb", ns=(1, 1))  # a PDB replaced: read again, keyed again
    assert SymbolDir.shared(tmp_path) is not first
    assert options_key({"symbols": str(tmp_path)}) != key
