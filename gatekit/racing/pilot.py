"""Pilot students: short distillations from the last ``k`` checkpoints, the earliest good one picked."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from gatekit.errors import GatekitError
from gatekit.racing.base import Measurement, Results, Strategy, score
from gatekit.transforms import dips


@dataclasses.dataclass(frozen=True)
class Pilot(Strategy):
    """``seeds`` pilots of ``pilot_epochs`` (``fraction`` of the full budget) on each of the last
    ``k`` checkpoints; the pick is the earliest whose mean reaches ``of_best`` x the best pilot and
    is not a transient collapse (a dip below both neighbours); where no pilot learned anything (the
    best <= 0), the final checkpoint, as ``select`` answers where its rule never holds. Its student
    is a pilot, not a full student: nothing is kept. On the dataset, pilots of 25% on the last 3 chose right on 0.58."""

    k: int = 3
    fraction: float = 0.25
    of_best: float = 0.9
    seeds: int = 1
    epochs: int = 8
    name = "pilot"

    def __post_init__(self):
        self.check_fields()
        for v, what in ((self.fraction, "--fraction"), (self.of_best, "--of-best")):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise GatekitError(f"{what} must be in (0, 1], got {v!r}")

    @property
    def pilot_epochs(self) -> int:
        return max(1, int(math.floor(self.fraction * self.epochs + 0.5)))

    @property
    def text(self) -> str:
        return (f"pilots of {self.pilot_epochs} of {self.epochs} epochs on the last {self.k} checkpoints, the earliest "
                f"within {self.of_best:g} x the best")

    def needs(self, steps: Sequence[int], results: Results) -> list[Measurement]:
        return [Measurement(s, j, self.pilot_epochs) for s in self.candidates(steps) for j in range(self.seeds)]

    def pick(self, steps: Sequence[int], results: Results) -> int | None:
        cands = self.candidates(steps)
        means = np.array([score(results, s, range(self.seeds), self.pilot_epochs) for s in cands])
        if np.isnan(means).any() or not np.isfinite(means).any():
            return None
        best = float(np.max(means[np.isfinite(means)]))
        if best <= 0:  # no pilot learned anything: they separate nothing, so the final checkpoint (as select)
            return len(steps) - 1
        ok = (means >= self.of_best * best) & ~dips(np.where(np.isfinite(means), means, -1e300))
        return None if not ok.any() else len(steps) - len(cands) + int(np.flatnonzero(ok)[0])

    def kept(self, steps, results):
        return None  # a pilot is not a student to keep

    def compared(self, steps, results):
        return {s: [results[m] for m in sorted(results) if m.step == s and m.epochs == self.pilot_epochs]
                for s in self.candidates(steps) if any(m.step == s for m in results)}

    def most(self, steps: Sequence[int]) -> tuple[int, int]:
        n = len(self.candidates(steps)) * self.seeds
        return n, n * self.pilot_epochs
