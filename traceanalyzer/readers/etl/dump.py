"""Every provider event of an ETL file with its decoded TraceLogging fields (diagnostics).

Unlike the reader, which turns only mapped providers into rows, :func:`provider_events`
decodes every TraceLogging event it meets; meant for small files (``info``, tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from traceanalyzer.errors import TraceFormatError
from traceanalyzer.readers.etl import layout as L
from traceanalyzer.readers.etl.buffers import open_map, plausible_first_buffer, scan_buffers
from traceanalyzer.readers.etl.tracelogging import TlDecodeError, decode_payload, parse_provider_name, parse_schema
from traceanalyzer.readers.etl.walk import count_records, walk


@dataclass
class ProviderEvent:
    """One EVENT_HEADER record: provider, event name (TraceLogging) or id, fields, ids."""

    provider_guid: uuid.UUID
    provider: str | None
    event: str | None
    event_id: int
    fields: dict[str, Any] | None
    pid: int
    tid: int
    cpu: int
    raw_time: int


class _TB:
    origin, mult, freq = 0, 1, 1_000_000_000


def provider_events(path: str | Path) -> Iterator[ProviderEvent]:
    """The EVENT_HEADER events of ``path`` in file order (fields None when not TraceLogging
    or when the event does not decode). Raises TraceFormatError for a non-ETL file."""
    path = Path(path)
    mm, view = open_map(path)
    try:
        if not plausible_first_buffer(bytes(view[:L.BUFFER_HEADER_SIZE + 16])):
            raise TraceFormatError("not an ETL file", path)
        segs, dec = scan_buffers(path, view, int(view[:4].view("<u4")[0]), strict=False)
        for k, data in ((0, view), (1, dec)):
            sel = np.nonzero(np.asarray(segs.arena) == k)[0]
            if not len(sel):
                continue
            starts = np.asarray(segs.start, np.int64)[sel]
            ends = np.asarray(segs.end, np.int64)[sel]
            cpus = np.asarray(segs.cpu, np.int32)[sel]
            counts, bulk, bad = (np.zeros(len(sel), np.int64), np.zeros(len(sel), np.int64),
                                 np.zeros(len(sel), np.uint8))
            count_records(data, starts, ends, counts, bulk, bad, np.zeros(len(sel), np.int64))
            _, rec = walk(data, starts, ends, np.arange(len(sel), dtype=np.int32), cpus, counts, bulk, _TB())
            for i in np.nonzero(rec["kind"] == L.K_EVENT)[0].tolist():
                yield _event(data, rec, i, cpus)
    finally:
        del view
        try:
            mm.close()
        except BufferError:
            pass


def _event(data: np.ndarray, rec: dict[str, np.ndarray], i: int, cpus: np.ndarray) -> ProviderEvent:
    pos, size = int(rec["pos"][i]), int(rec["size"][i])
    a, b, c = int(rec["a"][i]), int(rec["b"][i]), int(rec["c"][i])
    guid = uuid.UUID(bytes_le=bytes(data[pos + 0x18:pos + 0x28]))
    provider = parse_provider_name(bytes(data[c >> 16:(c >> 16) + (c & 0xFFFF)])) if c else None
    name = fields = None
    if b and a >= 0:
        try:
            schema = parse_schema(bytes(data[b >> 16:(b >> 16) + (b & 0xFFFF)]))
            name = schema.name
            fields = decode_payload(schema, bytes(data[a:pos + size]), 8 if rec["htype"][i] == L.EVENT64 else 4)
        except TlDecodeError:  # a damaged event: name (if any) without fields
            fields = None
    return ProviderEvent(guid, provider, name, int.from_bytes(bytes(data[pos + 0x28:pos + 0x2A]), "little"),
                         fields, int(rec["pid"][i]), int(rec["tid"][i]), int(cpus[rec["seg"][i]]),
                         int(rec["ts"][i]))
