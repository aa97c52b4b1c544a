"""Where the real traces are, for every test that reads one.

By default the small in-repository subset in ``tests/data/real`` (see its SOURCES.md).
When the environment variable ``TA_REAL_TRACES`` names a folder laid out the same way
(``<owner>__<repo>/<file>``; ``.ci/run`` points it at the full collection), tests use that
folder instead, so they run on every file of it.
"""

from __future__ import annotations

import os
from pathlib import Path

IN_REPO = Path(__file__).resolve().parents[1] / "data" / "real"

#: File endings the readers take as traces (archives such as .7z are not traces).
TRACE_SUFFIXES = (".etl", ".etlgz", ".csv")


def real_traces_root() -> Path:
    """The folder of real traces in use: ``$TA_REAL_TRACES`` if set, else the in-repo subset."""
    env = os.environ.get("TA_REAL_TRACES")
    if env:
        root = Path(env)
        if not root.is_dir():
            raise FileNotFoundError(f"TA_REAL_TRACES={env} is not a folder")
        return root
    return IN_REPO


def full_collection() -> bool:
    """True when the full collection (``TA_REAL_TRACES``) is in use, not the in-repo subset."""
    return bool(os.environ.get("TA_REAL_TRACES"))


def real_trace_files(suffixes: tuple[str, ...] = TRACE_SUFFIXES) -> list[Path]:
    """Every real trace file in use, relative to :func:`real_traces_root`, sorted."""
    root = real_traces_root()
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and p.name.lower().endswith(suffixes) and p.name != "SOURCES.md"
    )


def in_repo_trace(name: str) -> Path:
    """A file of the in-repository subset, whichever collection is in use (for files that
    exist only there, such as the cut of ShutdownPerfDiagLogger.etl)."""
    path = IN_REPO / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from tests/data/real")
    return path


def full_collection_trace(name: str) -> Path:
    """A file that only the full collection holds: its path when ``TA_REAL_TRACES`` is set
    (missing there is an error), else the test is skipped with a one-line reason."""
    import pytest

    if not full_collection():
        pytest.skip(f"{name} is only in the full real-trace collection (set TA_REAL_TRACES)")
    path = real_traces_root() / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from TA_REAL_TRACES")
    return path
