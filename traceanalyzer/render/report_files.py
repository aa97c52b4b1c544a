"""Write the files of ``traceanalyzer report``: report.html, summary.json and the two
timeline PNGs, into one directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traceanalyzer.errors import TraceError
from traceanalyzer.fileio import atomic_output, write_bytes_atomic
from traceanalyzer.render.html_report import html_report
from traceanalyzer.render.json_summary import write_summary_json

#: File names written by :func:`write_report`, by role.
REPORT_FILES: dict[str, str] = {
    "html": "report.html",
    "json": "summary.json",
    "leak_timeline": "leak_timeline.png",
    "hazard_timeline": "hazard_timeline.png",
}


def write_report(analysis: Any, out_dir: str | Path, *, title: str | None = None,
                 top_n: int = 8, interactive: bool = True) -> dict[str, Path]:
    """Render the report of ``analysis`` into ``out_dir`` (created if missing).

    Writes :data:`REPORT_FILES` and returns role -> path. Each figure is drawn once and
    used both as a PNG file and embedded in the HTML. ``top_n`` processes are drawn
    individually in the leak timeline; ``interactive`` adds the zoomable timeline
    (:mod:`traceanalyzer.render.interactive`). Raises :class:`TraceError` naming the directory
    when it cannot be written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TraceError(f"cannot create the report directory: {exc.strerror}", out) from exc
    if not out.is_dir():
        raise TraceError("is not a directory", out)
    figures = {
        "leak_timeline": analysis.plot_leak_timeline(top_n=top_n).png(),
        "hazard_timeline": analysis.plot_hazard_timeline().png(),
        "impact": analysis.plot_impact().png(),
    }
    paths = {role: out / name for role, name in REPORT_FILES.items()}
    contents: dict[str, str | bytes] = {
        "html": html_report(analysis, figures=figures, title=title, interactive=interactive),
        "leak_timeline": figures["leak_timeline"],
        "hazard_timeline": figures["hazard_timeline"],
    }
    for role, data in contents.items():
        try:
            write_bytes_atomic(paths[role], data if isinstance(data, bytes) else data.encode("utf-8"))
        except OSError as exc:
            raise TraceError(f"cannot write: {exc.strerror}", paths[role]) from exc
    try:  # streamed: the findings are never one string
        with atomic_output(paths["json"]) as tmp, open(tmp, "w", encoding="utf-8",
                                                      newline="\n") as fh:
            write_summary_json(analysis, fh)
    except OSError as exc:
        raise TraceError(f"cannot write: {exc.strerror}", paths["json"]) from exc
    return paths
