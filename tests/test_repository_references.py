"""The repository stands on its own: README, docs/, every ``--help``, and the docstrings
and comments of the package and the tests point only at files in the repository (none into
the spec or the shared folder that sit beside a development clone, no absolute paths of
a development machine), and
every relative link of README and docs/ resolves."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from traceanalyzer.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]

#: Text a user or a reader of the code may follow: must not leave the repository.
USER_FILES = sorted(
    [REPO / "README.md", REPO / "pyproject.toml"]
    + list((REPO / "docs").glob("*.md"))
    + list((REPO / "traceanalyzer").rglob("*.py"))
    + list((REPO / "traceanalyzer").rglob("*.json"))
    + list((REPO / "sample_traces").glob("*.md"))
    + list((REPO / "sample_traces").glob("*.py"))
    + list((REPO / "benchmarks").glob("*.py"))
    + list((REPO / "notebooks").glob("*.ipynb"))
    + [p for p in (REPO / "capture").glob("*") if p.is_file()]
    + [p for p in (REPO / "tests").rglob("*.py") if p.name != "test_repository_references.py"]
    + list((REPO / "tests").rglob("*.md"))
)

#: What points outside a clone: the sibling shared/ folder and absolute machine paths.
OUTSIDE = re.compile(r"shared/spec|\.\./shared|shared/real_traces|/work/|/home/\w+|[A-Z]:\\\\Users")
#: Markdown file names mentioned in text (``docs/rules.md``, ``rules.md``, ``SOURCES.md``).
MD_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def _md_exists(name: str, relative_to: Path) -> bool:
    """A mentioned .md file exists: as a path from the repo root or the mentioning
    file's folder, or as a file name in docs/ (prose writes 'rules.md' for docs/rules.md)."""
    candidates = [REPO / name, relative_to / name, REPO / "docs" / Path(name).name]
    return any(c.is_file() for c in candidates) or any(REPO.rglob(Path(name).name))


def _help_texts() -> dict[str, str]:
    parser = build_parser()
    texts = {"traceanalyzer": parser.format_help()}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        texts[name] = p.format_help()
    return texts


@pytest.mark.parametrize("path", USER_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_reference_leaves_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    hits = [m.group(0) for m in OUTSIDE.finditer(text)]
    assert not hits, f"{path.relative_to(REPO)} points outside the repository: {hits}"
    if path.is_relative_to(REPO / "tests") and path.suffix == ".py":
        return  # test code names made-up files (nightly/notes.md) as data
    missing = [n for n in MD_NAME.findall(text) if not _md_exists(n, path.parent)]
    assert not missing, f"{path.relative_to(REPO)} names files that do not exist: {missing}"


@pytest.mark.parametrize("command", sorted(_help_texts()))
def test_help_points_only_at_files_in_the_repository(command: str) -> None:
    text = _help_texts()[command]
    assert not OUTSIDE.search(text), text
    for name in MD_NAME.findall(text):
        assert (REPO / name).is_file(), f"--help of {command} names {name}, which is not in the repository"
    for path in re.findall(r"\b((?:docs|traceanalyzer|sample_traces)/[\w./-]+\.\w+)", text):
        assert (REPO / path).is_file(), f"--help of {command} names {path}"


@pytest.mark.parametrize("path", [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))],
                         ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve()
        assert resolved.exists(), f"{path.name}: link {target} does not resolve"
        if anchor and resolved.suffix == ".md":
            headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.M)}
            assert anchor in headings, f"{path.name}: anchor #{anchor} not in {file_part}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_the_readme_names_the_prerequisites_outside_pip() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "apt-get install chromium" in readme
    assert "python -m pytest -q" in readme
