"""The JSON Schema shipped in the package (render/summary.schema.json) describes what
``hazards --json`` prints and ``report`` writes as summary.json: every sample trace, every
real trace in use (tests/data/real, or the full collection with TA_REAL_TRACES), the CLI
output and report's file validate; documents that break the shape do not."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import jsonschema
import pytest

import traceanalyzer as ta
from traceanalyzer.cli.main import main
from traceanalyzer.render import render
from traceanalyzer.render.json_summary import summary_schema
from traceanalyzer.rules.catalogue import RULES
from traceanalyzer.vocabulary import SEVERITIES

from helpers.real_traces import real_trace_files

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (REPO / "sample_traces").glob("*.csv")
                 if not p.name.endswith(".expected.csv"))
SEED = REPO / "sample_traces" / "seed_unlock_from_worker.csv"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = summary_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _doc(path: Path) -> dict:
    return json.loads(render(ta.analyze(ta.load(path)), "json"))


def test_schema_is_package_data_and_names_the_catalogue_severities() -> None:
    from importlib import resources

    assert resources.files("traceanalyzer.render").joinpath("summary.schema.json").is_file()
    finding = summary_schema()["$defs"]["finding"]
    assert finding["properties"]["severity"]["enum"] == list(SEVERITIES)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_summary_validates(validator, path: Path) -> None:
    validator.validate(_doc(path))


def test_the_samples_exercise_every_optional_field(validator) -> None:
    """Null and non-null forms both occur, so the schema's types are tested both ways."""
    seen: dict[str, set[type]] = {}
    for path in SAMPLES:
        for f in _doc(path)["findings"]:
            for key, value in f.items():
                seen.setdefault(key, set()).add(type(value))
    for key in ("tid", "exposure_window_ns"):
        assert type(None) in seen[key] and len(seen[key]) == 2, (key, seen[key])


@pytest.mark.parametrize("name", real_trace_files((".etl", ".etlgz", ".csv")), ids=str)
def test_every_real_trace_summary_validates(validator, real_traces: Path, name: Path,
                                            tmp_path: Path) -> None:
    path = real_traces / name
    if path.suffix == ".etlgz":  # a gzipped ETL file (SOURCES.md): read what it holds
        plain = tmp_path / (path.stem + ".etl")
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        path = plain
    doc = _doc(path)
    validator.validate(doc)
    # real files hold no MDL calls: what they report is trace quality (info) findings
    assert {f["severity"] for f in doc["findings"]} <= {"info"}
    assert all(f["rule"] in RULES for f in doc["findings"])


def test_cli_json_and_report_summary_validate(validator, tmp_path: Path, capsys) -> None:
    assert main(["hazards", str(SEED), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    validator.validate(printed)
    assert printed["findings"][0]["rule"] == "UNLOCK_WHILE_USER_MAPPED"
    assert main(["report", str(SEED), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    validator.validate(written)
    assert written["findings"] == printed["findings"]


@pytest.mark.parametrize("break_it", [
    lambda d: d.pop("findings"),
    lambda d: d["findings"][0].update(severity="severe"),
    lambda d: d["findings"][0].update(mdl="ffffc30a4b2f1000"),
    lambda d: d["findings"][0].update(bytes=-1),
    lambda d: d["findings"][0].pop("fingerprint"),
    lambda d: d["findings"][0].update(new_key=1),   # a new key must be documented first
    lambda d: d["stats"].update(events="12"),
    lambda d: d["leaks"]["by_process"].append({"pid": 1}),
    lambda d: d.update(time_span_ns=[0]),
], ids=["no-findings", "severity", "mdl-not-hex", "negative-bytes", "no-fingerprint",
        "undocumented-key", "string-count", "by-process-incomplete", "span-length"])
def test_schema_rejects_a_broken_summary(validator, break_it) -> None:
    doc = copy.deepcopy(_doc(SEED))
    validator.validate(doc)
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(doc)
