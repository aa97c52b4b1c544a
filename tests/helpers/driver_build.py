"""A Windows driver image and its PDB built here, for tests of ``--symbols``.

Built with Debian's clang and lld (``clang --target=x86_64-pc-windows-msvc -gcodeview``,
``lld-link /driver /debug``), so the PE's CodeView record names the PDB's GUID + age as
a real build's does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def build_driver(folder: Path, source: str, name: str = "mydriver") -> tuple[Path, Path]:
    """(``<name>.sys``, ``<name>.pdb``) built from the C ``source`` in ``folder``."""
    for tool in ("clang", "lld-link"):
        assert shutil.which(tool), f"{tool} is needed (Debian packages clang and lld; .ci/run installs them)"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drv.c").write_text(source)
    subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-O1", "-g", "-gcodeview",
                    "-c", "drv.c", "-o", "drv.obj"], cwd=folder, check=True)
    subprocess.run(["lld-link", "/driver", "/subsystem:native", "/entry:DriverEntry",
                    "/nodefaultlib", "/debug", f"/pdb:{name}.pdb", f"/out:{name}.sys",
                    "drv.obj"], cwd=folder, check=True, capture_output=True)
    return folder / f"{name}.sys", folder / f"{name}.pdb"


def function_rvas(pdb: Path) -> dict[str, int]:
    """Function name -> RVA, as the PDB says."""
    from symbolic import Archive

    cache = next(Archive.open(str(pdb)).iter_objects()).make_symcache()
    out = {}
    for rva in range(0x1000, 0x1100):
        for hit in cache.lookup(rva):
            out.setdefault(hit.symbol.split("(")[0], int(hit.sym_addr))
    return out
