"""Write the files of ``traceanalyzer report``: report.html, summary.json and the two
timeline PNGs, into one directory."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Iterator, TextIO

from traceanalyzer.errors import TraceError
from traceanalyzer.fileio import atomic_output, make_folder, write_bytes_atomic
from traceanalyzer.render.html_report import figure_pngs, html_report
from traceanalyzer.render.json_summary import write_summary_json
from traceanalyzer.render.side_job import SideJob

#: File names written by :func:`write_report`, by role.
REPORT_FILES: dict[str, str] = {
    "html": "report.html",
    "json": "summary.json",
    "leak_timeline": "leak_timeline.png",
    "hazard_timeline": "hazard_timeline.png",
}


def write_report(analysis: Any, out_dir: str | Path, *, title: str | None = None,
                 top_n: int = 8, interactive: bool = True,
                 parallel: bool = True) -> dict[str, Path]:
    """Render the report of ``analysis`` into ``out_dir`` (created if missing).

    Writes :data:`REPORT_FILES` and returns role -> path. Each figure is drawn once and
    used both as a PNG file and embedded in the HTML. ``top_n`` processes are drawn
    individually in the leak timeline; ``interactive`` adds the zoomable timeline
    (:mod:`traceanalyzer.render.interactive`). ``parallel`` lets a forked child process
    draw the figures while this one writes summary.json and the page, where forking is
    possible (:mod:`traceanalyzer.render.side_job`); the files are the same either way.
    Raises :class:`TraceError` naming the directory or file that cannot be written.
    """
    out = Path(out_dir)
    make_folder(out)
    if not out.is_dir():
        raise TraceError("is not a directory", out)
    paths = {role: out / name for role, name in REPORT_FILES.items()}
    _compute_shared(analysis)
    # the figures are drawn in a child process (see side_job.py) while this one writes
    # summary.json and builds the page; the files are the same either way. summary.json
    # is put in place last: a failure before leaves no new summary.json beside old files
    with _json_file(paths["json"]) as json_out:
        with SideJob(lambda: figure_pngs(analysis, top_n=top_n), fork=parallel) as side:
            try:
                write_summary_json(analysis, json_out)  # streamed: never one string
            except OSError as exc:
                raise TraceError(f"cannot write: {exc.strerror}", paths["json"]) from exc
            html = html_report(analysis, figures=_Pending(side), title=title,
                               interactive=interactive)
            pngs = side.result()
        for role, data in (("html", html.encode("utf-8")),
                           ("leak_timeline", pngs["leak_timeline"]),
                           ("hazard_timeline", pngs["hazard_timeline"])):
            try:
                write_bytes_atomic(paths[role], data)
            except OSError as exc:
                raise TraceError(f"cannot write: {exc.strerror}", paths[role]) from exc
    return paths


def _compute_shared(analysis: Any) -> None:
    """Compute the tables both processes read, once, before the fork."""
    for name in ("findings", "problems", "leaks"):
        getattr(analysis, name, None)
    timeline = getattr(analysis, "leak_timeline", None)
    if callable(timeline):
        timeline()


@contextmanager
def _json_file(path: Path) -> Iterator[TextIO]:
    """summary.json opened as a temporary file next to it, put in place when the block
    succeeds (after the other files), removed when it fails; a failure to create or
    rename it names the file."""
    in_block = False
    try:
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            try:
                yield fh
            except BaseException:
                in_block = True  # the block's own error, whatever it is, passes unchanged
                raise
    except OSError as exc:
        if in_block:
            raise
        raise TraceError(f"cannot write: {exc.strerror}", path) from exc


class _Pending(Mapping[str, bytes]):
    """The figures of a side job, waited for when first read (the HTML reads them after
    its interactive part)."""

    def __init__(self, side: SideJob[dict[str, bytes]]) -> None:
        self._side = side

    def __getitem__(self, name: str) -> bytes:
        return self._side.result()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._side.result())

    def __len__(self) -> int:
        return len(self._side.result())
