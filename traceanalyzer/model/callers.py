"""``caller`` from ``return_address``: the call site as ``module+0xoffset``.

Instrumentation that logs the raw return address (``capture/mdltrace.h`` logs
``_ReturnAddress()``) leaves ``caller`` empty; the modules come from the trace's
ImageLoad events (the kernel rundown lists every loaded driver with its base and
size). A return address in kernel space is looked up among the kernel-space images
loaded at that moment (load / rundown before the call, no unload in between). An image
known only from the rundown at the trace end (``ImageRundownEnd``, DCEnd: a
circular-buffer recording often has no other) counts as loaded from the trace start, or
from the last unload at its base. One
that matches no image keeps its raw value as ``0x...`` and is counted in
``unresolved_return_addresses``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.model.schema import USER_SPACE_LIMIT
from traceanalyzer.model.stats import Stats


def _u64(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    col = table.column(name)
    valid = ~np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(pc.fill_null(col.cast(pa.uint64()), 0).to_numpy(zero_copy_only=False), dtype=np.uint64)
    return values, valid


def _module_name(path: str | None) -> str:
    text = (path or "").replace("/", "\\")
    return text.rsplit("\\", 1)[-1] or "?"


def _kernel_images(images: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(base, end, load_seq, unload_seq) of kernel-space images sorted by base, and names."""
    if images.num_rows == 0 or "base" not in images.column_names:
        empty = np.zeros(0, np.uint64)
        return empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64), []
    events = images.column("event").cast(pa.string()).to_pylist()
    base, _ = _u64(images, "base")
    size, _ = _u64(images, "image_size") if "image_size" in images.column_names else (np.zeros_like(base), None)
    seq = images.column("seq").to_numpy()
    names = images.column("image").cast(pa.string()).to_pylist() if "image" in images.column_names else [None] * len(base)
    loads: dict[int, list] = {}  # base -> [end, load_seq, unload_seq, name]; last load wins
    rows = []
    for i, event in enumerate(events):
        b = int(base[i])
        if b < USER_SPACE_LIMIT or size[i] == 0:
            continue
        if event == "ImageLoad":
            entry = [b + int(size[i]), int(seq[i]), np.iinfo(np.int64).max, _module_name(names[i])]
            loads[b] = entry
            rows.append((b, entry))
        elif event == "ImageUnload" and b in loads:
            loads[b][2] = int(seq[i])
        elif event == "ImageRundownEnd":
            # loaded when the trace ended; describes only a base nothing loaded or that
            # was unloaded since: loaded from the trace start (or that unload) on
            held = loads.get(b)
            if held is not None and held[2] == np.iinfo(np.int64).max:
                continue
            since = -1 if held is None else held[2]
            entry = [b + int(size[i]), since, np.iinfo(np.int64).max, _module_name(names[i])]
            loads[b] = entry
            rows.append((b, entry))
    rows.sort(key=lambda r: (r[0], r[1][1]))
    return (np.array([r[0] for r in rows], np.uint64), np.array([r[1][0] for r in rows], np.uint64),
            np.array([r[1][1] for r in rows], np.int64), np.array([r[1][2] for r in rows], np.int64),
            [r[1][3] for r in rows])


def _image_at(base: np.ndarray, end: np.ndarray, load_seq: np.ndarray, unload_seq: np.ndarray,
              addr: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """For each call (``addr``, ``seq``), the index of the image (arrays of
    :func:`_kernel_images`, sorted by base, then load) that held ``addr`` when the call ran
    (``base <= addr < end``, ``load_seq < seq < unload_seq``), or -1. A base can be loaded
    several times (a module reloaded, another module at a freed base): at each base the
    last load before the call is the one that can hold it; where it does not, lower
    bases are tried while an image there reaches ``addr``."""
    out = np.full(len(addr), -1, np.int64)
    if not len(base) or not len(addr):
        return out
    bases, group = np.unique(base, return_inverse=True)
    reach = np.maximum.accumulate(np.maximum.reduceat(end, np.flatnonzero(np.r_[True, np.diff(group) > 0])))
    span = int(max(int(load_seq.max()), int(seq.max()))) + 2
    row_key = group.astype(np.int64) * span + (load_seq + 1)  # sorted: by base, then load
    g = np.searchsorted(bases, addr, side="right") - 1
    todo = np.flatnonzero(g >= 0)
    while todo.size:
        todo = todo[reach[g[todo]] > addr[todo]]  # an image at this base or below reaches addr
        r = np.searchsorted(row_key, g[todo] * span + seq[todo], side="right") - 1
        ok = (r >= 0) & (group[np.maximum(r, 0)] == g[todo])
        r = np.maximum(r, 0)
        ok &= (addr[todo] < end[r]) & (seq[todo] < unload_seq[r])
        out[todo[ok]] = r[ok]
        todo = todo[~ok]
        g[todo] -= 1
        todo = todo[g[todo] >= 0]
    return out


def resolve_callers(calls: pa.Table, images: pa.Table, stats: Stats) -> pa.Table:
    """``calls`` with ``caller`` filled from ``return_address`` where it was empty."""
    if "return_address" not in calls.column_names or calls.num_rows == 0:
        return calls
    ra, ra_ok = _u64(calls, "return_address")
    has_caller = "caller" in calls.column_names
    need = ra_ok & (np.asarray(pc.is_null(calls.column("caller")).to_numpy(zero_copy_only=False), bool)
                    if has_caller else True)
    rows = np.flatnonzero(need)
    if rows.size == 0:
        return calls
    base, end, load_seq, unload_seq, names = _kernel_images(images)
    addr = ra[rows]
    seq = calls.column("seq").to_numpy()[rows]
    idx = _image_at(base, end, load_seq, unload_seq, addr, seq)
    hit = idx >= 0
    text = [f"{names[int(i)]}+0x{int(a - base[int(i)]):x}" if h else f"0x{int(a):x}"
            for i, a, h in zip(idx, addr, hit)]
    missed = int(np.count_nonzero(~hit))
    if missed:
        stats.add("unresolved_return_addresses", missed, "warning",
                  detail="return address in no module loaded at the call (ImageLoad missing?)")
    column = pa.array(text, pa.string())
    if rows.size != calls.num_rows:  # spread over all rows; the others keep their caller
        column = pc.take(column, pa.array(np.maximum(np.cumsum(need) - 1, 0)))
        old = calls.column("caller").cast(pa.string()) if has_caller else pa.nulls(calls.num_rows, pa.string())
        column = pc.if_else(pa.array(need), column, old)
    if has_caller:
        return calls.set_column(calls.column_names.index("caller"), "caller", column)
    return calls.append_column("caller", column)
