"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives. When
that is inside a garbage-collector callback (JAX registers one, ``_xla_gc_callback``) or a
finalizer, Python prints ``Exception ignored in ...`` and carries on: the Ctrl-C is lost and a
training run trains on (seen in about 1 cold-cache run in 6). :func:`catch_ctrl_c` installs a
SIGINT handler that raises as usual *and* remembers the signal; long loops call :func:`check`
at safe points (every epoch, every checkpoint scored), which raises KeyboardInterrupt again if
the signal arrived. It also stops worker threads (``run_jobs`` with threads) at their next
epoch, where a KeyboardInterrupt in the main thread alone would wait for every running run.

Both command lines install the handler (:func:`gatekit.cli_common.run_app`); Python callers may
wrap their own code in ``with catch_ctrl_c():``. Without it :func:`check` does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

_received = threading.Event()


def _handler(signum, frame) -> None:
    _received.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def catch_ctrl_c() -> Iterator[None]:
    """Within the block, a Ctrl-C (SIGINT) raises KeyboardInterrupt and is remembered for
    :func:`check`. Only the main thread can install a handler; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _handler)
    unraisable = sys.unraisablehook

    def hook(u) -> None:  # the swallowed KeyboardInterrupt is raised again at the next check()
        if not isinstance(u.exc_value, KeyboardInterrupt):
            unraisable(u)

    sys.unraisablehook = hook
    _received.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = unraisable
        _received.clear()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block a Ctrl-C is held back and delivered when the block ends, to the handler
    that was in place (so inside :func:`catch_ctrl_c` it is also remembered for :func:`check`).
    For work that must not be cut in half: a checkpoint save, whose Orbax background thread was
    left writing while the interpreter shut down (a lost checkpoint, and sometimes a hang at exit).
    If the block raises, that exception propagates and the Ctrl-C is only remembered. Only the
    main thread receives signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if got and previous is _handler:
            _received.set()
    if got:
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C arrived inside :func:`catch_ctrl_c` (in any thread)."""
    if _received.is_set():
        raise KeyboardInterrupt
