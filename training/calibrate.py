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
from typing import Callable, Sequence

import numpy as np

from training import outcomes
from training.config import TrainConfig
from training.many import Job, run_jobs
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


def student_jobs(teacher: str | None, student_cfg: TrainConfig, out: pathlib.Path, name: str,
                 student_seeds: int) -> list[Job]:
    """The ``student_seeds`` students of ``teacher`` (``RUN_DIR@STEP``; None: the no-teacher
    baseline): ``student_cfg`` with seed 1000 + k at ``out/{name}_s{k}``."""
    return [Job(dataclasses.replace(student_cfg, seed=1000 + k), pathlib.Path(out) / f"{name}_s{k}", teacher)
            for k in range(student_seeds)]


def student_outcomes(teacher: str | None, student_cfg: TrainConfig, out: pathlib.Path, name: str,
                     student_seeds: int, outcome: str = "eval_success", **parallel) -> list[float]:
    """Trains (or reuses) the :func:`student_jobs` of ``teacher`` and returns their outcomes (a
    :mod:`training.outcomes` measure). ``parallel``: ``workers`` / ``max_parallel`` for
    :func:`training.many.run_jobs`."""
    jobs = student_jobs(teacher, student_cfg, out, name, student_seeds)
    run_jobs(jobs, **parallel)
    measure = outcomes.measure(outcome)
    return [measure(j.path) for j in jobs]


def pair_table(
    teachers: Sequence[pathlib.Path],
    student_cfg: TrainConfig,
    out: pathlib.Path,
    *,
    steps: Sequence[int] | None = None,
    student_seeds: int = 2,
    score_kwargs: dict | None = None,
    outcome: str = "eval_success",
    workers: int | None = None,
    max_parallel: int | None = None,
) -> list[dict]:
    """One row per teacher checkpoint: every gatekit statistic of the checkpoint (from
    ``gatekit.score``), ``teacher_seed``, and ``student_success`` (mean over ``student_seeds``
    students distilled from it with ``student_cfg``; ``outcome`` names the measure) with the
    per-seed values.

    ``steps``: which checkpoint steps to distill from (default: every one). All students are
    trained first, together (:func:`training.many.run_jobs`: threads of this process by default
    on a CPU, or ``workers`` processes; at most ``max_parallel`` runs per vmapped program;
    defaults per backend), finished ones reused.
    """
    import gatekit

    out = pathlib.Path(out)
    table = gatekit.score(list(teachers), **(score_kwargs or {}))
    picked = [r for r in table.rows if steps is None or r["step"] in steps]
    jobs = {id(r): student_jobs(f"{r['run_path']}@{r['step']}", student_cfg, out,
                                f"{pathlib.Path(r['run_path']).name}@{r['step']}", student_seeds) for r in picked}
    run_jobs([j for js in jobs.values() for j in js], workers=workers, max_parallel=max_parallel, progress=_log)
    measure = outcomes.measure(outcome)
    rows = []
    for r in picked:
        vals = [measure(j.path) for j in jobs[id(r)]]
        rows.append({"teacher_seed": r["seed"], **r, "student_success": float(np.mean(vals)),
                     **{f"student_success_s{k}": v for k, v in enumerate(vals)}})
        _log(f"  {pathlib.Path(r['run_path']).name}@{r['step']}: student {np.mean(vals):.3f}")
    return rows


def baseline_students(student_cfg: TrainConfig, out: pathlib.Path, *, student_seeds: int = 2,
                      outcome: str = "eval_success", **parallel) -> list[float]:
    """No-teacher students with the same budget as the distilled ones (lambda_pi unused)."""
    return student_outcomes(None, student_cfg, pathlib.Path(out), "baseline", student_seeds, outcome, **parallel)
