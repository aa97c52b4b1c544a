"""The baseline file: one entry per trace, JSON, sorted and stable for code review diffs.

Layout (``version`` 2)::

    {
      "format": "traceanalyzer-baseline",
      "version": 2,
      "traces": {
        "case42.etl": {
          "findings": {"<problem_id>": {"rule": ..., "severity": ..., "caller": ...,
                                        "process": "app.exe, db.exe", "count": 2}},
          "leaks": {"bytes_at_end": 0, "bytes_leaked_at_exit": 8192}
        }
      }
    }

Findings are keyed by problem (rule + call site: ``problem_id``), so one bug that hits
more processes is one entry whose count grows. A version 1 file (keyed by rule + caller +
process image) is read and merged into problems; ``--update-baseline`` writes version 2.

Trace keys are paths relative to the folder given on the command line, with ``/``
separators. Nothing that changes between runs of the same scenario (addresses, pids,
times, file hashes, dates) is written, so re-recording an unchanged build gives a
byte-identical file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from traceanalyzer.errors import TraceError
from traceanalyzer.fileio import write_text_atomic
from traceanalyzer.gate.digest import TraceDigest, regroup

BASELINE_FORMAT = "traceanalyzer-baseline"
BASELINE_VERSION = 2
#: Versions read (1: keyed by rule + caller + process image, merged into problems).
READ_VERSIONS = (1, 2)


@dataclass
class Baseline:
    """Per-trace digests keyed by trace ID (relative path)."""

    traces: dict[str, TraceDigest] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see the module docstring)."""
        return {
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            "traces": {tid: d.to_entry() for tid, d in sorted(self.traces.items())},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], path: str | Path | None = None) -> "Baseline":
        """Parse a baseline document; :class:`TraceError` naming ``path`` if malformed."""
        if not isinstance(doc, Mapping) or doc.get("format") != BASELINE_FORMAT:
            raise TraceError(f"not a traceanalyzer baseline (missing \"format\": \"{BASELINE_FORMAT}\")", path)
        if doc.get("version") not in READ_VERSIONS:
            raise TraceError(
                f"baseline version {doc.get('version')!r} is not supported (expected {BASELINE_VERSION}); "
                "re-create it with --update-baseline",
                path,
            )
        traces = doc.get("traces")
        if not isinstance(traces, Mapping):
            raise TraceError("baseline has no \"traces\" object", path)
        digests = {}
        for k, v in traces.items():
            try:
                if not isinstance(v, Mapping):
                    raise TypeError(f"expected an object, got {type(v).__name__}")
                for key in ("findings", "leaks"):
                    if not isinstance(v.get(key, {}), Mapping):
                        raise TypeError(f"\"{key}\" is not an object")
                digests[str(k)] = TraceDigest.from_entry(v)
            except (AttributeError, TypeError, ValueError, OverflowError) as exc:
                raise TraceError(f"malformed baseline entry for trace {str(k)!r}: {exc}", path) from None
        if doc.get("version") == 1:
            for d in digests.values():
                d.findings = regroup(d.findings)
        return cls(digests)


def dumps_baseline(baseline: Baseline) -> str:
    """The file text: keys sorted, two-space indent, trailing newline."""
    return json.dumps(baseline.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file. Raises :class:`TraceError` if missing or malformed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError("baseline not found; create it with --update-baseline", p) from None
    except OSError as exc:
        raise TraceError(f"cannot read baseline: {exc.strerror}", p) from None
    except UnicodeDecodeError as exc:
        raise TraceError(f"baseline is not UTF-8 text (byte {exc.start}: {exc.reason})", p) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"baseline is not valid JSON (line {exc.lineno}: {exc.msg})", p) from None
    return Baseline.from_dict(doc, p)


def save_baseline(baseline: Baseline, path: str | Path) -> None:
    """Write the baseline file (atomically; parent folders are created)."""
    write_text_atomic(path, dumps_baseline(baseline))
