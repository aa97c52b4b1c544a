"""Reader for ``xperf -i trace.etl -o trace.txt -a dumper`` text.

Layout (see docs/text_formats.md)::

    BeginHeader
                    CSwitch,  TimeStamp, New Process Name ( PID),    New TID, ...
    MdlTrace/IoAllocateMdl/win:Info,  TimeStamp, Process Name ( PID), ThreadID, CPU, ..., mdl, va, size
    EndHeader
    OS Version: 10.0.19045, Trace Size: 1024KB, Events Lost: 0, Buffers lost: 0, Trace Start: 133..., ...
    FirstReliableEventTimeStamp,          0
                    CSwitch,       1600,  app.exe (1234),  5678, ...

Columns are mapped by the header's names for each event type (an event type may have
several header lines, one per version: a row takes the one with its field count), never
by position. The body is read in blocks: a compiled scan (:mod:`.xperf_scan`) finds the
lines, commas and event type of each line, and each event type's mapped fields are
converted as whole columns. Event types with quoted lines (and blocks that are not plain
UTF-8) take the Arrow text path: lines split with pyarrow.compute, lines holding double
quotes by a per-line Python splitter. Both give the same cells (docs/text_formats.md).
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.errors import TraceEmptyError, TraceFormatError
from traceanalyzer.model.schema import COLUMNS
from traceanalyzer.readers.base import ReadOptions, ReadResult
from traceanalyzer.readers.registry import register_reader
from traceanalyzer.readers.convert import Problems, clean_strings, parse_scaled_decimal, to_canonical
from traceanalyzer.readers.field_map import FieldMap, field_map_from_options
from traceanalyzer.readers.xperf_scan import ERROR_LINE, LineScan, SpanCells, scan_block
from traceanalyzer.readers.text_common import (
    Undecodable,
    assemble_keyed,
    decode_bytes,
    decode_text,
    TAIL_BYTES,
    find_column,
    line_left_open,
    normalize_header,
    note_line_left_open,
    parse_name_pid,
    split_fields,
)

#: xperf kernel short names -> (canonical event, family of column rules).
KERNEL_EVENTS: dict[str, tuple[str, str]] = {
    "P-Start": ("ProcessStart", "process"),
    "P-End": ("ProcessEnd", "process"),
    "P-DCStart": ("ProcessRundown", "process"),
    "P-DCEnd": ("ProcessRundownEnd", "process"),
    "T-Start": ("ThreadStart", "thread"),
    "T-End": ("ThreadEnd", "thread"),
    "T-DCStart": ("ThreadRundown", "thread"),
    "T-DCEnd": ("ThreadRundownEnd", "thread"),
    "I-Start": ("ImageLoad", "image"),
    "I-DCStart": ("ImageLoad", "image"),
    "I-End": ("ImageUnload", "image"),
    "I-DCEnd": ("ImageRundownEnd", "image"),
    "CSwitch": ("CSwitch", "cswitch"),
}

#: Header names (normalized: lower case, no blanks) for each canonical column.
_PROCESS_PID = ("processname(pid)", "process(pid)")
_TID = ("threadid", "tid")
_CPU = ("cpu",)
_NEW_PROCESS = ("newprocessname(pid)", "newprocess(pid)")
_OLD_PROCESS = ("oldprocessname(pid)", "oldprocess(pid)")
_PLAIN_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "process": {"tid": _TID, "cpu": _CPU, "parent_pid": ("parentpid",)},
    "thread": {"tid": _TID, "cpu": _CPU},
    "image": {
        "tid": _TID,
        "cpu": _CPU,
        "base": ("baseaddr", "imagebase", "baseaddress"),
        "image_size": ("imagesize",),
        "image": ("filename", "imagename", "ntfilename"),
    },
    "cswitch": {
        "cpu": _CPU,
        "new_tid": ("newtid", "newthreadid"),
        "old_tid": ("oldtid", "oldthreadid"),
    },
    "generic": {"tid": _TID, "cpu": _CPU},
}
_IMAGE_END = ("endaddr", "imageend", "endaddress")
#: Header columns every generic (manifest / TraceLogging) event has; not payload.
_GENERIC_STANDARD = frozenset(("timestamp", "processname(pid)", "threadid", "cpu"))

#: Lines that carry trace facts rather than events.
_META_ROWS = {
    "FirstReliableEventTimeStamp": "first_reliable_event_time_ns",
    "FirstReliableCSwitchEventTimeStamp": "first_reliable_cswitch_time_ns",
}
_CHUNK_BYTES = 16 << 20
_FILETIME_EPOCH = _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)


@dataclass
class _Header:
    """One header line: event type name and its column names (position 0 = name)."""

    columns: list[str]
    keys: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = [normalize_header(c) for c in self.columns]

    def find(self, aliases: tuple[str, ...]) -> int | None:
        return find_column(self.keys, aliases)


@dataclass
class _State:
    """What one read accumulates."""

    path: Path
    report: Problems
    field_map: FieldMap
    headers: dict[str, list[_Header]] = field(default_factory=dict)
    parts: list[dict[str, pa.Array]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: fields each (event type, id of its header) read last time: read them in one pass
    fields_used: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    #: bytes that are not UTF-8 (UTF-16), replaced: reported once at the end
    undecodable: Undecodable = field(default_factory=Undecodable)


class XperfTextReader:
    """The ``xperf`` reader: xperf ``-a dumper`` text -> canonical table."""

    name = "xperf"
    extensions = (".txt", ".dump", ".xperf")

    def sniff(self, head: bytes, path: Path) -> bool:
        """True when the text starts with ``BeginHeader`` (after a BOM / blank lines)."""
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            head = decode_bytes(head[: len(head) // 2 * 2])[0].encode("utf-8")
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        return text.startswith(b"BeginHeader")

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        """Read the whole file; see the module docstring. Columns: canonical names.

        Kernel events map to ProcessStart/End/Rundown, ThreadStart/End/Rundown,
        ImageLoad/Unload and CSwitch; ``MdlTrace/<Call>/...`` (or events named by the
        field map) to calls with their payload columns; other event types are kept
        with their name plus time/pid/tid/cpu (the Trace counts them as ``unknown_events``;
        the reader does not, so they are not counted twice).
        """
        path = Path(path)
        state = _State(path, Problems(path, options.strict), field_map_from_options(options.field_map, options.extra))
        state.metadata["format"] = "xperf"
        try:
            fh: BinaryIO = open(path, "rb")
            if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 text: transcode once
                fh.close()
                decoded = decode_text(path.read_bytes())
                state.undecodable.add(decoded)
                fh = io.BytesIO(decoded.text.encode("utf-8"))
            else:
                fh.seek(0)
        except OSError as exc:
            raise TraceFormatError(f"cannot open: {exc.strerror}", path) from None
        with fh:
            line_no = _read_header(fh, state)
            total = max(path.stat().st_size, 1)
            first_line = line_no + 1
            tail = b""
            for block, length, scan, pos in _scanned_blocks(fh):
                first_line += _parse_block(block, length, first_line, state, scan)
                tail = block[max(0, length - TAIL_BYTES) : length]
                if options.progress is not None:
                    options.progress(pos, total)
        if line_left_open(tail):  # the last block is the text after the last line break
            note_line_left_open(state.report, first_line)
        state.undecodable.report(state.report)
        state.report.raise_if_strict()
        table, line = assemble_keyed(state.parts, "_line")  # rows by event type; file order as a key
        if table.num_rows == 0:
            if state.report.stats.total("bad_rows") or state.report.stats.total("decode_errors"):
                raise TraceFormatError("no readable event rows (every row was malformed)", path)
            raise TraceEmptyError("no event rows after the header", path)
        state.metadata["header_event_types"] = len(state.headers)
        return ReadResult(table, state.metadata, state.report.stats, order_key=line)


# --- header ------------------------------------------------------------------------------


def _read_header(fh: BinaryIO, state: _State) -> int:
    """Parse BeginHeader..EndHeader and the info line; returns the last line number read."""
    line_no = 0
    seen_begin = False
    while True:
        raw = fh.readline()
        if not raw:
            if line_no == 0:
                raise TraceEmptyError("file is empty (0 bytes)", state.path)
            where = "no EndHeader line" if seen_begin else "no BeginHeader line"
            raise TraceFormatError(f"not xperf dumper text: {where}", state.path)
        line_no += 1
        decoded = decode_text(raw)
        state.undecodable.add(decoded, line_no)
        text = decoded.text.strip()
        if not seen_begin:
            if not text:
                continue
            if text.lstrip("\ufeff") != "BeginHeader":
                raise TraceFormatError(
                    f"line {line_no}: not xperf dumper text (expected 'BeginHeader', got {text[:40]!r})",
                    state.path,
                )
            seen_begin = True
            continue
        if text == "EndHeader":
            break
        if not text:
            continue
        fields, _ = split_fields(text)
        if len(fields) < 2:
            state.report.count("bad_rows", 1, detail="malformed header line")
            state.report.problem(line_no, f"malformed header line {text[:60]!r}")
            continue
        state.headers.setdefault(fields[0], []).append(_Header(fields))
    # info lines between EndHeader and the first event row
    while True:
        pos = fh.tell()
        raw = fh.readline()
        if not raw:
            return line_no
        decoded = decode_text(raw)
        text = decoded.text
        if text.strip() == "":
            line_no += 1
            continue
        if text.lstrip().startswith("OS Version"):
            line_no += 1
            state.undecodable.add(decoded, line_no)
            _parse_info_line(text.strip(), state, line_no)
            continue
        fh.seek(pos)
        return line_no


_INFO_KEYS = {
    "os version": ("os_version", str),
    "trace size": ("trace_size", str),
    "events lost": ("lost_events", int),
    "buffers lost": ("lost_buffers", int),
    "trace start": ("trace_start_filetime", int),
    "trace length": ("trace_length", str),
    "pointersize": ("pointer_size", int),
    "trace name": ("trace_name", str),
}


def _parse_info_line(text: str, state: _State, line_no: int) -> None:
    """``OS Version: ..., Events Lost: N, Buffers lost: N, Trace Start: <FILETIME>, ...``.

    A loss counter that is negative or beyond 2**63-1 is an error (TraceFormatError naming
    the line): counting it as a bad value would report the trace as complete."""
    for item in text.split(","):
        key, sep, value = item.partition(":")
        if not sep:
            continue
        spec = _INFO_KEYS.get(key.strip().lower())
        if spec is None:
            continue
        name, conv = spec
        value = value.strip()
        try:
            state.metadata[name] = conv(value)
        except ValueError:
            state.report.count("bad_values", 1, detail=f"info line {key.strip()}")
    for name, label in (("lost_events", "Events Lost"), ("lost_buffers", "Buffers lost")):
        if name in state.metadata:
            value = state.metadata[name]
            if not 0 <= value < (1 << 63):
                raise TraceFormatError(f"line {line_no}: {label} {value} is not a loss count "
                                       "(0 to 2**63-1)", state.path)
            state.report.stats.add(name, value, "warning" if value else "info", source=str(state.path))
    ft = state.metadata.get("trace_start_filetime")
    if isinstance(ft, int) and ft > 0:
        try:
            start = _FILETIME_EPOCH + _dt.timedelta(microseconds=ft // 10)
            state.metadata["start_time_utc"] = start.isoformat()
        except OverflowError:
            state.report.count("bad_values", 1, detail="info line Trace Start")


# --- body -------------------------------------------------------------------------------


def _blocks(fh: BinaryIO):
    """Yield (bytes, length of their part that ends at a line end) blocks.

    Blocks end at the last newline before each multiple of _CHUNK_BYTES from the start of
    the body (the cuts the text path always made, so counters come in the same order).
    The bytes after that newline are read again with the next block (a seek back, no
    copy); the file's last bytes come as a block of their own."""
    target = fh.tell()
    while True:
        target += _CHUNK_BYTES
        block = fh.read(max(target - fh.tell(), 0))
        if not block:
            return
        cut = block.rfind(b"\n")
        if fh.tell() < target:  # end of file: the lines, then what follows the last newline
            if 0 <= cut < len(block) - 1:
                yield block, cut + 1
                block = block[cut + 1 :]
            yield block, len(block)
            return
        if cut < 0:  # no line end yet: read on to the next cut
            fh.seek(-len(block), io.SEEK_CUR)
            continue
        fh.seek(cut + 1 - len(block), io.SEEK_CUR)
        yield block, cut + 1


def _scanned_blocks(fh: BinaryIO) -> Iterator[tuple[bytes, int, LineScan | None, int]]:
    """:func:`_blocks` with each block's compiled scan (None: not plain UTF-8) and the file
    position after it. The next block is read and scanned on a second thread while the
    caller converts this one: the read and the scan release the GIL, so on two cores the
    scan costs no wall time (at 10M events: 9 of 24 s)."""
    blocks = _blocks(fh)

    def next_block() -> tuple[bytes, int, LineScan | None, int] | None:
        item = next(blocks, None)
        if item is None:
            return None
        block, length = item
        scan = scan_block(np.frombuffer(block, dtype=np.uint8, count=length), 0) \
            if _scannable(block, length) else None
        return block, length, scan, fh.tell()

    with ThreadPoolExecutor(1, thread_name_prefix="traceanalyzer-xperf-scan") as pool:
        pending = pool.submit(next_block)
        while True:
            item = pending.result()
            if item is None:
                return
            pending = pool.submit(next_block)
            yield item


def _parse_block(block: bytes, length: int, first_line: int, state: _State,
                 scan: LineScan | None) -> int:
    """``block[:length]``: its compiled ``scan`` (lines numbered from 0; None when it is
    not plain UTF-8), else the text path.

    Event types are handled in the order the text path takes them (first appearance), a
    type with quoted lines, ``Stack`` and the meta rows by the text path, so counters and
    the first problem come out the same. Returns the number of newlines read (to number
    the next block's lines)."""
    if scan is None or scan.odd_lines:
        body = block[:length] if length < len(block) else block
        decoded = decode_text(body)
        state.undecodable.add(decoded, first_line)
        _parse_chunk(decoded.text, first_line, state)
        return body.count(b"\n")
    scan.numbers += first_line
    codes = scan.code
    errors = np.flatnonzero(codes == ERROR_LINE)
    if len(errors):
        state.report.count("decode_errors", len(errors), detail="xperf 'Error:' lines")
        first = scan.lines(errors[:1])[0].as_py()
        state.report.problem(int(scan.numbers[errors[0]]), "xperf reported an error: " + first[:80])
    order = np.argsort(codes, kind="stable")  # each event type's lines together, in file order
    bounds = np.searchsorted(codes[order], np.arange(len(scan.names) + 1))
    for k, name in enumerate(scan.names):
        rows = order[bounds[k] : bounds[k + 1]]
        if name in _META_ROWS or name == "Stack" or scan.quoted[rows].any():
            _parse_event_type(name, scan.lines(rows), scan.numbers[rows], state, True)
        else:
            _parse_rows(name, SpanCells(scan, rows), scan.numbers[rows], state)
    return scan.newlines


def _scannable(block: bytes, length: int) -> bool:
    """True when ``block[:length]`` is UTF-8 without a BOM (the text path strips one)."""
    if block.startswith(b"\xef\xbb\xbf"):
        return False
    if block.isascii():
        return True
    try:
        block[:length].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_chunk(text: str, first_line: int, state: _State) -> None:
    """Text the compiled scan does not take (undecodable bytes, a BOM): the general path."""
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    lines = pc.utf8_trim_whitespace(pa.array(raw_lines, pa.string()))
    numbers = np.arange(first_line, first_line + len(raw_lines), dtype=np.int64)
    _parse_lines(lines, numbers, state, '"' in text)


def _parse_lines(lines: pa.Array, numbers: np.ndarray, state: _State, may_quote: bool) -> None:
    """Trimmed lines with their numbers: drop empty ones, count errors, parse by event type."""
    keep = pc.not_equal(lines, "").to_numpy(zero_copy_only=False)
    lines = lines.filter(pa.array(keep))
    numbers = numbers[keep]
    if len(lines) == 0:
        return
    is_error = pc.starts_with(lines, "Error").to_numpy(zero_copy_only=False)
    if is_error.any():
        state.report.count("decode_errors", int(is_error.sum()), detail="xperf 'Error:' lines")
        state.report.problem(int(numbers[is_error][0]), "xperf reported an error: " + lines.filter(pa.array(is_error))[0].as_py()[:80])
        lines = lines.filter(pa.array(~is_error))
        numbers = numbers[~is_error]
    names = pc.utf8_trim_whitespace(pc.list_element(pc.split_pattern(lines, ",", max_splits=1), 0))
    encoded = pc.dictionary_encode(names)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    # one take puts each event type's lines together (file order kept within a type)
    order = np.argsort(codes, kind="stable")
    lines = lines.take(pa.array(order))
    numbers = numbers[order]
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
    for code, name in enumerate(encoded.dictionary.to_pylist()):
        lo, hi = int(bounds[code]), int(bounds[code + 1])
        _parse_event_type(name, lines.slice(lo, hi - lo), numbers[lo:hi], state, may_quote)


def _split_rows(
    lines: pa.Array, numbers: np.ndarray, state: _State, may_quote: bool
) -> tuple[pa.ListArray, np.ndarray]:
    """Lines -> list<string> fields; quoted lines go through the per-line splitter."""
    if not may_quote:
        return pc.split_pattern(lines, ","), numbers
    quoted = pc.match_substring(lines, '"').to_numpy(zero_copy_only=False)
    if not quoted.any():
        return pc.split_pattern(lines, ","), numbers
    plain = pc.split_pattern(lines.filter(pa.array(~quoted)), ",")
    rows: list[list[str]] = []
    kept: list[int] = []
    for number, line in zip(numbers[quoted], lines.filter(pa.array(quoted)).to_pylist()):
        fields, balanced = split_fields(line)
        if not balanced:
            state.report.count("bad_rows", 1, detail="unbalanced quotes")
            state.report.problem(int(number), "unbalanced double quotes")
            continue
        rows.append(fields)
        kept.append(int(number))
    slow = pa.array(rows, pa.list_(pa.string()))
    merged = pa.concat_arrays([plain.cast(pa.list_(pa.string())), slow])
    return merged, np.concatenate([numbers[~quoted], np.array(kept, dtype=np.int64)])


def _parse_event_type(
    name: str, lines: pa.Array, numbers: np.ndarray, state: _State, may_quote: bool
) -> None:
    if name in _META_ROWS:
        fields = pc.split_pattern(lines, ",")
        if pc.min(pc.list_value_length(fields)).as_py() >= 2:
            ns, _bad = parse_scaled_decimal(pc.list_element(fields, 1), ".", 3)
            if ns[0].is_valid:
                state.metadata[_META_ROWS[name]] = ns[0].as_py()
        return
    if name == "Stack":
        state.report.count("stack_rows", len(lines), "info", detail="xperf Stack rows (not events)")
        return
    rows, numbers = _split_rows(lines, numbers, state, may_quote)
    _parse_rows(name, _ListCells(rows), numbers, state)


def _parse_rows(name: str, rows: "Cells", numbers: np.ndarray, state: _State) -> None:
    """Rows of one event type (split into fields): each field count with its header."""
    if len(rows) == 0:
        return
    counts = rows.field_counts()
    headers = state.headers.get(name, [])
    single = bool((counts == counts[0]).all())
    for count in np.unique(counts):
        sel = np.arange(len(counts)) if single else np.flatnonzero(counts == count)
        sub = rows if single else rows.take(sel)
        header = _pick_header(headers, int(count))
        if header is None and headers:
            state.report.count("bad_rows", len(sel), detail=f"{name}: fewer fields than its header")
            state.report.problem(int(numbers[sel].min()), f"{name} row has {count} fields, its header needs more")
            continue
        if header is None:  # no header at all: name and time only
            header = _Header([name, "TimeStamp"])
            if count < 2:
                state.report.count("bad_rows", len(sel), detail=f"{name}: no fields")
                state.report.problem(int(numbers[sel].min()), f"{name!r} row has no TimeStamp field")
                continue
        elif count > len(header.columns):
            state.report.count("extra_columns", len(sel), "info", detail=name)
        if isinstance(sub, SpanCells):
            key = (name, id(header))
            sub.prefetch(state.fields_used.get(key, set()))
            _map_rows(name, header, sub, numbers[sel], state)
            state.fields_used[key] = sub.requested
        else:
            _map_rows(name, header, sub, numbers[sel], state)


class _ListCells:
    """Rows split by Arrow (``list<string>``): the general path's :data:`Cells`."""

    def __init__(self, rows: pa.ListArray) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def field_counts(self) -> np.ndarray:
        return pc.list_value_length(self.rows).to_numpy(zero_copy_only=False)

    def take(self, sel: np.ndarray) -> "_ListCells":
        return _ListCells(self.rows.take(pa.array(sel)))

    def filter(self, keep: np.ndarray) -> "_ListCells":
        return _ListCells(self.rows.filter(pa.array(keep)))

    def column(self, index: int) -> pa.Array:
        return pc.list_element(self.rows, index)


#: Rows of one event type, one field at a time: split by Arrow or by the compiled scan.
Cells = _ListCells | SpanCells


def _pick_header(headers: list[_Header], count: int) -> _Header | None:
    """The header line for a row of ``count`` fields: exact, else the longest shorter one."""
    best = None
    for header in headers:
        n = len(header.columns)
        if n == count:
            return header
        if n < count and (best is None or n > len(best.columns)):
            best = header
    return best


def _map_rows(name: str, header: _Header, rows: Cells, numbers: np.ndarray, state: _State) -> None:
    """Convert one (event type, header) group to canonical columns and store it."""

    def column(index: int) -> pa.Array:
        return rows.column(index)

    ts_index = header.find(("timestamp",))
    if ts_index is None:
        state.report.count("bad_rows", len(rows), detail=f"{name}: header without TimeStamp")
        state.report.problem(int(numbers.min()), f"{name}: header has no TimeStamp column")
        return
    time_ns, bad_time = parse_scaled_decimal(column(ts_index), ".", 3)
    keep = ~bad_time & pc.is_valid(time_ns).to_numpy(zero_copy_only=False)
    if not keep.all():
        state.report.count("bad_rows", int((~keep).sum()), detail=f"{name}: TimeStamp is not a number")
        state.report.problem(int(numbers[~keep].min()), f"{name}: TimeStamp is not a number")
        if not keep.any():
            return
        rows, time_ns, numbers = rows.filter(keep), time_ns.filter(pa.array(keep)), numbers[keep]

    # rows of unknown events are kept under their name; Trace counts them as unknown_events
    event, family, mapping_fields = _classify(name, state)
    out: dict[str, pa.Array] = {"_line": pa.array(numbers), "time_ns": time_ns}

    def flag(col: str, bad: np.ndarray, texts: pa.Array | None = None) -> None:
        state.report.flag(bad, numbers, f"{name}.{col}", texts, column=col)

    def put(col: str, arr: pa.Array, bad: np.ndarray, texts: pa.Array | None = None) -> None:
        flag(col, bad, texts)
        out[col] = arr

    rules = _PLAIN_COLUMNS.get(family, _PLAIN_COLUMNS["generic"])
    pid_index = header.find(_PROCESS_PID)
    if pid_index is not None and family != "cswitch":
        names, pids, bad = parse_name_pid(column(pid_index))
        put("pid", pids, bad)
        if family == "process":
            out["image"] = names
    for col, aliases in rules.items():
        idx = header.find(aliases)
        if idx is not None:
            res = to_canonical(column(idx), col)
            put(col, res.array, res.bad, column(idx))
    if family == "process":
        flags_idx = header.find(("flags",))
        if flags_idx is not None:  # process flags: 0x2 = WoW64 (32-bit process on 64-bit Windows)
            flags = to_canonical(column(flags_idx), "image_size")
            put("wow64", _wow64(flags.array), flags.bad)
    if family == "image" and "image_size" not in out and "base" in out:
        end_idx = header.find(_IMAGE_END)
        if end_idx is not None:
            end = to_canonical(column(end_idx), "base")
            flag("image_size", end.bad)
            out["image_size"] = _span(end.array, out["base"])
    if family == "cswitch":
        for col, aliases in (("new_pid", _NEW_PROCESS), ("old_pid", _OLD_PROCESS)):
            idx = header.find(aliases)
            if idx is not None:
                _names, pids, bad = parse_name_pid(column(idx))
                put(col, pids, bad)
    if mapping_fields is not None:
        for idx, (title, key) in enumerate(zip(header.columns, header.keys)):
            if idx == 0 or key in _GENERIC_STANDARD or key.startswith("etw:"):
                continue
            target = mapping_fields(title)
            if target is None:  # unmapped payload: kept as text, never under a canonical name
                out[title if title not in COLUMNS else f"field:{title}"] = clean_strings(column(idx))
                continue
            res = to_canonical(column(idx), target)
            put(target, res.array, res.bad, column(idx))
    out["event"] = pa.repeat(pa.scalar(event, pa.string()), len(numbers))
    state.parts.append(out)


def _wow64(flags: pa.Array) -> pa.Array:
    """1 where the process flags have the WoW64 bit (0x2), 0 where not, null where unknown."""
    bits = pc.bit_wise_and(flags, pa.scalar(2, pa.uint64()))
    return pc.cast(pc.not_equal(bits, 0), pa.int8())


def _span(end: pa.Array, base: pa.Array) -> pa.Array:
    """EndAddr - BaseAddr as uint64 (null where either is null or end < base)."""
    e = pc.fill_null(end, 0).to_numpy(zero_copy_only=False)
    b = pc.fill_null(base, 0).to_numpy(zero_copy_only=False)
    valid = pc.and_(pc.is_valid(end), pc.is_valid(base)).to_numpy(zero_copy_only=False) & (e >= b)
    return pa.array(np.where(valid, e - b, 0).astype(np.uint64), pa.uint64(), mask=~valid)


def _classify(name: str, state: _State) -> tuple[str, str, Callable[[str], str | None] | None]:
    """(canonical or kept event name, column family, payload field mapper or None)."""
    if name in KERNEL_EVENTS:
        event, family = KERNEL_EVENTS[name]
        return event, family, None
    provider = event_name = opcode = None
    parts = name.split("/")
    if len(parts) >= 3:
        provider, event_name, opcode = "/".join(parts[:-2]), parts[-2], parts[-1]
    elif len(parts) == 2:
        provider, event_name = parts
    if provider is not None:
        mapping = state.field_map.lookup(provider, event_name, opcode)
        if mapping is not None:
            return mapping.canonical, "generic", mapping.column
        kept = f"{provider}/{event_name}"
    else:
        kept = name
    return kept, "generic", None


register_reader(XperfTextReader())
