"""The stage order of docs/architecture.md, checked over the import graph: no module of
traceanalyzer/ imports a later stage, at module level or inside a function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import traceanalyzer

ROOT = Path(traceanalyzer.__file__).parent
DOC = ROOT.parent / "docs" / "architecture.md"


def _doc_stages() -> tuple[list[str], set[str]]:
    """(stages in order as module names, shared modules) read from the doc."""
    text = DOC.read_text(encoding="utf-8")
    intro, block = re.search(r"^(.*?)```\n(.*?)```", text, re.S).groups()
    shared = {p[:-3].replace("/", ".") for p in re.findall(r"`([\w/]+\.py)`", intro)}
    stages = [line.split()[0].rstrip("/").removesuffix(".py")
              for line in block.splitlines() if line and not line[0].isspace()]
    return stages, shared


STAGES, SHARED = _doc_stages()


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Package-relative names of the traceanalyzer modules a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "traceanalyzer":
            base = node.module.removeprefix("traceanalyzer").lstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                if (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or \
                        (ROOT / sub.replace(".", "/")).is_dir():
                    found.add(sub)
                elif base:
                    found.add(base)
                else:  # a name of the package facade: where it is defined
                    defined = getattr(getattr(traceanalyzer, alias.name), "__module__", None)
                    if defined:
                        found.add(defined.removeprefix("traceanalyzer."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("traceanalyzer."):
                    found.add(alias.name.removeprefix("traceanalyzer."))
    return found


def _rank(module: str) -> int | None:
    """Position of a module's stage in the doc's list; None for the shared vocabulary
    and for the package facade (``__init__``, ``__main__``), which sit outside it."""
    if not module or module == "__main__" or module in SHARED:
        return None
    for i, stage in enumerate(STAGES):
        if module == stage or module.startswith(stage + "."):
            return i
    raise AssertionError(f"{module} belongs to no stage of docs/architecture.md")


def test_the_doc_names_every_stage() -> None:
    assert STAGES[:3] == ["readers", "model", "session"] and STAGES[-1] == "cli"
    assert {"vocabulary", "errors", "model.schema"} <= SHARED
    for path in ROOT.rglob("*.py"):
        _rank(_module_name(path))  # raises for a module outside every stage


def test_no_module_imports_a_later_stage() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        me = _module_name(path)
        mine = _rank(me)
        if mine is None:
            continue
        for target in sorted(_imports(path)):
            theirs = _rank(target)
            if theirs is not None and theirs > mine:
                upward.append(f"{me} -> {target}")
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # the same scan on a fake module of lifecycle/ that imports render/
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    from traceanalyzer.render.summary import summary_dict\n")
    assert _rank("lifecycle.x") < _rank(next(iter(_imports(fake))))


def test_render_does_not_depend_on_plot() -> None:
    """Renderers take the tables and figures they are given; the timeline data they
    share with the figures lives in analysis/timelines.py."""
    uses = sorted(f"{_module_name(p)} -> {t}" for p in (ROOT / "render").rglob("*.py")
                  for t in _imports(p) if t == "plot" or t.startswith("plot."))
    assert uses == []
