"""Errors raised by the library. The CLI turns them into exit code 2 and one line."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from traceanalyzer.escape import path_text


class TraceError(Exception):
    """Base class: something about a trace (or its use) is wrong.

    ``path`` names the file when there is one; ``str(err)`` is one line that a user
    can act on and starts with the file name. File names are kept as text every output
    can hold (:func:`~traceanalyzer.escape.path_text`: a name's bytes that are not UTF-8
    as ``\\xNN``), in ``path`` and in the message (which may name other files).
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = path_text(path) if path is not None else None
        self.message = path_text(message)
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)


class TraceFormatError(TraceError):
    """The file is not in the format its reader expects (or is corrupt in strict mode)."""


class TraceEmptyError(TraceFormatError):
    """The file holds no events at all."""


class UnknownFormatError(TraceError):
    """No reader recognises the file."""


class TraceFileChangedError(TraceError):
    """A file a trace was loaded from changed or vanished before the trace was done
    reading it (the deferred CSwitch rows of ``load``, read again on first use)."""


class MissingEventError(TraceError, KeyError):
    """An analysis needs an event the trace does not contain.

    The message names the closest event names that do exist.
    """

    def __init__(self, wanted: str, available: list[str] | set[str], path: str | None = None):
        close = difflib.get_close_matches(wanted, sorted(available), n=3, cutoff=0.3)
        hint = f"; closest present: {', '.join(close)}" if close else ""
        super().__init__(f"the trace has no {wanted!r} events{hint}", path)

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return Exception.__str__(self)


_FILE_ATTR = "traceanalyzer_file"


def tag_file(exc: BaseException, path: str | Path) -> None:
    """Remember on an unexpected exception which file the library was working on (the
    innermost tag wins), so that the CLI's one-line internal error can name it."""
    if getattr(exc, _FILE_ATTR, None) is None:
        try:
            setattr(exc, _FILE_ATTR, path_text(path))
        except (AttributeError, TypeError):  # an exception type without a __dict__
            pass


def file_of(exc: Any) -> str | None:
    """The file :func:`tag_file` recorded on ``exc`` (None when untagged)."""
    return getattr(exc, _FILE_ATTR, None)
