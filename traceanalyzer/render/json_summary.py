"""JSON renderer: ``analysis.summary()`` (the ``hazards --json`` shape of docs/cli.md).

The shape is described by the JSON Schema ``summary.schema.json`` shipped next to this
module (:func:`summary_schema`).
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

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
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
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


class JsonRenderer:
    """``json``: the hazards --json / summary.json document."""

    name = "json"
    extensions = (".json",)
    binary = False

    def render(self, analysis: Any, indent: int | None = 2, min_severity: str | None = None,
               **_options: Any) -> str:
        """``analysis.summary()`` as JSON text (findings below ``min_severity`` left out)."""
        summary = analysis.summary()
        if min_severity:
            summary = dict(summary, findings=[f for f in summary.get("findings", [])
                                              if at_least(f.get("severity"), min_severity)])
        return summary_json(summary, indent=indent)


RENDERER = JsonRenderer()
