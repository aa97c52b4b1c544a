"""Renderer registry: a renderer turns an Analysis into text or bytes, picked by name or
by the extension of the output file.

A renderer is an object with ``name`` (str), ``extensions`` (tuple of suffixes such as
``('.json',)``), ``binary`` (bool: ``render`` returns bytes) and
``render(analysis, **options) -> str | bytes``. Register one with
:func:`register_renderer`; other layers (gate: junit, sarif) may register theirs too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from traceanalyzer.errors import TraceError
from traceanalyzer.vocabulary import at_least


@runtime_checkable
class Renderer(Protocol):
    """What the registry stores."""

    name: str
    extensions: tuple[str, ...]
    binary: bool

    def render(self, analysis: Any, **options: Any) -> str | bytes:
        """The analysis rendered in this renderer's format."""
        ...


class UnknownRendererError(TraceError, ValueError):
    """No renderer has that name or handles that file extension."""


_REGISTRY: dict[str, Renderer] = {}


def register_renderer(renderer: Renderer) -> Renderer:
    """Add (or replace) a renderer under its ``name``; returns it (usable as decorator
    on an instance-producing call)."""
    _REGISTRY[renderer.name] = renderer
    return renderer


def renderer_names() -> list[str]:
    """Names of the registered renderers, sorted."""
    return sorted(_REGISTRY)


def get_renderer(name_or_path: str | Path) -> Renderer:
    """The renderer called ``name_or_path`` (``'json'``), or the one that handles the
    extension of a path (``'out/summary.json'``, ``'findings.csv'``).

    Raises :class:`UnknownRendererError` naming the known renderers otherwise.
    """
    key = str(name_or_path)
    if key.lower() in _REGISTRY:
        return _REGISTRY[key.lower()]
    name = Path(key).name.lower()
    best: tuple[int, Renderer] | None = None
    for r in _REGISTRY.values():
        for ext in r.extensions:
            if name.endswith(ext.lower()) and (best is None or len(ext) > best[0]):
                best = (len(ext), r)
    if best is None:
        raise UnknownRendererError(
            f"no renderer for {key!r}; known renderers: {', '.join(renderer_names())} "
            f"(or a file name ending in "
            f"{', '.join(sorted({e for r in _REGISTRY.values() for e in r.extensions}))})")
    return best[1]


def filter_findings(findings: Any, min_severity: str | None) -> Any:
    """Rows of a findings DataFrame at or above ``min_severity`` (all when None)."""
    if not min_severity or min_severity == "info" or len(findings) == 0:
        return findings
    codes, names = pd.factorize(findings["severity"].astype(object), use_na_sentinel=False)
    keep = np.array([at_least(s, min_severity) for s in names], dtype=bool)[codes]
    return findings[keep].reset_index(drop=True)
