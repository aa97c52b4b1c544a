"""make_sample_etls (the committed sample .etl files) and ``traceanalyzer synth``."""

from __future__ import annotations

import pytest

from helpers.etl_oracles import canonical_rows, dissect_records
from traceanalyzer.cli.main import main
from traceanalyzer.synth.make_sample_etls import SAMPLE_DIR, make_sample_etls, scenario_csvs

CSV = """time_ns,event,cpu,pid,tid,mdl,va,size,access_mode,operation,parent_pid,image,new_tid,old_tid,caller
0,ProcessRundown,0,1234,,,,,,,500,app.exe,,,
0,ThreadRundown,0,1234,5678,,,,,,,,,,
1000,CSwitch,0,,,,,,,,,,5678,0,
2000,IoAllocateMdl,0,1234,5678,0xffffc30a4b2f1000,0x7ff612340000,8192,,,,,,,mydriver.sys+0x1a2b
3050,MmProbeAndLockPages,1,1234,5678,0xffffc30a4b2f1000,,,UserMode,2,,,,,mydriver.sys+0x1a40
"""


def test_every_sample_csv_has_an_etl_that_regenerates_byte_for_byte(tmp_path):
    csvs = scenario_csvs(SAMPLE_DIR)
    missing = [c.name for c in csvs if not c.with_suffix(".etl").exists()]
    assert not missing, f"run python sample_traces/build.py (missing: {missing})"
    summaries = make_sample_etls(SAMPLE_DIR, tmp_path)
    for csv, summary in zip(csvs, summaries):
        fresh = (tmp_path / (csv.stem + ".etl")).read_bytes()
        assert fresh == csv.with_suffix(".etl").read_bytes(), f"{csv.stem}.etl is stale"
        _, records = dissect_records(csv.with_suffix(".etl"))
        assert len(records) == summary["events"] + 1 == len(csv.read_text().splitlines())


def test_generator_reads_hex_csv_and_keeps_nanoseconds(tmp_path):
    (tmp_path / "demo.csv").write_text(CSV)
    (summary,) = make_sample_etls(tmp_path)
    assert summary["perf_freq"] == 1_000_000_000  # 3050 ns is not a whole 100 ns tick
    assert summary["time_rounded"] == 0
    header, records = dissect_records(tmp_path / "demo.etl")
    assert len(records) == 6
    probe = next(r for r in records if r["header"] == "EventHeader" and r["cpu"] == 1)
    assert (probe["tid"], probe["pid"]) == (5678, 1234)
    assert (probe["filetime"] - header.start_time) * 100 == 3000  # dissect's 100 ns FILETIME
    # mdl 0xffffc30a4b2f1000 (HEXINT64) right after the two extended items
    ext = sum(x.size for x in probe["extensions"].values())
    assert probe["payload"][ext:ext + 8] == (0xFFFFC30A4B2F1000).to_bytes(8, "little")


def test_cli_synth_writes_the_same_file_as_the_library(tmp_path, capsys):
    (tmp_path / "demo.csv").write_text(CSV)
    (tmp_path / "lib").mkdir()
    make_sample_etls(tmp_path, tmp_path / "lib")
    # where the output folder would be there is a file: one line naming it, exit 2
    (tmp_path / "cli").write_text("not a folder")
    argv = ["synth", str(tmp_path / "demo.csv"), "-o", str(tmp_path / "cli" / "demo.etl"), "--buffer-size", "8192"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cli" in err and len(err.strip().splitlines()) == 1
    # a missing output folder is created, as `report` creates its directory
    (tmp_path / "cli").unlink()
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "cli" / "demo.etl").read_bytes() == (tmp_path / "lib" / "demo.etl").read_bytes()


def test_cli_synth_cswitch_heavy(tmp_path, capsys):
    out = tmp_path / "bench.etl"
    assert main(["synth", "--cswitch-heavy", "2000", "--cpus", "2", "-o", str(out)]) == 0
    _, records = dissect_records(out)
    assert sum(r["symbol"] == "Thread/CSwitch" for r in records) == 2000 - 20
    assert {r["cpu"] for r in records[1:]} == {0, 1}


@pytest.mark.parametrize("argv, message", [
    (["synth", "-o", "x.etl"], "scenario file"),
    (["synth", "missing.csv", "-o", "x.etl"], "missing.csv"),
    (["synth", "--cswitch-heavy", "10", "--start-time", "yesterday", "-o", "x.etl"], "--start-time"),
])
def test_cli_synth_bad_usage_is_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# columns each kernel event's records carry (docs/etl_writer.md); calls carry them all
_KERNEL_COLUMNS = {
    "ProcessStart": {"pid", "tid", "parent_pid", "image", "wow64"},
    "ProcessEnd": {"pid", "tid", "parent_pid", "image", "wow64"},
    "ProcessRundown": {"pid", "parent_pid", "image", "wow64"},  # PERFINFO header: no tid
    "ThreadStart": {"pid", "tid"}, "ThreadEnd": {"pid", "tid"}, "ThreadRundown": {"pid", "tid"},
    "CSwitch": {"new_tid", "old_tid"},  # new_pid/old_pid: not in the ETL format
    "ImageLoad": {"pid", "tid", "image", "base", "image_size"},
    "ImageUnload": {"pid", "tid", "image", "base", "image_size"},
}
# what the kernel payloads hold for a null: -1 ids read back as null, these as below
_KERNEL_DEFAULTS = {"image": "", "wow64": 0, "base": 0, "image_size": 0}


def _expected(row: dict) -> tuple[dict, set]:
    """A CSV row as the ETL can give it back, and the (event, column) pairs it cannot."""
    event = row["event"]
    keep = _KERNEL_COLUMNS.get(event)
    want = {"time_ns": row["time_ns"], "event": event, "cpu": row.get("cpu") or 0}
    if keep is None:  # EVENT_HEADER ids are always there (-1 = null)
        want.update(pid=row.get("pid"), tid=row.get("tid"))
    dropped = set()
    for column, value in row.items():
        if column in want:
            continue
        if keep is None:
            if value is not None:
                want[column] = value
        elif column in keep:
            want[column] = _KERNEL_DEFAULTS.get(column) if value is None and column in _KERNEL_DEFAULTS else value
        elif value is not None:
            dropped.add((event, column))
    for column in keep or ():
        want.setdefault(column, _KERNEL_DEFAULTS.get(column))
    return want, dropped


@pytest.mark.parametrize("csv", scenario_csvs(SAMPLE_DIR), ids=lambda p: p.stem)
def test_sample_etl_gives_back_the_csv_rows(csv):
    from traceanalyzer.readers.registry import read_file

    table = read_file(csv).table
    rows = table.to_pylist()
    expected, dropped = [], set()
    for row in rows:
        want, lost = _expected(row)
        expected.append(want)
        dropped |= lost
    assert dropped <= {("CSwitch", "new_pid"), ("CSwitch", "old_pid")}, dropped
    got = canonical_rows(csv.with_suffix(".etl"))

    def key(r):
        return (r["time_ns"], r["cpu"], r["event"], sorted((k, str(v)) for k, v in r.items()))

    assert sorted(got, key=key) == sorted(expected, key=key)


def test_two_sessions_split_by_provider_give_the_same_rows(tmp_path):
    from helpers.etl_oracles import scenario_frame
    from traceanalyzer.synth.etl_kernel import KERNEL_HOOKS
    from traceanalyzer.synth.etl_writer import write_etl

    df = scenario_frame()
    kernel = df.event.isin(list(KERNEL_HOOKS)) | (df.event == "CSwitch")
    write_etl(df, tmp_path / "one.etl")
    write_etl(df[kernel], tmp_path / "kernel.etl")
    write_etl(df[~kernel], tmp_path / "driver.etl", logger_name="MdlTraceSession")

    def key(r):
        return sorted((k, str(v)) for k, v in r.items())

    merged = canonical_rows(tmp_path / "kernel.etl") + canonical_rows(tmp_path / "driver.etl")
    assert sorted(merged, key=key) == sorted(canonical_rows(tmp_path / "one.etl"), key=key)
    assert {r["event"] for r in canonical_rows(tmp_path / "driver.etl")} & set(KERNEL_HOOKS) == set()
