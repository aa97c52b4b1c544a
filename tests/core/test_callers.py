"""caller from return_address through the trace's ImageLoad events (model/callers.py)."""

from __future__ import annotations

import pyarrow as pa

import traceanalyzer as ta
from traceanalyzer.model.trace import Trace

CSV = """time_ns,event,pid,tid,image,base,image_size,mdl,return_address,caller
0,ImageLoad,0,,\\SystemRoot\\System32\\drivers\\mydriver.sys,0xfffff80012340000,0x20000,,,
0,ImageLoad,0,,\\SystemRoot\\System32\\ntoskrnl.exe,0xfffff80000000000,0x1000000,,,
1000,IoFreeMdl,4,8,,,,0x10,0xfffff80012341a2b,
2000,IoFreeMdl,4,8,,,,0x20,0xfffff80012341a2b,other.sys+0x5
3000,IoFreeMdl,4,8,,,,0x30,,
4000,IoFreeMdl,4,8,,,,0x40,0xfffff80099990000,
5000,ImageUnload,0,,\\SystemRoot\\System32\\drivers\\mydriver.sys,0xfffff80012340000,0x20000,,,
6000,IoFreeMdl,4,8,,,,0x50,0xfffff80012341a2b,
7000,IoFreeMdl,4,8,,,,0x60,0xfffff80000001000,
"""


def test_return_addresses_become_module_offsets(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    trace = ta.load(path)
    calls = trace.table("calls").to_pylist()
    assert [c["caller"] for c in calls] == [
        "mydriver.sys+0x1a2b",      # resolved
        "other.sys+0x5",            # a logged caller wins
        None,                       # nothing logged
        "0xfffff80099990000",       # in no module: raw, counted
        "0xfffff80012341a2b",       # the driver was unloaded
        "ntoskrnl.exe+0x1000",
    ]
    assert trace.stats.total("unresolved_return_addresses") == 2


def test_no_return_address_leaves_calls_alone():
    trace = Trace(pa.table({"time_ns": [0], "event": ["IoFreeMdl"], "caller": ["d.sys+0x1"]}))
    assert trace.table("calls").column("caller").to_pylist() == ["d.sys+0x1"]
    assert trace.stats.total("unresolved_return_addresses") == 0


def test_a_call_is_in_the_image_loaded_when_it_ran(tmp_path):
    """A base is loaded again (a.sys unloaded, b.sys loaded there; a.sys loaded again
    later), and a range freed by one image is covered by another with a higher base: each
    call is named by the image that held its address at that moment, not by the last
    load at the highest base below it."""
    drv = "\\\\SystemRoot\\\\System32\\\\drivers\\\\"
    path = tmp_path / "t.csv"
    path.write_text("\n".join([
        "time_ns,event,pid,tid,image,base,image_size,mdl,return_address",
        f"0,ImageLoad,0,,{drv}a.sys,0xfffff80012340000,0x20000,,",
        f"0,ImageLoad,0,,{drv}big.sys,0xfffff80050000000,0x100000,,",
        "100,IoFreeMdl,4,8,,,,0x10,0xfffff80012341000",
        "110,IoFreeMdl,4,8,,,,0x11,0xfffff80050081000",
        f"200,ImageUnload,0,,{drv}a.sys,0xfffff80012340000,0x20000,,",
        f"210,ImageUnload,0,,{drv}big.sys,0xfffff80050000000,0x100000,,",
        f"300,ImageLoad,0,,{drv}b.sys,0xfffff80012340000,0x10000,,",
        f"300,ImageLoad,0,,{drv}small.sys,0xfffff80050080000,0x10000,,",
        "400,IoFreeMdl,4,8,,,,0x20,0xfffff80012341000",
        "410,IoFreeMdl,4,8,,,,0x21,0xfffff80050081000",
        f"500,ImageUnload,0,,{drv}b.sys,0xfffff80012340000,0x10000,,",
        f"600,ImageLoad,0,,{drv}a.sys,0xfffff80012340000,0x20000,,",
        "700,IoFreeMdl,4,8,,,,0x30,0xfffff80012351000",
    ]) + "\n")
    trace = ta.load(path)
    assert trace.table("calls").column("caller").to_pylist() == [
        "a.sys+0x1000", "big.sys+0x81000", "b.sys+0x1000", "small.sys+0x1000", "a.sys+0x11000"]
    assert trace.stats.total("unresolved_return_addresses") == 0
