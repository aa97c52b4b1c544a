"""Long ETL mutation campaign: mutated ETL files through ``ta.load`` + ``ta.analyze``.

    python benchmarks/fuzz_campaign.py --cases 50000            # all cores
    nice -n 19 python benchmarks/fuzz_campaign.py --cases 10000 --workers 1 --json out.json

Each case is one seed ETL file (``sample_traces/*.etl`` and ``tests/data/real/**/*.etl``
unless ``--seeds``) with a few random byte edits (overwrite with random or boundary
values, insert, delete, truncate, a 32-bit field set to an extreme), made
deterministically from ``--seed`` and the case number, read leniently and analysed in a
worker process with a CPU-time limit per case (``--timeout``) and an address-space limit
(``--memory-mb``, default 1 GiB, above the worker's size after warm-up). A hung or killed worker is
replaced and fails only its own case. Outcomes are counted by class:

- ``ok``: loaded and analysed; ``ok_fewer_events_counted`` / ``ok_fewer_events_uncounted``
  split out the cases that produced fewer events than their seed, by whether any counter
  (``truncated_file``, ``corrupt_buffers``, ``truncated_records``, ``unknown_events``...,
  every stat but the ``events``/``rows`` sizes) is higher than the seed's: an event that
  went missing must show somewhere (tests/core/test_fuzz_pipeline.py asserts the same);
- ``trace_error:<class>``: a ``TraceError`` (the contract's clean failure);
- ``internal_error:<type> at <file:line>``, ``timeout``, ``memory``, ``crash:<exit code>``:
  contract violations (the exit code is 1 when there is any). ``--keep DIR`` writes up to 20
  files per such class for reproduction (``case_bytes`` regenerates any case from its number).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VIOLATIONS = ("internal_error", "timeout", "memory", "crash")
_EXTREMES = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def default_seeds() -> list[Path]:
    return sorted((ROOT / "sample_traces").glob("*.etl")) + sorted((ROOT / "tests" / "data" / "real").rglob("*.etl"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few byte edits; biased towards the first buffers' headers, where ETL keeps sizes."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buf:
            break
        n = len(buf)
        at = rng.randrange(min(n, 4096)) if rng.random() < 0.4 else rng.randrange(n)
        kind = rng.random()
        if kind < 0.35:
            buf[at:at + 1] = bytes([rng.randrange(256)])
        elif kind < 0.6:
            at -= at % 4
            buf[at:at + 4] = rng.choice(_EXTREMES).to_bytes(4, "little")
        elif kind < 0.7:
            buf[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind < 0.8:
            del buf[at:at + rng.randint(1, 4096)]
        elif kind < 0.9:
            buf[at:at + 8] = rng.randbytes(8)
        else:
            del buf[max(at, 1):]
    return bytes(buf)


def case_bytes(seeds: list[bytes], base_seed: int, case: int) -> tuple[int, bytes]:
    rng = random.Random(base_seed * 1_000_003 + case)
    k = rng.randrange(len(seeds))
    return k, mutate(seeds[k], rng)


#: Counters of size, not of loss: "a counter moved" looks at every other one.
_SIZE_COUNTERS = frozenset({"events", "rows"})


def _counters(trace: Any) -> dict[str, int]:
    return {e.name: trace.stats.total(e.name) for e in trace.stats.entries.values() if e.name not in _SIZE_COUNTERS}


def analyse(path: Path) -> tuple[int, dict[str, int]]:
    """(events, counters) of one file through load + analyze + summary."""
    import traceanalyzer as ta

    trace = ta.load(path)
    analysis = ta.analyze(trace)
    analysis.findings
    analysis.summary()
    return int(trace.events.shape[0]), _counters(trace)


def _baseline(path: Path) -> tuple[int, dict[str, int]]:
    """A seed's figures; a seed the pipeline cannot analyse is reported and left out."""
    try:
        return analyse(path)
    except Exception as exc:  # noqa: BLE001
        raise SystemExit(f"seed {path} does not load and analyse: {type(exc).__name__}: {exc}") from None


def _where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "traceanalyzer" in f.filename]
    f = frames[-1] if frames else (traceback.extract_tb(exc.__traceback__) or [None])[-1]
    return f"{Path(f.filename).name}:{f.lineno}" if f is not None else "?"


class CpuTimeout(Exception):
    """The case used up its CPU seconds (SIGXCPU)."""


def _on_xcpu(_sig: int, _frame: Any) -> None:
    raise CpuTimeout()


def worker(conn: Connection, seed_paths: list[str], base_seed: int, memory_mb: int, tmp: str,
           timeout: float) -> None:
    from traceanalyzer.errors import TraceError

    seeds = [Path(p).read_bytes() for p in seed_paths]
    analyse(Path(seed_paths[0]))  # warm-up: imports, numba caches
    if memory_mb > 0:
        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = size + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    path = Path(tmp) / f"case-{os.getpid()}.etl"
    signal.signal(signal.SIGXCPU, _on_xcpu)
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        case = conn.recv()
        if case is None:
            return
        k, data = case_bytes(seeds, base_seed, case)
        path.write_bytes(data)
        # the time limit is CPU seconds, so a busy machine does not make slow cases "hang"
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + timeout) + 1
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard_cpu))
            events, loss = analyse(path)
            result: tuple[Any, ...] = ("ok", k, events, loss)
        except CpuTimeout:
            result = ("timeout", k)
        except TraceError as exc:
            result = (f"trace_error:{type(exc).__name__}", k)
        except MemoryError:
            result = ("memory", k)
        except Exception as exc:  # noqa: BLE001 - the point is to count these
            result = (f"internal_error:{type(exc).__name__} at {_where(exc)}", k, str(exc)[:200])
        finally:
            try:
                resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, hard_cpu))
            except CpuTimeout:  # the limit was reached just as the case ended
                resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, hard_cpu))
        conn.send(result)


class Slot:
    """One worker process and the case it is on."""

    def __init__(self, args: argparse.Namespace, seeds: list[str], tmp: str) -> None:
        self.args, self.seeds, self.tmp = args, seeds, tmp
        self.case: int | None = None
        self.deadline = 0.0
        self.start()

    def start(self) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(target=worker, args=(child, self.seeds, self.args.seed, self.args.memory_mb, self.tmp,
                                                    self.args.timeout), daemon=True)
        self.proc.start()
        child.close()

    def give(self, case: int, timeout: float) -> None:
        self.case = case
        self.deadline = time.monotonic() + timeout
        self.conn.send(case)

    def restart(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()
        self.start()


def run(args: argparse.Namespace) -> dict[str, Any]:
    seed_paths = [str(p) for p in (args.seeds or default_seeds())]
    seeds = [Path(p).read_bytes() for p in seed_paths]
    baseline = [_baseline(Path(p)) for p in seed_paths]
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    keep = Path(args.keep) if args.keep else None
    kept: Counter[str] = Counter()
    started = time.monotonic()
    stop = []  # SIGINT / SIGTERM: finish with the figures of the cases done so far
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    warmup_s = 300.0  # the first case of a worker includes its warm-up (imports, numba)
    wall = args.timeout * 20  # wall-clock backstop; the limit that counts is CPU seconds (worker)
    with tempfile.TemporaryDirectory(prefix="ta-fuzz-") as tmp:
        slots = [Slot(args, seed_paths, tmp) for _ in range(args.workers)]
        next_case, done = 0, 0
        for slot in slots:
            if next_case < args.cases:
                slot.give(next_case, wall + warmup_s)
                next_case += 1
        while done < next_case and not stop:
            busy = [s for s in slots if s.case is not None]
            now = time.monotonic()
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy],
                         timeout=max(0.0, min(s.deadline for s in busy) - now))
            for slot in busy:
                outcome: str | None = None
                detail = ""
                if slot.conn in ready and slot.conn.poll():
                    try:
                        result = slot.conn.recv()
                    except (EOFError, OSError):
                        result = None
                    if result is not None:
                        outcome = result[0]
                        if outcome == "ok":
                            _k, events, counts_now = result[1:]
                            seed_events, seed_counts = baseline[_k]
                            if events < seed_events:
                                moved = any(v > seed_counts.get(name, 0) for name, v in counts_now.items())
                                outcome = "ok_fewer_events_counted" if moved else "ok_fewer_events_uncounted"
                        elif len(result) > 2:
                            detail = result[2]
                        fresh = False
                    else:
                        outcome, fresh = f"crash:{slot.proc.exitcode}", True
                elif slot.proc.sentinel in ready or not slot.proc.is_alive():
                    slot.proc.join()
                    outcome = "memory" if slot.proc.exitcode in (-9,) else f"crash:{slot.proc.exitcode}"
                    fresh = True
                elif time.monotonic() > slot.deadline:  # no answer even in wall time: hung outside Python
                    outcome, fresh = "timeout", True
                if outcome is None:
                    continue
                case = slot.case
                assert case is not None
                counts[outcome] += 1
                done += 1
                if outcome.split(":")[0] in VIOLATIONS + ("ok_fewer_events_uncounted",):
                    examples.setdefault(outcome, f"case {case}{': ' + detail if detail else ''}")
                    if keep is not None and kept[outcome] < 20:  # a few of each class
                        kept[outcome] += 1
                        keep.mkdir(parents=True, exist_ok=True)
                        (keep / f"case-{case}.etl").write_bytes(case_bytes(seeds, args.seed, case)[1])
                if fresh:
                    slot.restart()
                slot.case = None
                if next_case < args.cases and not stop:
                    slot.give(next_case, wall + (warmup_s if fresh else 0.0))
                    next_case += 1
                if args.progress and done % args.progress == 0:
                    print(f"{done}/{args.cases} {dict(counts)}", file=sys.stderr, flush=True)
        for slot in slots:
            if slot.case is not None:  # stopped early: its case is not counted
                slot.proc.kill()
                slot.proc.join()
                continue
            if slot.proc.is_alive():
                slot.conn.send(None)
                slot.proc.join(5)
                if slot.proc.is_alive():
                    slot.proc.kill()
    elapsed = time.monotonic() - started
    violations = sum(v for k, v in counts.items() if k.split(":")[0] in VIOLATIONS)
    return {"cases": done, "stopped_early": done < args.cases, "seed": args.seed, "seeds": len(seed_paths), "workers": args.workers,
            "timeout_s": args.timeout, "memory_mb": args.memory_mb, "elapsed_s": round(elapsed, 1),
            "cases_per_s": round(done / elapsed, 2) if elapsed else None,
            "outcomes": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "violations": violations, "examples": examples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=50000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="CPU seconds per case (default 30; 20x that in wall time is the backstop)")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="address space a worker may add after warm-up (default 1024; 0 = no limit)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (cases are reproducible from it)")
    p.add_argument("--seeds", nargs="*", type=Path, help="seed ETL files (default: sample_traces, tests/data/real)")
    p.add_argument("--keep", help="write the files of contract-violating cases to this folder")
    p.add_argument("--json", help="also write the figures as JSON to this file")
    p.add_argument("--progress", type=int, default=0, help="print counts every N cases (stderr)")
    args = p.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
