"""Successive halving in student epochs over the run's last ``k`` checkpoints."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from gatekit.errors import GatekitError
from gatekit.racing.base import Measurement, Results, Strategy, check_int, score


@dataclasses.dataclass(frozen=True)
class Halving(Strategy):
    """Every candidate's students (``seeds`` each, paired) train to the first rung's epoch; the
    better half (by mean, ties: the later checkpoint; a failed student drops its candidate) go on
    to the next rung, and so on; at the last rung, the full budget ``epochs``, the best is picked.
    A trainer that resumes (the student folder is the same at every rung) pays only the extra
    epochs. On the dataset, the last 4 at epochs 2 then 8 chose right on 0.66 (6.7%)."""

    k: int = 4
    rungs: tuple[int, ...] = (2,)
    """Epochs at which candidates are compared before the full budget."""
    seeds: int = 1
    epochs: int = 8
    name = "halving"

    def __post_init__(self):
        self.check_fields()
        rungs = tuple(int(check_int(r, "--rungs", 1, self.epochs)) for r in self.rungs)
        if list(rungs) != sorted(set(rungs)) or (rungs and rungs[-1] >= self.epochs):
            raise GatekitError(f"--rungs must rise and stay below --student-epochs ({self.epochs}), got {list(rungs)}")
        object.__setattr__(self, "rungs", rungs)

    @property
    def all_rungs(self) -> tuple[int, ...]:
        return (*self.rungs, self.epochs)

    @property
    def text(self) -> str:
        return (f"successive halving over the last {self.k} checkpoints at student epochs "
                f"{'/'.join(map(str, self.all_rungs))}")

    def _walk(self, steps: Sequence[int], results: Results):
        """(measurements needed now, the alive candidates at the last rung reached, that rung)."""
        alive = self.candidates(steps)
        for j, e in enumerate(self.all_rungs):
            want = [Measurement(s, k, e) for s in alive for k in range(self.seeds)]
            if any(m not in results for m in want):
                return want, alive, e
            if j == len(self.all_rungs) - 1:
                return [], alive, e
            x = {s: score(results, s, range(self.seeds), e) for s in alive}
            order = sorted(alive, key=lambda s: (x[s], s), reverse=True)
            alive = sorted(order[:max(1, -(-len(alive) // 2))])
        raise AssertionError("unreachable")

    def needs(self, steps: Sequence[int], results: Results) -> list[Measurement]:
        return self._walk(steps, results)[0]

    def pick(self, steps: Sequence[int], results: Results) -> int | None:
        need, alive, e = self._walk(steps, results)
        if need or e != self.epochs:
            return None
        x = {s: score(results, s, range(self.seeds), e) for s in alive}
        best = max(alive, key=lambda s: (x[s], s))
        return None if x[best] == -float("inf") else list(steps).index(best)

    def most(self, steps: Sequence[int]) -> tuple[int, int]:
        n, done, epochs = len(self.candidates(steps)), 0, 0
        students = n * self.seeds
        for e in self.all_rungs:
            epochs += n * self.seeds * (e - done)
            done, n = e, max(1, -(-n // 2))
        return students, epochs
