"""Renderer registry: by name, by file extension, unknown names."""

from __future__ import annotations

import pytest

from traceanalyzer.render import UnknownRendererError, get_renderer, register_renderer


@pytest.mark.parametrize("key, name", [
    ("json", "json"), ("JSON", "json"), ("out/summary.json", "json"), ("f.csv", "csv"),
    ("text", "text"), ("report.HTML", "html"), ("x.htm", "html"), ("html", "html"),
])
def test_lookup_by_name_or_extension(key: str, name: str) -> None:
    assert get_renderer(key).name == name


def test_unknown_names_say_what_is_known() -> None:
    with pytest.raises(UnknownRendererError) as err:
        get_renderer("out.docx")
    msg = str(err.value)
    assert "out.docx" in msg and "json" in msg and ".html" in msg


def test_other_layers_can_register_and_longest_extension_wins() -> None:
    class Sarif:
        name = "sarif-test"
        extensions = (".sarif.json",)
        binary = False

        def render(self, analysis, **options):
            return "{}"

    register_renderer(Sarif())
    assert get_renderer("x.sarif.json").name == "sarif-test"
    assert get_renderer("x.json").name == "json"
