"""JSON renderer: ``analysis.summary()`` (the ``hazards --json`` shape of docs/cli.md).

The shape is described by the JSON Schema ``summary.schema.json`` shipped next to this
module (:func:`summary_schema`). :func:`write_summary_json` streams the document to a
file: the findings are encoded column-wise, a chunk of rows at a time, never as one
dict per finding, and the text is the same as ``json.dumps`` of ``analysis.summary()``.
"""

from __future__ import annotations

import io
import json
import math
import uuid
from functools import cache
from importlib import resources
from json.encoder import encode_basestring
from typing import Any, Callable, TextIO

import numpy as np
import pandas as pd

from traceanalyzer.analysis import Analysis
from traceanalyzer.render.base import filter_findings
from traceanalyzer.render.summary import (
    FINDING_FIELDS, finding_columns, in_order, summary_parts,
)
from traceanalyzer.rules.problems import problem_records, problems_of
from traceanalyzer.vocabulary import at_least


def _default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


#: File name of the JSON Schema of the summary, a package resource of traceanalyzer.render.
SCHEMA_RESOURCE = "summary.schema.json"


@cache
def _schema_text() -> str:
    return resources.files("traceanalyzer.render").joinpath(SCHEMA_RESOURCE).read_text("utf-8")


def summary_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the ``hazards --json`` / ``summary.json``
    document, as a fresh dict."""
    return json.loads(_schema_text())


def summary_json(summary: dict[str, Any], indent: int | None = 2) -> str:
    """A summary dict as JSON text (numpy scalars and NA become JSON numbers/null)."""
    return json.dumps(summary, indent=indent, default=_default, ensure_ascii=False,
                      allow_nan=False) + "\n"


#: Findings encoded and written per chunk of this many rows.
CHUNK_ROWS = 20_000


def write_summary_json(analysis: Any, stream: TextIO, indent: int | None = 2,
                       min_severity: str | None = None) -> None:
    """Write ``analysis.summary()`` as JSON text to ``stream`` (findings below
    ``min_severity`` left out, and ``problems`` made of the findings kept, as the text
    table makes them), the findings streamed in chunks of :data:`CHUNK_ROWS`.
    The text equals :func:`summary_json` of the summary dict. Anything that is not an
    :class:`Analysis` but offers ``summary()`` (a test double) is dumped as its dict."""
    if not isinstance(analysis, Analysis):
        summary = analysis.summary()
        if min_severity:
            summary = dict(summary, **{
                key: [f for f in summary[key] if at_least(f.get("severity"), min_severity)]
                for key in ("findings", "problems") if key in summary})
        stream.write(summary_json(summary, indent=indent))
        return
    findings = filter_findings(analysis.findings, min_severity)
    problems = analysis.problems if findings is analysis.findings else problems_of(findings)
    token = "\x00findings " + uuid.uuid4().hex  # stands for the findings array
    doc = in_order(summary_parts(analysis), findings=token, problems=problem_records(problems))
    text = json.dumps(doc, indent=indent, default=_default, ensure_ascii=False,
                      allow_nan=False)
    before, after = text.split(json.dumps(token), 1)
    stream.write(before)
    _write_findings(stream, finding_columns(findings, copy_lists=False), len(findings), indent)
    stream.write(after + "\n")


def _write_findings(stream: TextIO, columns: dict[str, list[Any]], n: int,
                    indent: int | None) -> None:
    """The findings array, laid out as ``json.dumps(..., indent=indent)`` lays out the
    value of a top-level key: each column encoded at once, rows joined per chunk."""
    if n == 0:
        stream.write("[]")
        return
    nl = (lambda level: "\n" + " " * (indent * level)) if indent is not None else (lambda level: "")
    sep = "," if indent is not None else ", "
    # one finding: "{" key: %s, key: %s ... "}" with the layout of json.dumps
    template = "{" + sep.join(nl(3) + encode_basestring(key).replace("%", "%%") + ": %s"
                              for key, _kind in FINDING_FIELDS) + nl(2) + "}"
    stream.write("[" + nl(2))
    for lo in range(0, n, CHUNK_ROWS):
        hi = min(n, lo + CHUNK_ROWS)
        encoded = [_encoded(columns[key][lo:hi], kind, nl, sep) for key, kind in FINDING_FIELDS]
        if lo:
            stream.write(sep + nl(2))
        stream.write((sep + nl(2)).join([template % row for row in zip(*encoded)]))
    stream.write(nl(1) + "]")


def _encoded(values: list[Any], kind: str, nl: Callable[[int], str], sep: str) -> list[str]:
    """One column's values as JSON text, as ``json.dumps`` writes them."""
    if kind == "str":  # each distinct string encoded once (callers, rules, ... repeat)
        codes, distinct = pd.factorize(np.asarray(values, dtype=object))
        encoded = np.array([encode_basestring(v) for v in distinct] + ["null"], dtype=object)
        text = encoded[codes].tolist()  # code -1 (None) picks the last: null
    elif kind == "int":
        text = ["null" if v is None else int.__repr__(v) for v in values]
    elif kind == "float":
        text = ["null" if v is None else float.__repr__(v) for v in values]
    elif kind == "bool":
        text = ["true" if v else "false" for v in values]
    else:  # a list of int, written one item per line (4 deep: in a finding in the array)
        item_sep = sep + nl(4)
        text = ["null" if v is None else "[]" if not v else
                "[" + nl(4) + item_sep.join(map(str, v)) + nl(3) + "]"
                for v in values]
    return text


class JsonRenderer:
    """``json``: the hazards --json / summary.json document."""

    name = "json"
    extensions = (".json",)
    binary = False

    def render(self, analysis: Any, indent: int | None = 2, min_severity: str | None = None,
               **_options: Any) -> str:
        """``analysis.summary()`` as JSON text (findings below ``min_severity`` left out,
        problems of the findings kept)."""
        out = io.StringIO()
        write_summary_json(analysis, out, indent=indent, min_severity=min_severity)
        return out.getvalue()

    def write(self, analysis: Any, stream: TextIO, indent: int | None = 2,
              min_severity: str | None = None, **_options: Any) -> None:
        """Stream the JSON text of :meth:`render` to ``stream``
        (:func:`write_summary_json`)."""
        write_summary_json(analysis, stream, indent=indent, min_severity=min_severity)


RENDERER = JsonRenderer()
