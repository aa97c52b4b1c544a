"""docs/rules.md is generated from the rule catalogue and is not stale; ``traceanalyzer
rules [ID]`` prints the catalogue and one rule in full."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from traceanalyzer.cli.main import main
from traceanalyzer.rules.catalogue import RULES
from traceanalyzer.rules.reference import (
    BUGCHECK_PAGES,
    ROUTINE_PAGES,
    documentation_links,
    rules_markdown,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_docs_rules_md_is_what_the_catalogue_generates() -> None:
    assert DOC.read_text(encoding="utf-8") == rules_markdown(), (
        "docs/rules.md is stale: run `traceanalyzer rules --markdown > docs/rules.md`")


def test_every_rule_has_a_section_with_its_texts() -> None:
    text = rules_markdown()
    for r in RULES.values():
        section = text.split(f"### {r.id}\n", 1)[1].split("\n### ", 1)[0]
        assert f"- **Severity:** {r.severity}" in section
        for field in (r.consequence, r.advice, r.reference):
            assert field.strip().rstrip(".") in section, (r.id, field)
        assert re.search(rf"^\| {r.id} \| {r.severity}\b", text, flags=re.M), r.id


@pytest.mark.parametrize("rule_id", [i for i, r in RULES.items() if r.tier in (1, 2)])
def test_every_hazard_rule_links_microsoft_documentation(rule_id: str) -> None:
    links = documentation_links(RULES[rule_id])
    assert links, rule_id
    for _, url in links:
        assert url.startswith("https://learn.microsoft.com/en-us/windows-hardware/drivers/")


def test_links_follow_the_texts() -> None:
    r = RULES["LOCKED_PAGES_AT_PROCESS_EXIT"]   # Bug check 0x76 ..., or 0xCB ...
    labels = [label for label, _ in documentation_links(r)]
    assert "Bug check 0x76 PROCESS_HAS_LOCKED_PAGES" in labels
    assert "Bug check 0xCB DRIVER_LEFT_LOCKED_PAGES_IN_PROCESS" in labels
    r = RULES["DETACH_MISMATCH"]
    assert [label for label, _ in documentation_links(r)] == [
        "KeUnstackDetachProcess", "Bug check 0x6 INVALID_PROCESS_DETACH_ATTEMPT"]
    assert ROUTINE_PAGES["KeStackAttachProcess"].endswith("/ntifs/nf-ntifs-kestackattachprocess")
    assert BUGCHECK_PAGES[0xDA][1].endswith("/bug-check-0xda--system-pte-misuse")


def test_cli_lists_the_catalogue(capsys) -> None:
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for tier_title in ("Tier 1", "Tier 2", "Trace quality"):
        assert tier_title in out
    listed = re.findall(r"^  ([A-Z][A-Z0-9_]+) +(critical|high|medium|low|info) ", out, flags=re.M)
    assert dict(listed) == {i: r.severity for i, r in RULES.items()}


def test_cli_prints_one_rule_in_full(capsys) -> None:
    assert main(["rules", "user_unmap_wrong_process"]) == 0
    out = capsys.readouterr().out
    r = RULES["USER_UNMAP_WRONG_PROCESS"]
    flat = " ".join(out.split())
    assert out.startswith("USER_UNMAP_WRONG_PROCESS\n")
    assert "Severity: critical" in flat
    assert " ".join(r.consequence.split()) in flat and " ".join(r.advice.split()) in flat
    assert ROUTINE_PAGES["MmUnmapLockedPages"] in out
    assert BUGCHECK_PAGES[0xC4][1] in out          # Verifier 0xC4/0xB9


def test_cli_unknown_rule_is_one_line_with_the_closest_ids(capsys) -> None:
    assert main(["rules", "UNLOCK_WHILE_MAPPED"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "UNLOCK_WHILE_USER_MAPPED" in err
    assert main(["rules", "unlock_while_mapped"]) == 2  # any case, and the ID as given in the message
    assert capsys.readouterr().err.startswith(
        "traceanalyzer: unknown rule 'unlock_while_mapped'; closest: UNLOCK_WHILE_USER_MAPPED (")


def test_cli_markdown_is_the_docs_file(capsys) -> None:
    assert main(["rules", "--markdown"]) == 0
    assert capsys.readouterr().out == DOC.read_text(encoding="utf-8")
    assert main(["rules", "--markdown", "DOUBLE_LOCK"]) == 2
