"""SARIF 2.1.0 log of a gate run (for code-scanning dashboards).

* ``tool.driver.rules``: one entry per rule ID of the catalogue (``rules/catalogue.py``,
  transcribed from rules.md) with its description, consequence, advice and severity
  (``defaultConfiguration.level`` and ``properties.severity``), plus any rule ID seen in
  results that the catalogue lacks;
* ``results``: one per (trace, problem: rule + call site) with the occurrence count, the caller as a
  logical location, the trace file as the physical location (an artifact of the run),
  ``baselineState`` new / unchanged / updated (count grew; matched as the gate matches,
  ``digest.site_key``), and the problem id in ``partialFingerprints``;
* ``artifacts``: one per trace with its SHA-256.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.gate.compare import GateResult, TraceVerdict, describe_evidence
from traceanalyzer.gate.digest import FindingGroup, by_site, site_key

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "traceanalyzerProblem/v1"

#: SARIF level per severity.
LEVELS: dict[str, str] = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "info": "note",
}
#: GitHub code scanning's numeric ``security-severity`` per severity.
SECURITY_SEVERITY: dict[str, str] = {
    "critical": "9.5",
    "high": "7.5",
    "medium": "5.0",
    "low": "2.0",
    "info": "0.0",
}


def _rule_name(rule_id: str) -> str:
    """``UNLOCK_WHILE_USER_MAPPED`` -> ``UnlockWhileUserMapped``."""
    return "".join(part.capitalize() for part in rule_id.split("_"))


def _rule_descriptor(rule_id: str, rule: Any | None, severity: str) -> dict[str, Any]:
    sev = getattr(rule, "severity", None) or severity
    desc: dict[str, Any] = {
        "id": rule_id,
        "name": _rule_name(rule_id),
        "defaultConfiguration": {"level": LEVELS.get(sev, "warning")},
        "properties": {
            "severity": sev,
            "security-severity": SECURITY_SEVERITY.get(sev, "5.0"),
            "tags": ["mdl", "windows-driver", "memory"],
        },
    }
    if rule is None:
        desc["shortDescription"] = {"text": rule_id}
        return desc
    desc["shortDescription"] = {"text": rule.fires_when}
    desc["fullDescription"] = {"text": f"{rule.fires_when}. Consequence: {rule.consequence}"}
    desc["help"] = {"text": f"{rule.advice}\nReference: {rule.reference}"}
    desc["properties"].update({"tier": rule.tier, "reference": rule.reference})
    if getattr(rule, "severity_user_va", None):
        desc["properties"]["severity_user_va"] = rule.severity_user_va
    return desc


def _baseline_states(v: TraceVerdict) -> dict[str, str]:
    """``baselineState`` per problem id of ``v.current``, matched as the gate matches
    (``digest.site_key``): new, updated (its site's count grew) or unchanged."""
    assert v.current is not None
    if v.baseline is None:
        return dict.fromkeys(v.current.findings, "new")
    now, base = by_site(v.current.findings), by_site(v.baseline.findings)
    out = {}
    for pid, g in v.current.findings.items():
        key = site_key(g)
        out[pid] = ("new" if key not in base else
                    "updated" if now[key].count > base[key].count else "unchanged")
    return out


def _result(
    v: TraceVerdict, g: FindingGroup, rule_index: int, artifact_index: int, base_id: str | None,
    uri: str, state: str
) -> dict[str, Any]:
    evidence = describe_evidence(g)
    text = f"{g.rule} in {g.process or '?'} from {g.caller or '?'} ({g.count} occurrence(s) in {v.trace})"
    if evidence:
        text += f"; first {evidence}"
    artifact: dict[str, Any] = {"uri": uri, "index": artifact_index}
    if base_id:
        artifact["uriBaseId"] = base_id
    logical: dict[str, Any] = {"name": g.caller or "?", "kind": "function"}
    if g.process:
        logical["fullyQualifiedName"] = f"{g.process}!{g.caller or '?'}"
    props = {k: val for k, val in g.first.items() if k != "message"}
    props.update({"severity": g.severity, "process": g.process, "trace": v.trace, "bytes_total": g.bytes})
    return {
        "ruleId": g.rule,
        "ruleIndex": rule_index,
        "level": LEVELS.get(g.severity, "warning"),
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": artifact}, "logicalLocations": [logical]}],
        "partialFingerprints": {FINGERPRINT_KEY: g.fingerprint},
        "occurrenceCount": max(1, g.count),
        "baselineState": state,
        "properties": props,
    }


def _uri(trace_id: str, file: str | Path | None, root: str | Path | None) -> str:
    """A trace's artifact URI: its file's path from its root, percent-encoded byte by byte
    (the name's own bytes, UTF-8 or not), else its ID."""
    if file is None or root is None:
        return quote(trace_id)
    return quote(os.fsencode(Path(file).relative_to(root).as_posix()))


def sarif_log(
    result: GateResult,
    roots: Mapping[str, str | Path] | None = None,
    files: Mapping[str, str | Path] | None = None,
    rules: Mapping[str, Any] | None = None,
    tool_version: str | None = None,
    exit_code: int | None = None,
) -> dict[str, Any]:
    """The SARIF document as a dict.

    roots: trace ID -> folder its ID is relative to (becomes ``originalUriBaseIds``);
        without it URIs are the bare trace IDs.
    files: trace ID -> its file, under its root: the URI is then the file's path from the
        root byte by byte (a name that is not UTF-8, ID ``caf\\xe9.etl``, is ``caf%E9.etl``).
    rules: rule catalogue (default ``rules.catalogue.RULES``).
    exit_code: the run's exit code (``CheckOutcome.exit_code``; default
        ``result.exit_code``).
    """
    if rules is None:
        from traceanalyzer.rules.catalogue import RULES as rules  # noqa: N811
    if tool_version is None:
        import traceanalyzer

        tool_version = getattr(traceanalyzer, "__version__", "0")
    roots, files = roots or {}, files or {}

    seen_rules = {g.rule: g.severity for v in result.verdicts if v.current for g in v.current.findings.values()}
    rule_ids = sorted(set(rules) | set(seen_rules))
    descriptors = [_rule_descriptor(r, rules.get(r), seen_rules.get(r, "medium")) for r in rule_ids]
    rule_index = {r: i for i, r in enumerate(rule_ids)}

    base_ids: dict[str, str] = {}
    for root in sorted({str(Path(p).resolve()) for p in roots.values()}):
        base_ids[root] = f"TRACEROOT{len(base_ids)}"

    artifacts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for v in result.verdicts:
        if v.current is None:
            continue
        root = roots.get(v.trace)
        base_id = base_ids.get(str(Path(root).resolve())) if root is not None else None
        uri = _uri(v.trace, files.get(v.trace), root)
        loc: dict[str, Any] = {"uri": uri}
        if base_id:
            loc["uriBaseId"] = base_id
        art: dict[str, Any] = {"location": loc, "roles": ["analysisTarget"]}
        if v.file_hash:
            art["hashes"] = {"sha-256": v.file_hash}
        artifacts.append(art)
        states = _baseline_states(v)
        for g in v.current.ordered():
            results.append(_result(v, g, rule_index[g.rule], len(artifacts) - 1, base_id, uri,
                                   states[g.fingerprint]))

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "traceanalyzer",
                "version": str(tool_version),
                "rules": descriptors,
            }
        },
        "artifacts": artifacts,
        "results": results,
        "columnKind": "unicodeCodePoints",
        "invocations": [
            {
                "executionSuccessful": not result.errors,
                "exitCode": result.exit_code if exit_code is None else exit_code,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": v.error or ""}} for v in result.errors
                ],
            }
        ],
        "properties": {"fail_on": result.policy.fail_on, "verdicts": {v.trace: v.status for v in result.verdicts}},
    }
    if base_ids:
        run["originalUriBaseIds"] = {
            bid: {"uri": Path(root).as_uri() + "/"} for root, bid in base_ids.items()
        }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def write_sarif(result: GateResult, path: str | Path, **kwargs: Any) -> None:
    """Write the SARIF file (``kwargs`` as for :func:`sarif_log`)."""
    text = json.dumps(sarif_log(result, **kwargs), indent=2, default=str, ensure_ascii=False)
    write_text_atomic(path, text + "\n")
