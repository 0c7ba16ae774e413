"""The CRL + distillation training stack that writes gatekit-run/1 checkpoints.

    from training import TrainConfig, train
    train(TrainConfig(epochs=5), "runs/teacher")
    train(TrainConfig(depth=4, epochs=5), "runs/student", teacher="runs/teacher@48000")
    verify_with_pilots("runs/teacher", out="runs/pilots", last=3)   # measured pilot students
    race("runs/teacher", out="runs/race")    # full students on the last 3 checkpoints, the best kept

``gatekit`` (the library) never imports this package; this package builds on it.
"""

from training.config import TrainConfig


def train(*args, **kwargs):
    from training.trainer import train as _train

    return _train(*args, **kwargs)


def verify_with_pilots(run, *, out, **kwargs) -> dict:
    """Verify a teacher run's top candidate checkpoints with pilot students (short distillations,
    measured): :func:`training.pilot.verify`."""
    from training.pilot import verify

    return verify(run, out=out, **kwargs)


def race(run, *, out, **kwargs) -> dict:
    """Race full students from a run's last checkpoints and keep the best: :func:`training.racing.race`."""
    from training.racing import race as _race

    return _race(run, out=out, **kwargs)


__all__ = ["TrainConfig", "race", "train", "verify_with_pilots"]
