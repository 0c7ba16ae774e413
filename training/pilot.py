"""Verify the top candidate checkpoints with pilot students: short distillations, measured.

    from training import pilot
    res = pilot.verify("runs/t0", out="runs/t0_pilots")      # the last 3 checkpoints, 25% pilots
    res["pick"]       # the earliest candidate whose pilot reaches 0.9 x the best pilot
    res["pilots"]     # per candidate: step, the pilots' outcomes, their mean

A pilot is a student distilled from one candidate checkpoint for ``fraction`` of the full
student budget (its first epochs: no schedule depends on the total), several candidates trained
together (:func:`training.many.run_jobs`). The pick is measured, not predicted; it costs the
pilots' training (:func:`verify` reports the seconds). ``python -m training pilot RUN`` runs it.
The gate benchmark (:mod:`training.bench`) scores this rule on held-out tasks.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from typing import Callable, Sequence

import numpy as np

from gatekit import io as gio
from gatekit.errors import GatekitError
from gatekit.transforms import dips
from training import barrier, envs, outcomes
from training.config import TrainConfig
from training.many import Job, run_jobs

FRACTION_OF_BEST = 0.9


def default_student(teacher_cfg: TrainConfig, epochs: int) -> TrainConfig:
    """A depth-4 student with as many parameters as the teacher, ``epochs`` long, lambda_pi 1."""
    env = envs.make(teacher_cfg.env, **teacher_cfg.env_args())
    width = barrier.matched_width(env, 4, barrier.param_count(env, teacher_cfg.depth, teacher_cfg.width,
                                                              teacher_cfg.rep_dim))
    return dataclasses.replace(teacher_cfg, depth=4, width=width, epochs=epochs, lambda_pi=1.0, seed=0)


def teacher_settings(run, teacher) -> TrainConfig:
    """The teacher run's training settings (run.json ``train``); GatekitError naming the run when it
    has none (e.g. an imported JaxGCRL run: this trainer cannot rebuild its env or students)."""
    train = run.config.get("train")
    if not isinstance(train, dict) or not train:
        raise GatekitError(f"{teacher}: its run.json has no 'train' settings (a run gatekit-train did not train, "
                           f"e.g. an imported JaxGCRL run): students can be distilled only from a teacher this "
                           f"trainer can rebuild")
    return TrainConfig.from_dict(train)


def pilot_epochs(student_epochs: int, fraction: float) -> int:
    if not 0 < fraction <= 1:
        raise GatekitError(f"--fraction must be in (0, 1], got {fraction}")
    return max(1, int(math.floor(fraction * student_epochs + 0.5)))


def verify(teacher, *, out, steps: Sequence[int] | None = None, last: int = 3, fraction: float = 0.25,
           student_epochs: int = 8, seeds: int = 1, student_cfg: TrainConfig | None = None,
           outcome: str = "eval_success", fraction_of_best: float = FRACTION_OF_BEST,
           progress: Callable[[str], None] | None = None, **parallel) -> dict:
    """Pilot students from the candidate checkpoints of ``teacher`` (a run folder): ``steps``, or
    its ``last`` checkpoints. Each pilot is ``student_cfg`` (default :func:`default_student`)
    trained for ``fraction`` of ``student_epochs``, ``seeds`` per candidate, under ``out``.
    Returns the candidates' pilot outcomes (a :mod:`training.outcomes` measure) and the pick:
    the earliest candidate whose mean pilot reaches ``fraction_of_best`` x the best and is not a
    transient collapse."""
    run = gio.read_run(teacher)
    saved = gio.list_checkpoints(run)[0]
    if not saved:
        raise GatekitError(f"{teacher}: no checkpoints to verify")
    if steps is None:
        if last < 1:
            raise GatekitError(f"--last must be >= 1, got {last}")
        steps = saved[-last:]
    missing = [s for s in steps if s not in saved]
    if missing:
        raise GatekitError(f"{teacher}: no checkpoint at step(s) {missing} (saved: {saved[:3]}...{saved[-3:]})")
    if seeds < 1:
        raise GatekitError(f"--seeds must be >= 1, got {seeds}")
    measure = outcomes.measure(outcome)
    cfg = student_cfg or default_student(teacher_settings(run, teacher), student_epochs)
    cfg = dataclasses.replace(cfg, epochs=pilot_epochs(cfg.epochs if student_cfg else student_epochs, fraction))
    out = pathlib.Path(out)
    jobs = {s: [Job(dataclasses.replace(cfg, seed=1000 + k), out / f"step{s}_s{k}", f"{teacher}@{s}")
                for k in range(seeds)] for s in steps}
    t0 = time.time()
    run_jobs([j for js in jobs.values() for j in js], progress=progress, **parallel)
    seconds = time.time() - t0
    pilots = [{"step": int(s), "pilots": [measure(j.path) for j in js]} for s, js in jobs.items()]
    for p in pilots:
        p["mean"] = float(np.mean(p["pilots"]))
    means = np.array([p["mean"] for p in pilots])
    best = float(means.max())
    ok = (means >= fraction_of_best * best) & ~dips(means) if best > 0 else np.zeros(len(means), bool)
    pick = pilots[int(np.flatnonzero(ok)[0])]["step"] if ok.any() else None
    why = (f"the earliest candidate whose pilot reaches {fraction_of_best:g} x the best pilot ({best:.3g})"
           if pick is not None else "no pilot learned anything (best pilot <= 0): no candidate can be verified")
    return {"teacher": str(teacher), "pick": pick, "why": why, "pilots": pilots, "pilot_epochs": cfg.epochs,
            "student_epochs": student_epochs if student_cfg is None else None, "seeds": seeds,
            "outcome": outcome, "seconds": seconds}
