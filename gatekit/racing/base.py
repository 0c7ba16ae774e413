"""What every racing strategy shares: a measurement, the results so far, and the pick.

A *strategy* proposes measurements and decides from their results; it never trains anything.
A *measurement* is one student distilled from one candidate checkpoint with one seed for some
epochs, and its result is one number (the student's outcome; None when it failed). A strategy is
a pure function of the results that exist: :meth:`Strategy.needs` says which measurements it
wants given those results (the engine trains the missing ones, then asks again, until nothing is
missing), and :meth:`Strategy.pick` names the checkpoint. So the same object runs live (any
trainer, any executor: :mod:`gatekit.racing.engine`), resumes from the result files a killed race
left, and replays the gate benchmark's dataset (:class:`gatekit.racing.trainers.ReplayTrainer`).

>>> from gatekit.racing import LastK
>>> s = LastK(k=2, seeds=1, epochs=8)
>>> s.needs([10, 20, 30], {})
[Measurement(step=20, seed=0, epochs=8), Measurement(step=30, seed=0, epochs=8)]
>>> s.pick([10, 20, 30], {Measurement(20, 0, 8): 0.7, Measurement(30, 0, 8): 0.5})
1
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

from gatekit.errors import GatekitError

Results = Mapping["Measurement", "float | None"]


@dataclasses.dataclass(frozen=True, order=True)
class Measurement:
    """One student: distilled from the checkpoint at ``step`` with seed index ``seed`` (0, 1, ...:
    the same index is the same seed at every checkpoint, so comparisons are paired) for ``epochs``
    epochs."""

    step: int
    seed: int
    epochs: int

    @property
    def name(self) -> str:
        """The result file's stem and the student folder's name (``step{S}_s{K}``; epochs apart)."""
        return f"step{self.step}_s{self.seed}"


def check_int(value, what: str, lo: int = 1, hi: int | None = None) -> int:
    """An int in [lo, hi]; GatekitError naming ``what`` otherwise (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise GatekitError(f"{what} must be an integer {bound}, got {value!r}")
    return int(value)


MAX_SEEDS = 64
"""The most seeds per candidate a race takes (more is a typo, not a plan: 64 already costs 64
students per checkpoint)."""
MAX_EPOCHS = 100_000


def last_steps(steps: Sequence[int], k: int) -> list[int]:
    """The last ``k`` of a run's checkpoint steps (all when fewer)."""
    return [int(s) for s in list(steps)[-k:]]


def score(results: Results, step: int, seeds: Sequence[int], epochs: int) -> float:
    """The mean outcome of ``step``'s students (seed indices ``seeds``, ``epochs`` long): NaN while
    one is missing, -inf when one failed (a failed candidate never wins)."""
    vals = []
    for k in seeds:
        m = Measurement(step, k, epochs)
        if m not in results:
            return math.nan
        v = results[m]
        if v is None or not math.isfinite(v):
            return -math.inf
        vals.append(float(v))
    return sum(vals) / len(vals) if vals else math.nan  # as np.mean for a few values, without its overhead


def best_later(values: Sequence[float]) -> int | None:
    """Index of the largest value (ties: the later), or None when none is finite."""
    x = np.asarray(values, dtype=float)
    if not np.isfinite(x).any():
        return None
    x = np.where(np.isfinite(x), x, -np.inf)
    return int(len(x) - 1 - np.argmax(x[::-1]))


class Strategy:
    """A measured rule. Subclasses are frozen dataclasses with ``epochs`` (a full student's
    epochs) and implement :meth:`needs` and :meth:`pick` as pure functions of ``steps`` (the run's
    checkpoint steps, ascending) and ``results``."""

    name = "strategy"
    epochs: int

    def check_fields(self) -> None:
        """The fields most strategies share, checked once: ``k`` (``--last``), ``seeds``, ``epochs``."""
        if hasattr(self, "k"):
            check_int(self.k, "--last")
        if hasattr(self, "seeds"):
            check_int(self.seeds, "--seeds", 1, MAX_SEEDS)
        check_int(self.epochs, "--student-epochs", 1, MAX_EPOCHS)

    def needs(self, steps: Sequence[int], results: Results) -> list[Measurement]:
        raise NotImplementedError

    def pick(self, steps: Sequence[int], results: Results) -> int | None:
        """Index into ``steps`` of the checkpoint to distill from (None: nothing measured well)."""
        raise NotImplementedError

    def most(self, steps: Sequence[int]) -> tuple[int, int]:
        """The most (students, student epochs) this strategy can ask for on a run with ``steps``:
        what a race will cost at worst, said before it starts."""
        raise NotImplementedError

    def kept(self, steps: Sequence[int], results: Results) -> Measurement | None:
        """The student to keep: the pick's first seed at the full budget (None if not trained)."""
        i = self.pick(steps, results)
        if i is None:
            return None
        m = Measurement(int(steps[i]), 0, self.epochs)
        return m if m in results else None

    def candidates(self, steps: Sequence[int]) -> list[int]:
        """The checkpoint steps this strategy may measure."""
        return last_steps(steps, getattr(self, "k", len(steps)))

    def compared(self, steps: Sequence[int], results: Results) -> dict[int, list[float | None]]:
        """Per candidate step, the full-budget outcomes measured (seed order): what a verdict and a
        printout compare."""
        out = {}
        for s in self.candidates(steps):
            vals = [results[m] for m in sorted(results) if m.step == s and m.epochs == self.epochs]
            if vals:
                out[s] = vals
        return out

    def describe(self) -> dict:
        return {"strategy": self.name, **dataclasses.asdict(self)}

    @property
    def text(self) -> str:
        raise NotImplementedError
