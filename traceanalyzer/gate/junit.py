"""JUnit XML for CI: one ``testcase`` per trace.

* failed -> ``<failure type="regression">`` whose message counts the reasons and whose
  text lists each new finding with its evidence and each leak regression;
* unreadable -> ``<error type="unreadable">``;
* missing trace -> ``<skipped>`` (it cannot pass or fail);
* passed / new trace -> a plain testcase; ``system-out`` says what was noticed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.gate.compare import (
    GateResult,
    TraceVerdict,
    describe_evidence,
    describe_new_finding,
)
from traceanalyzer.gate.text import verdict_lines

CLASSNAME = "traceanalyzer.check"
#: Characters XML 1.0 does not allow (a corrupt trace's strings may carry them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(root: ET.Element) -> None:
    """Replace characters XML 1.0 cannot carry with U+FFFD, in every text and attribute."""
    for el in root.iter():
        if el.text:
            el.text = _NOT_XML.sub("\ufffd", el.text)
        for k, val in el.attrib.items():
            el.attrib[k] = _NOT_XML.sub("\ufffd", val)


def _testcase(v: TraceVerdict) -> ET.Element:
    tc = ET.Element("testcase", classname=CLASSNAME, name=v.trace, time=f"{v.seconds:.3f}")
    if v.path:
        tc.set("file", v.path)
    if v.status == "failed":
        reasons = v.reasons()
        body = []
        for nf in v.blocking_findings:
            body += [
                describe_new_finding(nf),
                f"    {describe_evidence(nf.group)}",
                f"    problem {nf.group.fingerprint}",
            ]
        body += reasons[len(v.blocking_findings):]
        fail = ET.SubElement(tc, "failure", type="regression")
        fail.set("message", f"{len(reasons)} regression(s): " + "; ".join(reasons))
        fail.text = "\n".join(body)
    elif v.status == "error":
        err = ET.SubElement(tc, "error", type="unreadable")
        err.set("message", v.error or "")
        err.text = v.error or ""
    elif v.status == "missing trace":
        ET.SubElement(tc, "skipped", message="missing trace: in the baseline, not found in this run")
    lines = verdict_lines(v, verbose=True)
    if v.status in ("passed", "new trace") and lines:
        ET.SubElement(tc, "system-out").text = "\n".join(lines)
    return tc


def junit_tree(result: GateResult, suite: str = "traceanalyzer check") -> ET.ElementTree:
    """The JUnit document (``testsuites`` with one ``testsuite``)."""
    c = result.counts()
    total_time = sum(v.seconds for v in result.verdicts)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    attrs = {
        "name": suite,
        "tests": str(len(result.verdicts)),
        "failures": str(c["failed"]),
        "errors": str(c["error"]),
        "skipped": str(c["missing trace"]),
        "time": f"{total_time:.3f}",
    }
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", {**attrs, "timestamp": stamp})
    props = ET.SubElement(ts, "properties")
    ET.SubElement(props, "property", name="fail_on", value=result.policy.fail_on)
    ET.SubElement(props, "property", name="leak_rel_tol", value=str(result.policy.leak_rel_tol))
    ET.SubElement(props, "property", name="leak_abs_tol", value=str(result.policy.leak_abs_tol))
    for v in result.verdicts:
        ts.append(_testcase(v))
    _xml_safe(root)
    ET.indent(root)
    return ET.ElementTree(root)


def junit_xml(result: GateResult, suite: str = "traceanalyzer check") -> str:
    """The JUnit document as text (UTF-8 XML declaration included)."""
    body = ET.tostring(junit_tree(result, suite).getroot(), encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write_junit(result: GateResult, path: str | Path, suite: str = "traceanalyzer check") -> None:
    """Write the JUnit file."""
    write_text_atomic(path, junit_xml(result, suite))
