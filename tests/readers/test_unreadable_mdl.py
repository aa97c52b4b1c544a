"""An address written as ``%p`` writes it (16 hex digits, no ``0x``) is read as hex in
every pointer column, and an MDL address that is not an address loses the call for the
analysis: counted as ``unreadable_mdl``, a loss the hazards footer warns of and ``check``
reports as ERROR unless ``--allow-loss`` (docs/cli.md, "Data-quality counters"). Before,
the seed with ``ffffc30a4b2f1000`` gave "0 problems", exit 0 and only "bad values 5"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main
from traceanalyzer.errors import TraceFormatError
from traceanalyzer.model.stats import LOSS_COUNTERS
from traceanalyzer.readers import read_file
from traceanalyzer.readers.base import ReadOptions
from traceanalyzer.readers.etl import read_etl
from traceanalyzer.synth.etl_writer import write_etl

from helpers.etl_oracles import scenario_frame
from helpers.gate_scenarios import check_after_damage

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sample_traces" / "seed_unlock_from_worker.csv"
MDL = "0xffffc30a4b2f1000"


def _seed(tmp_path: Path, mdl: str) -> Path:
    path = tmp_path / "seed.csv"
    path.write_text(SEED.read_text().replace(MDL, mdl))
    return path


def test_canonical_csv_reads_16_bare_hex_digits_in_pointer_columns_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("time_ns,event,mdl,va,mapped_va,size\n"
                    "1,IoAllocateMdl,ffffc30a4b2f1000,FFFFB00012340000,000001d2c3a40000,0000000000001000\n"
                    '2,IoFreeMdl,"ffffc30a4b2f1000",1234567890123456,,4096\n')
    result = read_file(path)
    assert result.table.select(["mdl", "va", "mapped_va", "size"]).to_pylist() == [
        {"mdl": 0xFFFFC30A4B2F1000, "va": 0xFFFFB00012340000, "mapped_va": 0x1D2C3A40000, "size": 1000},
        {"mdl": 0xFFFFC30A4B2F1000, "va": 0x1234567890123456, "mapped_va": None, "size": 4096}]
    assert result.stats.total("bad_values") == 0 and result.stats.total("unreadable_mdl") == 0


def test_the_seed_with_bare_hex_addresses_finds_what_it_finds_with_0x(tmp_path: Path, capsys) -> None:
    assert main(["hazards", str(SEED), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["hazards", str(_seed(tmp_path, MDL[2:])), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [p["problem_id"] for p in got["problems"]] == [p["problem_id"] for p in want["problems"]]
    assert len(got["problems"]) == 3 and got["stats"]["bad_values"] == 0


@pytest.mark.parametrize("bad", ["ffffc30a4b2f10", "0xZZ", "ffffc30a`4b2f1000"])
def test_an_unreadable_mdl_is_a_loss_named_in_every_command(tmp_path: Path, capsys, bad: str) -> None:
    path = _seed(tmp_path, bad)
    result = read_file(path)
    assert result.stats.by_detail("bad_values") == {"mdl": 5}
    [detail] = result.stats.by_detail("unreadable_mdl")
    assert result.stats.total("unreadable_mdl") == 5 and "unreadable_mdl" in LOSS_COUNTERS
    assert detail == f"seed.csv line 7 (the first): column 'mdl': {bad!r} is not an address " \
                     "(0x hex, 16 hex digits, or decimal)"

    assert main(["hazards", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "unreadable mdl 5" in out
    assert "WARNING: 5 buffer(s)/record(s)/row(s) of the trace were lost to damage" in out
    assert f"unreadable_mdl: {detail} (5)" in out
    assert main(["info", str(path)]) == 0
    assert "unreadable_mdl                  5  <-- check" in capsys.readouterr().out
    with pytest.raises(TraceFormatError, match=r"line 7: column 'mdl': .* is not an address"):
        read_file(path, options=ReadOptions(strict=True))

    code, _out, err, allowed = check_after_damage(tmp_path, "seed.csv", SEED.read_bytes(), path.read_bytes(), capsys)
    assert (code, allowed) == (2, 0) and "lost to damage: unreadable_mdl:" in err


def test_a_bad_cell_elsewhere_is_no_loss(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("time_ns,event,mdl,va,source_mdl\n1,IoBuildPartialMdl,0x10,ffff0000,0x1x\n")
    result = read_file(path)
    assert result.stats.by_detail("bad_values") == {"va": 1, "source_mdl": 1}
    assert result.stats.total("unreadable_mdl") == 1  # source_mdl names an MDL; va does not


XP = "MdlTrace/IoAllocateMdl/win:Info"
XPERF = f"""BeginHeader
{XP}, TimeStamp, Process Name ( PID), ThreadID, CPU, mdl, va, size
EndHeader
OS Version: 10.0.19045, Trace Size: 1KB, Events Lost: 0, Buffers lost: 0, Trace Start: 133000000000000000, PointerSize: 8
{XP}, 10, a.exe (4), 8, 0, ffffc30a4b2f1000, 000001d2c3a40000, 4096
{XP}, 20, a.exe (4), 8, 0, ffffc30a4b2f10, 0x10, 4096
"""


def test_xperf_text_bare_hex_and_unreadable_mdl(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(XPERF)
    result = read_file(path)
    assert result.table.select(["mdl", "va"]).to_pylist() == [
        {"mdl": 0xFFFFC30A4B2F1000, "va": 0x1D2C3A40000}, {"mdl": None, "va": 0x10}]
    assert result.stats.by_detail("bad_values") == {f"{XP}.mdl": 1}
    assert result.stats.by_detail("unreadable_mdl") == {
        f"t.txt line 6 (the first): bad {XP}.mdl value 'ffffc30a4b2f10'": 1}


def test_wpa_csv_bare_hex_and_unreadable_mdl(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Provider Name,Task Name,Time (s),Process,Field 1,Field 2\n"
                    "MdlTrace,IoAllocateMdl,0.000001,a.exe (4),ffffc30a4b2f1000,4096\n"
                    "MdlTrace,IoAllocateMdl,0.000002,a.exe (4),ffffc30a4b2f10,4096\n")
    fmap = {"events": [{"provider": "MdlTrace", "event": "IoAllocateMdl", "fields": ["mdl", "size"]}]}
    result = read_file(path, options=ReadOptions(extra={"field_map": fmap}))
    assert result.table.column("mdl").to_pylist() == [0xFFFFC30A4B2F1000, None]
    assert result.stats.by_detail("bad_values") == {"IoAllocateMdl.mdl": 1}
    assert result.stats.total("unreadable_mdl") == 1


@pytest.mark.parametrize("n", [3, 40])  # per-event path and bulk path
def test_etl_string_field_as_mdl(tmp_path: Path, n: int) -> None:
    rows = [dict(time_ns=100 * (i + 1), event="IoAllocateMdl", cpu=0, pid=4, tid=8, mdl=0x1000 + i,
                 caller="ffffc30a4b2f1000" if i else "a.sys+0x10") for i in range(n)]
    path = tmp_path / "t.etl"
    write_etl(scenario_frame(rows), path)
    fmap = tmp_path / "map.json"
    fmap.write_text(json.dumps({"providers": [{"provider": "MdlTrace", "fields": {"caller": "mdl", "mdl": "irp"}}]}))
    result = read_etl(path, ReadOptions(field_map=fmap))
    assert result.table.column("mdl").to_pylist() == [None] + [0xFFFFC30A4B2F1000] * (n - 1)
    assert result.stats.by_detail("bad_values") == {"MdlTrace/IoAllocateMdl.mdl": 1}
    [detail] = result.stats.by_detail("unreadable_mdl")
    assert detail.startswith("t.etl record at 0x") and "'a.sys+0x10' is not an address" in detail
