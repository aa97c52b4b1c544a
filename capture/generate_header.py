"""Regenerate the schema section of ``capture/mdltrace.h`` from the one MdlTrace schema.

    python capture/generate_header.py            # rewrite the section in place
    python capture/generate_header.py --check    # exit 1 if the header is stale

The section between the BEGIN/END markers holds, for every event of
``traceanalyzer/model/mdltrace_schema.json``, a ``MdlTracepLog_<Event>`` function
whose parameters are the event's own fields (in schema order and C types) and whose
``TraceLoggingWrite`` logs them, then the common fields (irql, effective_pid,
return_address). The hand-written wrappers call these functions, so a wrapper that
disagrees with the schema does not compile. ``tests/capture`` checks the section is
up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from traceanalyzer.model.mdltrace import MdlTraceSchema, mdltrace_schema  # noqa: E402

HEADER = Path(__file__).resolve().with_name("mdltrace.h")
BEGIN = "/* ---- BEGIN GENERATED from traceanalyzer/model/mdltrace_schema.json (capture/generate_header.py) ---- */"
END = "/* ---- END GENERATED ---- */"
#: expressions of the common fields inside a MdlTracepLog_ function
_COMMON = {
    "irql": "MdlTracepIrql()",
    "effective_pid": "MdlTracepEffectivePid()",
    "return_address": "ReturnAddress",
}


def _guid_initializer(guid: str) -> str:
    hexa = guid.replace("-", "")
    parts = [f"0x{hexa[:8]}", f"0x{hexa[8:12]}", f"0x{hexa[12:16]}"]
    parts += [f"0x{hexa[i:i + 2]}" for i in range(16, 32, 2)]
    return "(" + ", ".join(parts) + ")"


def generated_section(schema: MdlTraceSchema) -> str:
    """The text between (and including) the markers."""
    out = [BEGIN, f'#define MDLTRACE_PROVIDER_NAME "{schema.provider}"',
           f"/* {schema.guid}: the TraceLogging name hash of \"{schema.provider}\" */",
           f"#define MDLTRACE_PROVIDER_GUID {_guid_initializer(schema.guid)}",
           f"#define MDLTRACE_LEVEL {schema.level}",
           f"#define MDLTRACE_KEYWORD_CALLS 0x{schema.keyword:x}", ""]
    for column, values in schema.enums.items():
        listed = ", ".join(f"{name} = {number}" for name, number in values.items())
        out.append(f"/* {column} (UINT8): {listed} */")
    out.append("")
    for event in schema.events.values():
        params = [f"{schema.field_type(f).c_type} {f}" for f in event.own_fields]
        params.append("const void* ReturnAddress")
        out.append(f"/* {event.name}: logged by {', '.join(r for r in event.routines)} */")
        out.append(f"static __inline void MdlTracepLog_{event.name}({', '.join(params)})")
        out.append("{")
        out.append(f'    TraceLoggingWrite(MdlTraceProvider, "{event.name}",')
        out.append("        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),")
        fields = [f'{schema.field_type(f).macro}({f if f in event.own_fields else _COMMON[f]}, "{f}")'
                  for f in event.fields]
        out.append("        " + ",\n        ".join(fields) + ");")
        out.append("}")
        out.append("")
    out.append(END)
    return "\n".join(out)


def render(text: str, schema: MdlTraceSchema) -> str:
    """``text`` (the header) with its generated section replaced."""
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + generated_section(schema) + text[stop:]


def main(argv: list[str]) -> int:
    text = HEADER.read_text(encoding="utf-8")
    fresh = render(text, mdltrace_schema())
    if "--check" in argv:
        if fresh != text:
            print(f"{HEADER} is stale: run python capture/generate_header.py", file=sys.stderr)
            return 1
        return 0
    HEADER.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
