"""Every Python example in docs/ and the README names only what it defines or imports
(a user copies it into a notebook: a name it never binds is a NameError there). Blocks of
one page run in order, so a later block may use what an earlier one bound."""

from __future__ import annotations

import builtins
import re
import symtable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _unbound(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    bound = set(dir(builtins))
    missing = []
    for block in re.finditer(r"```python\n(.*?)```", text, re.S):
        line = text[:block.start()].count("\n") + 2
        top = symtable.symtable(block.group(1), str(page), "exec")
        bound |= {s.get_name() for s in top.get_symbols()
                  if s.is_assigned() or s.is_imported() or s.is_namespace()}
        tables = [top]
        while tables:
            table = tables.pop()
            tables.extend(table.get_children())
            for s in table.get_symbols():
                used = s.is_referenced() and (s.is_global() if table is not top
                                              else not (s.is_assigned() or s.is_imported()))
                if used and s.get_name() not in bound:
                    missing.append(f"{page.name}:{line}: {s.get_name()}")
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_python_example_binds_every_name_it_uses(page: Path) -> None:
    assert _unbound(page) == []


def test_the_check_finds_an_unbound_name(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("```python\nfrom pathlib import Path\nx = Path('a')\n```\n\n"
                    "```python\nprint(x, Pathh, [y for y in z])\n```\n")
    assert sorted(_unbound(page)) == ["p.md:7: Pathh", "p.md:7: z"]
