"""Per-trace result cache, next to the baseline, keyed by the trace file's content hash.

Layout: ``<cache dir>/<analyzer key>/<sha256 of the trace file>.json`` holding the
trace's ``summary()`` dict. The analyzer key hashes the source of every package module
that can change a summary (readers, model, context, lifecycle, rules, analysis), so a
new analyzer never reuses results of an old one; folders of other keys are removed
when the cache is opened for writing. A corrupt entry counts as a miss.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

from traceanalyzer.fileio import write_text_atomic

#: Package folders whose code cannot change a summary (left out of the analyzer key).
_NOT_IN_KEY = {"gate", "cli", "render", "plot", "synth", "__pycache__"}
CACHE_FORMAT = 1


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@lru_cache(maxsize=1)
def analyzer_key() -> str:
    """A short hash of the analysis code (package version + source of relevant modules)."""
    import traceanalyzer

    root = Path(traceanalyzer.__file__).parent
    h = hashlib.sha256(f"{CACHE_FORMAT}|{getattr(traceanalyzer, '__version__', '')}".encode())
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if rel.parts[0] in _NOT_IN_KEY:
            continue
        h.update(rel.as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def default_cache_dir(baseline_path: str | Path) -> Path:
    """``baseline.json`` -> ``baseline.cache/`` in the same folder."""
    p = Path(baseline_path)
    return p.with_name(p.stem + ".cache")


class ResultCache:
    """Summaries by trace-file hash for one analyzer version."""

    def __init__(self, directory: str | Path, key: str | None = None) -> None:
        self.root = Path(directory)
        self.key = key or analyzer_key()
        self.dir = self.root / self.key
        self.hits = 0
        self.misses = 0

    def _path(self, file_hash: str) -> Path:
        return self.dir / f"{file_hash}.json"

    def get(self, file_hash: str) -> dict[str, Any] | None:
        """The cached summary, or None (missing or unreadable entry)."""
        try:
            doc = json.loads(self._path(file_hash).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(doc, dict) or "findings" not in doc:
            self.misses += 1
            return None
        self.hits += 1
        return doc

    def put(self, file_hash: str, summary: dict[str, Any]) -> None:
        """Store a summary (atomically)."""
        write_text_atomic(self._path(file_hash), json.dumps(summary, default=_jsonable, sort_keys=True))

    def prune_stale(self) -> int:
        """Remove folders of other analyzer keys; returns how many were removed."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for d in self.root.iterdir():
            if d.is_dir() and d.name != self.key:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed


def _jsonable(value: Any) -> Any:
    """JSON fallback: numpy scalars/arrays via ``tolist()``, pandas NA as null, else ``str``."""
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
