"""docs/cli.md documents every command and every option of every command (argparse is
the source), the JSON summary keys of the schema, and ``--help`` ends with an example."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from traceanalyzer.cli.main import build_parser
from traceanalyzer.render.json_summary import summary_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _sections() -> dict[str, str]:
    """Command name -> its section of cli.md (``## `traceanalyzer NAME ...` ``)."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    out = {}
    for part in parts[1:]:
        m = re.match(r"`traceanalyzer (\w+)", part)
        if m:
            out[m.group(1)] = part
    return out


def _documented(section: str, name: str) -> bool:
    """``name`` appears as code in the section (alone or starting a code span)."""
    return re.search(r"`" + re.escape(name) + r"(?=[` ,=\[])", section) is not None


def _shared_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split("## Trace inputs", 1)[1].split("\n## ", 1)[0]


def _options(parser: argparse.ArgumentParser) -> list[str]:
    names = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            names.extend(action.option_strings)
        else:
            names.append(action.metavar or action.dest)
    return names


#: Global options every command takes after it too (the global table says so).
_EVERY_COMMAND = ("--debug",)


def test_every_command_has_a_section_and_every_section_a_command() -> None:
    assert set(_sections()) == set(_commands())


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_option_of_the_command_is_documented(command: str) -> None:
    section = _sections().get(command, "")
    uses_trace_inputs = "Also the trace input options above." in section
    every_command = [o for o in _options(build_parser()) if o in _EVERY_COMMAND]  # in the global table
    missing = [opt for opt in _options(_commands()[command])
               if not _documented(section, opt) and opt not in every_command
               and not (uses_trace_inputs and _documented(_shared_section(), opt))]
    assert not missing, f"docs/cli.md, section of {command!r}, lacks {missing}"


@pytest.mark.parametrize("command", sorted(_commands()))
def test_a_command_that_takes_trace_inputs_says_so(command: str) -> None:
    opts = _options(_commands()[command])
    section = _sections()[command]
    takes_traces = "--field-map" in opts
    assert takes_traces == ("Also the trace input options above." in section)


def test_global_options_are_documented() -> None:
    head = DOC.read_text(encoding="utf-8").split("\n## ", 1)[0]
    missing = [o for o in _options(build_parser()) if o != "COMMAND" and not _documented(head, o)]
    assert not missing
    for opt in _EVERY_COMMAND:
        assert re.search(rf"`{opt}`[^\n]*also after the command", head), opt
        assert all(opt in _options(p) for p in _commands().values()), opt


def test_every_choice_is_documented() -> None:
    for command, parser in _commands().items():
        section = _sections()[command]
        for action in parser._actions:
            for choice in action.choices or ():
                assert str(choice) in section, (command, action.dest, choice)


def test_every_summary_key_of_the_schema_is_in_the_json_table() -> None:
    text = _sections()["hazards"]
    schema = summary_schema()
    keys = list(schema["properties"])
    keys += [f"findings[].{k}" for k in schema["$defs"]["finding"]["properties"]]
    keys += [f"problems[].{k}" for k in schema["$defs"]["problem"]["properties"]]
    keys += [f"leaks.{k}" for k in schema["$defs"]["leaks"]["properties"]]
    keys += [f"stats.{k}" for k in schema["$defs"]["stats"]["properties"]]
    missing = []
    for key in keys:
        parent, _, leaf = key.rpartition(".")
        if f"`{key}`" in text or f"`{key}[]`" in text or f"`{key}." in text:
            continue
        # a row may list siblings: `findings[].pid`, `.process`
        if parent and re.search(rf"`{re.escape(parent)}\.\w+`[^|]*`\.{re.escape(leaf)}`", text):
            continue
        missing.append(key)
    assert not missing, f"docs/cli.md JSON table lacks {missing}"


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_ends_with_an_example(command: str) -> None:
    epilog = (_commands()[command].epilog or "").strip()
    assert re.search(r"(?m)^\s*(Example: )?traceanalyzer " + command + r"\b", epilog), epilog


def _agrees(example, actual, where: str = "") -> list[str]:
    """Where the doc's example says other than the output: a string ending in ' ...' is a
    prefix; a list is the output's first items; a dict has the output's keys, except
    ``events_by_name``, which may name a few."""
    if isinstance(example, str) and example.endswith(" ..."):
        return [] if isinstance(actual, str) and actual.startswith(example[:-4]) else [where]
    if isinstance(example, dict) and isinstance(actual, dict):
        keys_ok = set(example) <= set(actual) if where.endswith("events_by_name") else set(example) == set(actual)
        out = [] if keys_ok else [f"{where} keys {sorted(set(example) ^ set(actual))}"]
        return out + [w for k in example if k in actual for w in _agrees(example[k], actual[k], f"{where}.{k}")]
    if isinstance(example, list) and isinstance(actual, list) and where.endswith(("findings", "problems")):
        return ([] if example else [where]) + [w for k, (e, a) in enumerate(zip(example, actual))
                                               for w in _agrees(e, a, f"{where}[{k}]")]
    return [] if example == actual else [f"{where}: doc {example!r}, output {actual!r}"]


def test_the_json_example_is_what_hazards_json_writes(capsys, monkeypatch) -> None:
    """The summary example in cli.md is the seed sample's real output, shortened only as
    its sentence says (it showed bytes_at_end 0 and no problems after both changed)."""
    import json

    from traceanalyzer.cli.main import main

    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\n  \"traces\".*?)```", text, re.S)
    assert block, "cli.md has no JSON summary example"
    example = json.loads(block.group(1))
    monkeypatch.chdir(DOC.parents[1])  # the example names the trace as given, from the repository
    assert main(["hazards", *example["traces"], "--json"]) in (0, 1)
    actual = json.loads(capsys.readouterr().out)
    assert _agrees(example, actual) == []


def test_the_agreement_check_sees_a_stale_example() -> None:
    actual = {"leaks": {"bytes_at_end": 8192}, "findings": [{"message": "MmUnlockPages on MDL"}, {}]}
    assert _agrees({"leaks": {"bytes_at_end": 8192}, "findings": [{"message": "MmUnlockPages ..."}]}, actual) == []
    assert _agrees({"leaks": {"bytes_at_end": 0}, "findings": [{"message": "MmUnlockPages ..."}]}, actual) \
        == [".leaks.bytes_at_end: doc 0, output 8192"]
    assert _agrees({"findings": [{"message": "MmLock ..."}], "leaks": {"bytes_at_end": 8192}}, actual) \
        == [".findings[0].message"]
    assert _agrees({"leaks": {}}, actual) == [" keys ['findings']", ".leaks keys ['bytes_at_end']"]
