"""This project's trainer behind gatekit's racing engine (:mod:`gatekit.racing`).

    from gatekit.racing import LastK, race
    from training.racing import builtin_trainer
    trainer = builtin_trainer("runs/t0", student_epochs=8)          # depth-4, matched width
    race("runs/t0", out="runs/t0_race", strategy=LastK(k=3, epochs=8), trainer=trainer)

``gatekit race RUN --out DIR`` does the same from the command line. gatekit finds this trainer
through the ``gatekit.trainers`` entry point (``gatekit-train``), so it never imports this package.
A student here is :func:`training.pilot.default_student` (a depth-4 student with as many
parameters as the teacher) unless ``depth``, ``width`` or ``sets`` say otherwise; every setting is
printed and written into race.json.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from gatekit import io as gio
from gatekit.errors import GatekitError
from gatekit.racing.trainers import SEED_BASE
from training import outcomes
from training.config import TrainConfig
from training.pilot import default_student, teacher_settings


@dataclasses.dataclass(frozen=True)
class BuiltinTrainer:
    """Distills students of ``student`` (a TrainConfig as a dict) with :func:`training.train` and
    measures them with the :mod:`training.outcomes` measure ``outcome``. A student folder that
    already holds the epochs asked for is measured, not trained again (its checkpoint checksums
    are verified as it is read); one with fewer epochs is continued."""

    student: dict
    outcome: str = "eval_success"
    teacher_epoch_seconds: float | None = None

    def train(self, checkpoint: str, seed: int, epochs: int, out: pathlib.Path) -> float:
        from training.runs import check_reusable
        from training.trainer import train

        cfg = dataclasses.replace(TrainConfig.from_dict(self.student), seed=SEED_BASE + seed, epochs=epochs)
        out = pathlib.Path(out)
        have = _epochs_done(out)
        if have < epochs:
            if have and (out / gio.RUN_JSON).exists():
                stored = TrainConfig.from_dict(gio.read_run(out).config.get("train") or {})
                if dataclasses.replace(stored, epochs=epochs) != cfg:
                    raise GatekitError(f"{out}: holds a student of other settings; it is not reused")
                train(cfg, out, teacher=checkpoint, progress=None, resume=True)
            else:
                check_reusable(cfg, out, clear_unfinished=True)
                train(cfg, out, teacher=checkpoint, progress=None)
        run = gio.read_run(out)
        steps = gio.list_checkpoints(run)[0]
        at = next((s for s in steps if int(gio.load_checkpoint(run, s, items=("meta",)).meta.get("epoch", -1)) == epochs),
                  None)
        if at is None:
            raise GatekitError(f"{out}: no checkpoint at student epoch {epochs}")
        return float(outcomes.measure(self.outcome)(out, step=at))

    def describe(self) -> dict:
        return {"trainer": "gatekit-train", "student": self.student, "outcome": self.outcome}

    def seconds_per_epoch(self) -> float | None:
        """An estimate before any student ends: the teacher's seconds per epoch (a default student
        has the teacher's parameter count; distillation adds the teacher's forward pass)."""
        return self.teacher_epoch_seconds


def _epochs_done(out: pathlib.Path) -> int:
    if not (out / gio.RUN_JSON).is_file():
        return 0
    try:
        run = gio.read_run(out)
        steps = gio.list_checkpoints(run)[0]
        return int(gio.load_checkpoint(run, steps[-1], items=("meta",)).meta.get("epoch", 0)) if steps else 0
    except GatekitError:
        return 0


def builtin_trainer(run, *, student_epochs: int = 8, depth: int | None = None, width: int | None = None,
                    sets: dict | None = None, outcome: str = "eval_success") -> BuiltinTrainer:
    """The trainer for students of the teacher ``run`` (a run this trainer made: its run.json holds
    the settings to rebuild it; GatekitError naming the run, and the way out, otherwise)."""
    outcomes.measure_checked(outcome)
    r = gio.read_run(run)
    try:
        teacher = teacher_settings(r, run)
    except GatekitError as e:
        raise GatekitError(f"{e}. Race it with your own student trainer: gatekit race {run} --out DIR "
                           f"--student-cmd 'python distill.py --teacher {{checkpoint}} --seed {{seed}} --epochs "
                           f"{{epochs}} --out {{out}}'") from None
    try:
        cfg = default_student(teacher, student_epochs)
        changes = {k: v for k, v in (("depth", depth), ("width", width)) if v is not None}
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        for k, v in (sets or {}).items():
            if k not in names or k in ("env", "env_kwargs", "seed", "epochs"):
                raise GatekitError(f"--set {k}=...: not a student setting a race may change; one of "
                                   f"{sorted(names - {'env', 'env_kwargs', 'seed', 'epochs'})}")
            changes[k] = v
        cfg = dataclasses.replace(cfg, **changes)
        TrainConfig.from_dict(cfg.to_dict())
    except (TypeError, ValueError) as e:
        raise GatekitError(f"bad student settings: {e}") from None
    steps = gio.list_checkpoints(r)[0]
    per_epoch = None
    if steps:
        meta = gio.load_checkpoint(r, steps[-1], items=("meta",)).meta
        wt, ep = meta.get("wall_time"), meta.get("epoch")
        if isinstance(wt, (int, float)) and isinstance(ep, int) and ep > 0 and wt > 0:
            per_epoch = float(wt) / ep
    return BuiltinTrainer(json.loads(json.dumps(cfg.to_dict())), outcome, per_epoch)


def race(teacher, *, out, last: int = 3, seeds: int = 1, student_epochs: int = 8, outcome: str = "eval_success",
         progress=None, executor=None, **student) -> dict:
    """The last-``last`` race with this trainer (what ``gatekit race RUN --out DIR`` runs):
    :func:`gatekit.racing.race` with :class:`gatekit.racing.LastK` and :func:`builtin_trainer`."""
    from gatekit.racing import LastK, race as run_race

    trainer = builtin_trainer(teacher, student_epochs=student_epochs, outcome=outcome, **student)
    return run_race(teacher, out=out, strategy=LastK(k=last, seeds=seeds, epochs=student_epochs), trainer=trainer,
                    executor=executor, progress=progress, seconds_per_epoch=trainer.seconds_per_epoch())
