"""The findings table of the HTML report: one ``<tbody>`` per finding (its row plus a
detail row with the rule's explanation, the evidence events and what to do).

Every value that comes from the trace goes through :func:`esc`.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

from traceanalyzer import vocabulary as vocab
from traceanalyzer.model.html_repr import esc

#: Evidence columns shown, in order, when the events have them.
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "seq", "time_ns", "event", "cpu", "pid", "tid", "caller", "mdl", "va", "size",
    "access_mode", "operation", "cache_type", "mapped_va", "target_pid", "irql", "image",
)
_ADDRESS_COLS = {"mdl", "va", "mapped_va", "source_mdl", "irp", "base"}


def rule_info(rule_id: str) -> Any:
    """The catalogue entry of a rule (``traceanalyzer.rules.catalogue.RULES``) or None."""
    try:
        from traceanalyzer.rules.catalogue import RULES
    except ImportError:  # pragma: no cover - the catalogue ships with the package
        return None
    return RULES.get(str(rule_id))


def evidence_frame(analysis: Any, seqs: Iterable[int]) -> pd.DataFrame:
    """The events with the given ``seq`` numbers (canonical columns, time order).

    Uses ``trace.events_at(seqs)`` (each family filtered, not the whole trace merged)
    when the trace has it, else filters ``trace.events``. Empty when the analysis has no
    trace.
    """
    seqs = sorted({int(s) for s in seqs})
    trace = getattr(analysis, "trace", None)
    if trace is None or not seqs:
        return pd.DataFrame(columns=["seq"])
    events_at = getattr(trace, "events_at", None)
    if callable(events_at):
        return events_at(seqs).to_pandas().reset_index(drop=True)
    events = trace.events
    return events[events["seq"].isin(seqs)].reset_index(drop=True)


def findings_section(analysis: Any, findings: pd.DataFrame,
                     max_findings: int = 2000, max_evidence: int = 25) -> str:
    """The findings ``<section>``: filter controls and the sortable table."""
    shown = findings.head(max_findings)
    all_evidence: set[int] = set()
    for ev in shown.get("evidence", pd.Series(dtype=object)):
        if isinstance(ev, (list, tuple)) or hasattr(ev, "tolist"):
            all_evidence.update(int(s) for s in list(ev)[:max_evidence])
    events = evidence_frame(analysis, all_evidence)
    # one dict per evidence event (a DataFrame row lookup per event cost ~9 ms a finding)
    by_seq = {int(r["seq"]): r for r in events.to_dict("records")} if len(events) else {}

    rules = sorted(set(shown["rule"].astype(str))) if len(shown) else []
    sevs = [s for s in vocab.SEVERITIES if len(shown) and (shown["severity"] == s).any()]
    out = ['<section id="findings-section"><h2>Findings</h2>',
           '<p class="muted">Most severe and most costly first. Click a column to sort, '
           'a row to see why it matters, the evidence events and what to do.</p>',
           '<div class="controls">',
           '<input id="f-text" type="search" placeholder="filter: rule, process, caller, MDL…"'
           ' aria-label="filter findings">',
           '<select id="f-severity" aria-label="severity"><option value="">all severities'
           '</option>' + "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in sevs)
           + '</select>',
           '<select id="f-rule" aria-label="rule"><option value="">all rules</option>'
           + "".join(f'<option value="{esc(r)}">{esc(r)}</option>' for r in rules)
           + '</select>',
           '<span id="f-count" class="muted"></span></div>']
    if len(findings) > max_findings:
        out.append(f'<p class="muted">Only the first {max_findings} of {len(findings)} '
                   'findings are listed; summary.json has all of them.</p>')
    head = [("#", "rank", "num"), ("Severity", "severity", "num"), ("Rule", "rule", ""),
            ("Time (s)", "time", "num"), ("Process (pid)", "process", ""),
            ("TID", "tid", "num"), ("MDL", "mdl", ""), ("Caller", "caller", ""),
            ("Bytes", "bytes", "num"), ("Impact (byte·s)", "impact", "num")]
    out.append('<table id="findings"><thead><tr>' + "".join(
        f'<th data-key="{k}"' + (f' data-type="{t}" class="num"' if t else "") + f'>{esc(h)}</th>'
        for h, k, t in head) + "</tr></thead>")
    for i, rec in enumerate(shown.to_dict("records")):
        out.append(_finding_body(i + 1, rec, events, by_seq, max_evidence))
    out.append("</table></section>")
    return "\n".join(out)


def _finding_body(rank: int, rec: dict, events: pd.DataFrame,
                  by_seq: dict[int, dict], max_evidence: int) -> str:
    sev = str(rec.get("severity") or "info")
    t = rec.get("time_ns")
    t_s = "" if t is None or pd.isna(t) else f"{float(t) / 1e9:.6f}"
    mdl = vocab.address_to_int(rec.get("mdl"))
    mdl_s = "" if mdl is None else f"0x{mdl:x}"
    impact = rec.get("impact_byte_seconds")
    cells = [
        f'<td class="num">{rank}</td>',
        f'<td data-v="{vocab.severity_rank(sev)}"><span class="sev sev-{esc(sev)}">{esc(sev)}'
        '</span></td>',
        f'<td><code>{esc(rec.get("rule"))}</code></td>',
        f'<td class="num" data-v="{esc(t_s)}">{esc(t_s)}</td>',
        f'<td>{esc(vocab.process_label(rec.get("pid"), rec.get("process"), width=40))}</td>',
        f'<td class="num">{esc(rec.get("tid"))}</td>',
        f'<td><code>{esc(mdl_s)}</code></td>',
        f'<td><code>{esc(rec.get("caller"))}</code></td>',
        f'<td class="num" data-v="{_sort_value(rec.get("bytes"))}">'
        f'{esc(vocab.format_bytes(rec.get("bytes"), vocab.UNKNOWN_BYTES))}</td>',
        f'<td class="num" data-v="{_sort_value(impact)}">'
        f'{esc(vocab.format_byte_seconds(impact, vocab.UNKNOWN_BYTES))}</td>',
    ]
    detail = _detail(rec, events, by_seq, max_evidence)
    return (f'<tbody class="finding" data-severity="{esc(sev)}" data-rule="{esc(rec.get("rule"))}">'
            f'<tr class="main" aria-expanded="false">{"".join(cells)}</tr>'
            f'<tr class="detail" hidden><td colspan="{len(cells)}">{detail}</td></tr></tbody>')


def _sort_value(value: Any) -> str:
    """``data-v`` of a numeric cell: the number, empty when unknown (sorts last)."""
    return "" if vocab.is_missing(value) else esc(value)


def _detail(rec: dict, events: pd.DataFrame, by_seq: dict[int, dict],
            max_evidence: int) -> str:
    rule = rule_info(rec.get("rule"))
    items: list[tuple[str, str]] = [("What happened", esc(rec.get("message")))]
    if rule is not None:
        items += [("Why it matters", esc(rule.consequence)),
                  ("Rule fires when", esc(rule.fires_when)),
                  ("Reference", esc(rule.reference))]
    es, ee = rec.get("exposure_start_ns"), rec.get("exposure_end_ns")
    if es is not None and not pd.isna(es):
        dur = (float(ee) - float(es)) / 1e9 if ee is not None and not pd.isna(ee) else None
        items.append(("Exposure window", esc(
            f"user PTEs pointed at released pages from {vocab.format_time_ns(es)} to "
            f"{vocab.format_time_ns(ee)}" + (f" ({dur:.6f} s)" if dur is not None else ""))))
    s, e = rec.get("start_ns"), rec.get("end_ns")
    if s is not None and not pd.isna(s):
        items.append(("Held", esc(
            f"{vocab.format_bytes(rec.get('bytes'), 'an unknown number of bytes')} from "
            f"{vocab.format_time_ns(s)} to {vocab.format_time_ns(e)}: "
            f"{vocab.format_byte_seconds(rec.get('impact_byte_seconds'), vocab.UNKNOWN_BYTES)}")))
    ids = [f"{k} {esc(rec.get(k))}" for k in ("lifetime_id", "mapping_id", "count")
           if rec.get(k) is not None and not pd.isna(rec.get(k))]
    items.append(("Identity", f'fingerprint <code>{esc(rec.get("fingerprint"))}</code>'
                  + (f" · {' · '.join(ids)}" if ids else "")))
    advice = rec.get("advice")
    if (advice is None or pd.isna(advice)) and rule is not None:
        advice = rule.advice
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    out = [f"<dl>{dl}</dl>"]
    if advice is not None and not pd.isna(advice):
        out.append(f'<p class="todo"><strong>What to do:</strong> {esc(advice)}</p>')
    out.append(_evidence_table(rec.get("evidence"), events, by_seq, max_evidence))
    return "".join(out)


def _evidence_table(evidence: Any, events: pd.DataFrame, by_seq: dict[int, dict],
                    max_evidence: int) -> str:
    seqs = [int(s) for s in list(evidence)] if evidence is not None and not isinstance(
        evidence, (str, float)) else []
    if not seqs:
        return '<p class="muted">No evidence events recorded.</p>'
    rows = [by_seq[s] for s in seqs[:max_evidence] if s in by_seq]
    cols = [c for c in EVIDENCE_COLUMNS if c in events.columns
            and any(not vocab.is_missing(r[c]) for r in rows)]
    head = "".join(f"<th>{esc('time (s)' if c == 'time_ns' else c)}</th>" for c in cols)
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f"<td>{_evidence_cell(c, r[c])}</td>" for c in cols)
                    + "</tr>")
    missing = [s for s in seqs[:max_evidence] if s not in by_seq]
    note = (f'<p class="muted">{len(seqs) - max_evidence} more evidence events not shown.</p>'
            if len(seqs) > max_evidence else "")
    if missing:
        note += f'<p class="muted">Events not in the trace table: seq {esc(missing)}</p>'
    return (f"<h3>Evidence events ({len(seqs)})</h3><table class=\"evidence\"><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>{note}")


def _evidence_cell(col: str, v: Any) -> str:
    if vocab.is_missing(v):
        return ""
    if col == "time_ns":
        return esc(f"{float(v) / 1e9:.6f}")
    if col in _ADDRESS_COLS:
        return f"<code>{esc(vocab.format_address(v))}</code>"
    if col in ("caller", "event"):
        return f"<code>{esc(v)}</code>"
    if isinstance(v, float) and v.is_integer():  # integer columns with nulls come as float
        return esc(int(v))
    return esc(v)
