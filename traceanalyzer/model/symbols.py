"""Call sites as ``module!function+offset`` from PDB files (``--symbols DIR``).

A ``caller`` of ``mydriver.sys+0x1a2b`` (logged, or resolved from ``return_address``
through ImageLoad, see :mod:`traceanalyzer.model.callers`) is an offset from the module's
load base. With the module's PDB it becomes ``mydriver!ReleaseBuffer+0x3b``, as WPA shows.

``DIR`` is a folder of ``.pdb`` files, or a symbol-server cache
(``DIR/mydriver.pdb/<GUID><age>/mydriver.pdb``, the ``_NT_SYMBOL_PATH`` layout), searched
recursively. A module's PDB is chosen by its debug id (PDB GUID + age):

1. the one the trace names: a trace that xperf or wpr merged holds a DbgID_RSDS record
   per image (``ImageDebugId`` rows: the PDB's name and debug id at the image's base),
   so the PDB is the file of that name (``ntoskrnl.exe`` -> ``ntkrnlmp.pdb``) with that
   debug id, and no other build can be taken by mistake. A record names the build of one
   image instance (the load at its base nearest to it), so a module reloaded as another
   build resolves each call with the build loaded when it ran (at its return address's
   base); a call no named load holds, of a module the trace names several builds of, is
   left unresolved;
2. else the one the module's own PE file in ``DIR`` names (its CodeView record); several
   PE files of the module with different debug ids (builds of a symbol store) leave its
   callers unresolved: the PDB of another build names the wrong functions;
3. else the only ``<module stem>.pdb``.

PDB and PE files are read with the ``symbolic`` library. A caller that stays unresolved (no PDB, several candidates and no PE to choose,
an offset in no function) keeps its ``module+offset`` text and is counted in the stats
(``unsymbolized_callers``, detail: why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.model.debug_id import normal_debug_id
from traceanalyzer.model.schema import USER_SPACE_LIMIT
from traceanalyzer.model.stats import Stats

__all__ = ["ImageBuilds", "SymbolDir", "symbolize_calls", "traced_builds"]

_CALLER = re.compile(r"^(?P<module>[^!+\s]+)\+0x(?P<offset>[0-9a-fA-F]+)$")


def _archive(path: Path) -> Any:
    """``symbolic``'s Archive of the file: opened by its name (mapped), or, for a name that
    is not UTF-8 (which symbolic cannot encode), from its bytes."""
    from symbolic import Archive

    name = str(path)
    return Archive.open(name) if path_text(name) == name else Archive.from_bytes(path.read_bytes())


def _debug_id(path: Path) -> str | None:
    """The debug id of a PE or PDB file, in the form ids are compared in."""
    try:
        for obj in _archive(path).iter_objects():
            return normal_debug_id(str(obj.debug_id))
    except Exception:  # noqa: BLE001 - not a PE/PDB symbolic can read: not a candidate
        return None
    return None


#: The files of a symbols folder that resolve callers: PDBs, and the images whose debug
#: ids pick one of several PDBs.
SYMBOL_SUFFIXES = (".pdb", ".sys", ".dll", ".exe")

#: SymbolDirs already read, by (folder, :meth:`SymbolDir.listing`): see :meth:`SymbolDir.shared`.
_SHARED: dict[tuple[Path, tuple], "SymbolDir"] = {}


@dataclass
class SymbolDir:
    """The PDB (and PE) files of a folder, found by module name."""

    root: Path
    _caches: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise TraceError("--symbols: not a folder", self.root)

    @classmethod
    def shared(cls, root: str | Path) -> "SymbolDir":
        """The SymbolDir of ``root``, reused while its files are the same ones (same
        names, sizes and modification times): the PDBs it has read stay read, for every
        trace a process loads with the same ``--symbols`` (``check`` over many traces)."""
        fresh = cls(Path(root))
        key = (fresh.root.resolve(), fresh.listing())
        if key not in _SHARED:
            if len(_SHARED) >= 4:
                _SHARED.clear()
            _SHARED[key] = fresh
        return _SHARED[key]

    @cached_property
    def _files(self) -> dict[str, list[Path]]:
        """lower-case file name -> paths (recursive)."""
        out: dict[str, list[Path]] = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and p.suffix.lower() in SYMBOL_SUFFIXES:
                out.setdefault(p.name.lower(), []).append(p)
        return out

    def listing(self) -> tuple[tuple[str, int, int], ...]:
        """(path below the root, size, modification time in ns) of each file it reads:
        what a summary made with these symbols depends on."""
        return tuple(sorted((p.relative_to(self.root).as_posix(), st.st_size, st.st_mtime_ns)
                            for paths in self._files.values() for p in paths
                            for st in [p.stat()]))

    def pdb_for(self, module: str, traced: set[tuple[str, str]] | None = None) -> tuple[Path | None, str]:
        """(the PDB of ``module``, or None with the reason); ``traced``: the (PDB name,
        debug id) builds the trace names for it (:func:`traced_builds`)."""
        if traced:
            return self._traced_pdb(module, traced)
        stem = Path(module.replace("\\", "/")).stem.lower()
        candidates = self._files.get(f"{stem}.pdb", [])
        if not candidates:
            return None, f"no {stem}.pdb"
        image_name = Path(module.replace("\\", "/")).name.lower()
        images = self._files.get(image_name, [])
        wanted = {d for d in (_debug_id(p) for p in images) if d}
        if len(wanted) > 1:  # several builds of the module (a symbol store): which one ran?
            return None, f"{len(wanted)} {image_name} builds with different debug ids; cannot tell which was traced"
        if wanted:
            matching = [p for p in candidates if _debug_id(p) in wanted]
            if matching:
                return matching[0], ""
            return None, f"no {stem}.pdb with the debug id of {module}"
        if len(candidates) == 1:
            return candidates[0], ""
        return None, f"{len(candidates)} {stem}.pdb and no {module} to choose by debug id"

    def _traced_pdb(self, module: str, traced: set[tuple[str, str]]) -> tuple[Path | None, str]:
        if len(traced) > 1:
            ids = ", ".join(sorted(d for _n, d in traced))
            return None, f"the trace names {len(traced)} builds of {module} ({ids}); cannot tell which a caller ran"
        (pdb_name, debug_id), = traced
        name = Path(pdb_name.replace("\\", "/")).name.lower()
        wanted = normal_debug_id(debug_id)
        for path in self._files.get(name, []):
            if _debug_id(path) == wanted:
                return path, ""
        return None, f"no {name} with the debug id the trace names for {module} ({debug_id})"

    def _symcache(self, module: str, traced: Builds | None = None) -> tuple[Any, str]:
        key = (module.lower(), frozenset(traced or ()))  # a module's builds each have their PDB
        if key not in self._caches:
            pdb, why = self.pdb_for(module, set(traced) if traced else None)
            cache = None
            if pdb is not None:
                try:
                    cache = next(_archive(pdb).iter_objects()).make_symcache()
                except Exception as exc:  # noqa: BLE001 - a broken PDB is counted, not fatal
                    why = f"{pdb.name} unreadable ({type(exc).__name__})"
            self._caches[key] = (cache, why)
        return self._caches[key]

    def resolve(self, caller: str, traced: Builds | None = None) -> tuple[str | None, str]:
        """``module!function+0xoff`` for a ``module+0xoff`` caller, or (None, why);
        ``traced``: the builds the trace names for the image the caller ran in
        (:meth:`ImageBuilds.of_calls`)."""
        m = _CALLER.match(caller)
        if not m:
            return None, "not module+offset"
        module, offset = m.group("module"), int(m.group("offset"), 16)
        cache, why = self._symcache(module, traced)
        if cache is None:
            return None, why
        hits = cache.lookup(offset)
        if not hits:
            return None, f"offset in no function of {module}"
        outer = hits[-1]  # the outermost frame: the function itself, not an inlinee
        name = outer.symbol.split("(", 1)[0] if outer.symbol else "?"
        stem = Path(module.replace("\\", "/")).stem
        return f"{stem}!{name}+0x{offset - int(outer.sym_addr):x}", ""


#: The (PDB name, debug id) builds the trace names for one image.
Builds = frozenset[tuple[str, str]]
_NEVER = 1 << 62


@dataclass
class _Image:
    """One image instance: a module loaded at ``base`` (in process ``pid`` for a
    user-space base) from seq ``start`` to ``end``, and the builds named for it."""

    base: int
    pid: int | None
    start: int
    end: int = _NEVER
    builds: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class ImageBuilds:
    """The builds the trace's ``ImageDebugId`` rows name, per image instance (a load, or
    an end rundown of a module not loaded in the trace): two loads of one module can be
    two builds, and so can the modules one base holds one after the other."""

    images: dict[str, list[_Image]] = field(default_factory=dict)  # module file name (lower) ->

    def by_module(self) -> dict[str, set[tuple[str, str]]]:
        """Module file name (lower case) -> every build named for any of its images."""
        out: dict[str, set[tuple[str, str]]] = {}
        for module, images in self.images.items():
            for image in images:
                if image.builds:
                    out.setdefault(module, set()).update(image.builds)
        return out

    def several(self, module: str) -> bool:
        """Whether the images of ``module`` are named as different builds."""
        return len({frozenset(i.builds) for i in self.images.get(module.lower(), ()) if i.builds}) > 1

    def of_calls(self, module: str, seqs: np.ndarray, bases: np.ndarray | None = None) -> list[Builds]:
        """The builds of the image of ``module`` loaded at each call (seq; ``bases``: the
        image's base where the call's return address gives it, else 0): those named for
        the images of that module loaded then; where none is, every build named for the
        module (so several of them leave the caller unresolved)."""
        images = self.images.get(module.lower(), [])
        every: Builds = frozenset(self.by_module().get(module.lower(), ()))
        out: list[Builds] = []
        for k, seq in enumerate(np.asarray(seqs).tolist()):
            base = int(bases[k]) if bases is not None else 0
            alive = [i for i in images if i.start < seq < i.end and (not base or i.base == base)]
            named = frozenset().union(*(i.builds for i in alive))
            out.append(named or every)
        return out


def traced_builds(images: pa.Table) -> ImageBuilds:
    """The builds the trace's ``ImageDebugId`` rows name, per image instance: each row
    belongs to the load (or end rundown) at its base (and process, for a user-space base)
    nearest to it in the trace, the later one of two as near (a merge logs the build next
    to the load it describes; an unload at the base describes the module before). An end
    rundown is the image a load before it started, or one loaded since the trace start
    (or the last unload at its base), as :mod:`~traceanalyzer.model.callers` counts it."""
    out = ImageBuilds()
    if images.num_rows == 0 or "base" not in images.column_names:
        return out
    n = images.num_rows
    events = images.column("event").cast(pa.string()).to_pylist()
    ids = images.column("debug_id").to_pylist() if "debug_id" in images.column_names else [None] * n
    names = images.column("image").cast(pa.string()).to_pylist() if "image" in images.column_names else [None] * n
    bases = images.column("base").to_pylist()
    pids = images.column("pid").to_pylist() if "pid" in images.column_names else [None] * n
    seqs = images.column("seq").to_pylist() if "seq" in images.column_names else list(range(n))
    loaded: dict[tuple[int, int | None], _Image] = {}  # base -> the image loaded there now
    unloaded: dict[tuple[int, int | None], int] = {}  # base -> seq of its last unload
    anchors: dict[tuple[int, int | None], list[tuple[int, _Image]]] = {}  # loads and end rundowns
    for row in sorted(range(n), key=seqs.__getitem__):
        event, name, base, pid, seq = events[row], names[row], bases[row], pids[row], seqs[row]
        if base is None or event == "ImageDebugId":
            continue
        key = (base, None if base >= USER_SPACE_LIMIT else pid)
        image = loaded.get(key)
        if event == "ImageUnload":
            if image is not None:
                image.end = seq
                del loaded[key]
            unloaded[key] = seq
            continue
        if not name:
            continue
        if event != "ImageRundownEnd" or image is None:  # a load, or a module nothing loaded
            image = _Image(base, key[1], seq if event != "ImageRundownEnd" else unloaded.get(key, -1))
            loaded[key] = image
            out.images.setdefault(_file_name(name), []).append(image)
        anchors.setdefault(key, []).append((seq, image))
    for event, name, base, pid, seq, debug_id in zip(events, names, bases, pids, seqs, ids):
        if event != "ImageDebugId" or base is None or not debug_id or not name:
            continue
        near = anchors.get((base, None if base >= USER_SPACE_LIMIT else pid))
        if near:
            image = min(near, key=lambda item: (abs(item[0] - seq), -item[0]))[1]
            # one build however its records write it (case, braces, dashes, age 0, a path)
            image.builds.add((_file_name(name), normal_debug_id(debug_id) or debug_id))
    return out


def _file_name(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1].lower()


def symbolize_calls(calls: pa.Table, symbols: SymbolDir, stats: Stats,
                    builds: ImageBuilds | None = None) -> pa.Table:
    """``calls`` with each ``module+offset`` caller replaced by ``module!function+offset``
    where ``symbols`` resolves it, with the PDB of the build ``builds``
    (:func:`traced_builds`) names for the image the call ran in; the others are counted
    in ``stats``."""
    if "caller" not in calls.column_names or calls.num_rows == 0:
        return calls
    builds = builds or ImageBuilds()
    named = builds.by_module()
    col = calls.column("caller").cast(pa.string())
    uniques = [u for u in pc.unique(col).to_pylist() if u]
    mapping: dict[str, str] = {}
    apart: list[tuple[np.ndarray, str]] = []  # (rows, text): callers of a module loaded as several builds
    for u in uniques:
        m = _CALLER.match(u)
        module = m.group("module").lower() if m else ""
        if not builds.several(module):
            text, why = symbols.resolve(u, frozenset(named.get(module, ())))
            if text is not None:
                mapping[u] = text
            else:
                n = int(pc.sum(pc.equal(col, u)).as_py() or 0)
                stats.add("unsymbolized_callers", n, "info", detail=why)
            continue
        rows = np.flatnonzero(pc.fill_null(pc.equal(col, u), False).to_numpy(zero_copy_only=False))
        each = builds.of_calls(module, _column(calls, "seq", rows), _bases(calls, rows, int(m.group("offset"), 16)))
        for traced in sorted(set(each), key=sorted):
            chosen = rows[np.array([b == traced for b in each])]
            text, why = symbols.resolve(u, traced)
            if text is not None:
                apart.append((chosen, text))
            else:
                stats.add("unsymbolized_callers", len(chosen), "info", detail=why)
    if not mapping and not apart:
        return calls
    out = col
    if mapping:
        keys = pa.array(list(mapping), pa.string())
        values = pa.array(list(mapping.values()), pa.string())
        idx = pc.index_in(col, value_set=keys)
        out = pc.if_else(pc.is_valid(idx), pc.take(values, pc.fill_null(idx, 0)), col)
    if apart:
        texts = out.to_pylist()
        for chosen, text in apart:
            for row in chosen.tolist():
                texts[row] = text
        out = pa.array(texts, pa.string())
    return calls.set_column(calls.column_names.index("caller"), "caller", out)


def _column(calls: pa.Table, name: str, rows: np.ndarray) -> np.ndarray:
    """``rows`` of an integer column (``seq``: the row numbers when it is absent)."""
    if name not in calls.column_names:
        return rows.astype(np.int64)
    return np.asarray(calls.column(name).take(pa.array(rows)).to_numpy(zero_copy_only=False))


def _bases(calls: pa.Table, rows: np.ndarray, offset: int) -> np.ndarray | None:
    """The image base of each of ``rows`` (return address - the caller's offset), 0
    where the call has no return address; None without the column."""
    if "return_address" not in calls.column_names:
        return None
    ra = calls.column("return_address").take(pa.array(rows)).cast(pa.uint64()).to_pylist()
    return np.array([0 if a is None or a < offset else a - offset for a in ra], dtype=np.uint64)
