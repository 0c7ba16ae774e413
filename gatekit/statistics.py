"""The statistics registry, and the one builder of a checkpoint's row.

Every statistic gatekit computes is declared once in :data:`REGISTRY`: its name, when it can be
computed (``online``: from the checkpoint and the ones before it, at the moment it is saved, so a
training hook or a watcher may use it; ``retrospective``: needs a later checkpoint, the run's
final one), which group computes it (one function per group, pure, in :mod:`gatekit.metrics`; the
student side, which trains a small network, in :mod:`gatekit.studentside`),
and whether the terminal table shows it. Every list of names (``METRIC_NAMES``,
``RETROSPECTIVE``, ``DEFAULT_DISPLAY``, ``NOT_STATISTICS``, ...) is derived from it.

:func:`checkpoint_statistics` computes the online statistics of one checkpoint and
:func:`checkpoint_row` lays out a checkpoint's row (identity, step, statistics, ``eval_*`` and
``train_*`` from its meta). ``gatekit score``, ``gatekit watch`` and the trainer's save-time gate
all build their rows with these two, so a gate on a column means the same column in all three.

Adding a statistic: compute it in its group's function in :mod:`gatekit.metrics` and add its
name to that group in ``_NAMES`` here (and to ``_DISPLAYED`` to show it by default).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any, Mapping

import numpy as np

from gatekit import metrics as M
from gatekit.errors import GatekitError


GROUPS = {
    "policy": ("gatekit.metrics.policy_metrics", "the policy's (mu, log_std) on the checkpoint's sample"),
    "representation": ("gatekit.metrics.representation_metrics",
                       "phi(s, a), psi(g+) on the sample's (obs, action, future goal) rows, or a fixed probe"),
    "reference": ("gatekit.metrics.similarity_metrics",
                  "this checkpoint's and the run's final checkpoint's representations on one shared probe"),
    "drift": ("gatekit.metrics.similarity_metrics (suffix _prev)",
              "this checkpoint's and the previous checkpoint's representations on this checkpoint's rows"),
    "student": ("gatekit.studentside.student_side_scores",
                "a fresh student (gatekit.studentside.STUDENT) against the checkpoint's policy on the fixed probe, "
                "else on its own (obs, future goal) rows; action_drift_prev against the previous checkpoint there"),
}
"""Each group: the pure function in :mod:`gatekit.metrics` that computes its statistics, and
what that function needs."""


@dataclasses.dataclass(frozen=True)
class Statistic:
    """One column of a score table that describes the teacher checkpoint."""

    name: str
    group: str
    """A key of :data:`GROUPS`."""
    display: bool = False
    """Shown by default in the terminal table."""

    @property
    def timing(self) -> str:
        return "retrospective" if self.group == "reference" else "online"

    @property
    def function(self) -> str:
        return GROUPS[self.group][0]

    @property
    def needs(self) -> str:
        return GROUPS[self.group][1]


_NAMES = {  # group -> its statistics, in score-table column order
    "policy": ("action_magnitude", "log_std_mean", "entropy"),
    "representation": ("sa_rank", "goal_rank", "alignment", "alignment_raw", "uniformity_sa", "uniformity_goal",
                       "contrastive_acc", "infonce"),
    "reference": ("cka_sa", "cka_goal", "cka_sa_debiased", "cka_goal_debiased", "q_corr"),
    "drift": ("cka_sa_prev", "cka_goal_prev", "q_corr_prev"),
    "student": ("student_distill_init", "student_grace", "student_grad_norm", "student_grad_coherence",
                "student_loglik", "student_bc_residual", "action_drift_prev"),
}
_DISPLAYED = {"action_magnitude", "entropy", "sa_rank", "goal_rank", "alignment", "uniformity_sa", "contrastive_acc",
              "infonce", "cka_sa", "cka_goal", "q_corr"}
REGISTRY: tuple[Statistic, ...] = tuple(Statistic(name, group, display=name in _DISPLAYED)
                                        for group, names in _NAMES.items() for name in names)
BY_NAME = {s.name: s for s in REGISTRY}
METRIC_NAMES = tuple(s.name for s in REGISTRY)
RETROSPECTIVE = frozenset(s.name for s in REGISTRY if s.timing == "retrospective")
DRIFT_COLUMNS = tuple(s.name for s in REGISTRY if s.group == "drift")
STUDENT_COLUMNS = tuple(s.name for s in REGISTRY if s.group == "student")

# Columns that are not statistics of the checkpoint.
BUDGET_FRACTION = "budget_fraction"
"""A checkpoint's share of its run's planned training (epoch / planned epochs; run.json
``train.epochs``): the column of the ``budget`` stop rule. Known only where the plan is."""
ID_COLUMNS = ("run", "role", "seed", "env", "step", "epoch", BUDGET_FRACTION, "env_steps", "wall_time")
BASELINES = ("step", "env_steps", "epoch", BUDGET_FRACTION)
"""Step-like columns: the trivial predictor every statistic must beat."""
SECTIONS = ("eval", "train")
"""Meta sections copied into rows as ``eval_*`` / ``train_*`` columns."""
BOOKKEEPING = ("run_path", "score_seconds", "teacher_seed", "student_seed", "teacher_step", "refill_env_steps",
               "train_env_steps_per_second", "train_updates_per_second", "train_lambda_pi")
"""Columns that say how a row was made (throughput, schedule, which seed), not what it measured."""
NOT_STATISTICS = frozenset(set(ID_COLUMNS) - set(BASELINES)) | frozenset(BOOKKEEPING)
DEFAULT_DISPLAY = ("run", "step", "epoch", *(s.name for s in REGISTRY if s.display), "eval_success")


def timing(name: str) -> str:
    """``"online"`` or ``"retrospective"`` for a score-table column.

    >>> timing("cka_sa"), timing("cka_sa_prev"), timing("action_magnitude")
    ('retrospective', 'online', 'online')
    """
    return "retrospective" if name in RETROSPECTIVE else "online"


def check_online(name: str, *, user: str = "a training hook") -> None:
    """Raises GatekitError when ``name`` needs a later checkpoint (not available to ``user``)."""
    if timing(name) == "retrospective":
        raise GatekitError(
            f"{name!r} is retrospective (measured against the run's final checkpoint, i.e. with "
            f"information from the future) and cannot be used by {user}; use an online statistic "
            f"such as {name.replace('_debiased', '')}_prev (against the previous checkpoint) instead"
        )


def check_gate_metric(gate, source: str) -> None:
    """GatekitError naming ``source`` when a gate (from a file or preset) reads a column gatekit
    does not know: checked where a gate file is applied (:func:`gatekit.resolve.resolve_gate`,
    :meth:`gatekit.hooks.GateHook.from_file`), so that ``gatekit.io`` stays below the statistics."""
    if not known_metric(gate.metric):
        raise GatekitError(f"{source}: unknown metric {gate.metric!r} (gatekit's statistics: "
                           f"gatekit.statistics.METRIC_NAMES, step-like columns, eval_* or train_*)")


def known_metric(name: str) -> bool:
    """Columns a gate may be on: the registry's statistics, the step-like baselines, and the
    ``eval_*`` / ``train_*`` columns a checkpoint's meta provides."""
    return name in BY_NAME or name in BASELINES or name.startswith(tuple(f"{s}_" for s in SECTIONS))


def check_metric(name, what: str = "--metric") -> str:
    """``name`` when :func:`known_metric`; else GatekitError naming ``what``, the valid choices
    and the closest names (did you mean). Called before any scoring starts."""
    import difflib

    if isinstance(name, str) and known_metric(name):
        return name
    choices = list(METRIC_NAMES) + list(BASELINES) + ["eval_success", "eval_time_at_goal"]
    close = difflib.get_close_matches(str(name), choices, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise GatekitError(f"{what} {name!r} is not a gatekit column{hint} (statistics: {', '.join(METRIC_NAMES)}; "
                       f"also step, env_steps, epoch, eval_*, train_*; see docs/metrics.md)")


# --------------------------------------------------------------------------------------------
# Forward passes (jit once per family object)
# --------------------------------------------------------------------------------------------

_JITTED: dict[int, Any] = {}
_JITTED_LOCK = threading.Lock()


def _jitted(family):
    """Two compiled views of ``family.apply`` (cached per family object): the policy outputs and
    the representations. Each returns only what it needs, so XLA drops the unused networks."""
    import jax

    with _JITTED_LOCK:
        if id(family) not in _JITTED:
            policy = jax.jit(lambda p, o, a, g: tuple(family.apply(p, o, a, g)[:2]))
            reprs = jax.jit(lambda p, o, a, g: tuple(family.apply(p, o, a, g)[2:]))
            _JITTED[id(family)] = (family, policy, reprs)  # holding family keeps its id unique
        return _JITTED[id(family)]


def _run(fn, params, obs, action, goal) -> tuple[np.ndarray, ...]:
    out = fn(params, obs.astype(np.float32), action.astype(np.float32), goal.astype(np.float32))
    return tuple(np.asarray(v, dtype=np.float64) for v in out)


def policy_on(family, params, rows) -> tuple[np.ndarray, np.ndarray]:
    """(mu, log_std) of the policy on rows ``{"obs", "action", "goal"}``, float64."""
    return _run(_jitted(family)[1], params, rows["obs"], rows["action"], rows["goal"])


def repr_on(family, params, rows) -> tuple[np.ndarray, np.ndarray]:
    """(phi(s, a), psi(g)) on rows ``{"obs", "action", "goal"}``, float64."""
    return _run(_jitted(family)[2], params, rows["obs"], rows["action"], rows["goal"])


def check_outputs(outputs: dict[str, np.ndarray], what: str) -> None:
    for name, v in outputs.items():
        if not np.all(np.isfinite(v)):
            raise GatekitError(f"{what}: non-finite {name} (NaN or Inf) from finite inputs")


def own_rows(sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The (obs, action, future goal) positive pairs of a checkpoint's own sample."""
    if "future_goal" not in sample:
        raise GatekitError("sample lacks 'future_goal' (needed for representation statistics)")
    return {"obs": sample["obs"], "action": sample["action"], "goal": sample["future_goal"]}


def checkpoint_statistics(family, params, prev_params, sample: Mapping[str, np.ndarray], *, tau: float = 1.0,
                          block: int = M.DEFAULT_BLOCK, probe: Mapping[str, np.ndarray] | None = None,
                          student_side: bool = True) -> dict:
    """Every *online* statistic of one checkpoint: what exists when it is saved.

    * ``policy``: on the checkpoint's sample (the states and goals its epoch visited);
    * ``representation``: on the (obs, action, future goal) rows of that sample, or on ``probe``
      when a fixed probe was given;
    * ``drift``: against the previous checkpoint's params on this checkpoint's own rows (None at
      a run's first checkpoint);
    * ``student`` (with ``student_side``; else None): :mod:`gatekit.studentside`, on the probe's
      rows when given, else the sample's own rows (about 0.3 s a checkpoint on a CPU).
    """
    mu, log_std = policy_on(family, params, sample)
    rows = probe if probe is not None else own_rows(sample)
    phi, psi = repr_on(family, params, rows)
    check_outputs({"policy mean": mu, "policy log_std": log_std, "sa representation": phi,
                   "goal representation": psi}, "network outputs")
    out = M.policy_metrics(mu, log_std)
    out.update(M.representation_metrics(phi, psi, energy=family.energy, tau=tau, block=block))
    out.update(_student_side(family, params, prev_params, rows) if student_side else dict.fromkeys(STUDENT_COLUMNS))
    if prev_params is None:
        out.update(dict.fromkeys(DRIFT_COLUMNS))
        return out
    own = own_rows(sample)
    now = (phi, psi) if probe is None else repr_on(family, params, own)
    before = repr_on(family, prev_params, own)
    check_outputs({"previous checkpoint's representations": np.concatenate([b.ravel() for b in before])}, "drift")
    out.update(M.similarity_metrics(*now, before, energy=family.energy, suffix="_prev", debiased=False))
    return out


def _student_side(family, params, prev_params, rows) -> dict:
    from gatekit.studentside import student_side_scores

    mu, log_std = policy_on(family, params, rows)
    prev = None if prev_params is None else policy_on(family, prev_params, rows)[0]
    return student_side_scores(rows["obs"], rows["goal"], mu, log_std, mu_prev=prev)


def _number_or_none(v, what: str):
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return v
    raise GatekitError(f"{what} is {v!r}, not a number")


def checkpoint_row(step: int, meta: Mapping[str, Any], statistics: Mapping[str, Any], *,
                   identity: Mapping[str, Any] | None = None,
                   retrospective: Mapping[str, Any] | None = None, planned_epochs: Any = None) -> dict:
    """One checkpoint's row: ``identity`` (run, role, seed, env), ``step``, ``epoch``,
    ``budget_fraction`` (with ``planned_epochs``: :func:`budget_fraction`), ``env_steps``,
    ``wall_time`` (from meta), the statistics, any retrospective statistics, then every numeric
    ``eval_*`` and ``train_*`` value of the meta. The one layout of a row."""
    row: dict[str, Any] = dict(identity or {})
    row.update(
        step=int(step),
        epoch=_number_or_none(meta.get("epoch"), "meta epoch"),
    )
    fraction = budget_fraction(row["epoch"], planned_epochs)
    if fraction is not None:
        row[BUDGET_FRACTION] = fraction
    row.update(
        env_steps=_number_or_none(meta.get("env_steps", step), "meta env_steps"),
        wall_time=_number_or_none(meta.get("wall_time"), "meta wall_time"),
    )
    row.update(statistics)
    row.update(retrospective or {})
    for section in SECTIONS:
        sec = meta.get(section)
        for k, v in (sec.items() if isinstance(sec, Mapping) else ()):
            if isinstance(v, (int, float)) and not isinstance(v, bool) or v is None:
                row[f"{section}_{k}"] = v
    return row


def budget_fraction(epoch: Any, planned_epochs: Any) -> float | None:
    """``epoch / planned_epochs`` (a checkpoint's share of its run's planned training), or None
    when either is unknown or not a positive number."""
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
             for x in (epoch, planned_epochs))
    return float(epoch) / float(planned_epochs) if ok and epoch >= 0 and planned_epochs > 0 else None


def planned_epochs(config: Mapping[str, Any]) -> Any:
    """The epochs a run was planned to train for (run.json ``train.epochs``), or None."""
    train = config.get("train") if isinstance(config, Mapping) else None
    return train.get("epochs") if isinstance(train, Mapping) else None
