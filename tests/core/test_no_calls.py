"""A trace without MDL calls is normal input (issue 10 item 1).

The minimal case of the old crash: a canonical CSV with the single row ``0,Foo``. Every
command exits 0, ``hazards`` says in one line that there are no MdlTrace calls, which
provider to enable and what the trace holds; JSON and report say the same; a trace with
calls has no such notice.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.coverage import MDL_PROVIDER_GUID, no_calls_notice, provider_of
from traceanalyzer.rules.assemble import gather
from traceanalyzer.synth.tracelogging import provider_guid as synth_provider_guid

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


@pytest.fixture
def foo_csv(tmp_path: Path) -> Path:
    path = tmp_path / "foo.csv"
    path.write_text("time_ns,event\n0,Foo\n", encoding="utf-8")
    return path


def test_the_guid_is_the_one_synth_writes_the_calls_with() -> None:
    assert MDL_PROVIDER_GUID == str(synth_provider_guid("MdlTrace"))


@pytest.mark.parametrize("argv", [
    ["info"], ["hazards"], ["hazards", "--json"], ["hazards", "--csv"],
    ["report", "-o", "{tmp}/report"], ["convert", "-o", "{tmp}/t.parquet"],
    ["check", "--baseline", "{tmp}/b.json", "--update-baseline", "-j", "1"],
])
def test_every_command_takes_the_minimal_trace(foo_csv: Path, argv: list[str], capsys) -> None:
    argv = [a.replace("{tmp}", str(foo_csv.parent)) for a in argv]
    rc = main([argv[0], str(foo_csv), *argv[1:]])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "internal error" not in err


def test_hazards_names_the_provider_and_what_the_trace_holds(foo_csv: Path, capsys) -> None:
    assert main(["hazards", str(foo_csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    notice = [line for line in lines if "MdlTrace" in line]
    assert len(notice) == 1
    assert notice[0] == (
        "no MdlTrace calls in this trace, nothing to replay: enable the TraceLogging provider "
        f"MdlTrace ({MDL_PROVIDER_GUID}) in the driver under test; the trace holds 1 other "
        "event(s); top events: Foo (1)")


def test_json_and_report_say_the_same(foo_csv: Path, tmp_path: Path, capsys) -> None:
    assert main(["hazards", str(foo_csv), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["no_calls"]["top_events"] == [{"name": "Foo", "count": 1}]
    assert doc["no_calls"]["top_providers"] == [{"name": "?", "count": 1}]
    assert main(["report", str(foo_csv), "-o", str(tmp_path / "r")]) == 0
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert doc["no_calls"]["message"].split(":")[0] in html and MDL_PROVIDER_GUID in html


def test_providers_are_summed_from_event_names(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("time_ns,event,pid,image\n0,ProcessStart,4,System\n1,Prov/A,,\n2,Prov/B,,\n"
                    "3,Prov/A,,\n4,Other/X,,\n", encoding="utf-8")
    trace = ta.load(path)
    notice = no_calls_notice(trace, 0)
    assert notice["top_providers"][0] == {"name": "Prov", "count": 3}
    assert {"name": "NT Kernel Logger", "count": 1} in notice["top_providers"]
    assert notice["top_events"][0] == {"name": "Prov/A", "count": 2}
    assert "most from Prov (3)" in notice["message"]
    assert provider_of("MmProbeAndLockPages") == "?"  # a call is never "the kernel's"


def test_a_trace_with_calls_has_no_notice(capsys) -> None:
    seed = SAMPLES / "seed_unlock_from_worker.csv"
    assert ta.analyze(ta.load(seed)).summary()["no_calls"] is None
    assert main(["hazards", str(seed)]) == 0
    assert "MdlTrace" not in capsys.readouterr().out


def test_plots_of_a_trace_at_one_instant_do_not_warn(foo_csv: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    analysis = ta.analyze(ta.load(foo_csv))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: "identical low and high xlims" from matplotlib
        for fig in (analysis.plot_leak_timeline(), analysis.plot_hazard_timeline()):
            plt.close(fig)


def test_gather_on_empty_values_fills_instead_of_raising() -> None:
    idx = np.array([-1, -1])
    assert gather(np.zeros(0, np.int64), idx, -1).tolist() == [-1, -1]
    assert gather(np.zeros(0, object), idx, None).tolist() == [None, None]
    assert gather(np.zeros(0, object), idx, "live").tolist() == ["live", "live"]
    assert gather(np.array([7, 8]), np.array([1, -1, 0]), -1).tolist() == [8, -1, 7]


def test_report_of_a_trace_without_calls_logs_no_warning(foo_csv: Path, tmp_path: Path, capsys,
                                                          caplog) -> None:
    """The interactive memory plot has nothing to draw: Bokeh must not log W-1000
    (MISSING_RENDERERS) on the user's stderr."""
    with caplog.at_level("WARNING"):
        assert main(["report", str(foo_csv), "-o", str(tmp_path / "r")]) == 0
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []
    assert "W-1000" not in capsys.readouterr().err
