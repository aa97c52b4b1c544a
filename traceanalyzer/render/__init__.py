"""Renderers (text, json, csv, html, ...) picked by name or by output file extension.

>>> from traceanalyzer.render import render
>>> text = render(analysis, "text")              # doctest: +SKIP
>>> Path("summary.json").write_text(render(analysis, "summary.json"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traceanalyzer.render import csv_table, html_report, json_summary, text_table
from traceanalyzer.render.base import (
    Renderer, UnknownRendererError, get_renderer, register_renderer, renderer_names,
)

for _mod in (text_table, json_summary, csv_table, html_report):
    register_renderer(_mod.RENDERER)


def render(analysis: Any, name_or_path: str | Path, **options: Any) -> str | bytes:
    """Render ``analysis`` with the renderer named (or implied by the file extension of)
    ``name_or_path``. Returns text, or bytes for binary renderers. Writes nothing."""
    return get_renderer(name_or_path).render(analysis, **options)


__all__ = [
    "Renderer", "UnknownRendererError", "get_renderer", "register_renderer", "render",
    "renderer_names",
]
