"""Every real trace through every command and the Python API: exit 0, no internal error.

The real traces are the in-repo subset (tests/data/real) or, with ``TA_REAL_TRACES``, the
full collection (helpers/real_traces.py); the gzipped ETL is read as it is. Commands run
in this process through the CLI's ``main()``. To keep the matrix fast, ``ta.load`` is
memoised per file here: ``info`` and ``check`` (whose worker loads by itself) read the
file, the other commands reuse that Trace and run the rest of their code as usual.

None of the real traces holds MdlTrace calls, so each one also checks the notice that
says so (hazards text, --json, report).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.coverage import MDL_PROVIDER_GUID

from helpers.real_traces import real_trace_files, real_traces_root

matplotlib.use("Agg")

TRACES = real_trace_files()
_LOADED: dict[Any, ta.Trace] = {}
_ANALYSES: dict[Path, ta.Analysis] = {}


def test_the_matrix_covers_every_kind_of_real_trace() -> None:
    suffixes = {p.suffix for p in TRACES}
    assert {".etl", ".etlgz", ".csv"} <= suffixes
    assert not any(p.suffix == ".7z" for p in TRACES)  # an archive, not a trace


@pytest.fixture(scope="module", params=TRACES, ids=str)
def name(request: pytest.FixtureRequest) -> Path:
    """The trace under test; module-scoped so that pytest runs all tests of one trace
    together (the memoised load below then reads each file once)."""
    return request.param


@pytest.fixture
def shared_load(monkeypatch: pytest.MonkeyPatch):
    real_load = ta.load

    def load(paths, *args: Any, **kwargs: Any) -> ta.Trace:
        kwargs.pop("progress", None)
        key = (tuple(str(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])),
               args, tuple(sorted((k, v) for k, v in kwargs.items() if v not in (None, False))))
        if key not in _LOADED:
            while len(_LOADED) >= 2:  # the trace under test and its Parquet copy: bounded memory
                del _LOADED[next(iter(_LOADED))]
            _LOADED[key] = real_load(paths, *args, **kwargs)
        return _LOADED[key]

    monkeypatch.setattr(ta, "load", load)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "internal error" not in err, err
    return rc, out, err


def _analysis(path: Path) -> ta.Analysis:
    if path not in _ANALYSES:
        _ANALYSES.clear()
        _ANALYSES[path] = ta.analyze(ta.load(path))
    return _ANALYSES[path]


def test_info(name: Path, capsys, shared_load) -> None:
    rc, out, err = _run(["info", str(real_traces_root() / name)], capsys)
    assert rc == 0, err
    assert out.startswith("traces:")


def test_hazards_text_says_there_are_no_calls(name: Path, capsys, shared_load) -> None:
    rc, out, err = _run(["hazards", "-q", str(real_traces_root() / name)], capsys)
    assert rc == 0, err
    notice = [line for line in out.splitlines() if line.startswith("no MdlTrace calls")]
    assert len(notice) == 1, out
    assert MDL_PROVIDER_GUID in notice[0] and "MdlTrace" in notice[0]
    assert "the trace holds" in notice[0]


def test_hazards_json(name: Path, capsys, shared_load) -> None:
    rc, out, err = _run(["hazards", "-q", "--json", str(real_traces_root() / name)], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    notice = doc["no_calls"]
    assert notice["provider"] == "MdlTrace" and notice["provider_guid"] == MDL_PROVIDER_GUID
    assert notice["message"].startswith("no MdlTrace calls") and doc["stats"]["calls"] == 0
    if doc["stats"]["events"] or doc["stats"]["unknown_events"]:  # it names what is there
        assert notice["top_events"] and notice["top_providers"]
        assert notice["top_events"][0]["name"] in notice["message"]


def test_hazards_csv(name: Path, capsys, shared_load) -> None:
    rc, out, err = _run(["hazards", "-q", "--csv", str(real_traces_root() / name)], capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert all(r["severity"] == "info" for r in rows)


def test_report(name: Path, capsys, shared_load, tmp_path: Path) -> None:
    rc, out, err = _run(["report", "-q", str(real_traces_root() / name), "-o", str(tmp_path)],
                        capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert summary["no_calls"]["provider_guid"] in html
    for png in ("leak_timeline.png", "hazard_timeline.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_update_then_pass(name: Path, capsys, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    trace = str(real_traces_root() / name)
    rc, out, err = _run(["check", trace, "--baseline", str(baseline), "--update-baseline",
                         "-j", "1", "-q"], capsys)
    assert rc == 0, err
    rc, out, err = _run(["check", trace, "--baseline", str(baseline), "-j", "1"], capsys)
    assert rc == 0, err
    assert "passed" in out


def test_convert_then_read_back(name: Path, capsys, shared_load, tmp_path: Path) -> None:
    out_file = tmp_path / "t.parquet"
    rc, out, err = _run(["convert", "-q", str(real_traces_root() / name), "-o", str(out_file)],
                        capsys)
    assert rc == 0, err
    back = ta.analyze(ta.load(out_file)).summary()
    original = _analysis(real_traces_root() / name).summary()
    assert back["stats"] == original["stats"]  # events and every counter survive the round trip
    assert back["no_calls"] == original["no_calls"]


def test_python_api(name: Path, shared_load) -> None:
    import matplotlib.pyplot as plt

    a = _analysis(real_traces_root() / name)
    summary = a.summary()
    assert summary["no_calls"] is not None
    assert len(a.findings) == len(summary["findings"])
    a.leak_timeline()
    for fig in (a.plot_leak_timeline(), a.plot_hazard_timeline()):
        assert fig.axes
        plt.close(fig)
    html = a._repr_html_()
    assert "<" in html and repr(a).startswith("<Analysis")
