"""Calibrating a gate on your own task: distill students from teacher checkpoints and pair each
checkpoint's gatekit statistics with its student's outcome.

    teachers = [train_teacher(cfg, out / f"teacher_seed{s}", seed=s) for s in seeds]
    rows = pair_table(teachers, student_cfg, out / "students", student_seeds=2)
    gatekit.fit(rows, label="student_success", label_relative=0.8, group="teacher_seed", ...)

Finished runs are reused, so a second call only scores and pairs. Every student of a comparison
gets the same budget (``student_cfg``); :func:`baseline_students` trains the no-teacher baseline
with that same budget.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time
from typing import Callable, Sequence

import numpy as np

from training import outcomes
from training.config import TrainConfig
from training.runs import train_or_reuse

# The built-in default (quick start and the shipped pointmaze gate): a depth-8 teacher on the
# point maze "u", and depth-4 students with a short, equal budget.
POINTMAZE_TEACHER = TrainConfig(env="pointmaze", env_kwargs=(("maze", "u"),), depth=8, width=64, rep_dim=32,
                                epochs=12, num_envs=32, iterations_per_epoch=4, updates_per_iteration=64)
POINTMAZE_STUDENT = dataclasses.replace(POINTMAZE_TEACHER, depth=4, epochs=4, eval_episodes=256, lambda_pi=1.0)


def _log(msg: str) -> None:
    if sys.stderr.isatty():
        print(msg, file=sys.stderr, flush=True)


def train_teacher(cfg: TrainConfig, path: pathlib.Path, *, seed: int, progress: Callable | None = None) -> pathlib.Path:
    """Trains a teacher (or reuses a finished one at ``path``; an unfinished one is resumed)."""
    return train_or_reuse(dataclasses.replace(cfg, seed=seed), path, resume=True, progress=progress)


def student_outcomes(teacher: str | None, student_cfg: TrainConfig, out: pathlib.Path, name: str,
                     student_seeds: int, outcome: str = "eval_success") -> list[float]:
    """``student_seeds`` students of ``teacher`` (``RUN_DIR@STEP``; None: the no-teacher
    baseline), each ``student_cfg`` with seed 1000 + k at ``out/{name}_s{k}`` (finished ones
    reused), and their outcomes (a :mod:`training.outcomes` measure)."""
    measure = outcomes.measure(outcome)
    vals = []
    for k in range(student_seeds):
        path = train_or_reuse(dataclasses.replace(student_cfg, seed=1000 + k), pathlib.Path(out) / f"{name}_s{k}",
                              teacher=teacher)
        vals.append(measure(path))
    return vals


def pair_table(
    teachers: Sequence[pathlib.Path],
    student_cfg: TrainConfig,
    out: pathlib.Path,
    *,
    steps: Sequence[int] | None = None,
    student_seeds: int = 2,
    score_kwargs: dict | None = None,
    outcome: str = "eval_success",
) -> list[dict]:
    """One row per teacher checkpoint: every gatekit statistic of the checkpoint (from
    ``gatekit.score``), ``teacher_seed``, and ``student_success`` (mean over ``student_seeds``
    students distilled from it with ``student_cfg``; ``outcome`` names the measure) with the
    per-seed values.

    ``steps``: which checkpoint steps to distill from (default: every one).
    """
    import gatekit

    out = pathlib.Path(out)
    table = gatekit.score(list(teachers), **(score_kwargs or {}))
    rows = []
    t0 = time.time()
    for r in table.rows:
        if steps is not None and r["step"] not in steps:
            continue
        run_path = pathlib.Path(r["run_path"])
        vals = student_outcomes(f"{run_path}@{r['step']}", student_cfg, out, f"{run_path.name}@{r['step']}",
                                student_seeds, outcome)
        rows.append({"teacher_seed": r["seed"], **r, "student_success": float(np.mean(vals)),
                     **{f"student_success_s{k}": v for k, v in enumerate(vals)}})
        _log(f"  {run_path.name}@{r['step']}: student {np.mean(vals):.3f}  [{time.time() - t0:.0f}s]")
    return rows


def baseline_students(student_cfg: TrainConfig, out: pathlib.Path, *, student_seeds: int = 2,
                      outcome: str = "eval_success") -> list[float]:
    """No-teacher students with the same budget as the distilled ones (lambda_pi unused)."""
    return student_outcomes(None, student_cfg, pathlib.Path(out), "baseline", student_seeds, outcome)
