"""Per-trace result cache, next to the baseline, keyed by the trace file's content hash.

Layout: ``<cache dir>/<analyzer key>/<sha256 of the trace file>.json`` holding the
trace's ``summary()`` dict; a trace read with options (``check --symbols``,
``--field-map``, ...) has the hash of its file hash and :func:`options_key` instead, so
a summary is reused only for the same reading. The analyzer key hashes the source of
every package module that can change a summary (readers, model, context, lifecycle,
rules, analysis), so a new analyzer never reuses results of an old one. Each key folder
holds a marker file (:data:`MARKER`) written when the folder is created; when the cache
is opened for writing, folders of other keys that carry the marker lose the entries the
cache wrote (and are removed once empty). Nothing else under the cache folder is ever deleted, so
``--cache-dir`` may point at a folder that holds other things. A corrupt entry counts as
a miss.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from traceanalyzer.errors import TraceError
from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.model.symbols import SymbolDir

#: Package folders whose code cannot change a summary (left out of the analyzer key).
_NOT_IN_KEY = {"gate", "cli", "render", "plot", "synth", "__pycache__"}
CACHE_FORMAT = 1
#: File in every key folder the cache created: only such folders are ever pruned.
MARKER = ".traceanalyzer-cache"


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def options_key(load: Mapping[str, Any]) -> str:
    """A hash of the reading options a summary was made with ("" for none): the option
    values, the field map's content, and the names, sizes and modification times of the
    PDB and PE files in the symbols folder (a PDB added or replaced changes the callers)."""
    if not load:
        return ""
    doc: dict[str, Any] = {k: v for k, v in load.items() if k not in ("field_map", "symbols")}
    if load.get("field_map") is not None:
        try:
            doc["field_map"] = file_digest(load["field_map"])
        except OSError:
            doc["field_map"] = str(load["field_map"])  # the read fails and says why
    if load.get("symbols") is not None:
        doc["symbols"] = SymbolDir(Path(load["symbols"])).listing()
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def entry_key(file_hash: str, variant: str) -> str:
    """A trace's cache entry: its file hash, or with reading options (``variant``, from
    :func:`options_key`) a hash of both, so a summary read one way is never reused for
    another (entries made without options keep their names)."""
    return hashlib.sha256(f"{file_hash}|{variant}".encode()).hexdigest() if variant else file_hash


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
        self.unwritable: str | None = None  #: why the cache could not be written (None: it could)
        self.not_pruned: str | None = None  #: why a stale key's folder was left (None: none was)

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
        """Store a summary (atomically); the key folder gets its marker first. The cache
        only saves time: a folder that cannot be written (read-only, full) leaves the
        check as it is; the first such failure is kept in :attr:`unwritable` and no more
        writes are tried."""
        if self.unwritable is not None:
            return
        try:
            if not (self.dir / MARKER).is_file():
                write_text_atomic(self.dir / MARKER, json.dumps({"format": CACHE_FORMAT, "key": self.key}) + "\n")
            write_text_atomic(self._path(file_hash), json.dumps(summary, default=_jsonable, sort_keys=True))
        except TraceError as exc:
            self.unwritable = str(exc)

    def prune_stale(self) -> int:
        """Empty the folders of other analyzer keys that this cache created (they hold
        :data:`MARKER`): remove the entries it wrote there, then the folder when nothing
        else is left in it. Returns how many such folders were pruned."""
        if not self.root.is_dir():
            return 0
        pruned = 0
        for d in self.root.iterdir():
            if d.name == self.key or d.is_symlink() or not (d / MARKER).is_file():
                continue
            try:
                for f in d.iterdir():
                    if f.name != MARKER and _is_entry(f.name) and f.is_file() and not f.is_symlink():
                        f.unlink(missing_ok=True)
                (d / MARKER).unlink(missing_ok=True)
            except OSError as exc:  # a read-only folder of another key: left as it is
                self.not_pruned = self.not_pruned or f"{d}: cannot prune: {exc.strerror or exc}"
                continue
            try:
                d.rmdir()
            except OSError:  # something the cache did not write is in there: keep it
                pass
            pruned += 1
        return pruned


_ENTRY = re.compile(r"\.?[0-9a-f]+\.json(\.[A-Za-z0-9_]+)?")


def _is_entry(name: str) -> bool:
    """A cache entry (``<hex hash>.json``) or a leftover temporary file of one."""
    return _ENTRY.fullmatch(name) is not None


def _jsonable(value: Any) -> Any:
    """JSON fallback: numpy scalars/arrays via ``tolist()``, pandas NA as null, else ``str``."""
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
