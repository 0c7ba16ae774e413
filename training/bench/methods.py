"""Does a checkpoint rule transfer? Decisions scored on held-out teacher runs.

A benchmark table (``python -m training gatebench``, or your own with the same columns) has one
row per teacher checkpoint: ``task``, ``config``, ``teacher_seed``, ``step``, ``fraction`` (of the
teacher's budget), statistics, and the students' outcome (``student_outcome``, per seed
``student_outcome_s{k}``). Two decisions are scored per teacher run (declared in issue 18):

* **stop** (online: the hook, ``watch``, ``--stop-at-gate``): the rule fires at the first
  checkpoint where it has held for its patience. Success: it fires before the final checkpoint
  and the students there reach >= 0.9 x the final checkpoint's; or it does not fire before the
  final and no earlier checkpoint would have qualified ("not yet" was right). Saved: the share
  of teacher training after the stop (0 when it does not fire).
* **choose** (post hoc, ``select``): the pick is the first checkpoint where the rule holds, else
  the final one. Success: its students reach >= 0.95 x the best checkpoint's.

A *method* is fitted on training runs only and returns a rule for held-out runs:
:func:`evaluate` runs leave-one-group-out (``group="task"``: leave-one-task-out), so a held-out
task never informs its own rule. Methods: a threshold on one column in one :mod:`gatekit.transforms`
form (direction, threshold and patience fitted), the best such rule over many columns (the column
chosen inside each fold), and a logistic model on scale-free features. Rules that race full
students are in :mod:`training.bench.races`; the declared list and the report in
:mod:`training.bench.catalog`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np

from gatekit.errors import GatekitError
from gatekit.io.gates import Gate
from gatekit.judge import CHOOSE_FRACTION, DECISIONS, STOP_FRACTION, bootstrap_interval, judge_pick, seed_splits
from gatekit.rule import Rule, first_hold
from gatekit.selection import gate_values, pick
from gatekit.transforms import SCALE_FREE, TRANSFORMS, transform

__all__ = ["CHOOSE_FRACTION", "DECISIONS", "STOP_FRACTION"]  # re-exported from gatekit.judge
STUDENT_PREFIXES = ("student_outcome", "pilot1", "pilot2")
"""Per-seed student columns (``{prefix}_s{k}``): the final outcome and the pilots after epochs 1,
2; and ``student_e{e}_s{k}``, student k after epoch e (:func:`_student_prefixes`)."""


def _student_prefixes(columns) -> list[str]:
    """The per-seed student column prefixes present (:data:`STUDENT_PREFIXES`, ``student_e{e}``)."""
    import re

    found = {m.group(1) for c in columns for m in [re.match(r"^(student_e\d+)_s\d+$", c)] if m}
    return list(STUDENT_PREFIXES) + sorted(found)
PATIENCES = (1, 2)
MAX_THRESHOLDS = 24


@dataclasses.dataclass(frozen=True)
class TeacherRun:
    """One teacher's benchmarked checkpoints, in step order."""

    key: tuple
    """(task, config, teacher_seed)."""
    steps: np.ndarray
    columns: dict[str, np.ndarray]
    student: np.ndarray
    """Mean student outcome per checkpoint."""
    student_seeds: np.ndarray
    """[checkpoint, seed] student outcomes."""
    _forms: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def task(self) -> str:
        return self.key[0]

    @property
    def config(self) -> str:
        return self.key[1]

    def series(self, column: str) -> np.ndarray:
        if column not in self.columns:
            raise GatekitError(f"run {self.key}: no column {column!r}")
        return self.columns[column]

    def seeds_view(self, seeds: Sequence[int]) -> "TeacherRun":
        """The run as a rule that may read only student ``seeds`` sees it: per-seed columns of
        other seeds are gone, ``{prefix}_s{i}`` renumbered over ``seeds``, ``{prefix}_mean`` their
        mean, and ``student`` / ``student_seeds`` theirs (NaN when no seed may be read)."""
        seeds = list(seeds)
        key = ("seeds_view", tuple(seeds))
        if key not in self._forms:
            self._forms[key] = self._seeds_view(seeds)
        return self._forms[key]

    def _seeds_view(self, seeds: list[int]) -> "TeacherRun":
        prefixes = _student_prefixes(self.columns)
        student_cols = {c for c in self.columns if c.startswith(tuple(f"{p}_" for p in prefixes))}
        student_cols |= {"student_std"}
        cols = {c: v for c, v in self.columns.items() if c not in student_cols}
        for p in prefixes:
            have = [k for k in seeds if f"{p}_s{k}" in self.columns]
            for i, k in enumerate(have):
                cols[f"{p}_s{i}"] = self.columns[f"{p}_s{k}"]
            if have:
                cols[f"{p}_mean"] = np.mean([self.columns[f"{p}_s{k}"] for k in have], axis=0)
        picked = self.student_seeds[:, seeds] if seeds else np.full((len(self.steps), 0), np.nan)
        mean = picked.mean(axis=1) if seeds else np.full(len(self.steps), np.nan)
        cols["student_outcome"] = mean
        return TeacherRun(self.key, self.steps, cols, mean, picked)

    def form(self, column: str, form: str) -> np.ndarray:
        """``transform(series(column), form)``, computed once per run (fitting tries many thresholds)."""
        key = (column, form)
        if key not in self._forms:
            self._forms[key] = transform(self.series(column), form)
        return self._forms[key]


def teacher_runs(rows: Sequence[dict], *, outcome: str = "student_outcome") -> list[TeacherRun]:
    """The table's rows grouped into teacher runs (by task, config, teacher_seed)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("task", ""), r.get("config", ""), r["teacher_seed"]), []).append(r)
    runs = []
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["step"])
        seed_cols = sorted((c for c in rs[0] if c.startswith(f"{outcome}_s") and c[len(outcome) + 2:].isdigit()),
                           key=lambda c: int(c[len(outcome) + 2:]))
        numeric = [c for c in rs[0] if all(_is_number(r.get(c)) for r in rs)]
        cols = {c: np.array([float(r[c]) for r in rs]) for c in numeric}
        seeds = np.array([[float(r[c]) for c in seed_cols] for r in rs]) if seed_cols else cols[outcome][:, None]
        runs.append(TeacherRun(key, np.array([r["step"] for r in rs]), cols, cols[outcome], seeds))
    return runs


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


# --- the decision outcome ---------------------------------------------------------------------

def decide(run: TeacherRun, pick: int | None, decision: str) -> dict:
    """``success``, ``regret`` and ``saved`` of ``pick`` on the run's mean students
    (:func:`gatekit.judge.judge_pick`: the one definition of a right pick)."""
    return judge_pick(run.student, run.steps, pick, decision)


# --- rules and methods ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GateRule:
    """A :class:`gatekit.io.gates.Gate` (``transform(metric) direction threshold`` for
    ``patience``) scored as ``select`` applies it: the pick is :func:`gatekit.selection.pick`'s.
    With ``guard`` (*choose*, post hoc) a transient collapse never passes, as in ``select``; for
    *stop* (online: the hook, ``watch``) there is no guard, and the gate must be crossed (it stops
    only after a checkpoint at which it did not pass, as the hook does). So a held-out record
    describes the rule that is shipped."""

    gate: Gate
    guard: bool = False

    @property
    def text(self) -> str:
        return self.gate.rule

    def pick(self, run: TeacherRun) -> int | None:
        return pick(self.gate, run.steps, run.series(self.gate.metric), run.columns.get("eval_success"),
                    guard=self.guard, crossing=not self.guard)


def gate_rule(column: str, form: str, direction: str, threshold: float, patience: int = 1, *,
              guard: bool = False) -> GateRule:
    return GateRule(Gate(column, direction, threshold, patience, transform=form), guard)


def _collapsed(run: TeacherRun, column: str, form: str, direction: str) -> np.ndarray:
    """The run's transient collapses for a rule on ``form(column)`` (cached per run): the mask
    :func:`gatekit.selection.gate_values` computes, here for every candidate threshold at once."""
    key = ("collapsed", column, form, direction)
    if key not in run._forms:
        probe = Gate(column, direction, 0.0, transform=form)
        run._forms[key] = gate_values(probe, run.series(column), run.columns.get("eval_success"))[1]
    return run._forms[key]


def _objective(rule, runs: Sequence[TeacherRun], decision: str) -> tuple[float, float]:
    """(success rate, tie-break) on training runs: more saved (stop) or an earlier pick (choose)."""
    res, early = [], []
    for r in runs:
        p = rule.pick(r)
        res.append(decide(r, p, decision))
        early.append(0.0 if p is None else 1.0 - r.steps[p] / r.steps[-1])
    if decision == "stop":
        return float(np.mean([x["success"] for x in res])), float(np.mean([x["saved"] for x in res]))
    return float(np.mean([x["success"] for x in res])), float(np.mean(early))


def _fair_objective(rule, runs: Sequence[TeacherRun], decision: str, uses: int) -> float:
    """Mean success on training runs of a rule reading ``uses`` student seeds, each pick judged by
    a seed it did not read (:func:`gatekit.judge.seed_splits`), as :func:`evaluate` judges it."""
    res = []
    for r in runs:
        for used, j in seed_splits(r.student_seeds.shape[1], uses):
            res.append(judge_pick(r.student_seeds[:, j], r.steps, rule.pick(r.seeds_view(used)), decision)["success"])
    return float(np.mean(res))


def _fairest(rules, runs: Sequence[TeacherRun], decision: str, uses: int, *, cost):
    """The rule with the best :func:`_fair_objective`; ties: the lower ``cost(rule)``, then the first."""
    best, best_obj = None, (-1.0, -math.inf)
    for rule in rules:
        obj = (_fair_objective(rule, runs, decision, uses), -cost(rule))
        if obj > best_obj:
            best, best_obj = rule, obj
    return best


def _thresholds(values: np.ndarray) -> np.ndarray:
    v = np.unique(values[np.isfinite(values)])
    if v.size > MAX_THRESHOLDS:
        v = np.unique(np.quantile(v, np.linspace(0, 1, MAX_THRESHOLDS)))
    mids = (v[1:] + v[:-1]) / 2 if v.size > 1 else v
    return np.concatenate([v[:1] - 1e-9 * (abs(v[:1]) + 1), mids, v[-1:] + 1e-9 * (abs(v[-1:]) + 1)]) if v.size else v


def _first_held_matrix(holds: np.ndarray, patience: int, crossing: bool = False) -> np.ndarray:
    """The first index along the last axis of ``holds`` [..., C] where it has been true for
    ``patience`` consecutive checkpoints (:func:`gatekit.rule.first_hold` on arrays), or -1; with
    ``crossing``, only after an index where it was false (:func:`gatekit.rule.first_cross`)."""
    h = holds.copy()
    for k in range(1, patience):
        h[..., k:] &= holds[..., :-k]
        h[..., :k] = False
    if crossing:  # the streak ending at i starts at i - patience + 1: a failure must come before it
        failed = np.zeros_like(holds)
        failed[..., 1:] = np.logical_or.accumulate(~holds, axis=-1)[..., :-1]  # a failure strictly before k
        start_ok = np.zeros_like(holds)
        start_ok[..., patience - 1:] = failed[..., :holds.shape[-1] - patience + 1]
        h &= start_ok
    return np.where(h.any(axis=-1), np.argmax(h, axis=-1), -1)


class _Outcomes:
    """The training runs' decision outcomes for every possible pick, padded to the longest run:
    what :func:`_objective` needs, as arrays (so thousands of candidate rules score at once)."""

    def __init__(self, runs: Sequence[TeacherRun], decision: str):
        n = max(len(r.steps) for r in runs)
        self.last = np.array([len(r.steps) - 1 for r in runs])
        self.success = np.zeros((len(runs), n + 1), dtype=bool)  # column n: no pick
        self.tie = np.zeros((len(runs), n + 1))
        for i, r in enumerate(runs):
            last = self.last[i]
            for p in list(range(last + 1)) + [None]:
                res = decide(r, p, decision)
                col = n if p is None else p
                self.success[i, col] = res["success"]
                self.tie[i, col] = res["saved"] if decision == "stop" else \
                    (0.0 if p is None else 1.0 - r.steps[p] / r.steps[-1])
        self.n = n

    def objective(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """picks [..., runs] (-1: none) -> (success rate, tie-break) per candidate [...]."""
        cols = np.where(picks < 0, self.n, picks)
        rows = np.arange(picks.shape[-1])
        return self.success[rows, cols].mean(axis=-1), self.tie[rows, cols].mean(axis=-1)


def fit_series_rule(runs: Sequence[TeacherRun], decision: str, columns: Sequence[str],
                    forms: Sequence[str] = TRANSFORMS, patiences: Sequence[int] = PATIENCES) -> tuple[GateRule, tuple]:
    """The rule (column, form, direction, threshold, patience) with the best training objective
    (success rate, then more saved for stop or an earlier pick for choose); ties go to the first
    column and form given, then the lower threshold, ``above`` before ``below``, the smaller
    patience. Every candidate is scored at once on arrays (the same picks as
    :meth:`GateRule.pick`, i.e. ``select``'s)."""
    if not runs:
        raise GatekitError("no training runs to fit a rule on")
    outcomes = _Outcomes(runs, decision)
    n = outcomes.n
    guard = decision == "choose"
    best, best_obj = None, (-1.0, -math.inf)
    for col in columns:
        if not all(col in r.columns for r in runs):
            continue
        for form in forms:
            series = [r.form(col, form) for r in runs]
            values = np.full((len(runs), n), np.nan)
            for i, v in enumerate(series):
                values[i, :len(v)] = v
            thresholds = _thresholds(np.concatenate(series))
            if not thresholds.size:
                continue
            ok = {d: np.isfinite(values) for d in ("above", "below")}
            if guard:  # as select: a transient collapse never passes
                for d in ok:
                    for i, r in enumerate(runs):
                        ok[d][i, :len(r.steps)] &= ~_collapsed(r, col, form, d)
            with np.errstate(invalid="ignore"):
                above = (values[None] > thresholds[:, None, None]) & ok["above"]
                below = (values[None] < thresholds[:, None, None]) & ok["below"]
            # candidates in the order of the loop they replace: threshold, direction, patience
            picks = np.stack([np.stack([_first_held_matrix(h, p, crossing=not guard) for p in patiences], axis=1)
                              for h in (above, below)], axis=1)  # [thr, direction, patience, runs]
            rate, tie = outcomes.objective(picks)
            flat = np.lexsort((-np.arange(rate.size), tie.ravel(), rate.ravel()))[-1]  # max, first on ties
            t, d, p = np.unravel_index(flat, rate.shape)
            obj = (float(rate[t, d, p]), float(tie[t, d, p]))
            if obj > best_obj:
                best = gate_rule(col, form, ("above", "below")[d], float(thresholds[t]), patiences[p], guard=guard)
                best_obj = obj
    if best is None:
        raise GatekitError(f"no column of {list(columns)} is present in every training run")
    return best, best_obj


@dataclasses.dataclass(frozen=True)
class PilotPick:
    """Post hoc (choose): pilots measured at every saved checkpoint; the pick is the earliest
    checkpoint whose pilot reaches ``fraction`` x the best pilot and is not a transient collapse."""

    column: str
    fraction: float

    @property
    def text(self) -> str:
        return f"earliest {self.column} >= {self.fraction:.2f} x the best pilot"

    def pick(self, run: TeacherRun) -> int | None:
        from gatekit.transforms import dips

        x = run.series(self.column)
        if not np.isfinite(x).any() or np.nanmax(x) <= 0:
            return None
        ok = (x >= self.fraction * np.nanmax(x)) & ~dips(x)
        hits = np.flatnonzero(ok)
        return int(hits[0]) if hits.size else None


def pilot_method(name: str, column: str, *, uses: int = 1, student_epochs: int = 2) -> Method:
    """Pilots: for *stop*, a rule on the pilot's online forms (e.g. ``of_running_max``), fitted;
    for *choose*, :class:`PilotPick` with its fraction fitted on the training runs."""

    def fit(runs, decision):
        if decision == "stop":
            return fit_series_rule(runs, decision, [column])[0]
        best, best_obj = None, (-1.0, -math.inf)
        for f in np.round(np.arange(0.5, 1.001, 0.05), 2):
            rule = PilotPick(column, float(f))
            obj = (_fair_objective(rule, runs, decision, uses), -f)
            if obj > best_obj:
                best, best_obj = rule, obj
        return best

    return Method(name, fit, "pilot", uses=uses, student_epochs=student_epochs)


class Never:
    """The final-checkpoint baseline: never stop early; choose the final checkpoint."""

    text = "the final checkpoint"

    @staticmethod
    def pick(run: TeacherRun) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class Method:
    """A named way to get a rule from training runs: ``fit(runs, decision) -> rule``."""

    name: str
    fit: Callable[[Sequence[TeacherRun], str], object]
    kind: str = "statistic"
    """``baseline``, ``statistic``, ``model``, ``pilot`` or ``measured`` (how the README groups it)."""
    uses: int = 0
    """How many student seeds its rule reads per checkpoint (judged by another: :mod:`gatekit.judge`)."""
    student_epochs: int = 0
    """Epochs of each student it reads (0: none; the full budget: one of them is the student kept)."""
    last: int | None = None
    """It trains students at the last ``last`` checkpoints only (None: every checkpoint looked at)."""
    decisions: tuple[str, ...] = DECISIONS


def threshold_method(name: str, columns: Sequence[str], forms: Sequence[str] = TRANSFORMS, kind: str = "statistic",
                     patiences: Sequence[int] = PATIENCES) -> Method:
    return Method(name, lambda runs, d: fit_series_rule(runs, d, columns, forms, patiences)[0], kind)


FINAL = Method("final checkpoint", lambda runs, d: Never(), "baseline")
PAPER = Method("paper rule (action_magnitude < 0.63, nothing fitted)",
               lambda runs, d: gate_rule("action_magnitude", "raw", "below", 0.63, guard=d == "choose"), "statistic")
"""The rule this project was specified with (the ``paper`` preset): nothing is fitted, so its
record on every task is held out."""
BUDGET = Method("budget preset (fraction > 0.84, nothing fitted)",
                lambda runs, d: gate_rule("fraction", "raw", "above", 0.84, guard=d == "choose"), "baseline")
"""The stop rule the hook, ``watch`` and ``--stop-at-gate`` use given no gate (the ``budget``
preset, ``budget_fraction > 0.84``) exactly as shipped: nothing is fitted in any fold. Declared
2026-12-05. Its 0.84 was read off the 36-run table's fitted fraction rules (2026-12-04), so on
the 4 old task groups it is not fully held out; on the 3 new ones it is. The benchmark's
``fraction`` is the step's share of the final step, the preset's the epoch's share of the planned
epochs: the same where every epoch has the same steps."""


@dataclasses.dataclass
class LogisticRule:
    """P(checkpoint qualifies) from scale-free features, over a fitted probability cut."""

    features: list[tuple[str, str]]
    model: object
    threshold: float
    patience: int
    _probabilities: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    """Per run key: the model's probabilities (one model's candidate cuts share this dict)."""

    @property
    def text(self) -> str:
        return f"logistic on {len(self.features)} scale-free features, p > {self.threshold:.3g} for {self.patience}"

    def matrix(self, run: TeacherRun) -> np.ndarray:
        x = np.stack([run.form(c, f) for c, f in self.features], axis=1)
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)

    def values(self, run: TeacherRun) -> np.ndarray:
        if run.key not in self._probabilities:
            self._probabilities[run.key] = self.model.predict_proba(self.matrix(run))[:, 1]
        return self._probabilities[run.key]

    def pick(self, run: TeacherRun) -> int | None:
        return first_hold(run.steps, self.values(run), Rule("p(qualifies)", "above", self.threshold, self.patience))


def logistic_method(columns: Sequence[str], forms: Sequence[str] = SCALE_FREE) -> Method:
    """Logistic regression on ``forms`` of ``columns``; label: the checkpoint's students reach
    0.9 x (stop) / 0.95 x (choose) the reference of its run; the probability cut and patience
    are then fitted for the decision, all on training runs."""

    def fit(runs, decision):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        cols = [c for c in columns if all(c in r.columns for r in runs)]
        feats = [(c, f) for c in cols for f in forms]
        proto = LogisticRule(feats, None, 0.5, 1)
        x = np.concatenate([proto.matrix(r) for r in runs])
        ref = [r.student[-1] * STOP_FRACTION if decision == "stop" else r.student.max() * CHOOSE_FRACTION for r in runs]
        y = np.concatenate([(r.student >= c).astype(int) for r, c in zip(runs, ref)])
        if len(set(y)) < 2:
            return Never()
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x, y)
        best, best_obj, shared = None, (-1.0, -math.inf), {}
        for thr in np.linspace(0.05, 0.95, 19):
            for pat in PATIENCES:
                rule = LogisticRule(feats, model, float(thr), pat, shared)
                obj = _objective(rule, runs, decision)
                if obj > best_obj:
                    best, best_obj = rule, obj
        return best

    return Method("logistic (scale-free)", fit, "model")


# --- out-of-fold evaluation ----------------------------------------------------------------------

def evaluate(runs: Sequence[TeacherRun], method: Method, decision: str, *, group: str = "task") -> dict:
    """Leave-one-``group``-out: for each group value, ``method`` is fitted on the other groups'
    runs and its rule decides each held-out run, judged by student seeds it did not read
    (:mod:`gatekit.judge`: every split of the seeds, averaged per run). Returns the pooled success,
    mean regret and mean saved share with 95% intervals over ``group`` (bootstrap), per-group
    numbers and the rule each fold fitted."""
    groups = sorted({getattr(r, group) for r in runs})
    if len(groups) < 2:
        raise GatekitError(f"leave-one-{group}-out needs >= 2 {group}s, got {groups}")
    if decision not in method.decisions:
        raise GatekitError(f"{method.name} does not make the {decision!r} decision")
    per, results = {}, []
    for g in groups:
        train = [r for r in runs if getattr(r, group) != g]
        test = [r for r in runs if getattr(r, group) == g]
        rule = method.fit(train, decision)
        res = []
        for r in test:
            splits = seed_splits(r.student_seeds.shape[1], method.uses)
            if method.uses:
                picks = [rule.pick(r.seeds_view(used)) for used, _ in splits]
            else:  # reads no student: one pick, judged by every seed
                picks = [rule.pick(r.seeds_view(()))] * len(splits)
            judged = [judge_pick(r.student_seeds[:, j], r.steps, p, decision) for p, (_, j) in zip(picks, splits)]
            fracs = [None if p is None else float(r.steps[p] / r.steps[-1]) for p in picks]
            res.append({"run": r.key, "success": float(np.mean([x["success"] for x in judged])),
                        "regret": float(np.mean([x["regret"] for x in judged])),
                        "saved": float(np.mean([x["saved"] for x in judged])),
                        "pick_fraction": None if all(f is None for f in fracs) else
                        float(np.mean([1.0 if f is None else f for f in fracs])),
                        "students_at": getattr(rule, "k", None), "epochs_used": getattr(rule, "epochs_used", None)})
        results += res
        per[g] = {k: float(np.mean([x[k] for x in res])) for k in ("success", "regret", "saved")}
        per[g].update(rule=rule.text, n=len(res))
    out = {"method": method.name, "kind": method.kind, "decision": decision, "group": group, "uses": method.uses,
           "student_epochs": method.student_epochs}
    for k in ("success", "regret", "saved"):
        vals = [x[k] for x in results]
        out[k] = float(np.mean(vals))
        out[f"{k}_ci"] = bootstrap_interval(vals, [x["run"][0 if group == "task" else 1] for x in results])
    out.update(group_success_min=float(min(v["success"] for v in per.values())), per_group=per, runs=results)
    return out


def ceiling(runs: Sequence[TeacherRun], decision: str, *, group: str = "task") -> dict:
    """What the students' own noise allows: the oracle that reads every other seed's full student
    at every checkpoint and picks the best mean (ties: the earliest), judged like every rule (by
    the seed it did not read); for ``stop`` it fires at the first checkpoint those students say
    qualifies."""
    res = []
    for r in runs:
        n = r.student_seeds.shape[1]
        if n < 2:
            continue
        splits = seed_splits(n, n - 1)
        def oracle(mean):
            return int(np.argmax(mean)) if decision == "choose" else _oracle_pick(mean, r.steps, decision)

        judged = [judge_pick(r.student_seeds[:, j], r.steps, oracle(r.student_seeds[:, list(used)].mean(axis=1)),
                             decision) for used, j in splits]
        res.append({"run": r.key, **{k: float(np.mean([x[k] for x in judged])) for k in ("success", "regret", "saved")}})
    if not res:
        return {}
    out = {"decision": decision, "uses": runs[0].student_seeds.shape[1] - 1}
    for k in ("success", "regret", "saved"):
        vals = [x[k] for x in res]
        out[k] = float(np.mean(vals))
        out[f"{k}_ci"] = bootstrap_interval(vals, [x["run"][0 if group == "task" else 1] for x in res])
    return out


def noise_floor(runs: Sequence[TeacherRun], decision: str) -> dict:
    """What the students' own noise allows: the oracle that picks with one student seed's outcomes
    and is judged by the mean of the other seeds (averaged over seeds and runs), and the mean
    seed-to-seed standard deviation of a checkpoint's students relative to the run's best mean."""
    ok, spread = [], []
    for r in runs:
        k = r.student_seeds.shape[1]
        if k < 2:
            continue
        for s in range(k):
            own, rest = r.student_seeds[:, s], np.delete(r.student_seeds, s, axis=1).mean(axis=1)
            oracle = _oracle_pick(own, r.steps, decision)
            judged = dataclasses.replace(r, student=rest)
            ok.append(decide(judged, oracle, decision)["success"])
        spread.append(float(np.mean(r.student_seeds.std(axis=1, ddof=1)) / max(abs(r.student.max()), 1e-12)))
    return {"one_seed_oracle_success": float(np.mean(ok)) if ok else math.nan,
            "relative_seed_std": float(np.mean(spread)) if spread else math.nan}


def _oracle_pick(student: np.ndarray, steps: np.ndarray, decision: str) -> int | None:
    last = len(student) - 1
    if decision == "stop":
        hits = np.flatnonzero(student[:last] >= STOP_FRACTION * student[last])
    else:
        hits = np.flatnonzero(student >= CHOOSE_FRACTION * student.max())
    return int(hits[0]) if hits.size else None
