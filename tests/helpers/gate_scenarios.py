"""One nightly test case as a scenario, recordable again with other times, pids and addresses.

``nightly_case()`` is a driver that handles a few requests cleanly and leaks one user
mapping (and its lock) at process exit: a non-empty baseline. ``worse=True`` adds a new
hazard: an MDL unlocked from a System worker thread while still mapped into the app
(UNLOCK_WHILE_USER_MAPPED, critical). ``shift_ns`` / ``pid_base`` / ``addr_shift``
re-record the same story elsewhere in time, with other pids/tids and other addresses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traceanalyzer.synth.scenario import Scenario

MDL_BASE = 0xFFFFC30A4B2F0000
KVA_BASE = 0xFFFFB00012340000
UVA_BASE = 0x000001F000000000


def nightly_case(
    shift_ns: int = 0,
    pid_base: int = 1000,
    addr_shift: int = 0,
    worse: bool = False,
    requests: int = 3,
    image: str = "app.exe",
) -> Scenario:
    """The scenario (see the module docstring); addresses shift by whole pages."""
    assert addr_shift % 0x1000 == 0
    s = Scenario(driver="mydriver.sys")
    s.at(shift_ns)
    worker = s.system_thread(tid=pid_base + 88)
    app = s.at(shift_ns + 100_000).process(pid=pid_base + 234, image=image, tid=pid_base + 5678)
    t = shift_ns + 1_000_000
    for i in range(requests):  # clean: lock, kernel map, unmap, unlock, free
        mdl, va = MDL_BASE + addr_shift + i * 0x1000, UVA_BASE + addr_shift + i * 0x100000
        s.at(t).allocate_mdl(app, mdl=mdl, va=va, size=8192)
        s.at(t + 10_000).probe_and_lock(app, mdl=mdl)
        s.at(t + 20_000).map_kernel(app, mdl=mdl, mapped_va=KVA_BASE + addr_shift + i * 0x10000)
        s.at(t + 30_000).unmap(app, mdl=mdl, mapped_va=KVA_BASE + addr_shift + i * 0x10000)
        s.at(t + 40_000).unlock(app, mdl=mdl)
        s.at(t + 50_000).free_mdl(app, mdl=mdl)
        t += 1_000_000
    # the known problem, in the baseline: a user mapping (and its lock) left at exit
    leak = MDL_BASE + addr_shift + 0x80000
    s.at(t).allocate_mdl(app, mdl=leak, va=UVA_BASE + addr_shift + 0x8000000, size=8192)
    s.at(t + 10_000).probe_and_lock(app, mdl=leak)
    s.at(t + 20_000).map_user(app, mdl=leak, mapped_va=UVA_BASE + addr_shift + 0x9000000)
    t += 1_000_000
    if worse:  # the regression: unlocked by a worker while still mapped into the app
        bad = MDL_BASE + addr_shift + 0x90000
        s.at(t).allocate_mdl(app, mdl=bad, va=UVA_BASE + addr_shift + 0xA000000, size=4096)
        s.at(t + 10_000).probe_and_lock(app, mdl=bad)
        s.at(t + 20_000).map_user(app, mdl=bad, mapped_va=UVA_BASE + addr_shift + 0xB000000,
                                  caller="mydriver.sys+0x4242")
        s.at(t + 500_000).unlock(worker, mdl=bad, caller="mydriver.sys+0x4343")
        t += 1_000_000
    s.at(t).process_end(app)
    return s


def write_case(path: Path, **kwargs) -> Path:
    """Write ``nightly_case(**kwargs)`` as canonical CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return nightly_case(**kwargs).to_csv(path)


def check_after_damage(tmp_path: Path, name: str, good: bytes, damaged: bytes,
                       capsys: Any) -> tuple[int, str, str, int]:
    """``check`` of a folder holding ``name``: a baseline made from ``good``, then the file
    replaced by ``damaged`` and checked against it. Returns (exit code, stdout, stderr,
    exit code with ``--allow-loss``)."""
    from traceanalyzer.cli.main import main

    nightly = tmp_path / "nightly"
    nightly.mkdir()
    (nightly / name).write_bytes(good)
    base = tmp_path / "b.json"
    assert main(["check", str(nightly), "--baseline", str(base), "--update-baseline", "-j", "1"]) == 0
    (nightly / name).write_bytes(damaged)
    capsys.readouterr()
    code = main(["check", str(nightly), "--baseline", str(base), "-j", "1", "--no-cache"])
    captured = capsys.readouterr()
    allowed = main(["check", str(nightly), "--baseline", str(base), "-j", "1", "--allow-loss", "--no-cache"])
    capsys.readouterr()
    return code, captured.out, captured.err, allowed
