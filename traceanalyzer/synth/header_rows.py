"""Scenario rows as ``capture/mdltrace.h`` logs them: return addresses, not caller names.

The header never logs a string: its call site is ``return_address`` (``_ReturnAddress()``)
and the analyzer names it ``module+0xoffset`` through the trace's ImageLoad events. A
scenario names callers as text (``mydriver.sys+0x1a2b``). :func:`header_rows` turns
each such caller into the return address it stands for, with the module loaded at a
kernel base by an ImageLoad row at the trace start (a driver in the kernel rundown),
unless the table already loads a module of that name. Read back and analysed, the trace
names the same callers. ``traceanalyzer synth --header-schema`` writes this.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceanalyzer.model.schema import COLUMNS, IMAGE_LOAD_EVENTS

#: Kernel base of the first synthesised module; later ones follow 16 MiB apart.
FIRST_MODULE_BASE = 0xFFFFF80010000000
MODULE_SPACING = 0x1000000
_CALLER = re.compile(r"^\s*([^+\s]+)\+0x([0-9a-fA-F]+)\s*$")


def _module_name(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def header_rows(table: pa.Table) -> pa.Table:
    """``table`` with parseable ``caller`` values moved to ``return_address`` (callers
    that are not ``module+0xoffset`` stay as they are) and an ImageLoad row per new module."""
    if "caller" not in table.column_names or table.num_rows == 0:
        return table
    callers = table.column("caller").cast(pa.string()).to_pylist()
    parsed = [(_CALLER.match(c) if c else None) for c in callers]
    if not any(parsed):
        return table
    loaded: dict[str, tuple[int, int]] = {}
    if "image" in table.column_names and "base" in table.column_names:
        events = table.column("event").cast(pa.string()).to_pylist()
        for ev, image, base in zip(events, table.column("image").to_pylist(), table.column("base").to_pylist()):
            if ev in IMAGE_LOAD_EVENTS and image and base:  # not ImageDebugId: its image is a PDB
                loaded.setdefault(_module_name(image).lower(), (int(base), 0))
    extent: dict[str, int] = {}
    for m in parsed:
        if m:
            extent[m.group(1)] = max(extent.get(m.group(1), 0), int(m.group(2), 16))
    new_modules = sorted(name for name in extent if name.lower() not in loaded)
    bases = {name.lower(): base for name, (base, _) in loaded.items()}
    for k, name in enumerate(new_modules):
        bases[name.lower()] = FIRST_MODULE_BASE + k * MODULE_SPACING
    ra_old = table.column("return_address").to_pylist() if "return_address" in table.column_names else [None] * len(parsed)
    ra = [bases[m.group(1).lower()] + int(m.group(2), 16) if m and old is None else old
          for m, old in zip(parsed, ra_old)]
    caller = [None if m and old is None else c for m, old, c in zip(parsed, ra_old, callers)]
    out = table
    for name, values in (("return_address", pa.array(ra, pa.uint64())), ("caller", pa.array(caller, pa.string()))):
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, values)
        else:
            out = out.append_column(name, values)
    if not new_modules:
        return out
    start = int(pc.min(table.column("time_ns")).as_py())
    loads = {c: [None] * len(new_modules) for c in out.column_names}
    loads["time_ns"] = [start] * len(new_modules)
    loads["event"] = ["ImageLoad"] * len(new_modules)
    for column, values in (("pid", [0] * len(new_modules)),
                           ("image", [f"\\SystemRoot\\System32\\drivers\\{n}" for n in new_modules]),
                           ("base", [bases[n.lower()] for n in new_modules]),
                           ("image_size", [(extent[n] + 0x1000) & ~0xFFF for n in new_modules])):
        loads[column] = values
        if column not in out.column_names:
            out = out.append_column(column, pa.nulls(out.num_rows, COLUMNS[column]))
    head = pa.table({c: pa.array(loads.get(c, [None] * len(new_modules)), out.schema.field(c).type)
                     for c in out.column_names})
    order = np.concatenate([np.arange(len(new_modules)), len(new_modules) + np.arange(out.num_rows)])
    return pa.concat_tables([head, out.cast(head.schema)]).take(pa.array(order))
