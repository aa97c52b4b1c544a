"""capture/mdltrace.h on Linux: compiled as x64 kernel-mode C against MinGW-w64's DDK
headers (clang, SEH), and end to end with gcc against test doubles (tests/capture/host):
a small driver plays the seed scenario and the analyzer finds the bug at the right
call sites. Needs gcc, clang, llvm-nm, addr2line and mingw-w64-x86-64-dev (.ci/run
installs them); required when CI is set, skipped with the reason otherwise."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

import traceanalyzer as ta

from traceanalyzer.model.mdltrace import mdltrace_schema
from traceanalyzer.model.schema import COLUMNS, ENUM_ALIASES

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CAPTURE = REPO / "capture"


@functools.cache
def _mingw_include() -> Path | None:
    """The MinGW-w64 header folder clang searches for its x86_64-w64-mingw32 target (the
    one holding the DDK's ddk/wdm.h), asked of clang itself; None without either."""
    if shutil.which("clang") is None:
        return None
    out = subprocess.run(["clang", "--target=x86_64-w64-mingw32", "-E", "-x", "c", "-", "-v"],
                         input="", capture_output=True, text=True).stderr
    dirs = out.partition("#include <...> search starts here:")[2].partition("End of search list.")[0]
    return next((Path(d.strip()) for d in dirs.splitlines()
                 if d.strip() and (Path(d.strip()) / "ddk" / "wdm.h").exists()), None)

SCHEMA = mdltrace_schema()
TOOLS = ("gcc", "clang", "llvm-nm", "addr2line")


def _need_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if _mingw_include() is None:
        missing.append("mingw-w64-x86-64-dev")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI lacks {', '.join(missing)} (.ci/run installs them)")
        pytest.skip(f"needs {', '.join(missing)} (apt-get install gcc clang llvm binutils mingw-w64-x86-64-dev)")


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}\n{proc.stdout}\n{proc.stderr}"
    return proc


# --- the generated part of the header --------------------------------------------------

def test_header_section_is_generated_from_the_schema():
    _run([sys.executable, str(CAPTURE / "generate_header.py"), "--check"])


# --- kernel mode, MinGW-w64 DDK ----------------------------------------------------------

def _clang_kernel(tmp_path: Path, *defines: str) -> Path:
    obj = tmp_path / "kernel_unit.o"
    _run(["clang", "--target=x86_64-w64-mingw32", "-fms-extensions", "-D_KERNEL_MODE", *defines,
          f"-I{_mingw_include() / 'ddk'}", f"-I{_mingw_include()}", f"-I{HERE / 'stub'}", f"-I{CAPTURE}",
          "-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types",
          "-Werror=int-conversion", "-Werror=incompatible-function-pointer-types", "-Werror=int-to-pointer-cast",
          "-c", str(HERE / "stub" / "kernel_unit.c"), "-o", str(obj)])
    return obj


def _undefined(obj: Path) -> set[str]:
    out = _run(["llvm-nm", "--undefined-only", str(obj)]).stdout
    return {line.split()[-1].removeprefix("__imp_") for line in out.splitlines() if line.strip()}


def test_header_compiles_as_kernel_mode_c_against_mingw_ddk(tmp_path):
    _need_tools()
    symbols = _undefined(_clang_kernel(tmp_path, "-DMDLTRACE_ENABLED"))
    routines = {r for e in SCHEMA.events.values() for r in e.routines}
    # macros in the DDK: MmGetSystemAddressForMdlSafe maps through MmMapLockedPagesSpecifyCache,
    # IoCompleteRequest is IofCompleteRequest
    expected = (routines - {"MmGetSystemAddressForMdlSafe", "IoCompleteRequest"}) | {"IofCompleteRequest"}
    assert expected <= symbols, expected - symbols
    assert {"MdlTraceTestWrite", "PsGetProcessId", "__C_specific_handler"} <= symbols  # logging, SEH


def test_without_the_define_nothing_is_logged(tmp_path):
    _need_tools()
    symbols = _undefined(_clang_kernel(tmp_path))
    assert "MdlTraceTestWrite" not in symbols and "MmProbeAndLockPages" in symbols


# --- host end to end ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    _need_tools()
    exe = tmp_path_factory.mktemp("host") / "harness"
    host = HERE / "host"
    # no sibling calls: a call in tail position would become a jump (docs/capture.md, limits)
    _run(["gcc", "-O2", "-fno-optimize-sibling-calls", "-g", "-no-pie", "-std=c99", "-Wall", "-Wextra", "-Werror",
          "-Wno-clobbered",  # setjmp-emulated __try (host/seh_emulation.h): no local is read after a raise
          "-DMDLTRACE_ENABLED", f"-I{host}", f"-I{HERE / 'stub'}", f"-I{CAPTURE}",
          *(str(host / f) for f in ("harness.c", "driver.c", "bench.c", "doubles.c")), "-o", str(exe), "-ldl"])
    return exe


def _value(kind: str, text: str, column: str):
    if kind == "hexint32":
        return f"0x{int(text, 16):08X}"
    number = int(text, 0)
    if column in ENUM_ALIASES:
        return ENUM_ALIASES[column][str(number)]
    return number


def parse_events(text: str) -> tuple[list[dict], list[dict], dict]:
    """(rows, the logged field lists, meta) of the harness output."""
    rows, logged, meta = [], [], {}
    for line in text.splitlines():
        kind, *parts = line.split(" ")
        if kind == "M" or kind == "P":
            meta.update(dict(p.split("=", 1) for p in parts if "=" in p))
            if kind == "P":
                meta["provider"], meta["guid"] = parts
        elif kind == "K":
            row = {"time_ns": int(parts[0]), "event": parts[1], "cpu": 0}
            for item in parts[2:]:
                col, value = item.split("=", 1)
                row[col] = value if col == "image" else int(value, 0)
            rows.append(row)
        elif kind == "E":
            t, cpu, pid, tid, event = parts[:5]
            row = {"time_ns": int(t), "event": event, "cpu": int(cpu), "pid": int(pid), "tid": int(tid)}
            fields, attrs = [], {}
            for item in parts[5:]:
                key, value = item.split("=", 1)
                if key.startswith("@"):
                    attrs[key[1:]] = int(value)
                    continue
                name, ftype = key.split(":")
                fields.append((name, ftype))
                row[name] = _value(ftype, value, name)
            logged.append({"event": event, "fields": fields, **attrs})
            rows.append(row)
    return rows, logged, meta


def _table(rows: list[dict]) -> pa.Table:
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    return pa.Table.from_pylist(rows, schema=pa.schema([(c, COLUMNS[c]) for c in names]))


def test_every_wrapper_logs_its_schema_fields(harness, tmp_path):
    out = tmp_path / "routines.txt"
    _run([str(harness), "routines", str(out)])
    rows, logged, meta = parse_events(out.read_text())
    assert (meta["provider"], meta["guid"]) == (SCHEMA.provider, SCHEMA.guid)
    assert {e["event"] for e in logged} == set(SCHEMA.events)
    for e in logged:
        want = [(f, SCHEMA.field_types[f]) for f in SCHEMA.event_fields(e["event"])]
        assert e["fields"] == want, e["event"]
        assert (e["level"], e["keyword"]) == (SCHEMA.level, SCHEMA.keyword)
    # MmGetSystemAddressForMdlSafe twice: one map, the second finds the system mapping
    assert sum(e["event"] == "MmMapLockedPagesSpecifyCache" for e in logged) == 1
    attach = next(r for r in rows if r["event"] == "KeStackAttachProcess")
    assert (attach["target_pid"], attach["effective_pid"], attach["pid"]) == (1234, 1234, 4)
    assert all(r["irql"] == 1 for r in rows if "irql" in r)


def test_a_raising_probe_is_logged_and_reaches_the_drivers_handler(harness, tmp_path):
    out = tmp_path / "raise.txt"
    proc = _run([str(harness), "raise", str(out)])
    assert proc.stdout.split() == ["bad=0xc0000005", "good=0x0"]  # the driver's own handler ran
    rows, _, _ = parse_events(out.read_text())
    probes = [(r["va"] if "va" in r else None, r.get("status")) for r in rows if r["event"] == "MmProbeAndLockPages"]
    assert [status for _, status in probes] == ["0xC0000005", "0x00000000"]  # one row each, the raise once
    bad_mdl = next(r["mdl"] for r in rows if r["event"] == "IoAllocateMdl" and r["va"] == 0x10000)
    assert [r["event"] for r in rows if r.get("mdl") == bad_mdl] == ["IoAllocateMdl", "MmProbeAndLockPages", "IoFreeMdl"]
    table = _table(rows)
    findings = ta.analyze(ta.load(_write_csv(table, tmp_path / "raise.csv"))).findings
    # the failed probe locked nothing: freeing its MDL is no FREE_MDL_WHILE_LOCKED, and nothing leaks
    assert set(findings.rule) & {"FREE_MDL_WHILE_LOCKED", "LOCKED_MDL_NEVER_UNLOCKED", "MDL_STRUCT_LEAK"} == set()


def _write_csv(table: pa.Table, path: Path) -> Path:
    pa_csv.write_csv(table, path)
    return path


def test_overhead_per_call_is_measured(harness):
    out = _run([str(harness), "bench", "200000"]).stdout
    fields = dict(item.split("=") for item in out.split())
    assert int(fields["events"]) == 5 * 200000
    assert float(fields["wrapped_ns"]) > float(fields["direct_ns"]) > 0
