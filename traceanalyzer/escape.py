"""Escaping what comes from the traced machine before a person or a spreadsheet sees it.

Image names, callers, tags, file names and header bytes are chosen by whoever produced the
trace. Helpers used by every output of the tool meant for a person:

* terminal text: control characters (C0, DEL, C1: ESC sequences that move the cursor,
  change colours or set the window title) are written as ``\\xNN``, the Unicode
  bidirectional controls (:data:`BIDI_CONTROLS`: embeddings, overrides, isolates, the
  LRM/RLM/ALM marks), which make a name display in another order than it is (a
  right-to-left override shows ``exe.gpj`` for ``jpg.exe``), and the line and paragraph
  separators (:data:`LINE_SEPARATORS`), which break the line in editors and browsers
  (a name could forge a line of output), as ``\\u202e``; a byte of a file name that is
  not UTF-8 (:data:`SURROGATES`) as ``\\xNN``
  (:func:`terminal_safe`, :func:`terminal_text`, :class:`TerminalWriter`);
* HTML text (the report, Jupyter, the interactive timeline's hover text): the same
  visible escapes, so no control character or NUL reaches the page and a name cannot
  reorder the text around it (:func:`terminal_text`, then HTML escaping);
* CSV cells (written for spreadsheets): a text cell that a spreadsheet would run as a
  formula (leading ``=``, ``+``, ``-``, ``@``, tab or CR) gets a leading ``'``, the usual
  way, and bidirectional controls and line separators are written as ``\\u202e``, bytes
  of a file name that are not UTF-8 as ``\\xNN``; numbers stay numbers
  (:func:`csv_cell`, :func:`csv_safe_frame`);
* file names (:func:`path_text`): a name is turned into text once, where the tool keeps
  it as a string (the trace's paths and metadata, counters' sources, error messages,
  the gate's trace IDs), with its bytes that are not UTF-8 written as ``\\xNN``: such a
  name has no true string, and no encoder (UTF-8 files, JSON, XML, Arrow) takes the
  surrogate escapes Python gives it. The file itself is opened by its path.

JSON, SARIF, JUnit XML and Parquet are data formats: they carry the true strings (a
file name that is not UTF-8, as :func:`path_text` writes it).
"""

from __future__ import annotations

import io
import os
import re
from typing import Any, TextIO

import pandas as pd

from traceanalyzer.vocabulary import is_missing

#: Unicode bidirectional formatting characters: ALM (U+061C), LRM/RLM (U+200E/U+200F),
#: the embeddings and overrides LRE, RLE, PDF, LRO, RLO (U+202A-U+202E) and the isolates
#: LRI, RLI, FSI, PDI (U+2066-U+2069).
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: LINE SEPARATOR and PARAGRAPH SEPARATOR (U+2028, U+2029): line breaks to editors,
#: browsers and some terminals, as NEL (U+0085, a C1 control) is.
LINE_SEPARATORS = "\u2028\u2029"
#: Surrogate code points (a range for a regular expression class): never text. Python
#: decodes each byte of a file name that is not UTF-8 as U+DC80-U+DCFF ("surrogateescape");
#: no encoder writes them (UTF-8 output, JSON files, XML, Arrow strings fail on them).
SURROGATES = "\ud800-\udfff"
_UNSEEN = BIDI_CONTROLS + LINE_SEPARATORS + SURROGATES
_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f" + _UNSEEN + "]")
_CONTROL_BUT_NEWLINE = re.compile("[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f" + _UNSEEN + "]")
_CSV_ESCAPED = re.compile("[" + _UNSEEN + "]")
_SURROGATE = re.compile("[" + SURROGATES + "]")
#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _hex(m: re.Match[str]) -> str:
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def path_text(path: str | os.PathLike[str] | bytes) -> str:
    """A file name as text that every output can hold: ``os.fsdecode(path)`` with each
    byte that is not UTF-8 (a surrogate escape) written as ``\\xNN`` (``caf\\xe9.csv``
    for the Latin-1 name ``café.csv``); a UTF-8 name is returned as it is."""
    return _SURROGATE.sub(_hex, os.fsdecode(path))


def terminal_safe(value: Any) -> str:
    """``str(value)`` with every control character escaped (``'\\x1b'``, ``'\\u202e'``,
    ``'\\u2028'``, a file name's byte that is not UTF-8 as ``'\\xe9'``); None/NA -> ``'-'``."""
    if is_missing(value):
        return "-"
    return _CONTROL.sub(_hex, str(value))


def terminal_text(text: str) -> str:
    """Text for a terminal (or an HTML page): control characters, bidirectional controls,
    line separators and a file name's bytes that are not UTF-8 escaped, line breaks
    (``\\n``) kept."""
    return _CONTROL_BUT_NEWLINE.sub(_hex, text)


class TerminalWriter(io.TextIOBase):
    """A text stream that writes :func:`terminal_text` of everything to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, s: str) -> int:
        self._stream.write(terminal_text(s))
        return len(s)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    @property
    def buffer(self) -> Any:
        """The underlying binary stream (binary output is written as it is)."""
        return self._stream.buffer


def csv_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula,
    and its bidirectional controls and line separators written as ``\\u202e``, a file
    name's bytes that are not UTF-8 as ``\\xe9``; numbers (and text that is just a number,
    such as ``-8192``) are left as they are."""
    if not isinstance(value, str):
        return value
    value = _CSV_ESCAPED.sub(_hex, value)
    if value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells went through :func:`csv_cell` (numeric columns
    untouched), ready for ``to_csv``."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col])):
            continue
        out[col] = [csv_cell(v) for v in out[col]]
    return out
