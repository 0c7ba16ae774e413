"""Seeds by need: a fixed budget of students, a second seed only where the top two are not separated."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from gatekit.errors import GatekitError
from gatekit.racing.base import Measurement, Results, Strategy, best_later, check_int, last_steps, score
from gatekit.racing.verdict import SEED_CORRELATION, paired_noise


@dataclasses.dataclass(frozen=True)
class ByNeed(Strategy):
    """``n`` full students in all. One seed on each of the last ``k`` checkpoints; then,
    one student at a time: where the best two (by mean; ties: the later) are not separated (their
    gap is under twice the noise of a *paired* gap, :func:`gatekit.racing.verdict.paired_noise`,
    with the students' correlation ``rho`` across checkpoints) and one of them has a single seed, a
    second seed there (the better first); else one seed on the next earlier checkpoint. The pick:
    the best mean (ties: the later); its first student is kept. Declared 2026-12-06 before it was
    scored on the dataset (issue 43)."""

    n: int = 6
    k: int = 4
    epochs: int = 8
    rho: float = SEED_CORRELATION
    name = "by-need"

    def __post_init__(self):
        self.check_fields()
        check_int(self.n, "--students", 1, 1000)
        check_int(self.k, "--last", 1, self.n)
        if isinstance(self.rho, bool) or not isinstance(self.rho, (int, float)) or not -1 < self.rho < 1:
            raise GatekitError(f"rho must be in (-1, 1), got {self.rho!r}")

    def candidates(self, steps: Sequence[int]) -> list[int]:
        """The most checkpoints it can reach: every student on its own checkpoint."""
        return last_steps(steps, self.n)

    @property
    def text(self) -> str:
        return (f"{self.n} full students: one on each of the last {self.k} checkpoints, then a second "
                f"seed where the best two are not separated (paired), else an earlier checkpoint")

    def _plan(self, steps: Sequence[int], results: Results) -> list[Measurement]:
        steps = [int(s) for s in steps]
        plan = [Measurement(s, 0, self.epochs) for s in steps[-self.k:]]
        while True:
            if any(m not in results for m in plan) or len(plan) >= self.n:
                return plan
            nxt = self._next(steps, plan, results)
            if nxt is None:
                return plan
            plan.append(nxt)

    @staticmethod
    def _seeds(plan) -> dict[int, list[int]]:
        """The seed indices planned at each step."""
        by_step: dict[int, list[int]] = {}
        for m in plan:
            by_step.setdefault(m.step, []).append(m.seed)
        return by_step

    def _next(self, steps, plan, results) -> Measurement | None:
        by_step = self._seeds(plan)
        cands = sorted(by_step)
        means = [score(results, s, by_step[s], self.epochs) for s in cands]
        order = sorted(range(len(cands)), key=lambda i: (means[i], i), reverse=True)[:2]
        top = [cands[i] for i in order]
        if len(top) == 2 and all(math.isfinite(means[i]) for i in order):
            a, b = top
            common = sorted(set(by_step[a]) & set(by_step[b]))
            gap = score(results, a, common, self.epochs) - score(results, b, common, self.epochs)
            noise = paired_noise(max(means[order[0]], 0.0), len(common), self.rho)
            if not gap > 2 * noise:
                for s in top:
                    if len(by_step[s]) < 2:
                        return Measurement(s, 1, self.epochs)
        earlier = [s for s in steps if s < cands[0]]
        if earlier:
            return Measurement(earlier[-1], 0, self.epochs)
        for s in top:  # no earlier checkpoint left: a second seed at the best two
            if len(by_step[s]) < 2:
                return Measurement(s, 1, self.epochs)
        return None

    def needs(self, steps: Sequence[int], results: Results) -> list[Measurement]:
        return self._plan(steps, results)

    def pick(self, steps: Sequence[int], results: Results) -> int | None:
        plan = self._plan(steps, results)
        if any(m not in results for m in plan):
            return None
        by_step = self._seeds(plan)
        cands = sorted(by_step)
        i = best_later([score(results, s, by_step[s], self.epochs) for s in cands])
        return None if i is None else list(steps).index(cands[i])

    def compared(self, steps, results):
        out = {}
        for m in sorted(self._plan(steps, results)):
            if m in results:
                out.setdefault(m.step, []).append(results[m])
        return out

    def most(self, steps: Sequence[int]) -> tuple[int, int]:
        n = min(self.n, 2 * len(steps))
        return n, n * self.epochs

