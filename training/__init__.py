"""The CRL + distillation training stack that writes gatekit-run/1 checkpoints.

    from training import TrainConfig, train
    train(TrainConfig(epochs=5), "runs/teacher")
    train(TrainConfig(depth=4, epochs=5), "runs/student", teacher="runs/teacher@48000")
    verify_with_pilots("runs/teacher", out="runs/pilots", last=3)   # measured pilot students

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


__all__ = ["TrainConfig", "train", "verify_with_pilots"]
