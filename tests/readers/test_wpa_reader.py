"""WPA "Export to CSV" reader: the two real Disk Usage exports and hand-written Generic Events exports.

Real files (tests/data/real/Siemens-Healthineers__ETWAnalyzer, see SOURCES.md there): a
600-row Disk Usage "Utilization by Disk" table exported on an English machine and its
first row exported on a German one. Expected values are read off the files' text.

tests/data/wpa/generic_events_seed.csv is a Generic Events export written by hand for
the seed scenario (IoAllocateMdl / MmProbeAndLockPages / MmMapLockedPagesSpecifyCache /
MmUnlockPages of app.exe (1234) and its Kernel-Process ProcessStop), with payload in
Field 1..7 in the order the driver logs them (tests/data/wpa/seed_field_map.json) and
one unrelated DxgKrnl event. generic_events_seed_de.csv is the same export in German
number format ("1,001000000" seconds, "8.192" bytes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.readers import ReadOptions, pick_reader, read_file

from helpers.real_traces import real_traces_root

REAL = real_traces_root() / "Siemens-Healthineers__ETWAnalyzer"
DISK_EN = REAL / "Disk_Usage_Utilization_by_Disk.csv"
DISK_DE = REAL / "Disk_Usage_Utilization_by_Disk_DE.csv"
DATA = Path(__file__).resolve().parents[1] / "data" / "wpa"
SEED_EN = DATA / "generic_events_seed.csv"
SEED_DE = DATA / "generic_events_seed_de.csv"
FIELD_MAP = DATA / "seed_field_map.json"
MDL = 0xFFFFC30A4B2F1000

def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- real Disk Usage exports -----------------------------------------------------------


def test_real_exports_are_picked_by_content():
    assert pick_reader(DISK_EN).name == "wpa_csv"
    assert pick_reader(DISK_DE).name == "wpa_csv"


def test_real_english_disk_usage_table():
    result = read_file(DISK_EN)
    rows = result.table.to_pylist()
    assert len(rows) == 600  # 601 lines, one header
    first = rows[0]  # line 2: 0,syngo...Host.exe (8876),9468,,Flush,Normal,5.909,5.909,0,1.176567818,0,0
    assert (first["time_ns"], first["pid"], first["tid"]) == (1_176_567_818, 8876, 9468)
    assert first["event"] == "WPA/Disk_Usage_Utilization_by_Disk"
    assert first["IO Type"] == "Flush" and first["Disk Service Time (µs)"] == pytest.approx(5.909)
    ntrtscan = rows[28]  # line 30: Ntrtscan.exe (2964),15092,...,"16,384",0.942243831
    assert (ntrtscan["time_ns"], ntrtscan["pid"], ntrtscan["tid"]) == (942_243_831, 2964, 15092)
    assert ntrtscan["Size (B)"] == 16384
    last = rows[-1]  # 1,System (4),33872,E:\$LogFile,Write,Normal,...,"4,096",29.866411895,0,0
    assert (last["time_ns"], last["pid"], last["Disk"], last["Size (B)"]) == (29_866_411_895, 4, 1, 4096)
    assert last["Path Name"] == "E:\\$LogFile"
    # an unknown table: every row kept (counted once, by the Trace), nothing bad
    assert ta.load(DISK_EN).stats.by_detail("unknown_events") == {"WPA/Disk_Usage_Utilization_by_Disk": 600}
    assert result.stats.total("bad_rows") == 0 and result.stats.total("bad_values") == 0
    assert result.metadata["decimal_separator"] == "." and result.metadata["time_column"] == "Complete Time (s)"


def test_real_german_export_same_time_as_english():
    (row,) = read_file(DISK_DE).table.to_pylist()
    english = read_file(DISK_EN).table.to_pylist()[0]
    assert row["time_ns"] == english["time_ns"] == 1_176_567_818  # "1,176567818" s
    assert (row["pid"], row["tid"]) == (8876, 9468)
    assert read_file(DISK_DE).metadata["decimal_separator"] == ","


def test_decimal_override_is_obeyed():
    # With '.' forced, "1,176567818" is 1176567818 seconds (',' as thousands separator).
    result = read_file(DISK_DE, options=ReadOptions(extra={"decimal": "."}))
    assert result.table.to_pylist()[0]["time_ns"] == 1_176_567_818 * 10**9
    assert result.metadata["decimal_separator_source"] == "option"


# --- Generic Events + field map --------------------------------------------------------


@pytest.fixture(scope="module")
def seed_rows():
    result = read_file(SEED_EN, options=ReadOptions(field_map=FIELD_MAP))
    return result, result.table.to_pylist()


def test_generic_events_mapped_to_calls(seed_rows):
    _, rows = seed_rows
    assert [r["event"] for r in rows] == [
        "IoAllocateMdl", "MmProbeAndLockPages", "MmMapLockedPagesSpecifyCache",
        "Microsoft-Windows-DxgKrnl/VSyncDPC", "MmUnlockPages", "ProcessEnd",
    ]
    alloc, lock, mapping, _vsync, unlock, end = rows
    assert (alloc["time_ns"], alloc["pid"], alloc["tid"], alloc["cpu"]) == (1_001_000_000, 1234, 5678, 1)
    assert (alloc["mdl"], alloc["va"], alloc["size"], alloc["irp"]) == (MDL, 0x7FF612340000, 8192, 0)
    assert alloc["caller"] == "mydriver.sys+0x1a2b"
    assert (lock["access_mode"], lock["operation"], lock["caller"]) == ("UserMode", "IoWriteAccess", "mydriver.sys+0x1a40")
    assert (mapping["cache_type"], mapping["mapped_va"], mapping["priority"]) == ("MmCached", 0x1F0000, 1_073_741_840)
    assert mapping["bugcheck_on_failure"] == 0
    assert (unlock["time_ns"], unlock["mdl"], unlock["cpu"]) == (3_001_000_000, MDL, 0)
    # ProcessEnd: pid from the payload (Field 1 "1,234"), image from Field 4
    assert (end["time_ns"], end["pid"], end["image"]) == (5_000_000_000, 1234, "\\Device\\HarddiskVolume3\\Apps\\app.exe")


def test_generic_events_unknown_counted(seed_rows):
    _, rows = seed_rows
    trace = ta.load(SEED_EN, field_map=FIELD_MAP)
    assert trace.stats.by_detail("unknown_events") == {"Microsoft-Windows-DxgKrnl/VSyncDPC": 1}
    assert rows[3]["pid"] == 4 and rows[3]["mdl"] is None


def test_german_export_gives_the_same_table(seed_rows):
    _, english = seed_rows
    result = read_file(SEED_DE, options=ReadOptions(field_map=FIELD_MAP))
    assert result.table.to_pylist() == english
    assert (result.metadata["decimal_separator"], result.metadata["decimal_separator_source"]) == (",", "data")


def test_field_map_as_dict_in_extra():
    fmap = {"events": [{"provider": "MdlTrace", "event": "MmUnlockPages", "fields": ["mdl", "caller"]}]}
    rows = read_file(SEED_EN, options=ReadOptions(extra={"field_map": fmap})).table.to_pylist()
    (unlock,) = [r for r in rows if r["event"] == "MmUnlockPages"]
    assert unlock["mdl"] == MDL


def test_without_field_map_payload_is_reported_unmapped():
    result = read_file(SEED_EN)
    unmapped = result.stats.by_detail("unmapped_fields")
    assert sorted(d.split(":")[0] for d in unmapped) == [
        "IoAllocateMdl", "MmMapLockedPagesSpecifyCache", "MmProbeAndLockPages", "MmUnlockPages",
    ]
    assert "mdl" not in result.table.column_names
    assert ta.load(SEED_EN).stats.by_detail("unknown_events") == {
        "Microsoft-Windows-DxgKrnl/VSyncDPC": 1, "Microsoft-Windows-Kernel-Process/ProcessStop": 1,
    }


def test_bad_field_map_names_the_file(tmp_path):
    fmap = write(tmp_path, '{"events": [{"event": "IoFreeMdl", "fields": ["mdl", "not_a_column"]}]}', "m.json")
    with pytest.raises(TraceFormatError, match="not_a_column") as info:
        read_file(SEED_EN, options=ReadOptions(field_map=fmap))
    assert str(fmap) in str(info.value)
    with pytest.raises(TraceFormatError, match="not found"):
        read_file(SEED_EN, options=ReadOptions(field_map=tmp_path / "missing.json"))


# --- units, locales, bad input ---------------------------------------------------------


def test_millisecond_unit_and_thousands(tmp_path):
    path = write(tmp_path, 'Process,Thread ID,Timestamp (ms)\nA.exe (10),11,"1,001.5"\nA.exe (10),11,2.25\n')
    rows = read_file(path).table.to_pylist()
    assert [r["time_ns"] for r in rows] == [1_001_500_000, 2_250_000]


def test_time_column_option(tmp_path):
    text = "Process,Duration (ms),Ready (us)\nA.exe (10),5,7\n"
    with pytest.raises(TraceFormatError, match="time_column"):
        read_file(write(tmp_path, text), format="wpa_csv")
    rows = read_file(write(tmp_path, text), format="wpa_csv", options=ReadOptions(extra={"time_column": "Ready (us)"}))
    assert rows.table.to_pylist()[0]["time_ns"] == 7000


def test_bad_rows_counted_and_strict_names_the_line(tmp_path):
    text = (
        "Process,Thread ID,Time (s)\n"
        "A.exe (10),11,1.0\n"
        "A.exe (10),11\n"           # line 3: too few fields
        "A.exe (10),11,soon\n"      # line 4: time not a number
        "A.exe (10),11,2.0\n"
    )
    path = write(tmp_path, text)
    result = read_file(path)
    assert [r["time_ns"] for r in result.table.to_pylist()] == [1_000_000_000, 2_000_000_000]
    assert result.stats.total("bad_rows") == 2
    with pytest.raises(TraceFormatError, match="line 3:"):
        read_file(path, options=ReadOptions(strict=True))


def test_nothing_readable(tmp_path):
    with pytest.raises(TraceEmptyError):
        read_file(write(tmp_path, "Process,Time (s)\n"), format="wpa_csv")
    with pytest.raises(TraceFormatError, match="no readable rows"):
        read_file(write(tmp_path, "Process,Time (s)\nA (1),x\nB (2),y\n"), format="wpa_csv")


def test_sniff_leaves_canonical_csv_and_xperf_alone(tmp_path):
    reader = pick_reader(SEED_EN)
    assert reader.name == "wpa_csv"
    assert not reader.sniff(b"time_ns,event,pid,Process\n0,ProcessStart,4,a (4)\n", Path("c.csv"))
    assert not reader.sniff(b"BeginHeader\nCSwitch, TimeStamp\n", Path("x.csv"))
    assert not reader.sniff(b"a,b,c\n1,2,3\n", Path("x.csv"))


def test_unknown_table_column_named_like_a_canonical_one(tmp_path):
    path = write(tmp_path, "Process,Time (s),event,mdl\nA.exe (10),1.5,Read,zzz\n")
    (row,) = read_file(path, format="wpa_csv").table.to_pylist()
    assert (row["event"], row["wpa:event"], row["wpa:mdl"], row["time_ns"]) == ("WPA/t", "Read", "zzz", 1_500_000_000)
