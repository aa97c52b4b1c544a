"""Every rule of the catalogue explains itself (issue 11 item 4).

For each Tier-1 and Tier-2 rule, a finding from the sample scenarios: its message names
the call (or the process event), the MDL and an address, says what happens on a real
machine (the catalogue's consequence, never a "See ... docs" pointer), and shows no `?`
where the trace has the value; the advice says what to do.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

import traceanalyzer as ta
from traceanalyzer.rules.catalogue import RULES
from traceanalyzer.rules.messages import TEMPLATES

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
RULE_IDS = sorted(r.id for r in RULES.values() if r.tier in (1, 2))
#: Rules about a thread's attach stack: no MDL, no address.
NO_MDL = {"ATTACH_UNBALANCED", "DETACH_MISMATCH"}
CALLS = ("Mm", "Io", "Ke", "ExFreePool")


@functools.lru_cache(maxsize=1)
def one_finding_per_rule() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in sorted(SAMPLES.glob("*.csv")):
        if path.name.endswith(".expected.csv"):
            continue
        found = ta.analyze(ta.load(path)).findings
        for row in found.to_dict("records"):
            out.setdefault(row["rule"], row)
    return out


def test_every_rule_has_its_own_template_and_consequence():
    for rule_id in RULE_IDS:
        rule = RULES[rule_id]
        assert rule_id in TEMPLATES, rule_id
        assert not rule.consequence.startswith("See "), rule_id
        assert len(rule.consequence) > 30 and len(rule.advice) > 30, rule_id


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_message_names_call_mdl_address_and_process(rule_id):
    finding = one_finding_per_rule().get(rule_id)
    assert finding is not None, f"no sample scenario fires {rule_id}"
    message = finding["message"]
    assert "?" not in message, message
    assert not message.startswith(rule_id), message
    assert any(word in message for word in CALLS) or "exited" in message, message
    assert finding["process"] and finding["process"] in message or \
        str(finding["call_process"]) in message, message
    if rule_id not in NO_MDL:
        mdl = finding["mdl"]
        named = "reserved range 0x" if mdl is None or mdl != mdl else f"0x{int(mdl):x}"
        assert named in message.lower(), message
    assert RULES[rule_id].consequence.rstrip(".")[:40] in message, message
