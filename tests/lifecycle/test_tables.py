"""The lifecycle tables: their columns are the documented lists, and docs/architecture.md
names the same columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.lifecycle.tables import (
    LIFETIME_COLUMNS, LOCK_COLUMNS, MAPPING_COLUMNS, RAW_FINDING_COLUMNS,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed() -> ta.Analysis:
    return ta.analyze(ta.load(REPO / "sample_traces" / "seed_unlock_from_worker.csv"))


def _doc_columns(table: str) -> list[str]:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    found = re.search(rf"^`{table}`: `([^`]*)`", text, re.M | re.S)
    return [c.strip() for c in found.group(1).replace("\n", " ").split(",")]


@pytest.mark.parametrize("attr, columns", [("lifecycles", LIFETIME_COLUMNS),
                                           ("mappings", MAPPING_COLUMNS),
                                           ("locks", LOCK_COLUMNS)])
def test_tables_have_the_documented_columns(seed, attr, columns) -> None:
    assert list(getattr(seed, attr).columns) == list(columns) == _doc_columns(attr)


def test_raw_findings_name_what_the_seed_replay_found(seed) -> None:
    raw = seed._tables.raw_findings()
    assert list(raw.columns) == list(RAW_FINDING_COLUMNS)
    unlock = raw[raw["rule"] == "UNLOCK_WHILE_USER_MAPPED"].iloc[0]
    assert unlock["exposure"] and unlock["lifetime_id"] == 0 and unlock["call_idx"] >= 0
    exit_ = raw[raw["rule"] == "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"].iloc[0]
    assert exit_["process_end"] and exit_["call_idx"] == -1
    assert set(raw["rule"]) <= set(seed.findings["rule"])
