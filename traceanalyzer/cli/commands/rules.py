"""``traceanalyzer rules [ID]``: the rule catalogue, or one rule in full."""

from __future__ import annotations

import argparse
import sys

from traceanalyzer.errors import TraceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rules",
        help="list the rule catalogue, or print one rule in full",
        description="Without ID: every rule ID with its severity and when it fires, by tier. "
        "With ID: the rule in full: severity, when it fires, what it does to a real machine "
        "(bug check, Driver Verifier code, security consequence), what to do, and links to "
        "Microsoft's documentation of the routines. The same text is in docs/rules.md.",
        epilog="Example: traceanalyzer rules UNLOCK_WHILE_USER_MAPPED",
    )
    p.add_argument("rule_id", nargs="?", metavar="ID",
                   help="a rule ID (case does not matter), e.g. USER_UNMAP_WRONG_PROCESS")
    p.add_argument("--markdown", action="store_true",
                   help="print the whole reference as Markdown (the text of docs/rules.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from traceanalyzer.rules.reference import catalogue_text, rule_text, rules_markdown

    if args.markdown:
        if args.rule_id:
            raise TraceError("--markdown prints the whole reference; give no ID with it")
        sys.stdout.write(rules_markdown())
        return 0
    if args.rule_id is None:
        sys.stdout.write(catalogue_text())
        return 0
    try:
        sys.stdout.write(rule_text(args.rule_id))
    except KeyError as exc:
        raise TraceError(f"{exc.args[0]} ('traceanalyzer rules' lists every ID)") from None
    return 0
