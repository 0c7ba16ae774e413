"""One progress display for long work (training epochs, scored checkpoints, runs of a sweep).

On a terminal: a `rich <https://rich.readthedocs.io>`_ bar on stderr with the count, elapsed time
and ETA, the current phase ("compiling ...") in its description and messages printed above it.
Not on a terminal (a log file, a pipe, CI): plain timestamped lines, at most one every
``min_interval`` seconds for counted progress plus the last one, each with its ETA. Off with
``quiet`` (``-q``): then only errors and warnings reach stderr. ``NO_COLOR`` removes colour only.

Library code reports through a plain callback ``say(message)``; counted progress goes through
:func:`advance`, which shows a bar when ``say`` is a :class:`Progress` and one line otherwise, so a
caller's own callback (``print``, a logger) keeps working.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

Say = Callable[[str], None]


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counted progress with ETA on ``stream`` (default stderr); also a ``say(message)`` callback.

    ``what`` names the work (``"training"``, ``"scoring"``). ``terminal`` defaults to whether the
    stream is a tty. Elapsed time counts from creation; the ETA from the first counted item on, so
    a compile before it does not distort it.
    """

    def __init__(self, what: str, *, stream: TextIO | None = None, terminal: bool | None = None,
                 min_interval: float = 2.0):
        self.what, self.stream = what, stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.min_interval = min_interval
        self._bar = self._task = None
        self._created, self._first = time.perf_counter(), None
        self._last_line = -1e9
        self._phase = ""

    # -- the say(message) protocol ---------------------------------------------------------
    def __call__(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()

    def phase(self, text: str) -> None:
        """The work's current phase (e.g. compiling): the bar's description, or one plain line."""
        self._phase = text
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.what}: {text}")
        else:
            self(f"{self.what}: {text}")

    # -- counted progress ------------------------------------------------------------------
    def update(self, done: int, total: int, info: str = "", unit: str | None = None) -> None:
        """``done`` of ``total`` finished; ``info`` describes the last one; ``unit`` names what is
        counted in plain lines (default: the work's name)."""
        now = time.perf_counter()
        if self._first is None:  # rate from the first finished item on (a compile is not the rate)
            self._first = (done, now)
        if self.terminal:
            self._rich(done, total, info)
        elif done >= total or now - self._last_line >= self.min_interval:
            self._last_line = now
            eta = self.eta(done, total, now)
            tail = f"  [{_clock(now - self._created)} elapsed" + (f", ETA {_clock(eta)}]" if eta is not None else "]")
            self(f"{unit or self.what} {done}/{total}  {info}{tail}")

    def eta(self, done: int, total: int, now: float | None = None) -> float | None:
        """Seconds left at the rate since the first counted item; None before there is a rate."""
        if self._first is None:
            return None
        d0, t0 = self._first
        now = time.perf_counter() if now is None else now
        if done <= d0 or now <= t0:
            return None
        return (total - done) * (now - t0) / (done - d0)

    def _rich(self, done: int, total: int, info: str) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"),
                            console=Console(file=self.stream, force_terminal=True, no_color=bool(os.environ.get("NO_COLOR"))),
                            transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=total, completed=0, info="")
        self._bar.update(self._task, total=total, completed=done, info=info, description=self.what)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Ends the display (the bar stays on screen as its last state)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def advance(say: Say | None, done: int, total: int, info: str, unit: str = "") -> None:
    """Counted progress through a ``say`` callback: a bar for a :class:`Progress`, one line
    (``UNIT DONE/TOTAL  INFO``) for any other callable."""
    if say is None:
        return
    if isinstance(say, Progress):
        say.update(done, total, info, unit=unit or None)
    else:
        say(f"{unit} {done}/{total}  {info}".lstrip())


def phase(say: Say | None, text: str) -> None:
    """A named phase (compiling ...) through a ``say`` callback."""
    if say is None:
        return
    if isinstance(say, Progress):
        say.phase(text)
    else:
        say(text)


def progress(what: str, *, quiet: bool = False) -> Progress | None:
    """The command lines' progress: a :class:`Progress` on stderr (without colour under NO_COLOR),
    or None with ``-q``."""
    if quiet:
        return None
    return Progress(what)
