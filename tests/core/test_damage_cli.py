"""Damage is loud through every command: a truncated ETL shows its counters in the
hazards footer (all of them), in info, JSON and the report; --strict makes it exit 2
naming the file and offset; check reports it as ERROR unless --allow-loss; hazards
--fail-on SEV gates on findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main
from traceanalyzer.model.stats import LOSS_COUNTERS, QUALITY_COUNTERS

from helpers.gate_scenarios import check_after_damage

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sample_traces" / "seed_unlock_from_worker.etl"
CLEAN = ROOT / "sample_traces" / "clean_ioctl_lifecycle.etl"


@pytest.fixture()
def cut(tmp_path: Path) -> Path:
    """The seed ETL with its last buffer gone (``head -c``): the critical finding is lost."""
    path = tmp_path / "cut.etl"
    data = SEED.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_hazards_footer_lists_every_counter_and_warns_of_the_loss(cut: Path, capsys) -> None:
    assert main(["hazards", str(cut)]) == 0
    out = capsys.readouterr().out
    footer = out[out.index("data quality:"):]
    for name in QUALITY_COUNTERS:
        assert name.replace("_", " ") in " ".join(footer.split()), name
    assert "truncated file 1" in footer
    assert "WARNING: 1 buffer(s)/record(s)/row(s) of the trace were lost to damage" in " ".join(footer.split())
    assert "the logfile header announces 2 buffers, the file holds 1 (it ends at offset 0x2000)" in footer


def test_strict_exits_2_naming_the_file_and_offset(cut: Path, capsys) -> None:
    for command in ("hazards", "info", "report"):
        extra = ["-o", str(cut.parent / "rep")] if command == "report" else []
        assert main([command, str(cut), "--strict", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"traceanalyzer: {cut}: the logfile header announces 2 buffers, the file holds 1 "
                       "(it ends at offset 0x2000)"]


def test_json_info_and_report_carry_the_counters(cut: Path, tmp_path: Path, capsys) -> None:
    assert main(["hazards", str(cut), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert {name: stats[name] for name in LOSS_COUNTERS} == {
        "truncated_file": 1, "corrupt_buffers": 0, "truncated_records": 0, "bad_rows": 0, "unreadable_mdl": 0}
    assert stats["loss"] == 1 and "offset 0x2000" in stats["loss_details"][0]
    assert set(QUALITY_COUNTERS) <= set(stats)

    assert main(["info", str(cut), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quality"]["truncated_file"] == 1 and info["quality"]["loss"] == 1
    assert info["problems"] == [stats["loss_details"][0]]
    assert main(["info", str(cut)]) == 0
    text = capsys.readouterr().out
    assert "truncated_file                  1  <-- check" in text
    assert "problems (lost or implausible; --strict makes them errors):" in text
    assert "1 buffers/records/rows lost to a damaged file" in text  # the recording check says so too

    assert main(["report", str(cut), "-o", str(tmp_path / "rep")]) == 0
    html = next((tmp_path / "rep").glob("*.html")).read_text()
    assert "truncated file" in html and "lost to damage" in html and "offset 0x2000" in html


def test_hazards_fail_on(capsys) -> None:
    assert main(["hazards", str(SEED), "--fail-on", "critical"]) == 1  # the seed has a critical finding
    assert main(["hazards", str(SEED), "--fail-on", "info", "--min-severity", "critical", "--json"]) == 1
    assert main(["hazards", str(SEED)]) == 0
    assert main(["hazards", str(CLEAN), "--fail-on", "low"]) == 0
    capsys.readouterr()


def test_check_on_a_damaged_real_etl_is_an_error_unless_allow_loss(cut: Path, tmp_path: Path, capsys) -> None:
    code, out, err, allowed = check_after_damage(tmp_path, "seed.etl", SEED.read_bytes(), cut.read_bytes(), capsys)
    assert code == 2
    assert "ERROR         seed.etl" in out
    assert "1 buffer(s)/record(s)/row(s) lost to damage: truncated_file:" in err
    # accepted, the lost critical finding shows as a fixed one (not failing)
    assert allowed == 0


def test_every_counter_is_documented_and_in_the_json_schema() -> None:
    from traceanalyzer.render.json_summary import summary_schema

    doc = (ROOT / "docs" / "cli.md").read_text()
    table = doc[doc.index("### Data-quality counters"):]
    table = table[:table.index("\n\n", table.index("| counter |"))]
    documented = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert documented == list(QUALITY_COUNTERS)
    required = summary_schema()["$defs"]["stats"]["required"]
    assert set(QUALITY_COUNTERS) | {"loss", "loss_details"} <= set(required)
    assert set(LOSS_COUNTERS) <= set(QUALITY_COUNTERS)
