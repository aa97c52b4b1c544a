"""The canonical CSV is read in batches: the result must not depend on where they are cut.

Each case reads a CSV with one batch and with batches of a few hundred bytes and compares
table, counters (in order) and the strict-mode error; and a deferred read
(``ReadOptions.defer_cswitch``) keeps only time, event and cpu of the CSwitch rows, and
``trace.cswitch`` gives back the same rows as a load that kept them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import traceanalyzer as ta
import traceanalyzer.readers.csv_canonical as csv_canonical
from traceanalyzer.errors import TraceError
from traceanalyzer.readers import ReadOptions, read_file

HEADER = "time_ns,event,cpu,pid,tid,mdl,size,access_mode,caller,new_tid,old_tid\n"


def rows(n: int, bad_every: int = 0) -> str:
    out = []
    for i in range(n):
        t = 1000 + i * 10
        if i % 3 == 0:
            out.append(f"{t},CSwitch,{i % 2},,,,,,,{100 + i % 5},{200 + i % 7}\n")
            continue
        mdl = f"0x{0xFFFFC30A4B2F0000 + i * 0x100:X}"
        size = "8192"
        mode = "UserMode"
        time = str(t)
        late = i > n // 2  # the first bad cell in a later batch: its line counts the batches before
        if bad_every and late and i % bad_every == 1:
            mdl, size, mode = "0xZZ", "-5", "Sideways"
        if bad_every and late and i % (bad_every * 3) == 2:
            time = "soon"
        out.append(f"{time},MmProbeAndLockPages,{i % 2},1234,5678,{mdl},{size},{mode},drv.sys+0x{i:x},,\n")
    return "".join(out)


def result(path: Path, strict: bool, defer: bool = False):
    try:
        r = read_file(path, options=ReadOptions(strict=strict, defer_cswitch=defer))
    except TraceError as exc:
        return type(exc).__name__, str(exc)
    return r.table.combine_chunks(), list(r.stats.entries.items()), r.deferred


@pytest.mark.parametrize("bad_every", [0, 7, 50])
def test_batches_read_like_one(tmp_path, monkeypatch, bad_every):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + rows(600, bad_every))
    for strict in (False, True):
        whole = result(path, strict)
        monkeypatch.setattr(csv_canonical, "_BLOCK_BYTES", 512)
        cut = result(path, strict)
        monkeypatch.undo()
        assert type(whole[0]) is type(cut[0])
        if isinstance(whole[0], str):
            assert whole == cut
        else:
            assert whole[0].equals(cut[0])
            assert whole[1] == cut[1]


def test_deferred_cswitch_rows_keep_time_event_cpu(tmp_path, monkeypatch):
    """Deferred, the CSwitch rows come after the others with only time, event and cpu;
    ``order_key`` (each row's place in the file) puts the table back in file order."""
    path = tmp_path / "t.csv"
    path.write_text(HEADER + rows(300))
    monkeypatch.setattr(csv_canonical, "_BLOCK_BYTES", 1024)
    r = read_file(path, options=ReadOptions(defer_cswitch=True))
    assert r.deferred == ("cswitch",)
    table = r.table.combine_chunks()
    is_cs = pa.compute.equal(table.column("event").cast(pa.string()), "CSwitch").to_numpy(
        zero_copy_only=False)
    assert is_cs.sum() == 100 and not is_cs[:200].any()  # moved after the other rows
    cs = table.filter(pa.array(is_cs))
    assert cs.column("cpu").null_count == 0
    for column in ("pid", "tid", "new_tid", "old_tid", "mdl"):
        assert cs.column(column).null_count == cs.num_rows, column
    full = result(path, False)[0]
    key = r.order_key.to_numpy()
    assert sorted(key.tolist()) == list(range(300))
    in_file = table.take(pa.array(np.argsort(key)))
    for column in ("time_ns", "event", "cpu"):
        assert in_file.column(column).equals(full.column(column)), column
    full_cs = pa.compute.equal(full.column("event").cast(pa.string()), "CSwitch")
    assert in_file.filter(pa.compute.invert(full_cs)).equals(full.filter(pa.compute.invert(full_cs)))


def test_deferred_read_keeps_file_order_for_equal_times(tmp_path, monkeypatch):
    """Four rows per instant, CSwitch among them: the seq of every family is the same
    whether the CSwitch rows were deferred (moved after the others) or kept."""
    path = tmp_path / "t.csv"
    text = HEADER + rows(300)
    lines = text.splitlines(keepends=True)
    # times in groups of four equal values, in file order
    body = [f"{1000 + (i // 4) * 10}{line[line.index(','):]}" for i, line in enumerate(lines[1:])]
    path.write_text(lines[0] + "".join(body))
    monkeypatch.setattr(csv_canonical, "_BLOCK_BYTES", 1024)
    lazy, kept = ta.load(path), ta.load(path, keep_cswitch=True)
    for family in ("calls", "cswitch"):
        assert lazy.table(family).equals(kept.table(family)), family
    assert kept.table("calls").column("seq").to_pylist() == \
        [i for i in range(300) if i % 3]  # file order: every third row is a CSwitch


def test_deferred_load_gives_the_same_cswitch(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + rows(300))
    lazy = ta.load(path)
    kept = ta.load(path, keep_cswitch=True)
    assert lazy.table("cswitch").equals(kept.table("cswitch"))
    assert lazy.table("calls").equals(kept.table("calls"))
