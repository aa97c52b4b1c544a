"""Progress callbacks: a bar on a terminal, silence elsewhere or when quiet."""

from __future__ import annotations

import io

from traceanalyzer.progress import NullProgress, TqdmProgress, make_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal_or_quiet() -> None:
    pipe = io.StringIO()
    for p in (make_progress("reading", stream=pipe), make_progress("x", quiet=True,
                                                                    stream=_Tty())):
        assert isinstance(p, NullProgress)
        with p:
            p(50, 100)
            p(100, 100)
    assert pipe.getvalue() == ""


def test_bar_on_a_terminal_follows_absolute_updates() -> None:
    tty = _Tty()
    with make_progress("reading", stream=tty, unit="ev") as p:
        assert isinstance(p, TqdmProgress)
        p(10, 100)
        p(60, 100)
        assert p._bar.n == 60 and p._bar.total == 100
        # a new pass (next file: other total) restarts the bar instead of overflowing it
        p(5, 40)
        assert p._bar.n == 5 and p._bar.total == 40
        p(2, 40)  # going backwards is a new pass too
        assert p._bar.n == 2
    assert "reading" in tty.getvalue()


def test_unknown_total_is_accepted() -> None:
    tty = _Tty()
    with make_progress("replay", stream=tty, force=True) as p:
        p(1000, None)
        p(2000, 0)
        assert p._bar.n == 2000 and p._bar.total is None


def test_csv_read_reports_bytes_up_to_the_file_size(tmp_path) -> None:
    import gzip
    from pathlib import Path

    import traceanalyzer as ta

    rows = "".join(f"{i * 10},CSwitch,{i % 2},{100 + i},{200 + i}\n" for i in range(50_000))
    text = "time_ns,event,cpu,new_tid,old_tid\n" + rows
    plain = tmp_path / "t.csv"
    plain.write_text(text)
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        seen: list[tuple[int, int]] = []
        trace = ta.load(path, progress=lambda done, total: seen.append((done, total)))
        assert trace.n_events == 50_000
        size = Path(path).stat().st_size
        assert seen and seen[-1] == (size, size)
        assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))  # never goes backwards
        without = ta.load(path)
        assert without.table("cswitch").equals(trace.table("cswitch"))
