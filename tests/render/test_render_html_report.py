"""The HTML report as a document: self-contained, escaped, complete per finding."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers.fake_analysis import fake_analysis

from traceanalyzer.render import render
from traceanalyzer.render.html_report import html_report
from traceanalyzer.render.report_files import REPORT_FILES, write_report
from traceanalyzer.analysis.repr_html import analysis_repr_html
from traceanalyzer.rules.catalogue import RULES

HOSTILE = "<img src=x onerror=alert(1)>&\"'.exe"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


class _Collector(HTMLParser):
    """Collects tags, attributes and the open/close balance of a few containers."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.depth: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.depth[tag] = self.depth.get(tag, 0) + 1

    def handle_endtag(self, tag):
        self.depth[tag] = self.depth.get(tag, 0) - 1


def _parse(text: str) -> _Collector:
    p = _Collector()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def hostile_page() -> str:
    figures = {"leak_timeline": PNG, "hazard_timeline": PNG, "impact": PNG}
    return html_report(fake_analysis(hostile_name=HOSTILE), figures=figures, interactive=False)


def test_interactive_timeline_is_embedded_and_escaped() -> None:
    """The interactive timeline brings Bokeh's JS inline (no script is loaded from
    anywhere; the CSP forbids it) and its data escapes trace strings too."""
    page = html_report(fake_analysis(hostile_name=HOSTILE), figures={}, interactive=True)
    p = _parse(page)
    scripts = [a for t, a in p.tags if t == "script"]
    assert len(scripts) >= 3 and not any("src" in a for a in scripts)
    assert HOSTILE not in page and "<img src=x" not in page
    assert 'id="interactive"' in page and "Bokeh" in page
    assert "Interactive timeline" not in html_report(fake_analysis(), figures={},
                                                     interactive=False)


def test_trace_strings_are_escaped(hostile_page: str) -> None:
    assert "<img src=x" not in hostile_page
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#x27;.exe" in hostile_page
    # the only <img> tags are the three embedded figures, the only script is ours
    p = _parse(hostile_page)
    imgs = [a for t, a in p.tags if t == "img"]
    assert len(imgs) == 3
    assert all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    assert [t for t, _ in p.tags].count("script") == 1


def test_page_is_self_contained(hostile_page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", hostile_page)
    assert "@import" not in hostile_page and "url(" not in hostile_page
    p = _parse(hostile_page)
    csp = [a for t, a in p.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_markup_is_balanced(hostile_page: str) -> None:
    depth = _parse(hostile_page).depth
    for tag in ("table", "tbody", "tr", "section", "div", "dl", "figure"):
        assert depth.get(tag, 0) == 0, tag


def test_each_finding_has_explanation_evidence_and_advice() -> None:
    a = fake_analysis()
    page = html_report(a, figures={})
    bodies = page.split('<tbody class="finding"')[1:]
    assert len(bodies) == len(a.findings)
    for body, rule in zip(bodies, a.findings["rule"]):
        r = RULES[rule]
        assert f"<code>{rule}</code>" in body
        assert "Why it matters" in body and r.consequence.split(":")[0] in body
        assert "Rule fires when" in body
        assert "What to do:" in body
        assert "Evidence events" in body
    # evidence rows come from the trace events by seq: the unlock call of the seed
    first = bodies[0]
    assert "<code>MmUnlockPages</code>" in first and "<code>0xffffc30a4b2f1000</code>" in first
    assert "Exposure window" in first and "(3.000000 s)" in first
    # integer columns with nulls are shown as integers, not floats
    assert "<td>1300</td>" in first and "1300.0" not in first


def test_rule_and_severity_filters_list_what_is_present() -> None:
    page = html_report(fake_analysis(), figures={})
    sel = re.search(r'<select id="f-rule".*?</select>', page).group(0)
    assert re.findall(r'<option value="([A-Z_]+)">', sel) == [
        "UNLOCK_WHILE_USER_MAPPED", "USER_MAPPING_NOT_UNMAPPED_AT_EXIT"]


def test_max_findings_caps_rows_and_says_so() -> None:
    a = fake_analysis(extra_processes=30)
    page = html_report(a, figures={}, max_findings=5)
    assert page.count('<tbody class="finding"') == 5
    assert f"Only the first 5 of {len(a.findings)}" in page


def test_html_renderer_draws_figures_itself() -> None:
    page = render(fake_analysis(), "report.html")
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) == 3 and all(len(s) > 10000 for s in imgs)


def test_write_report_writes_the_four_files(tmp_path: Path) -> None:
    a = fake_analysis()
    paths = write_report(a, tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == set(REPORT_FILES.values())
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(a.summary()))
    assert paths["leak_timeline"].read_bytes()[:8] == PNG[:8]
    assert "UNLOCK_WHILE_USER_MAPPED" in paths["html"].read_text()


def test_write_report_into_a_file_path_fails_clearly(tmp_path: Path) -> None:
    from traceanalyzer.errors import TraceError

    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(TraceError, match="taken"):
        write_report(fake_analysis(), blocker)


def test_analysis_repr_html_is_compact_and_escaped() -> None:
    out = analysis_repr_html(fake_analysis(hostile_name=HOSTILE))
    assert "<img src=x" not in out
    assert "1 critical" in out and "1 high" in out and "8 KiB" in out
    assert "UNLOCK_WHILE_USER_MAPPED" in out
