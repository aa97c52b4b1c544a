"""Writing files the way every writer of the tool must: a temporary file in the target
folder, then a rename. A reader never sees a torn file, a symlink at the target is
replaced (never written through), nothing but the temporary file is ever deleted, and the
file gets the mode a plain ``open(path, "w")`` would give it (0666 minus the umask, so
0644 typically: CI artifact uploaders can read it), not mkstemp's 0600."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from traceanalyzer.errors import TraceError


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it is renamed to
    ``path``, when it raises it is removed. Parent folders are created. A failure to
    create, set up or rename the file is a :class:`TraceError` naming ``path``; what the
    block raises passes unchanged."""
    p = Path(path)
    with _naming(p):  # stat may fail too (a name too long)
        is_dir = p.is_dir()
    if is_dir:  # found before the caller writes it all: the rename would fail
        raise TraceError("cannot write: Is a directory", p)
    make_folder(p.parent, p)
    with _naming(p):
        # the temporary name is the target's, cut so that it fits wherever the target
        # does (a file name may have 255 bytes; mkstemp adds a dot and 8 characters)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:64]}.", dir=p.parent)
        os.close(fd)
    try:
        with _naming(p):
            os.chmod(tmp, 0o666 & ~current_umask())
        yield Path(tmp)
        with _naming(p):
            os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_folder(folder: Path, named: Path | None = None) -> None:
    """Create ``folder`` and its parents. A file where one of them should be is a
    :class:`TraceError` naming ``named`` (default ``folder``) and that file, not the
    system's bare "File exists" / "Not a directory"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((a for a in (folder, *folder.parents) if a.exists() and not a.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker is not None else exc.strerror or str(exc)
        raise TraceError(f"cannot write: {why}", named or folder) from exc


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """An OSError of the file's own set-up or rename as a TraceError naming ``path`` (a
    full or read-only disk, a folder in the way: the user's to fix, not a bug)."""
    try:
        yield
    except OSError as exc:
        raise TraceError(f"cannot write: {exc.strerror or exc}", path) from exc


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def arrow_file(path: str | Path, mode: str = "rb") -> Any:
    """``path`` opened as a pyarrow file (``pyarrow.OSFile``), for pyarrow's readers and
    writers: given a ``str`` path, pyarrow encodes it as UTF-8, which fails on a name that
    is not UTF-8 (Python holds such bytes as surrogate escapes); the file system's own
    bytes (``os.fsencode``) open any name."""
    import pyarrow as pa

    return pa.OSFile(os.fsencode(path), mode=mode)


def current_umask() -> int:
    """The process umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
