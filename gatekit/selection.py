"""Selecting the checkpoint to distill from: the earliest one at which the gate holds.

The comparison and the streak are :mod:`gatekit.rule`'s; this module groups rows by run, applies
the rule in step order, and says when the answer cannot be trusted.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping

import numpy as np

from gatekit import rule as R
from gatekit.errors import GatekitError
from gatekit.io.gates import Gate

ROLES = ("teacher", "student", "any")
TRUSTED_RATE = 0.8
"""The held-out success rate below which an answer is never called trusted (issue 18's target)."""
TREND_RHO = 0.5
"""|Spearman(step, metric)| beyond which a trend against the gate's direction is reported: a
strong monotone trend the wrong way means the rule was probably fitted on another task."""


@dataclasses.dataclass(frozen=True)
class Selection:
    """The recommended checkpoint (or none), why, and when the answer cannot be trusted."""

    ready: bool
    run: str | None
    step: int | None
    epoch: int | None
    value: float | None
    reason: str
    per_run: list[dict]
    run_path: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    gate: Gate | None = None
    """The gate that was applied (a file, preset or one-off rule, resolved)."""
    rule: str | None = None
    """The gate's rule as text (:attr:`gatekit.io.gates.Gate.rule`)."""
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Checkpoints and runs scoring skipped (``PATH: reason``): the answer did not see them."""
    confidence: str | None = None
    """How often the gate's rule was right where it was not fitted (its held-out record), or
    that it has none: every answer says how far it can be trusted."""
    trusted: bool = False
    """True only when a checkpoint is ready, nothing was warned about, and the gate was right on
    >= 80% of held-out teacher runs (``validation.held_out``)."""
    untrusted_because: list[str] = dataclasses.field(default_factory=list)
    fallback: bool = False
    """True when the rule did not hold in any run and the answer is the final checkpoint: what the
    rule's held-out record counts such a run as (:func:`gatekit.judge.judge_pick`), so the record
    printed is the record of exactly this answer."""
    separates_nothing: list[str] = dataclasses.field(default_factory=list)
    """Runs in which the rule already held at the first scored checkpoint: it separates nothing
    there (its pick is the first checkpoint, by the rule, not by evidence)."""

    def __post_init__(self):
        why = [] if self.ready else ["no checkpoint is ready"]
        if self.fallback:
            why.append("the rule did not hold: the answer is the final checkpoint")
        if self.warnings:
            why.append(f"{len(self.warnings)} warning(s)")
        held = ((self.gate.validation if self.gate else None) or {}).get("held_out")
        rate = held.get("choose") if isinstance(held, dict) else None
        if not isinstance(rate, (int, float)):
            why.append("the gate has no held-out record")
        elif rate < TRUSTED_RATE:
            why.append(f"the gate was right on only {rate:.0%} of held-out teacher runs")
        object.__setattr__(self, "untrusted_because", why)
        object.__setattr__(self, "trusted", not why)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["gate"] = self.gate.to_dict() if self.gate else None
        return d

    def headline(self) -> str:
        """The answer and whether to trust it, in one line."""
        head = f"distill from {self.run_path}@{self.step}" if self.ready else "no teacher checkpoint is ready"
        trust = "trusted" if self.trusted else f"not trusted ({'; '.join(self.untrusted_because)})"
        return f"{head}: {trust}"

    def __str__(self) -> str:
        return f"{self.headline()}; {len(self.warnings)} warning(s); .reason, .warnings, .to_dict() for the rest"

    __repr__ = lambda self: f"Selection({self})"  # noqa: E731 - a one-line repr, not several KB


def rows_with_role(rows: Iterable[Mapping], role: str) -> list[Mapping]:
    """Rows of one role (a row without ``role`` is a teacher); ``"any"``: every row.
    GatekitError when no row has that role."""
    R.check_direction(role, ROLES, what="role")
    rows = list(rows)
    if role == "any":
        return rows
    kept = [r for r in rows if (r.get("role") or "teacher") == role]
    if not kept:
        roles = sorted({str(r.get("role")) for r in rows})
        raise GatekitError(f"no {role} rows (roles present: {roles}); pass --role any to use them all")
    return kept


def _cell_number(r: Mapping, key: str, where: str, *, required: bool):
    v = r.get(key)
    if v is None or v == "":
        if required:
            raise GatekitError(f"{where}: column {key!r} is empty")
        return None
    if isinstance(v, bool):
        raise GatekitError(f"{where}: column {key!r} is {v!r}, not a number")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise GatekitError(f"{where}: column {key!r} is {v!r}, not a number") from None


def _int_or_none(v):
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


VALUE = "_value"
"""Where a row keeps the value the rule reads (the metric, then its form): never in the metric's
own column, which may be one the answer reports (a rule on ``step``)."""


def _runs(rows: list[Mapping], metric: str) -> dict[str, list[dict]]:
    """Rows grouped by run (``run_path``, else ``run``), each sorted by step, values checked; the
    metric's value under :data:`VALUE`."""
    by_run: dict[str, list[dict]] = {}
    for i, r in enumerate(rows):
        where = f"row {i + 1}" + (f" ({r.get('run')})" if r.get("run") else "")
        step = _cell_number(r, "step", where, required=True)
        if not step.is_integer():
            raise GatekitError(f"{where}: column 'step' is {r.get('step')!r}, not an integer")
        value = _cell_number(r, metric, where, required=False)
        key = str(r.get("run_path") or r.get("run") or "(unnamed run)")
        by_run.setdefault(key, []).append({**r, "step": int(step), VALUE: value, "_key": key})
    return {k: sorted(rs, key=lambda r: r["step"]) for k, rs in by_run.items()}


def _held_at_first(rs: list[dict], rule: R.Rule) -> dict | None:
    """The run's first scored row when the rule already passes there (it separates nothing), else None."""
    first = next((r for r in rs if r[VALUE] is not None), None)
    return first if first is not None and rule.passes(first[VALUE]) else None


def _run_warnings(key: str, rs: list[dict], rule: R.Rule, nan_steps: list[int]) -> list[str]:
    metric, out = rule.metric, []
    if nan_steps:
        out.append(f"{key}: {metric} is NaN/inf at step(s) {nan_steps[:5]}; those checkpoints "
                   f"count as not passing, which can move the answer later")
    first = _held_at_first(rs, rule)
    if first is not None:
        out.append(f"{key}: the gate already held at the run's first scored checkpoint (step "
                   f"{first['step']}, {metric} = {first[VALUE]:.4g}): the rule separates nothing "
                   f"in this run, so its answer cannot be trusted")
    fin = [(r["step"], r[VALUE]) for r in rs if _finite(r[VALUE])]
    if len(fin) >= 4 and np.ptp([v for _, v in fin]) > 0:
        from gatekit.metrics import spearman

        rho = spearman([s_ for s_, _ in fin], [v for _, v in fin])
        if R.oriented(rho, rule.direction) <= -TREND_RHO:
            falls = rule.direction == "below"
            out.append(f"{key}: {metric} {'rises' if rho > 0 else 'falls'} over training (Spearman rho "
                       f"{rho:+.2f} with step) while the gate expects it to {'fall' if falls else 'rise'} "
                       f"past the gate; was the rule fitted on this task?")
    return out


def select(scores: Iterable[Mapping[str, Any]], *, gate: Gate, role: str = "teacher") -> Selection:
    """Earliest checkpoint at which ``gate`` has held for its ``patience`` consecutive checkpoints.

    Args:
      scores: rows with ``run`` (or ``run_path``), ``step`` and the metric (a ScoreTable or dicts).
      gate: a :class:`gatekit.io.gates.Gate` (``gatekit.api.select`` resolves files, presets and
        one-off rules into one).
      role: "teacher" (default: rows whose ``role`` is teacher or absent), "student" or "any".

    Returns:
      A :class:`Selection`, always naming a checkpoint. Across runs the earliest qualifying step
      wins (ties: the run with the more extreme metric). Where the rule holds in no run, the
      answer is the final checkpoint (``fallback``; the earliest final step across runs): what
      the rule's held-out record counts such a run as. ``warnings`` lists why the answer may not be trusted: the gate
      held from a run's first checkpoint (the rule separates nothing there), the metric's trend
      runs against the gate's direction, NaN values, rows of different envs, a gate fitted on
      another env.
    """
    rule = gate.to_rule()
    metric = rule.metric
    rows = list(scores)
    if not rows:
        raise GatekitError("select: no scored checkpoints")
    if not any(metric in r for r in rows):
        raise GatekitError(f"select: no column {metric!r} in the scores")
    try:
        rows = rows_with_role(rows, role)
    except GatekitError as e:
        raise GatekitError(f"select: {e}") from None
    warnings: list[str] = []
    by_run = _runs(rows, metric)
    envs = sorted({str(r["env"]) for r in rows if r.get("env")})
    if len(envs) > 1:
        warnings.append(f"rows come from different envs {envs}: one gate rarely fits them all")
    if gate.env and envs and any(e != gate.env for e in envs):
        warnings.append(f"the gate was fitted on env {gate.env!r} but these runs are {envs}")
    per_run, candidates = [], []
    outside, held_first = [], []
    for key, rs in by_run.items():
        nan_steps = [r["step"] for r in rs if r[VALUE] is not None and not math.isfinite(r[VALUE])]
        values, collapsed = gate_values(gate, [r[VALUE] for r in rs], _eval_success(rs))
        for r, v in zip(rs, values):
            r[VALUE] = float(v) if math.isfinite(v) else None
        for i in np.flatnonzero(collapsed):
            warnings.append(f"{key}: step {rs[i]['step']} is a transient collapse (its signals dip below both "
                            f"neighbours'); it is never recommended")
        hit_at = R.first_hold([r["step"] for r in rs], values, rule)
        warnings += _run_warnings(key, rs, rule, nan_steps)
        if not gate.is_final and _held_at_first(rs, rule) is not None:
            held_first.append(key)
        out_of_range = _outside_range(key, rs, gate)
        if out_of_range:
            warnings.append(out_of_range)
            outside.append(key)
        vals = [r[VALUE] for r in rs if _finite(r[VALUE])]
        per_run.append({"run": rs[0].get("run") or key, "run_path": key, "checkpoints": len(rs),
                        "selected_step": None if hit_at is None else int(rs[hit_at]["step"]),
                        "best_value": R.most_extreme(vals, rule.direction) if vals else None})
        if hit_at is not None:
            candidates.append(rs[hit_at])
    op, threshold, patience = R.symbol(rule.direction), rule.threshold, rule.patience
    shown = gate.reads
    if candidates:
        c = min(candidates, key=lambda r: (r["step"], -float(R.oriented(float(r[VALUE]), rule.direction))))
        held = "it" if patience == 1 else f"the last {patience} consecutive checkpoints"
        reason = (
            f"{c['_key']} at step {c['step']}: {shown} = {float(c[VALUE]):.4g} {op} {threshold:.4g} "
            f"and {held} passed the gate; the earliest such checkpoint across "
            f"{len(by_run)} run(s) ({len(candidates)} run(s) reached the gate)"
        )
        if gate.is_final:
            reason = (f"{c['_key']} at step {c['step']}: the run's final checkpoint (rule '{gate.name}': nothing is "
                      f"fitted; the earliest final checkpoint across {len(by_run)} run(s))")
        return Selection(True, c.get("run") or c["_key"], int(c["step"]), _int_or_none(c.get("epoch")),
                         float(c[VALUE]), reason, per_run, run_path=c["_key"], warnings=warnings,
                         gate=gate, rule=gate.rule, confidence=confidence(gate), separates_nothing=held_first)
    finals = [rs[-1] for rs in by_run.values()]
    c = min(finals, key=lambda r: r["step"])
    finite = [r for rs in by_run.values() for r in rs if _finite(r[VALUE])]
    if finite:
        closest = max(finite, key=lambda r: float(R.oriented(float(r[VALUE]), rule.direction)))
        near = f"; closest: step {closest['step']}, {shown} = {float(closest[VALUE]):.4g}"
    else:
        near = f"; no finite {shown} values"
    reason = (f"the rule ({shown} {op} {threshold:.4g} for {patience} checkpoint(s)) held in none of "
              f"{len(by_run)} run(s){near}: the answer is the final checkpoint, as the rule's record counts it")
    if outside:
        reason += (f". Its values in {len(outside)} run(s) lie outside the range it was fitted on: it probably "
                   f"does not apply to this setting")
    return Selection(True, c.get("run") or c["_key"], int(c["step"]), _int_or_none(c.get("epoch")), None, reason,
                     per_run, run_path=c["_key"], warnings=warnings, gate=gate, rule=gate.rule,
                     confidence=confidence(gate), fallback=True, separates_nothing=held_first)


def gate_values(gate: Gate, values, eval_success=None, *, guard: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The values ``gate`` reads at one run's checkpoints, in step order, and where it saw a
    transient collapse: its form (:attr:`Gate.transform`) of ``values`` (None, NaN and inf become
    NaN, which never passes); with ``guard`` (post hoc, as ``select``) NaN also at every transient
    collapse (:func:`collapses`, of the form and of ``eval_success``), so one is never picked. Online
    (the hook, ``watch``) there is no guard: a collapse needs the next checkpoint."""
    x = np.array([math.nan if v is None else v for v in values], dtype=float)
    if gate.transform != "raw":
        from gatekit.transforms import transform

        x = np.asarray(transform(x, gate.transform), dtype=float)
    x = np.where(np.isfinite(x), x, math.nan)
    collapsed = collapses(x, gate.direction, eval_success) if guard else np.zeros(x.shape, dtype=bool)
    return np.where(collapsed, math.nan, x), collapsed


def pick(gate: Gate, steps, values, eval_success=None, *, guard: bool = True, crossing: bool = False) -> int | None:
    """Index of the checkpoint ``gate`` picks in one run (None: it never holds): the first at which
    :func:`gate_values` has passed for the gate's patience. ``select`` picks with it in each run,
    and the gate benchmark (``training/bench``) scores rules with it, so a held-out record
    describes the rule ``select`` applies. ``crossing``: the gate must go from not holding to
    holding (:func:`gatekit.rule.first_cross`), as it must to stop a teacher online."""
    x, _ = gate_values(gate, values, eval_success, guard=guard)
    return R.first_hold(steps, x, gate.to_rule(), crossing=crossing)


def _eval_success(rs: list[dict]) -> np.ndarray | None:
    """The teacher's eval success over a run's rows (None unless every present value is a number)."""
    v = [r.get("eval_success") for r in rs]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v if x is not None)
    return np.array([math.nan if x is None else float(x) for x in v]) if numeric else None


def collapses(values, direction: str, eval_success=None) -> np.ndarray:
    """Checkpoints that are transient collapses: the rule's value (oriented so that its passing
    side is up) or the teacher's eval success dips below both neighbours'
    (:func:`gatekit.transforms.dips`). ``select`` never recommends one; the benchmark scores a
    *choose* rule with the same guard, so its record describes the rule ``select`` applies."""
    from gatekit.transforms import dips

    x = np.asarray(values, dtype=float)
    out = dips(R.oriented(x, direction))
    if eval_success is not None:
        out |= dips(np.asarray(eval_success, dtype=float))
    return out


def _outside_range(key: str, rs: list[dict], gate: Gate) -> str | None:
    rng = (gate.fitted_on or {}).get("range")
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, (int, float)) for x in rng)):
        return None
    lo, hi = sorted(float(x) for x in rng)
    vals = [r[VALUE] for r in rs if _finite(r[VALUE])]
    bad = [v for v in vals if v < lo or v > hi]
    if not bad:
        return None
    return (f"{key}: {len(bad)} of {len(vals)} checkpoint(s) have {gate.metric} outside [{lo:.4g}, {hi:.4g}], "
            f"the range the gate was fitted on: it was fitted on another setting and may not apply here")


def _interval(ci, fmt: str = ".0%") -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) and math.isfinite(x)
                                                             for x in ci):
        return f" [95% CI {ci[0]:{fmt}}-{ci[1]:{fmt}}]"
    return ""


def stop_record(gate: Gate) -> str:
    """The gate's held-out record for *stopping* (``validation.held_out``) as one sentence."""
    held = (gate.validation or {}).get("held_out")
    if isinstance(held, dict) and isinstance(held.get("stop"), (int, float)):
        saved = (f", saving {held['saved']:.0%}{_interval(held.get('saved_ci'))} of training"
                 if isinstance(held.get("saved"), (int, float)) else "")
        return (f"this rule stopped right on {held['stop']:.0%}{_interval(held.get('stop_ci'))} of teacher runs of tasks "
                f"it was not fitted on{saved} ({held.get('text', 'leave-one-task-out')})")
    return "this rule has no held-out record for stopping: how often it stops right is unknown"


def confidence(gate: Gate) -> str:
    """The gate's held-out record as one sentence (``validation.held_out``), or that it has none."""
    held = (gate.validation or {}).get("held_out")
    if isinstance(held, dict) and isinstance(held.get("choose"), (int, float)):
        text = (f"this rule picked a right checkpoint on {held['choose']:.0%}{_interval(held.get('choose_ci'))} of "
                f"teacher runs of tasks it was not fitted on")
        if isinstance(held.get("regret"), (int, float)):
            text += f", losing {held['regret']:.1%}{_interval(held.get('regret_ci'), '.1%')} of the best student on average"
        text += f" ({held.get('text', 'leave-one-task-out')})"
        buys = (gate.validation or {}).get("measuring")
        if isinstance(buys, dict) and isinstance(buys.get("regret"), (int, float)):
            cost = f" for {buys['cost']:.2f} of a teacher's training" if isinstance(buys.get("cost"), (int, float)) else ""
            rule = f" ({buys['rule']})" if isinstance(buys.get("rule"), str) else ""
            text += (f". Measuring would buy: {buys['method']}{rule} was right on {buys['choose']:.0%}"
                     f"{_interval(buys.get('choose_ci'))}, losing {buys['regret']:.1%}{cost}")
            if isinstance(buys.get("command"), str):
                text += f" (`{buys['command']}`)"
        return text
    oof = ((gate.validation or {}).get("out_of_fold") or {}).get("accuracy")
    if isinstance(oof, (int, float)):
        return (f"out of fold on the runs it was fitted on, this rule labels {oof:.0%} of checkpoints right; it was "
                f"never tested on another task")
    return "this rule has no held-out record: how often it is right is unknown"


def short_record(gate: Gate, decision: str = "choose") -> str:
    """The gate's held-out record in a few words (what a default answer prints; the sentences of
    :func:`confidence` and :func:`stop_record` come with ``-v``)."""
    held = (gate.validation or {}).get("held_out")
    if not isinstance(held, dict) or not isinstance(held.get(decision), (int, float)):
        return "no held-out record"
    if decision == "stop":
        saved = f", saving {held['saved']:.0%}" if isinstance(held.get("saved"), (int, float)) else ""
        return f"stopped right on {held['stop']:.0%} of held-out runs{saved}"
    regret = f", {held['regret']:.1%} regret" if isinstance(held.get("regret"), (int, float)) else ""
    return f"right on {held['choose']:.0%} of held-out runs{regret}"
