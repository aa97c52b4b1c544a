"""The gate on the project's sample traces (sample_traces/: canonical CSV, and the same
scenarios as real ETL files).

Last night's folder is every sample trace; tonight the clean IOCTL test case's trace is
replaced by one where a System worker unlocks a still-mapped MDL (the seed scenario), as
a broken build would record it. Only that trace may fail, and the failing findings must
be ones that scenario is documented to produce (its ``.expected.csv``, reasoned from
rules.md independently of the analyzer).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main
from traceanalyzer.gate.check import run_check
from traceanalyzer.gate.compare import Policy
from traceanalyzer.gate.runner import RunOptions

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
CLEAN, BROKEN = "clean_ioctl_lifecycle", "seed_unlock_from_worker"


@pytest.mark.parametrize("suffix", ["csv", "etl"])
def test_a_broken_test_case_among_the_samples_fails_alone(tmp_path, capsys, suffix):
    samples = sorted(p for p in SAMPLES.glob(f"*.{suffix}") if not p.name.endswith(".expected.csv"))
    assert len(samples) >= 10 and (SAMPLES / f"{CLEAN}.{suffix}").exists()
    night0, night1 = tmp_path / "night0", tmp_path / "night1"
    for night in (night0, night1):
        night.mkdir()
        for p in samples:
            shutil.copy(p, night / p.name)
    shutil.copy(SAMPLES / f"{BROKEN}.{suffix}", night1 / f"{CLEAN}.{suffix}")
    baseline = tmp_path / "baseline.json"

    assert main(["check", str(night0), "--baseline", str(baseline), "--update-baseline", "--jobs", "2"]) == 0
    assert main(["check", str(night0), "--baseline", str(baseline), "--jobs", "1"]) == 0
    capsys.readouterr()

    out = run_check([night1], baseline, Policy(), run_options=RunOptions(jobs=2))
    status = {v.trace: v.status for v in out.result.verdicts}
    assert status.pop(f"{CLEAN}.{suffix}") == "failed"
    assert set(status.values()) == {"passed"} and len(status) == len(samples) - 1
    # content-addressed cache: the "broken" file has the bytes of a sample already analysed
    assert out.cached == len(samples)

    with open(SAMPLES / f"{BROKEN}.expected.csv", newline="") as fh:
        documented = {row["rule"] for row in csv.DictReader(fh)}
    failing = {nf.group.rule for nf in out.result.by_trace()[f"{CLEAN}.{suffix}"].blocking_findings}
    assert "UNLOCK_WHILE_USER_MAPPED" in failing and failing <= documented


def test_the_baseline_example_of_check_md_is_what_update_baseline_writes(tmp_path, capsys):
    """docs/check.md shows a trimmed baseline of seed_unlock_from_worker.etl: same format,
    version and keys as the file the command writes, its findings a subset of the file's."""
    import json
    import re

    text = (SAMPLES.parent / "docs" / "check.md").read_text(encoding="utf-8")
    section = text.split("## The baseline file", 1)[1]
    shown = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    baseline = tmp_path / "baseline.json"
    assert main(["check", str(SAMPLES / f"{BROKEN}.etl"), "--baseline", str(baseline),
                 "--update-baseline", "--jobs", "1", "--no-cache"]) == 0
    capsys.readouterr()
    written = json.loads(baseline.read_text(encoding="utf-8"))
    assert {k: v for k, v in shown.items() if k != "traces"} == \
        {k: v for k, v in written.items() if k != "traces"}  # format, version
    assert shown["traces"].keys() == written["traces"].keys()
    for trace_id, entry in shown["traces"].items():
        full = written["traces"][trace_id]
        assert entry.keys() == full.keys() and entry["leaks"] == full["leaks"]
        assert entry["findings"] and entry["findings"].items() <= full["findings"].items()
