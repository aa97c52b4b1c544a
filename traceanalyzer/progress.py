"""Progress display for long reads and replays, as a callback the library can call.

The library never prints: it accepts a ``progress`` callable, called as
``progress(done, total)`` (units of the caller's choosing, e.g. bytes read; ``total``
may be 0 or None when unknown). The CLI builds one with :func:`make_progress`: a tqdm
bar on stderr when it is a terminal, a silent no-op otherwise or with ``quiet=True``.

>>> with make_progress("reading", quiet=True) as progress:
...     progress(10, 100)
"""

from __future__ import annotations

import sys
from typing import IO, Any


class NullProgress:
    """Does nothing: for pipes, CI logs and ``--quiet``."""

    enabled = False

    def __call__(self, done: int, total: int | None = None) -> None:
        """Ignore an update."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TqdmProgress:
    """A tqdm bar fed with absolute ``(done, total)`` updates.

    A call whose ``done`` goes backwards or whose ``total`` changes starts a new pass
    (e.g. the next file of a multi-file load): the bar is reset, not corrupted.
    """

    enabled = True

    def __init__(self, label: str, stream: IO[str], unit: str = "B",
                 unit_scale: bool = True, **tqdm_options: Any) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=None, desc=label, unit=unit, unit_scale=unit_scale,
                         unit_divisor=1024 if unit == "B" else 1000, file=stream,
                         leave=False, dynamic_ncols=True, mininterval=0.2, **tqdm_options)
        self._done = 0
        self._total: int | None = None

    def __call__(self, done: int, total: int | None = None) -> None:
        """Move the bar to ``done`` of ``total``."""
        total = int(total) if total else None
        done = int(done)
        if total != self._total or done < self._done:
            self._bar.reset(total=total)
            self._total = total
            self._done = 0
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def close(self) -> None:
        """Remove the bar from the terminal."""
        self._bar.close()

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed stream
        return False


def make_progress(label: str = "", quiet: bool = False, stream: IO[str] | None = None,
                  unit: str = "B", force: bool = False) -> TqdmProgress | NullProgress:
    """A progress callback for the library: ``progress(done, total)``.

    A tqdm bar labelled ``label`` on ``stream`` (default stderr) when that stream is a
    terminal (or ``force``), silent when it is not or when ``quiet``. ``unit`` names
    what ``done`` counts (``'B'`` for bytes, ``'ev'`` for events).
    """
    stream = sys.stderr if stream is None else stream
    if quiet or not (force or is_terminal(stream)):
        return NullProgress()
    return TqdmProgress(label, stream, unit=unit, unit_scale=True)
