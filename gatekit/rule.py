"""The gate rule: the one place a statistic's value is compared with a threshold.

A rule ``metric direction threshold`` *passes* at a checkpoint when the value lies on the passing
side of the threshold:

* ``direction="below"`` (the paper's rule for ``action_magnitude``): ``value < threshold``;
* ``direction="above"``: ``value > threshold``.

A value that is not a finite number (NaN, inf, None: e.g. a drift statistic at a run's first
checkpoint) never passes. The gate *holds* once the rule has passed at ``patience`` consecutive
checkpoints; :func:`advance` is that count, as a pure function of the previous :class:`Streak`.
Online (stopping a teacher: the hook, ``watch``, ``--stop-at-gate``) a gate must be *crossed*: its
count starts only after a checkpoint at which the rule did not pass (``Streak(armed=False)``,
:func:`first_cross`), so a rule that already holds at a run's first checkpoint never stops it.
``select``, :class:`gatekit.hooks.GateHook`, ``watch`` and the trainer's ``--stop-at-gate`` all
go through this module, so a rule means the same thing everywhere.

>>> r = Rule("goal_rank", "above", 5.0, patience=2)
>>> s = Streak()
>>> for step, v in [(1, 6.0), (2, 4.0), (3, 6.0), (4, 7.0)]:
...     s = advance(s, step, v, r)
>>> s.count, s.held
(2, True)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from gatekit.errors import GatekitDeprecation, GatekitError

DIRECTIONS = ("below", "above")


def check_direction(direction: Any, allowed: tuple[str, ...] = DIRECTIONS, what: str = "direction") -> str:
    """``direction`` itself when it is one of ``allowed``; else GatekitError naming ``what``."""
    if not isinstance(direction, str) or direction not in allowed:
        raise GatekitError(f"{what} must be one of {allowed}, got {direction!r}")
    return direction


def check_number(value: Any, what: str = "threshold") -> float:
    """A finite float from an int or float (a bool is not a number here); else GatekitError."""
    if isinstance(value, (bool, str, bytes)):
        raise GatekitError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise GatekitError(f"{what} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise GatekitError(f"{what} must be finite, got {value!r}")
    return number


def check_patience(value: Any, what: str = "patience") -> int:
    """An integer >= 1 (consecutive checkpoints); else GatekitError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GatekitError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


MODE_ALIAS = ("mode (--mode, --gate-mode)", "direction (--direction, --gate-direction)")
"""The deprecated alias still accepted (kept for one release), and what replaces it."""


def alias(value: Any, old_value: Any, names: tuple[str, str] = MODE_ALIAS) -> Any:
    """The one shim for a deprecated alias: ``old_value`` when it was given (with a
    :class:`gatekit.errors.GatekitDeprecation` warning; the command lines print it), else ``value``.
    ``resolve_gate`` (so ``select``, ``plot``, ``--stop-at-gate``) and :class:`GateHook` use it."""
    if old_value is None:
        return value
    old, new = names
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  GatekitDeprecation, stacklevel=3)
    return old_value


def symbol(direction: str) -> str:
    """``"<"`` for below, ``">"`` for above (for messages)."""
    return "<" if check_direction(direction) == "below" else ">"


def oriented(values, direction: str) -> np.ndarray:
    """Values turned so that larger means "more past the gate" (``-values`` for below): the
    score a ROC curve ranks by, and the key for "most extreme" comparisons."""
    values = np.asarray(values, dtype=float)
    return -values if check_direction(direction) == "below" else values


def predict(values, threshold: float, direction: str = "below") -> np.ndarray:
    """1 where the rule passes, elementwise (NaN never passes), as an int array."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        hit = values < threshold if check_direction(direction) == "below" else values > threshold
    return hit.astype(int)


def passes(value: Any, threshold: float, direction: str = "below") -> bool:
    """Whether one value passes (None, strings, NaN and inf never do)."""
    check_direction(direction)
    if value is None or isinstance(value, (str, bool)):
        return False
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(v):
        return False
    return v < threshold if direction == "below" else v > threshold


def most_extreme(values, direction: str):
    """The value furthest on the passing side (min for below, max for above)."""
    return (min if check_direction(direction) == "below" else max)(values)


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """A checked rule: ``metric direction threshold`` held for ``patience`` checkpoints."""

    metric: str
    """The score-table column the rule reads (a :mod:`gatekit.statistics` name, eval_*, ...)."""
    direction: str
    """``below`` or ``above``: the passing side of the threshold."""
    threshold: float
    patience: int = 1
    """Consecutive passing checkpoints before the gate holds."""

    def __post_init__(self):
        if not isinstance(self.metric, str) or not self.metric:
            raise GatekitError(f"metric must be a column name, got {self.metric!r}")
        check_direction(self.direction)
        object.__setattr__(self, "threshold", check_number(self.threshold, "threshold"))
        object.__setattr__(self, "patience", check_patience(self.patience))

    @property
    def text(self) -> str:
        held = "" if self.patience == 1 else f" for {self.patience} consecutive checkpoints"
        return f"{self.metric} {symbol(self.direction)} {self.threshold:.4g}{held}"

    def passes(self, value: Any) -> bool:
        return passes(value, self.threshold, self.direction)


@dataclasses.dataclass(frozen=True, slots=True)
class Streak:
    """How many consecutive checkpoints have passed, up to and including ``last_step``."""

    count: int = 0
    last_step: int | None = None
    patience: int = 1
    armed: bool = True
    """False until a checkpoint at which the rule did not pass: only then do passes count (a gate
    that must be crossed, not merely hold). True by default (``select`` reads whole runs)."""

    @property
    def held(self) -> bool:
        return self.armed and self.count >= self.patience


def advance(streak: Streak, step: int, value: Any, rule: Rule) -> Streak:
    """The streak after one more checkpoint (a pure function: ``streak`` is not changed).

    A step at or before ``streak.last_step`` (replayed after a resume) is already counted and
    changes nothing; a value that does not pass resets the count.
    """
    if streak.last_step is not None and step <= streak.last_step:
        return streak
    passes = rule.passes(value)
    if not streak.armed:  # not crossed yet: a pass before any failure counts for nothing
        return Streak(count=0, last_step=int(step), patience=rule.patience, armed=not passes)
    count = streak.count + 1 if passes else 0
    return Streak(count=count, last_step=int(step), patience=rule.patience)


def first_hold(steps, values, rule: Rule, *, crossing: bool = False) -> int | None:
    """Index of the first checkpoint (in ``steps`` order, ascending) at which the gate holds; with
    ``crossing``, holds after a checkpoint at which it did not pass (:func:`first_cross`)."""
    s = Streak(patience=rule.patience, armed=not crossing)
    for i, (step, value) in enumerate(zip(steps, values)):
        s = advance(s, step, value, rule)
        if s.held:
            return i
    return None


def first_cross(steps, values, rule: Rule) -> int | None:
    """Index of the first checkpoint at which the gate holds having not held before: what stops a
    teacher online. None when it never goes from not passing to holding (e.g. it passes from the
    first checkpoint on).

    >>> r = Rule("action_magnitude", "below", 0.63)
    >>> first_hold([1, 2, 3], [0.2, 0.9, 0.5], r), first_cross([1, 2, 3], [0.2, 0.9, 0.5], r)
    (0, 2)
    """
    return first_hold(steps, values, rule, crossing=True)
