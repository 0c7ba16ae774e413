"""Rules that race full students from a run's checkpoints (choose only): students at the last K
(:class:`LastBest`), successive halving (:class:`Halving`) and an A-OPS-style GP race
(:class:`GPRace`). Each is fitted on training runs like any :class:`training.bench.methods.Method`
and judged by student seeds it did not read."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from training.bench.methods import Method, TeacherRun, _fairest


def replay_pick(strategy, run: TeacherRun, columns: dict[int, str]) -> int | None:
    """The pick of a :mod:`gatekit.racing` strategy (the object ``gatekit race`` runs) on one
    benchmarked run, replayed through :func:`gatekit.racing.replay` from the run's student columns:
    ``columns[epochs]`` is the prefix whose ``{prefix}_s{i}`` are seed i's outcomes after that many
    student epochs (the seeds this view of the run may read)."""
    from gatekit.racing import ReplayTrainer, replay

    key = ("replay", tuple(sorted(columns.items())))
    if key not in run._forms:  # once per run view: every fold and candidate rule replays the same outcomes
        run._forms[key] = ReplayTrainer(_outcomes(run, columns))
    pick_key = ("pick", strategy, key)
    if pick_key not in run._forms:  # a strategy is a pure function of the outcomes: replayed once per run view
        run._forms[pick_key] = replay(strategy, [int(x) for x in run.steps], run._forms[key])[0]
    return run._forms[pick_key]


def _outcomes(run: TeacherRun, columns: dict[int, str]) -> dict:
    outcomes = {}
    for epochs, prefix in columns.items():
        i = 0
        while f"{prefix}_s{i}" in run.columns:
            for c, step in enumerate(run.steps):
                v = run.columns[f"{prefix}_s{i}"][c]
                if np.isfinite(v):
                    outcomes[(int(step), i, int(epochs))] = float(v)
            i += 1
    return outcomes


def _seeds_in(run: TeacherRun, prefix: str) -> int:
    n = 0
    while f"{prefix}_s{n}" in run.columns:
        n += 1
    return n


@dataclasses.dataclass(frozen=True)
class LastBest:
    """Post hoc (choose): students measured at the last ``k`` checkpoints; the pick is the one
    whose students (``column``, e.g. the mean of the seeds read) score best (ties: the later):
    :class:`gatekit.racing.LastK`, replayed (:func:`replay_pick`)."""

    column: str
    k: int

    @property
    def text(self) -> str:
        return f"the best {self.column} of the last {self.k} checkpoints"

    def pick(self, run: TeacherRun) -> int | None:
        from gatekit.racing import LastK

        prefix = self.column.removesuffix("_mean")
        seeds = _seeds_in(run, prefix)
        if not seeds:
            return None
        return replay_pick(LastK(k=self.k, seeds=seeds, epochs=1), run, {1: prefix})


def measured_method(name: str, column: str, *, uses: int, student_epochs: int, k: int | None = None,
                    ks: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8)) -> Method:
    """Students at the last ``k`` checkpoints, the best one picked (:class:`LastBest`; choose
    only). ``k`` None: fitted on the training runs from ``ks`` (ties: the smaller, cheaper k)."""

    def fit(runs, decision):
        if k is not None:
            return LastBest(column, k)
        return _fairest([LastBest(column, kk) for kk in ks], runs, decision, uses, cost=lambda r: r.k)

    return Method(name, fit, "measured", uses=uses, student_epochs=student_epochs, last=k or max(ks),
                  decisions=("choose",))


@dataclasses.dataclass(frozen=True)
class Halving:
    """Post hoc (choose), successive halving over students raced from the last ``k`` checkpoints
    (paired: the same student seeds at every checkpoint): every candidate's students train to the
    first rung's epoch, the better half (by the mean of the seeds read; ties: the later checkpoint)
    goes on to the next rung, and so on; at the last rung (the full budget) the best is picked.
    ``epochs_used``: student epochs per seed read (the cost)."""

    k: int
    rungs: tuple[int, ...]
    """Student epochs at which candidates are compared; the last is the full budget."""

    @property
    def text(self) -> str:
        return f"successive halving over the last {self.k} checkpoints at epochs {'/'.join(map(str, self.rungs))}"

    @property
    def epochs_used(self) -> int:
        n, done, total = self.k, 0, 0
        for e in self.rungs:
            total += n * (e - done)
            done, n = e, max(1, -(-n // 2))
        return total

    def pick(self, run: TeacherRun) -> int | None:
        from gatekit.racing import Halving as Race

        seeds = _seeds_in(run, f"student_e{self.rungs[-1]}")
        if not seeds:
            return None
        race = Race(k=self.k, rungs=self.rungs[:-1], seeds=seeds, epochs=self.rungs[-1])
        return replay_pick(race, run, {e: f"student_e{e}" for e in self.rungs})


def halving_method(name: str, *, k: int | None = None, rungs: tuple[int, ...] | None = None,
                   ks: Sequence[int] = (2, 3, 4, 6, 8), rung_sets: Sequence[tuple[int, ...]] = ((2, 8), (1, 2, 8), (1, 8)),
                   full_epochs: int = 8) -> Method:
    """:class:`Halving`, 1 student seed per checkpoint; ``k`` / ``rungs`` None: fitted on the
    training runs (fair objective; ties: the fewer student epochs)."""

    def fit(runs, decision):
        if k is not None and rungs is not None:
            return Halving(k, rungs)
        rules = [Halving(kk, tuple(rr)) for kk in ([k] if k else ks) for rr in ([rungs] if rungs else rung_sets)]
        return _fairest(rules, runs, decision, 1, cost=lambda r: r.epochs_used)

    return Method(name, fit, "measured", uses=1, student_epochs=full_epochs, last=k, decisions=("choose",))


@dataclasses.dataclass(frozen=True)
class PilotRace:
    """Post hoc (choose), declared 2026-12-06 before it was scored: exactly what ``gatekit race
    --strategy pilot`` (and ``gatekit train pilot``) answers, :class:`gatekit.racing.Pilot` replayed:
    pilots of 2 of 8 student epochs on the last ``k`` checkpoints, one seed, the earliest whose
    pilot reaches ``of_best`` x the best (not a dip); the final checkpoint where no pilot learned.
    Nothing is fitted. Its cost: the pilots (``epochs_used``), then one full student at the pick."""

    k: int = 3
    of_best: float = 0.9
    pilot_epochs: int = 2
    full_epochs: int = 8

    @property
    def text(self) -> str:
        return (f"pilots of {self.pilot_epochs} epochs on the last {self.k} checkpoints, the earliest within "
                f"{self.of_best:g} x the best")

    @property
    def epochs_used(self) -> int:
        """The pilots, then the full student at the pick (the one kept: not extra)."""
        return self.k * self.pilot_epochs + self.full_epochs

    def pick(self, run: TeacherRun) -> int | None:
        from gatekit.racing import Pilot

        prefix = f"student_e{self.pilot_epochs}"
        if not _seeds_in(run, prefix):
            return None
        race = Pilot(k=self.k, fraction=self.pilot_epochs / self.full_epochs, of_best=self.of_best, seeds=1,
                     epochs=self.full_epochs)
        return replay_pick(race, run, {self.pilot_epochs: prefix})


def pilot_race_method(name: str, *, k: int = 3, full_epochs: int = 8) -> Method:
    """:class:`PilotRace` (nothing fitted); its students are pilots (``student_epochs`` 2 of 8)."""
    return Method(name, lambda runs, d: PilotRace(k, full_epochs=full_epochs), "pilot", uses=1, student_epochs=2,
                  last=k, decisions=("choose",))


@dataclasses.dataclass(frozen=True)
class SecondSeed:
    """Post hoc (choose), declared 2026-12-05 before it was scored: one full student on each of
    the last ``k`` checkpoints; the two best (ties: the later) get a second full student (the same
    second seed at both); the pick is the better two-seed mean (ties: the later). It reads 2 seeds
    at 2 checkpoints and 1 at the others: ``k + 2`` students, ``k + 1`` beyond the one kept (the
    cost, through ``epochs_used``: student epochs per seed read). Motivated by
    :func:`race_verdicts`: one seed's verdict means little, two seeds' "clear" means much more."""

    k: int
    full_epochs: int

    @property
    def text(self) -> str:
        return f"a full student at each of the last {self.k} checkpoints, a second at the best 2"

    @property
    def epochs_used(self) -> float:
        return (self.k + 2) * self.full_epochs / 2

    def pick(self, run: TeacherRun) -> int | None:
        from gatekit.racing import SecondSeed as Race

        if _seeds_in(run, "student_outcome") < 2:
            return None
        return replay_pick(Race(k=self.k, epochs=1), run, {1: "student_outcome"})


def second_seed_method(name: str, *, k: int = 3, full_epochs: int = 8) -> Method:
    """:class:`SecondSeed` (nothing fitted)."""
    return Method(name, lambda runs, d: SecondSeed(k, full_epochs), "measured", uses=2, student_epochs=full_epochs,
                  last=k, decisions=("choose",))


from gatekit.racing.gp import GP_BETA, GP_NOISE, GP_SIGNAL, gp_posterior  # noqa: E402,F401 - written once, there


def action_distances(run: TeacherRun) -> np.ndarray | None:
    """[C, C] teacher action distances between the run's checkpoints (``action_dist_c{j}``
    columns: mean over the task's probe of |tanh(mu_i) - tanh(mu_j)|), or None when absent."""
    c = len(run.steps)
    cols = [f"action_dist_c{j}" for j in range(c)]
    if not all(k in run.columns for k in cols):
        return None
    d = np.stack([run.columns[k] for k in cols], axis=1)
    return d if np.isfinite(d).all() else None


@dataclasses.dataclass(frozen=True)
class GPRace:
    """Post hoc (choose), A-OPS-style (Konyushkova et al., NeurIPS 2021: spend evaluations where a
    GP over policies is unsure, with a kernel from the policies' action distances). Declared
    2026-12-05, before it was scored on the dataset:

    * a GP over the run's benchmarked checkpoints with correlation ``exp(-d_ij / l)``, ``d_ij``
      the teacher action distance (:func:`action_distances`), ``l`` the median of the run's
      nonzero distances (nothing fitted);
    * prior mean: the final checkpoint's student for every checkpoint or, with ``prior`` (a
      student-side statistic, its column and ``sign`` chosen inside each fold), that plus
      ``sign x GP_SIGNAL x y_final x z``, ``z`` the statistic's z-score within the run; prior std
      ``GP_SIGNAL x y_final``, noise std ``GP_NOISE x y_final``;
    * one full student (the seed read) at the final checkpoint first, then ``n - 1`` more, each at
      the unmeasured checkpoint with the highest upper bound (mean + ``GP_BETA`` x std; ties: the
      later);
    * the pick: the measured checkpoint with the highest posterior mean (ties: the later); its
      student is the one kept. ``k`` (= ``n``): the students trained (the cost).

    The race itself is :class:`gatekit.racing.GPRace` (``gatekit race --strategy gp``), replayed."""

    n: int
    prior: str | None = None
    sign: float = 1.0
    column: str = "student_outcome_mean"

    @property
    def k(self) -> int:
        return self.n

    @property
    def text(self) -> str:
        prior = f"prior from {'+' if self.sign > 0 else '-'}{self.prior}" if self.prior else "constant prior"
        return f"GP race, {self.n} students, kernel from teacher action distance, {prior}"

    def pick(self, run: TeacherRun) -> int | None:
        from gatekit.racing import GPRace as Race

        d = action_distances(run)
        y = run.series(self.column)
        if d is None or not np.isfinite(y[-1]):
            return None
        prior = ()
        if self.prior is not None and self.prior in run.columns:
            x = run.columns[self.prior]
            if np.isfinite(x).sum() > 1 and np.nanstd(x) > 0:
                prior = tuple(float(v) for v in self.sign * np.nan_to_num((x - np.nanmean(x)) / np.nanstd(x)))
        race = Race(n=min(self.n, len(run.steps)), k=len(run.steps), epochs=1, distances=tuple(map(tuple, d.tolist())),
                    prior=prior)
        return replay_pick(race, run, {1: "student_outcome"})


def gp_race_method(name: str, *, n: int = 3, priors: Sequence[str] = (), full_epochs: int = 8) -> Method:
    """:class:`GPRace` with ``n`` students, 1 seed read; with ``priors``, the prior's column and
    sign (or none) chosen inside each fold by the fair objective on the training runs."""

    def fit(runs, decision):
        rules = [GPRace(n)] + [GPRace(n, col, sg) for col in priors for sg in (1.0, -1.0)]
        return rules[0] if len(rules) == 1 else _fairest(rules, runs, decision, 1, cost=lambda r: 0)

    return Method(name, fit, "measured", uses=1, student_epochs=full_epochs, last=None, decisions=("choose",))


VERDICT_RACES = {"last 3, 1 seed": (3, 1), "last 3, 2 seeds": (3, 2), "last 6, 1 seed": (6, 1)}
"""The races whose verdicts :func:`race_verdicts` calibrates: (candidates, seeds per candidate)."""


def race_verdicts(runs: Sequence[TeacherRun], k: int, seeds: int) -> dict:
    """How far a race's verdict ("clear" or "within noise", :func:`gatekit.racing.verdict.how_sure`) can be
    trusted, replayed on the dataset. Declared 2026-12-05, before it was computed:

    * **the race**: full students (the dataset's outcome at the full student budget) on each of a
      run's last ``k`` checkpoints, ``seeds`` seeds each, exactly as ``python -m training race
      --last k --seeds seeds`` decides: the best mean (ties: the later checkpoint) and the verdict
      from the gap between the top two;
    * **judged** by one student seed the race did not read (every split of
      :func:`gatekit.judge.seed_splits`), with the benchmark's choose label: right when the judge
      seed's student at the pick reaches >= 0.95 x its best over every checkpoint of the run;
    * **statistic**: the success rate (and mean regret) among "clear" races against that among
      "within noise" races, pooled over runs and splits, with 95% intervals over task groups;
      expected direction: "clear" is right more often. Nothing is fitted; the one-seed noise
      (``RELATIVE_SEED_STD``, 0.09) was itself measured on this dataset.

    Returns ``{"k", "seeds", "n", verdict: {"share", "n", "success", "success_ci", "regret",
    "regret_ci"}}`` for verdict in ("clear", "within noise")."""
    from gatekit import judge as J
    from gatekit.racing.verdict import how_sure

    found: dict[str, list[tuple]] = {"clear": [], "within noise": []}
    for run in runs:
        s = np.asarray(run.student_seeds, np.float64)  # [checkpoint, seed]
        c, n = s.shape
        if c < k or n < seeds + 1 or not np.isfinite(s).all():
            continue
        for used, j in J.seed_splits(n, seeds):
            students = [s[i, list(used)] for i in range(c - k, c)]
            means = [float(np.mean(x)) for x in students]
            pick = c - k + max(range(k), key=lambda i: (means[i], i))
            verdict = how_sure(means, students, seeds)["verdict"]
            res = J.judge_pick(s[:, j], run.steps, pick, "choose")
            found["clear" if verdict.startswith("clear") else "within noise"].append(
                (run.task, float(res["success"]), res["regret"]))
    total = sum(len(v) for v in found.values())
    out: dict = {"k": k, "seeds": seeds, "n": total}
    for verdict, xs in found.items():
        if not xs:
            out[verdict] = {"share": 0.0, "n": 0}
            continue
        tasks, ok, reg = zip(*xs)
        out[verdict] = {"share": len(xs) / total, "n": len(xs), "success": float(np.mean(ok)),
                        "success_ci": list(J.bootstrap_interval(ok, tasks)), "regret": float(np.mean(reg)),
                        "regret_ci": list(J.bootstrap_interval(reg, tasks))}
    return out
