"""Verify the top candidate checkpoints with pilot students: short distillations, measured.

    from training import pilot
    res = pilot.verify("runs/t0", out="runs/t0_pilots")      # the last 3 checkpoints, 25% pilots
    res["pick"]         # the earliest candidate whose pilot reaches 0.9 x the best pilot
    res["candidates"]   # per candidate: step, the pilots' outcomes, their mean

A pilot is a student distilled from one candidate checkpoint for ``fraction`` of the full
student budget (its first epochs: no schedule depends on the total). The pick is measured, not
predicted; it costs the pilots' training (``cost`` in the record). It is the racing engine with
:class:`gatekit.racing.Pilot` (``gatekit race --strategy pilot``; ``gatekit train pilot`` sets its
fraction and share of the best); the gate benchmark replays the same object on held-out tasks.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from gatekit.errors import GatekitError
from training import barrier, envs, outcomes
from training.config import TrainConfig

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


def verify(teacher, *, out, last: int = 3, fraction: float = 0.25, student_epochs: int = 8, seeds: int = 1,
           student_cfg: TrainConfig | None = None, outcome: str = "eval_success",
           fraction_of_best: float = FRACTION_OF_BEST, progress: Callable[[str], None] | None = None,
           executor="threads", workers: int | None = None) -> dict:
    """Pilot students from the last ``last`` checkpoints of ``teacher`` (a run folder): the racing
    engine running :class:`gatekit.racing.Pilot` (``gatekit race --strategy pilot``), whose pick is
    written once, there: the earliest candidate whose mean pilot reaches ``fraction_of_best`` x the
    best and is not a transient collapse. Each pilot is ``student_cfg`` (default
    :func:`default_student`) trained for ``fraction`` of ``student_epochs``, ``seeds`` per candidate,
    under ``out``. Returns the race's record (race.json): ``pick``, ``candidates`` (step, the
    pilots' outcomes, their mean), ``cost``."""
    from gatekit import api
    from gatekit.racing import Pilot
    from training.racing import BuiltinTrainer, builtin_trainer

    pilot_epochs(student_epochs, fraction)  # the fraction's check, named as the option
    if student_cfg is not None:
        student_epochs = student_cfg.epochs
        outcomes.measure_checked(outcome)
        trainer = BuiltinTrainer(student_cfg.to_dict(), outcome)
    else:
        trainer = builtin_trainer(teacher, student_epochs=student_epochs, outcome=outcome)
    strategy = Pilot(k=last, fraction=fraction, of_best=fraction_of_best, seeds=seeds, epochs=student_epochs)
    return api.race(teacher, out=out, strategy=strategy, trainer=trainer, executor=executor, workers=workers,
                    progress=progress)
