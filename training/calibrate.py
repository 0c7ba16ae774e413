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

from gatekit import checkpoints as gio
from training.config import TrainConfig
from training.trainer import run_finished, train

# The built-in default (quick start and the shipped pointmaze gate): a depth-8 teacher on the
# point maze "u", and depth-4 students with a short, equal budget.
POINTMAZE_TEACHER = TrainConfig(env="pointmaze", env_kwargs=(("maze", "u"),), depth=8, width=64, rep_dim=32,
                                epochs=12, num_envs=32, iterations_per_epoch=4, updates_per_iteration=64)
POINTMAZE_STUDENT = dataclasses.replace(POINTMAZE_TEACHER, depth=4, epochs=4, eval_episodes=256, lambda_pi=1.0)


def _log(msg: str) -> None:
    if sys.stderr.isatty():
        print(msg, file=sys.stderr, flush=True)


def train_teacher(cfg: TrainConfig, path: pathlib.Path, *, seed: int, progress: Callable | None = None) -> pathlib.Path:
    """Trains a teacher (or reuses a finished one at ``path``)."""
    path = pathlib.Path(path)
    if not run_finished(path, cfg.epochs):
        if path.exists():
            return _resume(cfg, path, seed, progress)
        train(dataclasses.replace(cfg, seed=seed), path, progress=progress)
    return path


def _resume(cfg, path, seed, progress):
    train(dataclasses.replace(cfg, seed=seed), path, progress=progress, resume=True)
    return path


def student_outcome(run_dir: pathlib.Path) -> float:
    """A student's outcome: eval success of its final checkpoint."""
    run = gio.read_run(run_dir)
    steps = gio.list_checkpoints(run)[0]
    if not steps:
        raise FileNotFoundError(f"{run_dir}: student has no checkpoint")
    return float(gio.load_checkpoint(run, steps[-1], items=("meta",)).meta["eval"]["success"])


def distill(teacher: str | None, student_cfg: TrainConfig, path: pathlib.Path, *, seed: int) -> float:
    """Trains one student from ``RUN_DIR@STEP`` (None: no teacher) unless finished; its outcome."""
    path = pathlib.Path(path)
    if not run_finished(path, student_cfg.epochs):
        if path.exists():
            import shutil

            shutil.rmtree(path)  # an interrupted student is cheap: start it again
        train(dataclasses.replace(student_cfg, seed=seed), path, teacher=teacher, progress=None)
    return student_outcome(path)


def student_seeds_outcome(teacher: str | None, student_cfg: TrainConfig, out: pathlib.Path, name: str,
                          student_seeds: int) -> list[float]:
    return [distill(teacher, student_cfg, out / f"{name}_s{k}", seed=1000 + k) for k in range(student_seeds)]


def pair_table(
    teachers: Sequence[pathlib.Path],
    student_cfg: TrainConfig,
    out: pathlib.Path,
    *,
    steps: Sequence[int] | None = None,
    student_seeds: int = 2,
    score_kwargs: dict | None = None,
) -> list[dict]:
    """One row per teacher checkpoint: every gatekit statistic of the checkpoint (from
    ``gatekit.score``), ``teacher_seed``, and ``student_success`` (mean over ``student_seeds``
    students distilled from it with ``student_cfg``) with the per-seed values.

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
        outcomes = student_seeds_outcome(f"{run_path}@{r['step']}", student_cfg, out, f"{run_path.name}@{r['step']}",
                                         student_seeds)
        rows.append({"teacher_seed": r["seed"], **r, "student_success": float(np.mean(outcomes)),
                     **{f"student_success_s{k}": v for k, v in enumerate(outcomes)}})
        _log(f"  {run_path.name}@{r['step']}: student {np.mean(outcomes):.3f}  [{time.time() - t0:.0f}s]")
    return rows


def baseline_students(student_cfg: TrainConfig, out: pathlib.Path, *, student_seeds: int = 2) -> list[float]:
    """No-teacher students with the same budget as the distilled ones (lambda_pi unused)."""
    return student_seeds_outcome(None, student_cfg, pathlib.Path(out), "baseline", student_seeds)
