"""Golden test: every sample scenario's findings against its hand-reasoned expectations.

For each ``sample_traces/<name>.csv`` the findings above ``info`` of
``traceanalyzer.analyze(traceanalyzer.load(path))`` must equal, as a multiset of
``(rule, time_ns, pid, mdl, bytes)``, the rows of ``<name>.expected.csv``; the same for
its ETL twin ``<name>.etl`` (written by ``synth``, see ``make_sample_etls``). The expected
files were written from the rule reference (``docs/rules.md``) and the replay semantics (see
``sample_traces/build.py``), not from the analyzer's output.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import traceanalyzer

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_traces"
#: The rule reference in the repository (generated from the rule catalogue).
RULES_MD = REPO / "docs" / "rules.md"

SCENARIOS = sorted(p for p in SAMPLES.glob("*.csv") if not p.name.endswith(".expected.csv"))
CLEAN = [p for p in SCENARIOS if p.stem.startswith(("clean_", "t2_clean_"))]
#: Every scenario as CSV and as its ETL twin (every sample scenario can be synthesized).
BOTH = [p for s in SCENARIOS for p in (s, s.with_suffix(".etl"))]
CLEAN_BOTH = [p for s in CLEAN for p in (s, s.with_suffix(".etl"))]


def _id(path: Path) -> str:
    return f"{path.stem}{path.suffix}"
SEED = "seed_unlock_from_worker"
ABOVE_LOW = {"critical", "high", "medium"}

Row = tuple[str, int, "int | None", "int | None", int]


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return None if text == "" else int(text, 0)


def expected_rows(scenario: Path) -> Counter[Row]:
    """The multiset of rows of ``<name>.expected.csv``."""
    path = scenario.with_name(scenario.stem + ".expected.csv")  # (of the .csv or the .etl)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["rule", "time_ns", "pid", "mdl", "bytes"], path
        return Counter(
            (r["rule"], int(r["time_ns"]), _int_or_none(r["pid"]), _int_or_none(r["mdl"]),
             int(r["bytes"]))
            for r in reader
        )


@functools.lru_cache(maxsize=None)
def findings_of(scenario: Path) -> pd.DataFrame:
    """The analyzer's findings table for one scenario (cached across tests)."""
    trace = traceanalyzer.load(scenario)
    return traceanalyzer.analyze(trace).findings


def _opt_int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def found_rows(scenario: Path) -> Counter[Row]:
    """The multiset of (rule, time_ns, pid, mdl, bytes) of the findings above info."""
    df = findings_of(scenario)
    df = df[df["severity"].astype(str) != "info"]
    return Counter(
        (str(r.rule), int(r.time_ns), _opt_int(r.pid), _opt_int(r.mdl), int(r.bytes))
        for r in df[["rule", "time_ns", "pid", "mdl", "bytes"]].itertuples(index=False)
    )


def _table(rows: Counter[Row]) -> str:
    lines = [f"    {'rule':36} {'time_ns':>10} {'pid':>6} {'mdl':>18} {'bytes':>8}"]
    for (rule, t, pid, mdl, nbytes), n in sorted(rows.items(), key=lambda kv: kv[0][1]):
        mdl_text = "" if mdl is None else f"0x{mdl:x}"
        pid_text = "" if pid is None else str(pid)
        line = f"    {rule:36} {t:>10} {pid_text:>6} {mdl_text:>18} {nbytes:>8}"
        lines += [line] * n
    return "\n".join(lines)


def diff_message(name: str, expected: Counter[Row], found: Counter[Row]) -> str:
    """A readable diff: expected rows not found, and found rows not expected."""
    missing, unexpected = expected - found, found - expected
    parts = [f"{name}: findings differ from {name}.expected.csv"]
    if missing:
        parts += [f"  missing ({sum(missing.values())}):", _table(missing)]
    if unexpected:
        parts += [f"  unexpected ({sum(unexpected.values())}):", _table(unexpected)]
    return "\n".join(parts)


def rule_ids(tier_heading: str) -> set[str]:
    """Rule IDs of one table of rules.md (the section starting with ``tier_heading``)."""
    text = RULES_MD.read_text(encoding="utf-8")
    section = text.split(tier_heading, 1)[1].split("\n## ", 1)[0]
    ids = set(re.findall(r"^\|\s*([A-Z][A-Z0-9_]+)\s*\|", section, flags=re.M))
    return ids - {"ID"}  # the header row


# --- the golden comparison ------------------------------------------------------------


def test_there_are_enough_scenarios():
    assert len(SCENARIOS) >= 12
    assert len(CLEAN) >= 3
    assert (SAMPLES / f"{SEED}.csv") in SCENARIOS
    for scenario in SCENARIOS:
        assert scenario.with_name(scenario.stem + ".expected.csv").exists(), scenario.name
        assert scenario.with_suffix(".etl").exists(), scenario.name


@pytest.mark.parametrize("scenario", BOTH, ids=_id)
def test_findings_match_expected(scenario: Path):
    expected, found = expected_rows(scenario), found_rows(scenario)
    assert found == expected, diff_message(_id(scenario), expected, found)


@pytest.mark.parametrize("scenario", CLEAN_BOTH, ids=_id)
def test_clean_scenarios_have_nothing_above_low(scenario: Path):
    df = findings_of(scenario)
    bad = df[df["severity"].astype(str).isin(ABOVE_LOW)]
    assert bad.empty, f"{scenario.stem}:\n{bad[['rule', 'severity', 'time_ns', 'pid']]}"
    assert not expected_rows(scenario)


def test_seed_expectation_is_the_issue_one():
    rules = {row[0] for row in expected_rows(SAMPLES / f"{SEED}.csv")}
    assert rules == {
        "UNLOCK_WHILE_USER_MAPPED",
        "USER_MAPPING_NOT_UNMAPPED_AT_EXIT",
        "USER_MAP_KERNEL_MEMORY",
    }


# --- coverage of the rule catalogue ---------------------------------------------------


def _fired_rules() -> set[str]:
    return {row[0] for s in SCENARIOS for row in expected_rows(s)}


def test_rules_md_lists_both_tiers():
    assert RULES_MD.exists(), f"{RULES_MD} missing"
    assert len(rule_ids("## Tier 1")) >= 20 and len(rule_ids("## Tier 2")) >= 15


def test_every_tier1_and_tier2_rule_fires_in_some_scenario():
    wanted = rule_ids("## Tier 1") | rule_ids("## Tier 2")
    missing = sorted(wanted - _fired_rules())
    assert not missing, f"no scenario fires: {missing}"


def test_expected_files_name_only_rules_md_ids():
    known = rule_ids("## Tier 1") | rule_ids("## Tier 2")
    assert _fired_rules() <= known, sorted(_fired_rules() - known)


def test_tier2_rules_fire_in_t2_files():
    t2_fired = {row[0] for s in SCENARIOS if s.stem.startswith("t2_")
                for row in expected_rows(s)}
    assert rule_ids("## Tier 2") <= t2_fired


# --- the committed files are what build.py writes -------------------------------------


@pytest.fixture(scope="module")
def build():
    """sample_traces/build.py as a module."""
    spec = importlib.util.spec_from_file_location("sample_build", SAMPLES / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_every_rule_has_a_scenario_where_it_must_not_fire(build):
    """Each rule names scenarios with the legal variant of its pattern; there the rule is
    not expected (and so, by the golden comparison, must not be found)."""
    wanted = rule_ids("## Tier 1") | rule_ids("## Tier 2")
    assert set(build.NEAR_MISS) == wanted
    by_name = {p.stem: p for p in SCENARIOS}
    for rule, names in build.NEAR_MISS.items():
        for name in names:
            assert name in by_name, (rule, name)
            assert rule not in {row[0] for row in expected_rows(by_name[name])}, (rule, name)


def test_committed_scenarios_are_regenerated_by_build_py(build, tmp_path):
    stories = build.main(tmp_path)
    assert {st.name for st in stories} == {p.stem for p in SCENARIOS}
    for fresh in sorted(tmp_path.iterdir()):
        committed = SAMPLES / fresh.name
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{fresh.name} is stale: run python sample_traces/build.py")
    for st in stories:
        assert 10 <= len(st.scenario.rows) <= 60, st.name
