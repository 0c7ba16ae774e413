"""What a student's outcome means: one named measure per task, read from the student's run.

* ``eval_success``: the eval success of the student's final checkpoint (the point maze, where
  reaching the goal at all is the hard part; the built-in calibration and the quick start);
* ``eval_time_at_goal``: the eval time at goal of the final checkpoint (Brax reacher, which has
  no far-goal split);
* ``far_time_at_goal``: time at goal over deterministic episodes on far goals only, from the
  start (the barrier candidates, where near goals are easy for any student; see
  :func:`training.barrier.far_goal_eval`).

A task names its measure (``Candidate.outcome``, ``pair_table(outcome=...)``); results tables
keep their column names (``student_success`` in calibrations, ``student_outcome`` in sweeps).
"""

from __future__ import annotations

import pathlib
from typing import Callable

from gatekit import io as gio


def _final_eval(run_dir, step: int | None, key: str) -> float:
    run = gio.read_run(run_dir)
    steps = gio.list_checkpoints(run)[0]
    if not steps:
        raise FileNotFoundError(f"{run_dir}: student has no checkpoint")
    return float(gio.load_checkpoint(run, steps[-1] if step is None else step, items=("meta",)).meta["eval"][key])


def final_eval_success(run_dir, step: int | None = None) -> float:
    """Eval success of the run's final checkpoint (or of checkpoint ``step``)."""
    return _final_eval(run_dir, step, "success")


def final_eval_time_at_goal(run_dir, step: int | None = None) -> float:
    """Eval time at goal (steps at the goal per episode) of the final checkpoint (or ``step``)."""
    return _final_eval(run_dir, step, "time_at_goal")


def far_time_at_goal(run_dir, step: int | None = None) -> float:
    """Far-goal time at goal of the run's final checkpoint (or of checkpoint ``step``)."""
    from training.barrier import far_goal_eval

    return far_goal_eval(pathlib.Path(run_dir), step=step)["far_time_at_goal"]


OUTCOMES: dict[str, Callable[..., float]] = {
    "eval_success": final_eval_success,
    "far_time_at_goal": far_time_at_goal,
    "eval_time_at_goal": final_eval_time_at_goal,
}


def measure(name: str) -> Callable[..., float]:
    """The named measure: ``f(run_dir, step=None) -> float``."""
    if name not in OUTCOMES:
        raise ValueError(f"unknown student outcome {name!r}; choose from {sorted(OUTCOMES)}")
    return OUTCOMES[name]


def measure_checked(name: str) -> Callable[..., float]:
    """:func:`measure`, with an unknown name a GatekitError naming ``--outcome`` (before any work)."""
    from gatekit.errors import GatekitError

    try:
        return measure(name)
    except ValueError as e:
        raise GatekitError(f"--outcome: {e}") from None
